//! Signed webhook forwarding against a receiver written here from
//! Twitch's documented recipe: the challenge on add (and 422 when it is
//! answered wrong), every header and the HMAC, the body's shape, in-order
//! delivery through a receiver outage with the same message id on every
//! retry, the pause after the pause window and resuming, a restart in the
//! middle of a backlog, type and condition filters, admin-only REST, no
//! secret in any answer; and two replicas on Postgres delivering each
//! event once.

mod common;

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::IntoResponse,
    routing::post,
    Router,
};
use common::TestRelay;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use tau_relay::{
    access::{Grant, Role},
    config::{Config, DatabaseKind},
    forwarding::wire::subscription_id,
    secret::SecretKey,
    store::Store,
};

const TARGET_SECRET: &str = "receiver-secret-0123";
const PATH: &str = "/api/v1/webhook-targets";

/// How the receiver answers.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Mode {
    /// 200 with the challenge, 204 to notifications.
    Good,
    /// 500 to everything.
    Failing,
    /// 200 with something that is not the challenge.
    WrongChallenge,
}

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
struct Seen {
    headers: HeaderMap,
    body: Value,
    /// The signature matched Twitch's recipe.
    signed: bool,
    /// It was answered 2xx.
    accepted: bool,
}

impl Seen {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or_default()
    }
    fn id(&self) -> String {
        self.header("twitch-eventsub-message-id").to_string()
    }
    fn kind(&self) -> &str {
        self.header("twitch-eventsub-message-type")
    }
}

#[derive(Clone)]
struct Receiver {
    mode: Arc<Mutex<Mode>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    url: String,
}

/// Twitch's recipe: HMAC-SHA256(secret, id + timestamp + raw body),
/// `sha256=` + hex, compared in constant time.
fn verify(headers: &HeaderMap, body: &[u8]) -> bool {
    let get = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("");
    let mut mac = Hmac::<Sha256>::new_from_slice(TARGET_SECRET.as_bytes()).unwrap();
    mac.update(get("twitch-eventsub-message-id").as_bytes());
    mac.update(get("twitch-eventsub-message-timestamp").as_bytes());
    mac.update(body);
    let Some(hex_sig) = get("twitch-eventsub-message-signature").strip_prefix("sha256=") else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    mac.verify_slice(&sig).is_ok()
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> impl IntoResponse {
    let mode = *r.mode.lock().unwrap();
    let signed = verify(&headers, &body);
    let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let kind = headers
        .get("twitch-eventsub-message-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let (status, answer) = match mode {
        Mode::Failing => (StatusCode::INTERNAL_SERVER_ERROR, "down".to_string()),
        _ if !signed => (StatusCode::FORBIDDEN, "bad signature".to_string()),
        Mode::WrongChallenge if kind == "webhook_callback_verification" => {
            (StatusCode::OK, "not-the-challenge".to_string())
        }
        _ if kind == "webhook_callback_verification" => (
            StatusCode::OK,
            value["challenge"].as_str().unwrap_or_default().to_string(),
        ),
        _ => (StatusCode::NO_CONTENT, String::new()),
    };
    r.seen.lock().unwrap().push(Seen {
        headers,
        body: value,
        signed,
        accepted: status.is_success(),
    });
    (status, [("content-type", "text/plain")], answer)
}

impl Receiver {
    async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let r = Receiver {
            mode: Arc::new(Mutex::new(Mode::Good)),
            seen: Default::default(),
            url: format!("http://{addr}/hook"),
        };
        let app = Router::new()
            .route("/hook", post(receive))
            .with_state(r.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        r
    }

    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Accepted notifications, in arrival order.
    fn accepted(&self) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.kind() == "notification" && s.accepted)
            .collect()
    }

    /// Waits until `n` notifications were accepted.
    async fn wait_accepted(&self, n: usize) -> Vec<Seen> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let got = self.accepted();
            if got.len() >= n {
                return got;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "waited for {n} notifications, have {}: {:?}",
                got.len(),
                self.seen()
                    .iter()
                    .map(|s| (s.kind().to_string(), s.accepted))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn call(
    relay: &TestRelay,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value, String) {
    let mut request = relay
        .http
        .request(method.parse().unwrap(), format!("{}{path}", relay.base))
        .header("Authorization", format!("Token {token}"));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    )
}

async fn admin(
    relay: &TestRelay,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value, String) {
    call(relay, &relay.token.clone(), method, path, body).await
}

