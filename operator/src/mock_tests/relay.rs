//! Mocked-API-server tests of the websocket transport's status: the
//! operator reads a relay stand-in (a local HTTP server answering with a
//! real relay status document) with the Secret's API token, writes what it
//! says, and polls a channel that is not Ready again soon, with backoff.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::Router;
use http::Method;
use k8s_openapi::jiff::Timestamp;
use k8s_openapi::ByteString;
use kube::runtime::controller::Action;
use serde_json::{json, Value};

use super::{serve, websocket, Mock, Reply, CLAIMS, CREDENTIALS, DEPLOYMENTS, SECRETS, SERVICES};
use super::{INGRESSES, TC_STATUS};
use crate::config::Config;
use crate::context::Context;
use crate::crd::TwitchChannel;
use crate::fixtures::{channel, RELAY_UNAUTHORIZED, RELAY_WEBSOCKET};
use crate::metrics::Metrics;
use crate::reconcile::reconcile;
use crate::relay_probe::{RelayProbe, RelayView};
use crate::status::{status, Observed, TwitchState};

/// A relay answering `doc` to `token` (anything else: 401); returns its URL.
async fn relay(doc: &'static str, token: String) -> String {
    let app = Router::new().route(
        "/api/v1/status",
        get(move |headers: HeaderMap| async move {
            let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
            if auth == Some(format!("Token {token}").as_str()) {
                Ok(doc)
            } else {
                Err(StatusCode::UNAUTHORIZED)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

/// A mocked API server, and every relay at `relay_url`.
fn mock_with_relay(relay_url: &str) -> Mock {
    let (service, handle) = tower_test::mock::pair();
    let client = kube::Client::new(service, "ns");
    let mut config = Config::for_tests("http://127.0.0.1:9/helix", "http://127.0.0.1:9/oauth2");
    config.resync = Duration::from_secs(100);
    let mut ctx = Context::new(client, config, Arc::new(Metrics::default()));
    ctx.relays = RelayProbe::at(relay_url);
    Mock {
        ctx: Arc::new(ctx),
        handle,
    }
}

/// The reads of a reconcile of `tc` whose children exist, one relay pod
/// ready (the credentials Secret is not there: the relay's business).
fn reads(tc: &TwitchChannel, secret: &Value) -> Vec<(Method, &'static str, Reply)> {
    let config = Config::for_tests("http://127.0.0.1:9/helix", "http://127.0.0.1:9/oauth2");
    let data: BTreeMap<String, ByteString> =
        serde_json::from_value(secret["data"].clone()).unwrap();
    let mut deployment = crate::build::deployment(tc, &config);
    let missing: crate::build::UserSecrets = [("twitch-app".to_string(), None)].into();
    let checksum = crate::build::inputs_checksum(tc, &missing, &data);
    crate::build::stamp_inputs(&mut deployment, &checksum);
    let mut deployment = serde_json::to_value(deployment).unwrap();
    deployment["status"] = json!({"replicas": 1, "readyReplicas": 1});
    let service = serde_json::to_value(crate::build::service(tc)).unwrap();
    let claim = serde_json::to_value(crate::build::volume_claim(tc, &config).unwrap()).unwrap();
    let item = |v: Value| {
        Reply::Json(json!({"apiVersion": "v1", "kind": "List", "metadata": {}, "items": [v]}))
    };
    let empty =
        Reply::Json(json!({"apiVersion": "v1", "kind": "List", "metadata": {}, "items": []}));
    vec![
        (Method::GET, SECRETS, item(secret.clone())),
        (Method::GET, DEPLOYMENTS, item(deployment)),
        (Method::GET, SERVICES, item(service)),
        (Method::GET, INGRESSES, empty),
        (Method::GET, CLAIMS, item(claim)),
        (Method::GET, CREDENTIALS, Reply::Status(404)),
    ]
}

/// The generated Secret of `tc` and its API token.
fn secret(tc: &TwitchChannel) -> (Value, String) {
    let config = Config::for_tests("http://127.0.0.1:9/helix", "http://127.0.0.1:9/oauth2");
    let secret = crate::build::secret(tc, &config, None, &mut rand::thread_rng());
    let token = secret.data.as_ref().unwrap()[crate::build::KEY_API_TOKEN]
        .0
        .clone();
    (
        serde_json::to_value(secret).unwrap(),
        String::from_utf8(token).unwrap(),
    )
}

/// The API server's answer to the status patch (the operator ignores it).
fn patched() -> Reply {
    Reply::Json(serde_json::to_value(channel("a")).unwrap())
}

fn condition<'a>(status: &'a Value, t: &str) -> (&'a str, &'a str) {
    let c = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == t)
        .unwrap();
    (c["status"].as_str().unwrap(), c["reason"].as_str().unwrap())
}

#[tokio::test]
async fn an_unauthorized_relay_is_reported_and_polled_again_with_backoff() {
    let mut tc = websocket(channel("a"));
    let (secret, token) = secret(&tc);
    let key: ByteString =
        serde_json::from_value(secret["data"][crate::build::KEY_SECRET_KEY].clone()).unwrap();
    let key_bytes = key.0;
    let Mock { ctx, handle } = mock_with_relay(&relay(RELAY_UNAUTHORIZED, token).await);
    // Two reconciles: the first writes the status, the second only reads.
    let mut script = reads(&tc, &secret);
    script.push((Method::PATCH, TC_STATUS, patched()));
    script.extend(reads(&tc, &secret));
    let server = tokio::spawn(serve(handle, script));
    let action = reconcile(Arc::new(tc.clone()), ctx.clone()).await.unwrap();
    assert_eq!(action, Action::requeue(Duration::from_secs(10)));

    // The world did not change: no status write, and the next look comes later.
    let observed = Observed {
        broadcaster_id: None,
        relay_url: crate::build::relay_url(&tc),
        relay: Some((1, 1)),
        twitch: TwitchState::Relay(RelayView::Reported(Box::new(
            serde_json::from_str(RELAY_UNAUTHORIZED).unwrap(),
        ))),
        unknown_events: vec![],
        secret_key_id: Some(crate::build::key_id(&key_bytes)),
    };
    tc.status = Some(status(&tc, &observed, Timestamp::now()));
    let action = tokio::time::timeout(Duration::from_secs(10), reconcile(Arc::new(tc), ctx))
        .await
        .expect("no write beyond the reads")
        .unwrap();
    assert_eq!(action, Action::requeue(Duration::from_secs(20)));

    let bodies = server.await.unwrap();
    let written = &bodies
        .iter()
        .find(|b| b["kind"] == "TwitchChannel")
        .unwrap()["status"];
    assert_eq!(condition(written, "Authorized"), ("False", "NotAuthorized"));
    assert_eq!(
        condition(written, "SubscriptionsReady"),
        ("False", "WaitingForAuthorization")
    );
    assert_eq!(condition(written, "RelayReady"), ("True", "Available"));
    assert_eq!(condition(written, "Ready"), ("False", "NotAuthorized"));
}

#[tokio::test]
async fn an_authorized_and_subscribed_relay_makes_the_channel_ready() {
    let tc = websocket(channel("a"));
    let (secret, token) = secret(&tc);
    let Mock { ctx, handle } = mock_with_relay(&relay(RELAY_WEBSOCKET, token).await);
    let mut script = reads(&tc, &secret);
    script.push((Method::PATCH, TC_STATUS, patched()));
    let server = tokio::spawn(serve(handle, script));
    let action = reconcile(Arc::new(tc), ctx).await.unwrap();
    let bodies = server.await.unwrap();
    let status = &bodies.last().unwrap()["status"];
    for t in ["Ready", "Authorized", "SubscriptionsReady", "RelayReady"] {
        assert_eq!(condition(status, t).0, "True", "{t}: {status}");
    }
    assert_eq!(status["subscriptionsReady"], "1/1");
    assert_eq!(status["subscriptions"][0]["type"], "channel.follow");
    // Ready: the normal resync (100 s plus jitter), not the poll.
    let wait = format!("{action:?}");
    assert!(
        wait.contains("requeue_after: Some(10") && wait.contains("s)"),
        "{wait}"
    );
    assert_ne!(action, Action::requeue(Duration::from_secs(10)));
}
