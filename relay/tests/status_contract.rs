//! The status document as the operator reads it: the operator's tests parse
//! fixtures in `operator/tests/fixtures/` (it does not depend on this crate),
//! and these tests hold the real document to them, so neither side can
//! drift alone. A fixture's every field must exist here with the same JSON
//! type (a `null` in the fixture matches anything).
//!
//! `TAU_WRITE_FIXTURES=1` rewrites the fixtures from the real documents.

mod common;

use std::time::Duration;

use common::{authorize, TestRelay};
use serde_json::Value;
use tau_fake_twitch::FakeTwitch;
use tau_relay::{config::Transport, store::Store};

fn fixture_path(name: &str) -> String {
    format!(
        "{}/../operator/tests/fixtures/relay-status-{name}.json",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// Paths in `fixture` missing from `real`, or of another type there.
fn differences(fixture: &Value, real: &Value, path: &str, out: &mut Vec<String>) {
    match (fixture, real) {
        (Value::Null, _) => {}
        (Value::Object(f), Value::Object(r)) => {
            for (key, value) in f {
                match r.get(key) {
                    Some(inner) => differences(value, inner, &format!("{path}.{key}"), out),
                    None => out.push(format!("{path}.{key} is missing")),
                }
            }
        }
        (Value::Array(f), Value::Array(r)) => {
            if let (Some(f), Some(r)) = (f.first(), r.first()) {
                differences(f, r, &format!("{path}[0]"), out);
            }
        }
        (f, r) if std::mem::discriminant(f) == std::mem::discriminant(r) => {}
        (f, r) => out.push(format!("{path}: fixture has {f}, the relay {r}")),
    }
}

async fn holds_to_fixture(relay: &TestRelay, name: &str) {
    let real: Value = relay.get("/api/v1/status").await.json().await.unwrap();
    let path = fixture_path(name);
    if std::env::var("TAU_WRITE_FIXTURES").as_deref() == Ok("1") {
        let text = serde_json::to_string_pretty(&real).unwrap() + "\n";
        std::fs::write(&path, text).unwrap();
    }
    let fixture: Value = serde_json::from_str(
        &std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}")),
    )
    .unwrap();
    let mut out = Vec::new();
    differences(&fixture, &real, "", &mut out);
    assert!(
        out.is_empty(),
        "{path} no longer matches the relay's status document:\n{}\nthe relay's: {real:#}",
        out.join("\n")
    );
}

/// Polls the status until `ready` holds (10 s at most).
async fn wait_status(relay: &TestRelay, ready: impl Fn(&Value) -> bool) {
    for _ in 0..100 {
        let status: Value = relay.get("/api/v1/status").await.json().await.unwrap();
        if ready(&status) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the relay's status never got there");
}

#[tokio::test]
async fn websocket_before_and_after_authorization() {
    let fake = FakeTwitch::start().await;
    let relay = TestRelay::start_twitch(&fake, |c| {
        c.eventsub_types = vec![("channel.follow".into(), "2".into())]
    })
    .await;
    wait_status(&relay, |s| {
        s["twitch"]["eventsub"]["state"] == "waiting_for_authorization"
    })
    .await;
    holds_to_fixture(&relay, "websocket-unauthorized").await;
    assert_eq!(authorize(&relay).await.status(), 200);
    wait_status(&relay, |s| {
        s["twitch"]["eventsub"]["state"] == "connected"
            && s["twitch"]["eventsub"]["subscriptions"][0]["status"] == "enabled"
    })
    .await;
    holds_to_fixture(&relay, "websocket").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conduit_with_its_subscriptions() {
    let fake = FakeTwitch::start().await;
    let mut config = tau_relay::config::Config::for_tests();
    config.twitch.client_id = Some(FakeTwitch::CLIENT_ID.into());
    config.twitch.client_secret = Some(FakeTwitch::CLIENT_SECRET.into());
    config.twitch.api_url = fake.api_url().parse().unwrap();
    config.twitch.auth_url = fake.auth_url().parse().unwrap();
    config.twitch.eventsub_ws_url = fake.eventsub_ws_url().parse().unwrap();
    config.twitch.broadcaster = Some(FakeTwitch::BROADCASTER_LOGIN.into());
    config.transport = Transport::Conduit;
    config.eventsub_types = vec![("channel.follow".into(), "2".into())];
    let relay = TestRelay::start_on(config, Store::in_memory().await).await;
    tau_relay::app::spawn_twitch(&relay.state);
    wait_status(&relay, |s| {
        let twitch = &s["twitch"];
        twitch["eventsub"]["state"] == "connected"
            && twitch["conduit"]["subscriptions"]
                .as_array()
                .is_some_and(|subs| {
                    subs.len() == 2 && subs.iter().all(|s| s["status"] == "enabled")
                })
    })
    .await;
    holds_to_fixture(&relay, "conduit").await;
}
