//! Mocked-API-server tests of the delete and error paths (see the parent module).

use std::sync::Arc;
use std::time::Duration;

use http::Method;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action;
use serde_json::json;
use tau_fake_twitch::FakeTwitch;

use super::{
    applies, base64, fake, finalized, lists, mock, serve, websocket, Mock, Reply, CREDENTIALS,
    EVENTS, SECRETS, TC, TC_STATUS,
};
use crate::crd::TwitchChannel;
use crate::fixtures::channel;
use crate::reconcile::{error_policy, reconcile};

fn deleting(mut tc: TwitchChannel, broadcaster_id: &str) -> TwitchChannel {
    tc = finalized(tc);
    tc.metadata.deletion_timestamp = Some(Time(Timestamp::now()));
    tc.status = Some(crate::crd::TwitchChannelStatus {
        broadcaster_id: Some(broadcaster_id.into()),
        ..Default::default()
    });
    tc
}

#[tokio::test]
async fn delete_removes_our_subscriptions_then_the_finalizer() {
    let twitch = fake().await;
    let client = tau_twitch::Client::new(
        twitch.api_url().parse().unwrap(),
        twitch.auth_url().parse().unwrap(),
    );
    let tokens = tau_twitch::AppTokens::default();
    let creds = tau_twitch::Credentials {
        client_id: FakeTwitch::CLIENT_ID.into(),
        client_secret: FakeTwitch::CLIENT_SECRET.into(),
    };
    let tc = channel("a");
    for (callback, kind) in [
        (crate::build::webhook_callback(&tc), "stream.online"),
        (
            "https://other.example.com/twitch/eventsub".into(),
            "stream.online",
        ),
    ] {
        let body = json!({"type": kind, "version": "1", "condition": {"broadcaster_user_id": FakeTwitch::BROADCASTER_ID},
            "transport": {"method": "webhook", "callback": callback, "secret": "0123456789abcdef"}});
        let auth = tau_twitch::AppAuth::new(&tokens, &creds);
        client.create_subscription(&auth, &body).await.unwrap();
    }
    let Mock { ctx, handle } = mock(Some(&twitch));
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "twitch-app"},
        "data": {"client-id": base64(FakeTwitch::CLIENT_ID), "client-secret": base64(FakeTwitch::CLIENT_SECRET)}});
    let script = vec![
        (
            Method::GET,
            "/api/v1/namespaces/ns/secrets/twitch-app",
            Reply::Json(secret),
        ),
        (
            Method::PATCH,
            TC,
            Reply::Json(serde_json::to_value(channel("a")).unwrap()),
        ),
    ];
    let server = tokio::spawn(serve(handle, script));
    let action = reconcile(Arc::new(deleting(tc, FakeTwitch::BROADCASTER_ID)), ctx)
        .await
        .unwrap();
    assert_eq!(action, Action::await_change());
    let bodies = server.await.unwrap();
    assert_eq!(
        bodies[1]["metadata"]["finalizers"],
        json!([]),
        "finalizer removal: {}",
        bodies[1]
    );
    let left = twitch.subscriptions();
    assert_eq!(left.len(), 1, "only another channel's subscription is left");
}

#[tokio::test]
async fn delete_with_the_credentials_secret_gone_still_completes() {
    let Mock { ctx, handle } = mock(None);
    let script = vec![
        (
            Method::GET,
            "/api/v1/namespaces/ns/secrets/twitch-app",
            Reply::Status(404),
        ),
        (Method::POST, EVENTS, Reply::Echo),
        (
            Method::PATCH,
            TC,
            Reply::Json(serde_json::to_value(channel("a")).unwrap()),
        ),
    ];
    let server = tokio::spawn(serve(handle, script));
    reconcile(Arc::new(deleting(channel("a"), "1337")), ctx)
        .await
        .unwrap();
    let bodies = server.await.unwrap();
    assert_eq!(bodies[1]["reason"], "CleanupSkipped");
}

