//! The Twitch application entered in the browser (`/api/v1/twitch/app`):
//! a relay started without TWITCH_CLIENT_ID/SECRET waits for them, takes a
//! pair Twitch accepts, and starts its Twitch side without a restart; the
//! secret is sealed at rest and never answered; another replica on the
//! same database picks the pair up; the environment wins.

mod common;

use std::time::Duration;

use common::{oauth, TestRelay};
use serde_json::{json, Value};
use tau_fake_twitch::FakeTwitch;
use tau_relay::{
    access::{Grant, Role},
    config::DatabaseKind,
    secret::SecretKey,
    store::Store,
};

const WAIT: Duration = Duration::from_secs(15);

/// A relay on `db` wired to `fake` with no client id or secret.
async fn without_credentials(fake: &FakeTwitch, db: &str, key: SecretKey) -> TestRelay {
    let store = Store::open(db, DatabaseKind::Sqlite).await.unwrap();
    TestRelay::start_twitch_on(fake, store, key, |config| {
        config.twitch.client_id = None;
        config.twitch.client_secret = None;
    })
    .await
}

async fn status(relay: &TestRelay) -> Value {
    let response = relay.get("/api/v1/status").await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// Polls the status until `ready` holds for its `twitch` part.
async fn wait_twitch(relay: &TestRelay, ready: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let twitch = status(relay).await["twitch"].clone();
        if ready(&twitch) {
            return twitch;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "status never got there: {twitch}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn send(
    relay: &TestRelay,
    method: reqwest::Method,
    token: &str,
    body: Option<Value>,
) -> (u16, String) {
    let mut request = relay
        .http
        .request(method, format!("{}/api/v1/twitch/app", relay.base))
        .header("Authorization", format!("Token {token}"));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

fn pair(secret: &str) -> Value {
    json!({"client_id": FakeTwitch::CLIENT_ID, "client_secret": secret})
}

/// Every byte of the database files (main file and write-ahead log).
fn database_bytes(dir: &std::path::Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        bytes.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_entered_in_the_browser_start_twitch_without_a_restart() {
    let fake = FakeTwitch::start().await;
    let dir = std::env::temp_dir().join(format!("tau-app-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = format!("sqlite://{}", dir.join("tau.db").display());
    let key = SecretKey::generate();
    let relay = without_credentials(&fake, &db, key.clone()).await;

    // Not configured: the transport parks until credentials arrive.
    let twitch = wait_twitch(&relay, |t| {
        t["eventsub"]["state"] == "waiting_for_credentials"
    })
    .await;
    assert_eq!(twitch["client_id_configured"], false);
    assert_eq!(twitch["credentials_source"], Value::Null);
    assert_eq!(twitch["app_token"]["state"], "missing");
    let (code, body) = send(&relay, reqwest::Method::GET, &relay.token, None).await;
    assert_eq!(
        (code, body.as_str()),
        (200, r#"{"client_id":null,"source":null}"#)
    );

    // Only admins.
    for role in [Role::Overlay, Role::Bot] {
        let weak = relay
            .state
            .store
            .create_token(&format!("{role:?}"), &Grant::role(role))
            .await
            .unwrap()
            .token;
        let (code, _) = send(
            &relay,
            reqwest::Method::PUT,
            &weak,
            Some(pair(FakeTwitch::CLIENT_SECRET)),
        )
        .await;
        assert_eq!(code, 403, "{role:?} may not set the app");
        let (code, _) = send(&relay, reqwest::Method::DELETE, &weak, None).await;
        assert_eq!(code, 403, "{role:?} may not forget the app");
    }

    // Malformed fields are named; a secret Twitch refuses is not stored.
    let (code, body) = send(
        &relay,
        reqwest::Method::PUT,
        &relay.token,
        Some(json!({"client_id": "not valid!", "client_secret": "x"})),
    )
    .await;
    assert_eq!(code, 400);
    assert!(body.contains("client_id"), "{body}");
    let (code, body) = send(
        &relay,
        reqwest::Method::PUT,
        &relay.token,
        Some(json!({"client_id": "abc", "client_secret": ""})),
    )
    .await;
    assert_eq!(code, 400);
    assert!(body.contains("client_secret"), "{body}");
    let (code, body) = send(
        &relay,
        reqwest::Method::PUT,
        &relay.token,
        Some(pair("wrong-secret-0000")),
    )
    .await;
    assert_eq!(code, 400, "{body}");
    let detail: Value = serde_json::from_str(&body).unwrap();
    let detail = detail["detail"].as_str().unwrap();
    assert!(detail.starts_with("Twitch refused"), "{detail}");
    assert!(
        detail.contains("invalid client secret"),
        "Twitch's words: {detail}"
    );
    assert!(!body.contains("wrong-secret-0000"));
    assert_eq!(relay.state.store.setting("twitch_app").await.unwrap(), None);
    assert_eq!(
        status(&relay).await["twitch"]["client_id_configured"],
        false
    );

    // The right pair: stored, in effect, the app token valid at once.
    let (code, body) = send(
        &relay,
        reqwest::Method::PUT,
        &relay.token,
        Some(pair(FakeTwitch::CLIENT_SECRET)),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"client_id": FakeTwitch::CLIENT_ID, "source": "dashboard"})
    );
    let twitch = status(&relay).await["twitch"].clone();
    assert_eq!(twitch["client_id_configured"], true);
    assert_eq!(twitch["credentials_source"], "dashboard");
    assert_eq!(twitch["app_token"]["state"], "valid");
    // The transport started and now waits for the broadcaster.
    wait_twitch(&relay, |t| {
        t["eventsub"]["state"] == "waiting_for_authorization"
    })
    .await;

    // OAuth works with the stored client id; the socket connects.
    let done = oauth::walk(&relay.base, &relay.token, str::to_string).await;
    assert_eq!(done.status(), 200);
    fake.wait_for_session(WAIT).await.unwrap();
    wait_twitch(&relay, |t| t["eventsub"]["state"] == "connected").await;

    // The secret is answered nowhere and sealed at rest.
    for path in [
        "/api/v1/status",
        "/api/v1/twitch/app",
        "/api/v1/openapi.json",
    ] {
        let text = relay.get(path).await.text().await.unwrap();
        assert!(!text.contains(FakeTwitch::CLIENT_SECRET), "{path}");
    }
    let stored = relay
        .state
        .store
        .setting("twitch_app")
        .await
        .unwrap()
        .unwrap();
    assert!(stored.contains(FakeTwitch::CLIENT_ID), "{stored}");
    assert!(!stored.contains(FakeTwitch::CLIENT_SECRET), "{stored}");
    assert!(!contains(&database_bytes(&dir), FakeTwitch::CLIENT_SECRET));

    // A second replica on the same database finds the pair.
    let second = without_credentials(&fake, &db, key.clone()).await;
    let twitch = wait_twitch(&second, |t| t["credentials_source"] == "dashboard").await;
    assert_eq!(twitch["client_id_configured"], true);
    let (_, body) = send(&second, reqwest::Method::GET, &second.token, None).await;
    assert!(body.contains(FakeTwitch::CLIENT_ID), "{body}");

    // Forgetting reaches the other replica within seconds.
    let (code, _) = send(&relay, reqwest::Method::DELETE, &relay.token, None).await;
    assert_eq!(code, 204);
    assert_eq!(relay.state.store.setting("twitch_app").await.unwrap(), None);
    wait_twitch(&second, |t| t["credentials_source"].is_null()).await;
    let twitch = status(&relay).await["twitch"].clone();
    assert_eq!(twitch["client_id_configured"], false);
    assert_eq!(twitch["app_token"]["state"], "missing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_environment_wins() {
    let fake = FakeTwitch::start().await;
    let relay = TestRelay::start_twitch(&fake, |_| {}).await;
    let (code, body) = send(
        &relay,
        reqwest::Method::PUT,
        &relay.token,
        Some(pair(FakeTwitch::CLIENT_SECRET)),
    )
    .await;
    assert_eq!(code, 409);
    assert!(body.contains("TWITCH_CLIENT_ID"), "{body}");
    let (code, _) = send(&relay, reqwest::Method::DELETE, &relay.token, None).await;
    assert_eq!(code, 409);
    let (code, body) = send(&relay, reqwest::Method::GET, &relay.token, None).await;
    assert_eq!(code, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"client_id": FakeTwitch::CLIENT_ID, "source": "environment"})
    );
    assert!(!body.contains(FakeTwitch::CLIENT_SECRET));
    assert_eq!(
        status(&relay).await["twitch"]["credentials_source"],
        "environment"
    );
}