async fn add(relay: &TestRelay, name: &str, url: &str, extra: Value) -> Value {
    let mut body = json!({"name": name, "url": url, "secret": TARGET_SECRET});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let (status, target, text) = admin(relay, "POST", PATH, Some(body)).await;
    assert_eq!(status, 201, "{text}");
    assert!(!text.contains(TARGET_SECRET), "the secret leaked: {text}");
    target
}

fn follow(user: &str, broadcaster: &str) -> String {
    format!(
        r#"{{"user_id":"{user}","user_login":"u{user}","user_name":"U{user}","broadcaster_user_id":"{broadcaster}","broadcaster_user_login":"b","broadcaster_user_name":"B","followed_at":"2023-01-01T00:00:00.123456789Z"}}"#
    )
}

fn fast(c: &mut Config) {
    c.timings.forward_backoff_min = Duration::from_millis(50);
    c.timings.forward_backoff_max = Duration::from_millis(200);
    c.timings.lease_renew = Duration::from_millis(200);
    c.timings.lease_ttl = Duration::from_secs(1);
    c.timings.catch_up_interval = Duration::from_millis(100);
}

async fn target(relay: &TestRelay, id: &str) -> Value {
    let (status, body, text) = admin(relay, "GET", &format!("{PATH}/{id}"), None).await;
    assert_eq!(status, 200, "{text}");
    assert!(!text.contains(TARGET_SECRET));
    body
}

