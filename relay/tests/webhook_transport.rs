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

/// With the operator owning subscriptions the relay only receives (and
/// lists, to show them).
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
    let calls: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("eventsub"))
        .collect();
    assert!(
        calls.iter().all(|r| r.method == "GET"),
        "no subscription made or deleted: {calls:?}"
    );
    assert!(!calls.is_empty(), "Twitch's list was read for the status");
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

/// A relay whose subscriptions the operator makes
/// (`TAU_MANAGE_SUBSCRIPTIONS=false`) creates none, and shows what Twitch
/// lists for its own callback — with Twitch's status for each — and those
/// types as its event types (not its defaults).
#[tokio::test]
async fn an_operator_managed_relay_shows_the_subscriptions_made_for_it() {
    let fake = FakeTwitch::start().await;
    fake.set_authorized(true);
    let relay = TestRelay::start_twitch(&fake, |c| {
        webhook(c);
        c.manage_subscriptions = false;
    })
    .await;
    let status = wait_status(&relay, "waiting_for_subscriptions").await;
    assert_eq!(status["twitch"]["event_types"], json!([]), "{status}");
    assert!(fake.subscriptions().is_empty(), "the relay made none");

    // What the operator makes: two for this relay, one for another.
    let app_token = fake.issue_app_token();
    let http = reqwest::Client::new();
    let callback = format!("{}/twitch/eventsub", relay.base);
    for (kind, version, condition, callback, secret) in [
        (
            "channel.follow",
            "2",
            json!({"broadcaster_user_id": "1337", "moderator_user_id": "1337"}),
            callback.as_str(),
            SECRET,
        ),
        (
            "stream.online",
            "1",
            json!({"broadcaster_user_id": "1337"}),
            callback.as_str(),
            SECRET,
        ),
        (
            "channel.raid",
            "1",
            json!({"to_broadcaster_user_id": "1337"}),
            "http://127.0.0.1:9/other/twitch/eventsub",
            "other-secret-000",
        ),
    ] {
        let r = http
            .post(format!("{}/eventsub/subscriptions", fake.api_url()))
            .header("Client-Id", FakeTwitch::CLIENT_ID)
            .bearer_auth(&app_token)
            .json(
                &json!({"type": kind, "version": version, "condition": condition,
                "transport": {"method": "webhook", "callback": callback, "secret": secret}}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202, "{kind}");
    }
    // A resubscribe request is refused (nothing to make here) and the
    // relay reads Twitch's list again within its minute; ask through the
    // observer directly instead of waiting.
    assert_eq!(
        relay.post("/api/v1/twitch/resubscribe", "").await.status(),
        409
    );
    tau_relay::twitch::observe::observe_once(&relay.state)
        .await
        .unwrap();
    let status = wait_status(&relay, "subscribed").await;
    let subs = status["twitch"]["eventsub"]["subscriptions"]
        .as_array()
        .unwrap();
    let mut kinds: Vec<&str> = subs.iter().map(|s| s["type"].as_str().unwrap()).collect();
    kinds.sort();
    assert_eq!(kinds, ["channel.follow", "stream.online"], "{status}");
    assert!(
        subs.iter()
            .all(|s| s["status"] == "enabled" && s["id"] != ""),
        "{subs:?}"
    );
    assert_eq!(
        status["twitch"]["event_types"],
        json!(["channel-follow", "stream-online"])
    );
    let types: Value = relay
        .get("/api/v1/twitch/event-types")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(types["source"], "operator", "{types}");
    assert_eq!(
        types["event_types"],
        json!(["channel-follow", "stream-online"])
    );
    assert_eq!(fake.subscriptions().len(), 3, "the relay deleted nothing");

    // Twitch revokes one: the relay shows it.
    let follow = subs.iter().find(|s| s["type"] == "channel.follow").unwrap();
    fake.revoke(follow["id"].as_str().unwrap(), "authorization_revoked")
        .await
        .unwrap();
    tau_relay::twitch::observe::observe_once(&relay.state)
        .await
        .unwrap();
    let status = wait_status(&relay, "partially_subscribed").await;
    assert!(
        status["twitch"]["eventsub"]["subscriptions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["type"] == "channel.follow" && s["status"] == "authorization_revoked"),
        "{status}"
    );
}