#[tokio::test]
async fn an_api_error_is_reported_and_backs_off_per_object() {
    let Mock { ctx, handle } = mock(None);
    let script = vec![
        (Method::GET, SECRETS, Reply::Status(500)),
        (Method::POST, EVENTS, Reply::Echo),
    ];
    let server = tokio::spawn(serve(handle, script));
    let tc = Arc::new(finalized(websocket(channel("a"))));
    let err = reconcile(tc.clone(), ctx.clone()).await.unwrap_err();
    assert_eq!(err.metric_label(), "kube");
    let bodies = server.await.unwrap();
    assert_eq!(bodies[1]["reason"], "ReconcileFailed");
    assert_eq!(bodies[1]["type"], "Warning");
    let waits: Vec<Action> = (0..3)
        .map(|_| error_policy(tc.clone(), &err, ctx.clone()))
        .collect();
    let secs = [5, 10, 20].map(|s| Action::requeue(Duration::from_secs(s)));
    assert_eq!(waits, secs);
    let other = Arc::new(finalized(websocket(channel("b"))));
    assert_eq!(
        error_policy(other, &err, ctx),
        Action::requeue(Duration::from_secs(5))
    );
}

#[tokio::test]
async fn a_switch_from_webhook_removes_the_operators_webhooks_then_the_finalizer() {
    let twitch = fake().await;
    let client = tau_twitch::Client::new(
        twitch.api_url().parse().unwrap(),
        twitch.auth_url().parse().unwrap(),
    );
    let tokens = tau_twitch::AppTokens::default();
    let creds = tau_twitch::Credentials {
        client_id: FakeTwitch::CLIENT_ID.into(),
        client_secret: FakeTwitch::CLIENT_SECRET.into(),
    };
    let auth = tau_twitch::AppAuth::new(&tokens, &creds);
    // Made while the channel was on the webhook transport (with an Ingress).
    let was = channel("a");
    let mut made = Vec::new();
    for (callback, kind) in [
        (crate::build::webhook_callback(&was), "stream.online"),
        (crate::build::webhook_callback(&was), "stream.offline"),
        (
            "https://other.example.com/twitch/eventsub".into(),
            "stream.online",
        ),
    ] {
        let body = json!({"type": kind, "version": "1", "condition": {"broadcaster_user_id": FakeTwitch::BROADCASTER_ID},
            "transport": {"method": "webhook", "callback": callback, "secret": "0123456789abcdef"}});
        let tau_twitch::Created::Created(sub) =
            client.create_subscription(&auth, &body).await.unwrap()
        else {
            panic!("not created");
        };
        made.push(sub["id"].as_str().unwrap().to_string());
    }
    // Now websocket (no Ingress): the status still describes the webhook days.
    let mut tc = finalized(websocket(channel("a")));
    tc.status = Some(crate::crd::TwitchChannelStatus {
        transport: Some("webhook".into()),
        broadcaster_id: Some(FakeTwitch::BROADCASTER_ID.into()),
        relay_url: Some(crate::build::relay_url(&was)),
        // One listed; the other is found by its callback.
        subscriptions: vec![crate::crd::SubscriptionStatus {
            kind: "stream.online".into(),
            version: "1".into(),
            id: made[0].clone(),
            status: "enabled".into(),
        }],
        ..Default::default()
    });
    let Mock { ctx, handle } = mock(Some(&twitch));
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "twitch-app"},
        "data": {"client-id": base64(FakeTwitch::CLIENT_ID), "client-secret": base64(FakeTwitch::CLIENT_SECRET)}});
    let mut script = lists(&tc);
    script.extend([(Method::GET, CREDENTIALS, Reply::Json(secret))]);
    script.extend(applies());
    script.extend([
        (Method::POST, EVENTS, Reply::Echo),
        (Method::POST, EVENTS, Reply::Echo),
        (
            Method::PATCH,
            TC,
            Reply::Json(serde_json::to_value(websocket(channel("a"))).unwrap()),
        ),
        (
            Method::PATCH,
            TC_STATUS,
            Reply::Json(serde_json::to_value(channel("a")).unwrap()),
        ),
    ]);
    let server = tokio::spawn(serve(handle, script));
    reconcile(Arc::new(tc), ctx).await.unwrap();
    let bodies = server.await.unwrap();
    assert_eq!(
        bodies[12]["reason"], "SubscriptionsChanged",
        "{}",
        bodies[12]
    );
    assert!(
        bodies[12]["note"].as_str().unwrap().contains("deleted 2"),
        "{}",
        bodies[12]
    );
    assert_eq!(
        bodies[13]["metadata"]["finalizers"],
        json!([]),
        "finalizer removal: {}",
        bodies[13]
    );
    assert_eq!(bodies[14]["status"]["transport"], "websocket");
    let left: Vec<String> = twitch.subscriptions().into_iter().map(|s| s.id).collect();
    assert_eq!(
        left,
        [made[2].clone()],
        "only another channel's subscription is left"
    );
}
