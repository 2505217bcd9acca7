//! Choosing the EventSub types at runtime (`/api/v1/twitch/event-types`)
//! against the fake Twitch: the session's subscriptions follow the choice,
//! the status and Connect Twitch ask for the new scopes, the choice
//! survives a restart and reaches other replicas, and bad input or weak
//! tokens are refused.

mod common;

use std::{collections::BTreeSet, time::Duration};

use common::{authorize, TestRelay};
use serde_json::{json, Value};
use tau_fake_twitch::FakeTwitch;
use tau_relay::{
    access::{Grant, Role},
    config::{Config, DatabaseKind},
    store::Store,
};

const WAIT: Duration = Duration::from_secs(15);
const PATH: &str = "/api/v1/twitch/event-types";

async fn send(relay: &TestRelay, method: &str, body: Option<Value>, token: &str) -> (u16, Value) {
    let mut request = relay
        .http
        .request(method.parse().unwrap(), format!("{}{PATH}", relay.base))
        .header("Authorization", format!("Token {token}"));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn choose(relay: &TestRelay, types: Value) -> Value {
    let (status, doc) = send(
        relay,
        "PUT",
        Some(json!({ "event_types": types })),
        &relay.token,
    )
    .await;
    assert_eq!(status, 200, "{doc}");
    doc
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {value}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// Waits for a connected session other than `after` with `count`
/// subscriptions; returns its id and their `(type, version)` set.
async fn next_session(
    fake: &FakeTwitch,
    after: &str,
    count: usize,
) -> (String, BTreeSet<(String, String)>) {
    let sessions = fake
        .wait_for_sessions(WAIT, |s| {
            s.iter()
                .any(|s| s.id != after && s.connected && s.subscription_ids.len() == count)
        })
        .await
        .unwrap_or_else(|_| panic!("no new session with {count} subscriptions"));
    let session = sessions
        .into_iter()
        .rev()
        .find(|s| s.id != after && s.connected && s.subscription_ids.len() == count)
        .unwrap();
    let types = fake
        .subscriptions()
        .into_iter()
        .filter(|s| s.transport.session_id() == Some(session.id.as_str()))
        .map(|s| (s.sub_type, s.version))
        .collect();
    (session.id, types)
}

fn set(items: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    items
        .iter()
        .map(|(t, v)| (t.to_string(), v.to_string()))
        .collect()
}

/// A SQLite file of its own (a restart opens it again).
fn database_file() -> (String, std::path::PathBuf) {
    let path = std::env::temp_dir().join(format!("tau-event-types-{}.db", uuid::Uuid::new_v4()));
    (format!("sqlite:{}", path.display()), path)
}

#[tokio::test]
async fn a_chosen_set_becomes_the_sessions_subscriptions_and_survives_a_restart() {
    let fake = FakeTwitch::start().await;
    let (url, file) = database_file();
    let store = Store::open(&url, DatabaseKind::Sqlite).await.unwrap();
    let key = tau_relay::secret::SecretKey::generate();
    let cheer_only = |c: &mut Config| c.eventsub_types = vec![("channel.cheer".into(), "1".into())];
    let relay = TestRelay::start_twitch_on(&fake, store.clone(), key.clone(), cheer_only).await;
    assert_eq!(authorize(&relay).await.status(), 200);
    let (first, types) = next_session(&fake, "", 1).await;
    assert_eq!(types, set(&[("channel.cheer", "1")]));

    let (status, doc) = send(&relay, "GET", None, &relay.token).await;
    assert_eq!(status, 200);
    assert_eq!(doc["source"], "environment");
    assert_eq!(doc["event_types"], json!(["channel-cheer"]));
    assert_eq!(doc["environment"], json!(["channel-cheer"]));
    assert_eq!(doc["scopes_needed"], json!(["bits:read"]));
    assert_eq!(doc["scopes_missing"], json!([]));
    assert_eq!(doc["scopes_granted"], json!(["bits:read"]));

    // Either spelling, a version: the session's subscriptions become exactly that set.
    let doc = choose(
        &relay,
        json!(["stream.online", "stream-offline", "channel.cheer@1"]),
    )
    .await;
    assert_eq!(doc["source"], "dashboard");
    assert_eq!(
        doc["event_types"],
        json!(["channel-cheer", "stream-offline", "stream-online"])
    );
    assert_eq!(
        doc["types"][0],
        json!({"type": "channel.cheer", "version": "1"})
    );
    assert_eq!(doc["scopes_missing"], json!([]));
    let (second, types) = next_session(&fake, &first, 3).await;
    assert_eq!(
        types,
        set(&[
            ("channel.cheer", "1"),
            ("stream.offline", "1"),
            ("stream.online", "1")
        ])
    );

    // Back to the environment's set.
    let (status, doc) = send(&relay, "DELETE", None, &relay.token).await;
    assert_eq!(status, 200, "{doc}");
    assert_eq!(doc["source"], "environment");
    assert_eq!(doc["event_types"], json!(["channel-cheer"]));
    let (third, types) = next_session(&fake, &second, 1).await;
    assert_eq!(types, set(&[("channel.cheer", "1")]));

    // A type needing a scope the stored token lacks: shown missing, and
    // Connect Twitch asks for it.
    let doc = choose(&relay, json!(["channel-follow", "stream-online"])).await;
    assert_eq!(doc["scopes_needed"], json!(["moderator:read:followers"]));
    assert_eq!(doc["scopes_missing"], json!(["moderator:read:followers"]));
    let status: Value = relay.get("/api/v1/status").await.json().await.unwrap();
    let user = &status["twitch"]["user_token"];
    assert_eq!(user["scopes_needed"], json!(["moderator:read:followers"]));
    assert_eq!(user["scopes_missing"], json!(["moderator:read:followers"]));
    assert_eq!(
        status["twitch"]["event_types"],
        json!(["channel-follow", "stream-online"])
    );
    let connect: Value = relay
        .post("/api/v1/twitch/authorize", "")
        .await
        .json()
        .await
        .unwrap();
    let location = connect["url"].as_str().expect("an authorize URL");
    let scope = url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "scope")
        .map(|(_, v)| v.to_string());
    assert_eq!(scope.as_deref(), Some("moderator:read:followers"));
    // The follow subscription fails at Twitch (no scope); online is made.
    let (_, types) = next_session(&fake, &third, 1).await;
    assert_eq!(types, set(&[("stream.online", "1")]));

    // A restart (same database and key) keeps the choice.
    relay.state.shutdown.cancel();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut config = Config::for_tests();
    cheer_only(&mut config);
    config.twitch.client_id = Some(FakeTwitch::CLIENT_ID.into());
    config.twitch.client_secret = Some(FakeTwitch::CLIENT_SECRET.into());
    config.twitch.api_url = fake.api_url().parse().unwrap();
    config.twitch.auth_url = fake.auth_url().parse().unwrap();
    let reopened = Store::open(&url, DatabaseKind::Sqlite).await.unwrap();
    let restarted = TestRelay::start_keyed(listener, config, reopened, key).await;
    let (status, doc) = send(&restarted, "GET", None, &restarted.token).await;
    assert_eq!(status, 200);
    assert_eq!(doc["source"], "dashboard");
    assert_eq!(
        doc["event_types"],
        json!(["channel-follow", "stream-online"])
    );
    assert_eq!(doc["scopes_missing"], json!(["moderator:read:followers"]));
    let (status, doc) = send(&restarted, "DELETE", None, &restarted.token).await;
    assert_eq!(status, 200);
    assert_eq!(doc["source"], "environment");
    assert_eq!(doc["event_types"], json!(["channel-cheer"]));
    drop(store);
    let _ = std::fs::remove_file(file);
}

#[tokio::test]
async fn bad_choices_and_weak_tokens_are_refused_and_replicas_follow() {
    let relay = TestRelay::start().await;
    let token = relay.token.clone();

    let (status, body) = send(
        &relay,
        "PUT",
        Some(json!({"event_types": ["channel.nope", "channel-follow", "nah@3"]})),
        &token,
    )
    .await;
    assert_eq!(status, 400);
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("channel.nope") && detail.contains("nah@3"),
        "{detail}"
    );
    assert!(!detail.contains("channel-follow"), "{detail}");
    for bad in [
        json!({"event_types": []}),
        json!({"event_types": [" "]}),
        json!({"event_types": "channel-follow"}),
        json!({}),
        json!({"event_types": ["stream-online"], "extra": 1}),
    ] {
        let (status, body) = send(&relay, "PUT", Some(bad.clone()), &token).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body["detail"].is_string(), "{bad}: {body}");
    }
    let (_, doc) = send(&relay, "GET", None, &token).await;
    assert_eq!(doc["source"], "environment", "nothing stored");
    assert_eq!(doc["scopes_granted"], Value::Null);

    for role in [Role::Bot, Role::Overlay] {
        let weak = relay
            .state
            .store
            .create_token(&format!("{role}"), &Grant::role(role))
            .await
            .unwrap()
            .token;
        for (method, body) in [
            ("GET", None),
            ("PUT", Some(json!({"event_types": ["stream-online"]}))),
            ("DELETE", None),
        ] {
            let (status, _) = send(&relay, method, body, &weak).await;
            assert_eq!(status, 403, "{method} as {role}");
        }
    }

    // Another replica on the same database: it reads the choice within seconds.
    let replica = TestRelay::start_on(Config::for_tests(), relay.state.store.clone()).await;
    let (_, before) = send(&replica, "GET", None, &replica.token).await;
    assert_eq!(before["source"], "environment");
    let doc = choose(&relay, json!(["default"])).await;
    assert_eq!(doc["source"], "dashboard");
    assert_eq!(strings(&doc["event_types"]).len(), 26);
    let doc = choose(&relay, json!(["channel.raid", "stream-online"])).await;
    let mut seen = Value::Null;
    for _ in 0..60 {
        seen = replica
            .get("/api/v1/status")
            .await
            .json::<Value>()
            .await
            .unwrap();
        if seen["twitch"]["event_types"] == doc["event_types"] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        seen["twitch"]["event_types"],
        json!(["channel-raid", "stream-online"])
    );
    let (_, after) = send(&replica, "GET", None, &replica.token).await;
    assert_eq!(after["source"], "dashboard");
}

#[tokio::test]
async fn the_operators_list_is_read_only() {
    let relay = TestRelay::start_with(|c| c.manage_subscriptions = false).await;
    let (status, doc) = send(&relay, "GET", None, &relay.token).await;
    assert_eq!(status, 200);
    assert_eq!(doc["source"], "operator");
    for (method, body) in [
        ("PUT", Some(json!({"event_types": ["stream-online"]}))),
        ("DELETE", None),
    ] {
        let (status, body) = send(&relay, method, body, &relay.token).await;
        assert_eq!(status, 409, "{method}");
        assert!(
            body["detail"].as_str().unwrap().contains("spec.events"),
            "{body}"
        );
    }
}
