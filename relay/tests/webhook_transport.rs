//! Webhook transport against the fake Twitch: the reconciler creates the
//! wanted subscriptions with the app token, Twitch's verification challenge
//! is answered (pending → enabled), stale ones are replaced, and signed
//! notifications reach clients.

mod common;

use std::time::Duration;

use common::{TestRelay, SECRET};
use serde_json::{json, Value};
use tau_fake_twitch::FakeTwitch;
use tau_relay::config::Transport;

fn webhook(c: &mut tau_relay::config::Config) {
    c.transport = Transport::Webhook;
    c.twitch.broadcaster = Some(FakeTwitch::BROADCASTER_LOGIN.into());
    c.eventsub_types = vec![
        ("channel.follow".into(), "2".into()),
        ("channel.raid".into(), "1".into()),
    ];
}

async fn wait_status(relay: &TestRelay, state: &str) -> Value {
    let mut status = Value::Null;
    for _ in 0..200 {
        status = relay.get("/api/v1/status").await.json().await.unwrap();
        if status["twitch"]["eventsub"]["state"] == state {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("status never became {state}: {status}");
}

#[tokio::test]
async fn subscriptions_are_created_verified_and_deliver() {
    let fake = FakeTwitch::start().await;
    let relay = TestRelay::start_twitch(&fake, webhook).await;
    let status = wait_status(&relay, "subscribed").await;
    let subs = status["twitch"]["eventsub"]["subscriptions"]
        .as_array()
        .unwrap();
    assert_eq!(subs.len(), 3, "follow + raid in + raid out");
    assert!(subs.iter().all(|s| s["status"] == "enabled"), "{subs:?}");
    let callback = format!("{}/twitch/eventsub", relay.base);
    for sub in fake.subscriptions() {
        assert_eq!(sub.status, "enabled");
        match sub.transport {
            tau_fake_twitch::Transport::Webhook {
                callback: c,
                secret,
            } => {
                assert_eq!(c, callback);
                assert_eq!(secret, SECRET);
            }
            other => panic!("unexpected transport {other:?}"),
        }
    }
    let mut client = relay.client(json!({})).await;
    relay.wait_clients(1).await;
    let follow = fake
        .subscriptions()
        .into_iter()
        .find(|s| s.sub_type == "channel.follow")
        .unwrap();
    let status = fake
        .post_webhook_notification(&follow.id, json!({"user_id": "5", "user_login": "x"}))
        .await
        .unwrap();
    assert_eq!(status, 204);
    let (frame, _) = client.event().await;
    assert_eq!(frame["event_type"], "channel-follow");
    assert_eq!(frame["event_data"]["user_login"], "x");
}

#[tokio::test]
async fn stale_and_unwanted_subscriptions_are_replaced() {
    let fake = FakeTwitch::start().await;
    // What an earlier deployment left behind, made with the app token.
    let app_token = fake.issue_app_token();
    let http = reqwest::Client::new();
    let create = |kind: &str, version: &str, condition: Value, callback: &str| {
        http.post(format!("{}/eventsub/subscriptions", fake.api_url()))
            .header("Client-Id", FakeTwitch::CLIENT_ID)
            .bearer_auth(&app_token)
            .json(&json!({"type": kind, "version": version, "condition": condition,
                "transport": {"method": "webhook", "callback": callback, "secret": "old-secret-000"}}))
            .send()
    };
    fake.set_authorized(true);
    let old_callback = "http://127.0.0.1:9/old/eventsub";
    let r = create(
        "channel.follow",
        "2",
        json!({"broadcaster_user_id": "1337", "moderator_user_id": "1337"}),
        old_callback,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 202);
    let relay = TestRelay::start_twitch(&fake, webhook).await;
    let status = wait_status(&relay, "subscribed").await;
    let callback = format!("{}/twitch/eventsub", relay.base);
    let subs = fake.subscriptions();
    let ours: Vec<_> = subs
        .iter()
        .filter(|s| matches!(&s.transport, tau_fake_twitch::Transport::Webhook { callback: c, .. } if *c == callback))
        .collect();
    assert_eq!(ours.len(), 3, "{status}");
    assert!(
        !subs.iter().any(|s| matches!(&s.transport, tau_fake_twitch::Transport::Webhook { callback: c, .. } if c == old_callback)),
        "the subscription at the old callback was replaced"
    );
    // A second pass changes nothing.
    let report = tau_relay::twitch::app_subs::reconcile(
        &relay.state,
        &tau_relay::twitch::app_subs::webhook_target(&relay.state).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(
        report,
        tau_relay::twitch::app_subs::Report {
            kept: 3,
            ..Default::default()
        }
    );
}

#[tokio::test]
async fn an_unauthorized_broadcaster_is_reported_not_fatal() {
    let fake = FakeTwitch::start().await;
    fake.set_authorized(false);
    let relay = TestRelay::start_twitch(&fake, webhook).await;
    let status = wait_status(&relay, "partially_subscribed").await;
    let subs = status["twitch"]["eventsub"]["subscriptions"]
        .as_array()
        .unwrap();
    // Follows need the broadcaster's authorization; raids need none.
    let follow = subs.iter().find(|s| s["type"] == "channel.follow").unwrap()["status"]
        .as_str()
        .unwrap();
    assert!(
        follow.starts_with("failed: Twitch answered 403") && follow.contains("/twitch/authorize"),
        "{follow}"
    );
    assert!(
        subs.iter()
            .filter(|s| s["type"] == "channel.raid")
            .all(|s| s["status"] == "enabled"),
        "{subs:?}"
    );
    // No hot loop: one reconcile pass made one create attempt per missing subscription.
    let creates = fake
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/eventsub/subscriptions"))
        .count();
    assert_eq!(creates, 3);
    assert_eq!(
        relay
            .post("/api/v1/twitch-events/channel-follow/test", "")
            .await
            .status(),
        200
    );
}

/// With the operator owning subscriptions the relay only receives.
#[tokio::test]
async fn an_externally_managed_relay_creates_no_subscriptions() {
    let fake = FakeTwitch::start().await;
    let relay = TestRelay::start_twitch(&fake, |c| {
        webhook(c);
        c.manage_subscriptions = false;
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(fake.subscriptions().is_empty());
    let posts = fake
        .requests()
        .iter()
        .filter(|r| r.path.contains("eventsub"))
        .count();
    assert_eq!(posts, 0, "no Helix subscription calls at all");
    // It still accepts signed webhooks.
    assert_eq!(
        relay
            .notify("m", "channel.follow", "2", r#"{"user_id":"1"}"#)
            .await,
        204
    );
}

/// A resubscribe request runs the reconciler at once (it would otherwise
/// wait ten minutes): once the broadcaster has authorized, the follow
/// subscription that failed is created.
#[tokio::test]
async fn resubscribe_reconciles_at_once() {
    let fake = FakeTwitch::start().await;
    fake.set_authorized(false);
    let relay = TestRelay::start_twitch(&fake, webhook).await;
    wait_status(&relay, "partially_subscribed").await;
    fake.set_authorized(true);
    let response = relay.post("/api/v1/twitch/resubscribe", "").await;
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("reconciling"),
        "{body}"
    );
    let status = wait_status(&relay, "subscribed").await;
    let subs = status["twitch"]["eventsub"]["subscriptions"]
        .as_array()
        .unwrap();
    assert!(subs.iter().all(|s| s["status"] == "enabled"), "{subs:?}");
    assert!(fake
        .subscriptions()
        .iter()
        .any(|s| s.sub_type == "channel.follow" && s.status == "enabled"));
}