async fn wait_status(relay: &TestRelay, id: &str, status: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let t = target(relay, id).await;
        if t["status"] == status {
            return t;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never {status}: {t}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The challenge, every header and the signature, the body, order, and
/// the filters; admin-only REST and its refusals.
#[tokio::test]
async fn targets_are_challenged_then_get_signed_twitch_messages_in_order() {
    let relay = TestRelay::start_with(fast).await;
    let receiver = Receiver::start().await;

    // Refused before anything is sent.
    for (body, field) in [
        (
            json!({"name": "x", "url": "ftp://h/x", "secret": TARGET_SECRET}),
            "url",
        ),
        (
            json!({"name": "x", "url": receiver.url, "secret": "short"}),
            "secret",
        ),
        (
            json!({"name": "", "url": receiver.url, "secret": TARGET_SECRET}),
            "name",
        ),
        (
            json!({"name": "x", "url": receiver.url, "secret": TARGET_SECRET, "event_types": ["channel.nope"]}),
            "event_types",
        ),
    ] {
        let (status, answer, _) = admin(&relay, "POST", PATH, Some(body)).await;
        assert_eq!(status, 400, "{answer}");
        assert!(
            answer["detail"].as_str().unwrap().starts_with(field),
            "{answer}"
        );
    }
    assert!(receiver.seen().is_empty());

    // A wrong echo, a failing target and a closed port: 422, nothing stored.
    receiver.set(Mode::WrongChallenge);
    let body = json!({"name": "bot", "url": receiver.url, "secret": TARGET_SECRET});
    let (status, answer, _) = admin(&relay, "POST", PATH, Some(body.clone())).await;
    assert_eq!(status, 422);
    assert!(
        answer["error"].as_str().unwrap().contains("body mismatch"),
        "{answer}"
    );
    receiver.set(Mode::Failing);
    let (status, answer, _) = admin(&relay, "POST", PATH, Some(body.clone())).await;
    assert_eq!(status, 422);
    assert!(
        answer["error"].as_str().unwrap().contains("500"),
        "{answer}"
    );
    let closed = json!({"name": "bot", "url": "http://127.0.0.1:1/hook", "secret": TARGET_SECRET});
    let (status, answer, _) = admin(&relay, "POST", PATH, Some(closed)).await;
    assert_eq!(status, 422);
    assert!(
        answer["error"].as_str().unwrap().contains("connection"),
        "{answer}"
    );
    let (_, list, _) = admin(&relay, "GET", PATH, None).await;
    assert_eq!(list["targets"], json!([]));

    // Added: the challenge was Twitch's, signed.
    receiver.set(Mode::Good);
    let all = add(&relay, "bot", &receiver.url, json!({})).await;
    assert_eq!(all["status"], "enabled");
    assert_eq!(all["secret_set"], true);
    assert_eq!(all["paused_reason"], Value::Null);
    assert_eq!(all["event_types"], json!([]));
    let challenge = receiver.seen().last().unwrap().clone();
    assert_eq!(challenge.kind(), "webhook_callback_verification");
    assert!(challenge.signed);
    assert_eq!(
        challenge.body["subscription"]["status"],
        "webhook_callback_verification_pending"
    );
    assert_eq!(
        challenge.body["subscription"]["transport"]["callback"],
        receiver.url.as_str()
    );
    let (status, _, _) = admin(&relay, "POST", PATH, Some(body)).await;
    assert_eq!(status, 409, "a taken name");

    // Filters: only cheers; only follows of broadcaster 2.
    let cheers = add(
        &relay,
        "cheers",
        &receiver.url,
        json!({"event_types": ["channel-cheer"]}),
    )
    .await;
    assert_eq!(cheers["event_types"], json!(["channel.cheer"]));
    let of_two = add(
        &relay,
        "of-two",
        &receiver.url,
        json!({"event_types": ["channel.follow"], "conditions": {"broadcaster_user_id": "2"}}),
    )
    .await;

    // Not an admin: refused, on every route.
    for role in [Role::Bot, Role::Overlay] {
        let weak = relay
            .state
            .store
            .create_token(&format!("weak-{role}"), &Grant::role(role))
            .await
            .unwrap()
            .token;
        for (method, path) in [
            ("GET", PATH.to_string()),
            ("GET", format!("{PATH}/{}", all["id"].as_str().unwrap())),
            ("DELETE", format!("{PATH}/{}", all["id"].as_str().unwrap())),
        ] {
            let (status, _, _) = call(&relay, &weak, method, &path, None).await;
            assert_eq!(status, 403, "{role} {method} {path}");
        }
    }

    let events = [follow("10", "1"), follow("11", "2"), follow("12", "1")];
    for (i, event) in events.iter().enumerate() {
        let status = relay
            .notify(&format!("msg-{i}"), "channel.follow", "2", event)
            .await;
        assert!(status.is_success(), "{status}");
    }
    let got = receiver.wait_accepted(4).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got_all: Vec<_> = receiver.accepted();
    assert_eq!(
        got_all.len(),
        4,
        "3 to `bot`, 1 to `of-two`, none to `cheers`"
    );
    let to = |target: &Value| -> Vec<Seen> {
        let sub = subscription_id(target["id"].as_str().unwrap(), "channel.follow");
        got.iter()
            .filter(|s| s.body["subscription"]["id"] == sub.as_str())
            .cloned()
            .collect()
    };
    let bot_got = to(&all);
    assert_eq!(bot_got.len(), 3);
    for (seen, event) in bot_got.iter().zip(&events) {
        assert!(seen.signed, "signature verifies");
        assert_eq!(seen.kind(), "notification");
        assert_eq!(seen.header("twitch-eventsub-message-retry"), "0");
        assert_eq!(
            seen.header("twitch-eventsub-subscription-type"),
            "channel.follow"
        );
        assert_eq!(seen.header("twitch-eventsub-subscription-version"), "2");
        assert_eq!(seen.header("content-type"), "application/json");
        let stamp = seen.header("twitch-eventsub-message-timestamp");
        assert!(
            chrono::DateTime::parse_from_rfc3339(stamp).is_ok(),
            "{stamp}"
        );
        assert!(uuid::Uuid::parse_str(&seen.id()).is_ok());
        let sub = &seen.body["subscription"];
        assert_eq!(sub["status"], "enabled");
        assert_eq!(sub["type"], "channel.follow");
        assert_eq!(sub["version"], "2");
        assert_eq!(sub["cost"], 0);
        assert_eq!(
            sub["transport"],
            json!({"method": "webhook", "callback": receiver.url})
        );
        assert!(sub["id"].is_string() && sub["created_at"].is_string());
        assert_eq!(
            seen.body["event"],
            serde_json::from_str::<Value>(event).unwrap()
        );
        let keys: Vec<_> = seen.body.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["event", "subscription"]);
    }
    let sub_ids: Vec<_> = bot_got
        .iter()
        .map(|s| s.body["subscription"]["id"].clone())
        .collect();
    assert!(
        sub_ids.iter().all(|id| *id == sub_ids[0]),
        "one subscription id per type"
    );
    let two_got = to(&of_two);
    assert_eq!(two_got.len(), 1);
    assert_eq!(two_got[0].body["event"]["user_id"], "11");
    assert_ne!(
        two_got[0].id(),
        bot_got[1].id(),
        "message ids differ per target"
    );

    let t = target(&relay, all["id"].as_str().unwrap()).await;
    assert_eq!(
        (t["delivered"].as_i64(), t["backlog"].as_i64()),
        (Some(3), Some(0))
    );
    assert!(t["last_success_at"].is_string());
    let t = target(&relay, cheers["id"].as_str().unwrap()).await;
    assert_eq!(t["delivered"], 0);

    // Metrics by target and result.
    let metrics = relay.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(r#"tau_forward_deliveries_total{target="bot",result="success"} 3"#),
        "{metrics}"
    );

    // Deleted: nothing more is sent.
    for t in [&all, &cheers, &of_two] {
        let (status, _, _) = admin(
            &relay,
            "DELETE",
            &format!("{PATH}/{}", t["id"].as_str().unwrap()),
            None,
        )
        .await;
        assert_eq!(status, 204);
    }
    let (status, _, _) = admin(
        &relay,
        "DELETE",
        &format!("{PATH}/{}", all["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(status, 404);
    relay
        .notify("msg-late", "channel.follow", "2", &follow("13", "1"))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.accepted().len(), 4);
}

/// An outage: the same event is retried with the same id and a growing
/// retry count, then everything arrives once, in order.
#[tokio::test]
async fn an_outage_is_retried_in_order_with_stable_ids() {
    let relay = TestRelay::start_with(fast).await;
    let receiver = Receiver::start().await;
    let t = add(&relay, "bot", &receiver.url, json!({})).await;
    let id = t["id"].as_str().unwrap();
    receiver.set(Mode::Failing);
    for i in 0..5 {
        relay
            .notify(
                &format!("out-{i}"),
                "channel.follow",
                "2",
                &follow(&i.to_string(), "1"),
            )
            .await;
    }
    let retrying = wait_status(&relay, id, "retrying").await;
    assert!(
        retrying["last_error"].as_str().unwrap().contains("500"),
        "{retrying}"
    );
    assert!(retrying["next_attempt_at"].is_string());
    assert_eq!(retrying["backlog"], 5);
    tokio::time::sleep(Duration::from_millis(600)).await;
    receiver.set(Mode::Good);
    let got = receiver.wait_accepted(5).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got_users: Vec<_> = receiver
        .accepted()
        .iter()
        .map(|s| s.body["event"]["user_id"].clone())
        .collect();
    assert_eq!(got_users, ["0", "1", "2", "3", "4"], "each once, in order");
    let failed: Vec<_> = receiver
        .seen()
        .into_iter()
        .filter(|s| s.kind() == "notification" && !s.accepted)
        .collect();
    assert!(failed.len() >= 2, "retried");
    assert!(
        failed.iter().all(|s| s.id() == got[0].id()),
        "only the first event was tried, always with its id"
    );
    let retries: Vec<u32> = failed
        .iter()
        .map(|s| s.header("twitch-eventsub-message-retry").parse().unwrap())
        .collect();
    assert_eq!(retries, (0..failed.len() as u32).collect::<Vec<_>>());
    let t = wait_status(&relay, id, "enabled").await;
    assert_eq!(t["delivered"], 5);
    assert_eq!(t["failed_attempts"].as_u64().unwrap(), failed.len() as u64);
    assert_eq!(t["last_error"], Value::Null);
}

/// Failing past the pause window pauses it (shown); resuming by hand
/// retries at once; a manual pause holds events back.
#[tokio::test]
async fn a_target_failing_too_long_is_paused_until_resumed() {
    let relay = TestRelay::start_with(|c| {
        fast(c);
        c.timings.forward_pause_after = Duration::from_millis(700);
    })
    .await;
    let receiver = Receiver::start().await;
    let t = add(&relay, "bot", &receiver.url, json!({})).await;
    let id = t["id"].as_str().unwrap();
    let path = format!("{PATH}/{id}");
    receiver.set(Mode::Failing);
    relay
        .notify("p-0", "channel.follow", "2", &follow("0", "1"))
        .await;
    let paused = wait_status(&relay, id, "paused").await;
    assert_eq!(paused["paused_reason"], "failing");
    assert_eq!(paused["next_attempt_at"], Value::Null);
    let metrics = relay.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("tau_forward_paused_targets 1"),
        "{metrics}"
    );
    let tries = receiver.seen().len();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.seen().len(), tries, "no retries while paused");

    receiver.set(Mode::Good);
    let (status, resumed, _) = admin(&relay, "PATCH", &path, Some(json!({"paused": false}))).await;
    assert_eq!(status, 200);
    assert_ne!(resumed["status"], "paused");
    receiver.wait_accepted(1).await;
    wait_status(&relay, id, "enabled").await;

    // By hand.
    let (_, manual, _) = admin(&relay, "PATCH", &path, Some(json!({"paused": true}))).await;
    assert_eq!(
        (manual["status"].as_str(), manual["paused_reason"].as_str()),
        (Some("paused"), Some("manual"))
    );
    relay
        .notify("p-1", "channel.follow", "2", &follow("1", "1"))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.accepted().len(), 1);
    assert_eq!(target(&relay, id).await["backlog"], 1);
    admin(&relay, "PATCH", &path, Some(json!({"paused": false}))).await;
    receiver.wait_accepted(2).await;

    // A new url is challenged; a wrong echo changes nothing.
    receiver.set(Mode::WrongChallenge);
    let (status, _, _) = admin(
        &relay,
        "PATCH",
        &path,
        Some(json!({"url": format!("{}?v=2", receiver.url)})),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(target(&relay, id).await["url"], receiver.url.as_str());
    receiver.set(Mode::Good);
    let (status, renamed, text) = admin(
        &relay,
        "PATCH",
        &path,
        Some(json!({"name": "renamed", "secret": TARGET_SECRET})),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(renamed["name"], "renamed");
    assert!(!text.contains(TARGET_SECRET));
}

/// A relay stopped in the middle of a backlog: its successor on the same
/// database continues from the cursor (resent with the same id).
#[tokio::test]
async fn a_restart_continues_from_the_cursor() {
    let store = Store::in_memory().await;
    let key = SecretKey::generate();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut config = Config::for_tests();
    fast(&mut config);
    let first = TestRelay::start_keyed(listener, config.clone(), store.clone(), key.clone()).await;
    let receiver = Receiver::start().await;
    add(&first, "bot", &receiver.url, json!({})).await;
    for i in 0..3 {
        first
            .notify(
                &format!("r-{i}"),
                "channel.follow",
                "2",
                &follow(&i.to_string(), "1"),
            )
            .await;
    }
    receiver.wait_accepted(3).await;
    receiver.set(Mode::Failing);
    for i in 3..6 {
        first
            .notify(
                &format!("r-{i}"),
                "channel.follow",
                "2",
                &follow(&i.to_string(), "1"),
            )
            .await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !receiver
        .seen()
        .iter()
        .any(|s| s.kind() == "notification" && !s.accepted)
    {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.state.shutdown.cancel();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let tried = receiver.seen().last().unwrap().id();

    receiver.set(Mode::Good);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let _second = TestRelay::start_keyed(listener, config, store, key).await;
    let got = receiver.wait_accepted(6).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let users: Vec<_> = receiver
        .accepted()
        .iter()
        .map(|s| s.body["event"]["user_id"].clone())
        .collect();
    assert_eq!(users, ["0", "1", "2", "3", "4", "5"]);
    assert_eq!(
        got[3].id(),
        tried,
        "the interrupted event keeps its message id"
    );
}

/// Two replicas on Postgres: each event is delivered by exactly one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_postgres_deliver_each_event_once() {
    let Some(pg) = tau_test_services::postgres("forwarding_two_replicas").await else {
        return;
    };
    let key = SecretKey::generate();
    let mut relays = Vec::new();
    for name in ["fw-a", "fw-b"] {
        let store = Store::open(&pg.url(), DatabaseKind::Postgres)
            .await
            .unwrap();
        let mut config = Config::for_tests();
        fast(&mut config);
        config.replica_id = name.into();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        relays.push(TestRelay::start_keyed(listener, config, store, key.clone()).await);
    }
    let receiver = Receiver::start().await;
    let t = add(&relays[0], "fleet", &receiver.url, json!({})).await;
    let n = 30;
    for i in 0..n {
        let relay = &relays[i % 2];
        relay
            .notify(
                &format!("pg-{i}"),
                "channel.follow",
                "2",
                &follow(&i.to_string(), "1"),
            )
            .await;
    }
    receiver.wait_accepted(n).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let got = receiver.accepted();
    let users: Vec<String> = got
        .iter()
        .map(|s| s.body["event"]["user_id"].as_str().unwrap().to_string())
        .collect();
    let expected: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    assert_eq!(users, expected, "each event once, in store order");
    let holders = relays[1].state.store.live_lease_holders().await.unwrap();
    let lease = format!("webhook-target:{}", t["id"].as_str().unwrap());
    assert_eq!(
        holders.iter().filter(|(name, _)| *name == lease).count(),
        1,
        "{holders:?}"
    );
}
