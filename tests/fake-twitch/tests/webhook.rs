//! Webhook transport: the verification challenge reaches a tiny axum
//! callback with a correct signature; notifications and revocations are
//! signed; a wrong answer fails verification.

mod common;

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use tau_fake_twitch::{FakeTwitch, Options, WebhookOverrides};
use tokio::sync::mpsc;

const SECRET: &str = "s3cre7-at-least-ten";

/// What the callback saw.
#[derive(Debug)]
struct Seen {
    kind: String,
    sub_type: Option<String>,
    signature_ok: bool,
    id: String,
    host: Option<String>,
    body: Value,
}

/// Signature computed independently of the fake's own `sign`.
fn expected_signature(headers: &HeaderMap, body: &[u8]) -> String {
    let h = |k: &str| {
        headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(h("twitch-eventsub-message-id").as_bytes());
    mac.update(h("twitch-eventsub-message-timestamp").as_bytes());
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn callback(
    State(tx): State<mpsc::UnboundedSender<Seen>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let h = |k: &str| {
        headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let body_json: Value = serde_json::from_slice(&body).unwrap();
    let seen = Seen {
        kind: h("twitch-eventsub-message-type").unwrap_or_default(),
        sub_type: h("twitch-eventsub-subscription-type"),
        signature_ok: h("twitch-eventsub-message-signature")
            == Some(expected_signature(&headers, &body)),
        id: h("twitch-eventsub-message-id").unwrap_or_default(),
        host: h("host"),
        body: body_json.clone(),
    };
    let answer = match seen.kind.as_str() {
        "webhook_callback_verification" => {
            let challenge = body_json["challenge"].as_str().unwrap().to_string();
            ([("content-type", "text/plain")], challenge).into_response()
        }
        _ => StatusCode::NO_CONTENT.into_response(),
    };
    tx.send(seen).unwrap();
    answer
}

/// Starts a callback server; `/good` answers like a correct handler, `/bad`
/// echoes the challenge as JSON (which Twitch rejects).
async fn callback_server() -> (SocketAddr, mpsc::UnboundedReceiver<Seen>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let bad =
        |body: Bytes| async move { axum::Json(serde_json::from_slice::<Value>(&body).unwrap()) };
    let app = axum::Router::new()
        .route("/good", post(callback))
        .route("/bad", post(bad))
        .with_state(tx);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, rx)
}

fn webhook_sub(callback: String) -> Value {
    json!({
        "type": "channel.follow", "version": "2",
        "condition": {"broadcaster_user_id": "1337", "moderator_user_id": "1337"},
        "transport": {"method": "webhook", "callback": callback, "secret": SECRET},
    })
}

#[tokio::test]
async fn verification_notification_and_revocation_are_signed() {
    let fake = FakeTwitch::start().await;
    let (addr, mut seen) = callback_server().await;
    let app = fake.issue_app_token();
    let (status, created) =
        common::subscribe(&fake, &app, webhook_sub(format!("http://{addr}/good"))).await;
    assert_eq!(status, 202, "{created}");
    assert_eq!(
        created["data"][0]["status"],
        "webhook_callback_verification_pending"
    );
    assert!(created["data"][0]["transport"].get("secret").is_none());
    let id = created["data"][0]["id"].as_str().unwrap();

    let challenge = seen.recv().await.unwrap();
    assert_eq!(challenge.kind, "webhook_callback_verification");
    assert!(challenge.signature_ok, "{challenge:?}");
    assert_eq!(challenge.sub_type.as_deref(), Some("channel.follow"));
    assert_eq!(
        challenge.body["subscription"]["status"],
        "webhook_callback_verification_pending"
    );
    assert!(challenge.body["challenge"].is_string());
    fake.wait_for_subscription_status(id, "enabled", common::WAIT)
        .await
        .unwrap();

    let event =
        json!({"user_id": "1234", "user_login": "cool_user", "broadcaster_user_id": "1337"});
    let status = fake
        .post_webhook_notification(id, event.clone())
        .await
        .unwrap();
    assert_eq!(status, StatusCode::NO_CONTENT);
    let note = seen.recv().await.unwrap();
    assert_eq!(note.kind, "notification");
    assert!(note.signature_ok);
    assert_eq!(note.body["event"], event);
    assert_eq!(note.body["subscription"]["id"], id);

    // A resend reuses the id; a forged one fails the signature check.
    let replay = WebhookOverrides {
        message_id: Some(note.id.clone()),
        retry: 1,
        ..Default::default()
    };
    fake.post_webhook_notification_with(id, event.clone(), replay)
        .await
        .unwrap();
    assert_eq!(seen.recv().await.unwrap().id, note.id);
    let forged = WebhookOverrides {
        bad_signature: true,
        ..Default::default()
    };
    fake.post_webhook_notification_with(id, event, forged)
        .await
        .unwrap();
    assert!(!seen.recv().await.unwrap().signature_ok);

    fake.revoke(id, "authorization_revoked").await.unwrap();
    let revocation = seen.recv().await.unwrap();
    assert_eq!(revocation.kind, "revocation");
    assert!(revocation.signature_ok);
    assert_eq!(
        revocation.body["subscription"]["status"],
        "authorization_revoked"
    );
}

#[tokio::test]
async fn wrong_challenge_answer_fails_verification() {
    let fake = FakeTwitch::start_with(Options {
        auto_verify_webhooks: false,
        ..Options::default()
    })
    .await;
    let (addr, _seen) = callback_server().await;
    let app = fake.issue_app_token();
    let (_, created) =
        common::subscribe(&fake, &app, webhook_sub(format!("http://{addr}/bad"))).await;
    let id = created["data"][0]["id"].as_str().unwrap();
    let sub = fake.verify_webhook(id).await.unwrap();
    assert_eq!(sub.status, "webhook_callback_verification_failed");
    assert!(fake.post_webhook_notification(id, json!({})).await.is_err());
}

#[tokio::test]
async fn a_public_callback_is_unreachable_unless_routed() {
    let fake = FakeTwitch::start().await;
    let (addr, mut seen) = callback_server().await;
    let app = fake.issue_app_token();
    let public = "https://tau.example.com/good".to_string();

    // Hermetic by default: a non-loopback callback fails verification.
    let (_, created) = common::subscribe(&fake, &app, webhook_sub(public.clone())).await;
    let id = created["data"][0]["id"].as_str().unwrap();
    fake.wait_for_subscription_status(id, "webhook_callback_verification_failed", common::WAIT)
        .await
        .unwrap();

    // Routed (as DNS would): delivered to the route's base with the
    // callback's path and Host (an ingress there routes by it), verified
    // and fed.
    fake.route_webhooks("tau.example.com", &format!("http://{addr}/"));
    let sub = json!({
        "type": "channel.follow", "version": "2",
        "condition": {"broadcaster_user_id": "1337", "moderator_user_id": "1337"},
        "transport": {"method": "webhook", "callback": public, "secret": SECRET},
    });
    let (status, created) = common::subscribe(&fake, &app, sub).await;
    assert_eq!(status, 202, "{created}");
    let id = created["data"][0]["id"].as_str().unwrap();
    let challenge = seen.recv().await.unwrap();
    assert_eq!(challenge.kind, "webhook_callback_verification");
    assert!(challenge.signature_ok);
    assert_eq!(challenge.host.as_deref(), Some("tau.example.com"));
    fake.wait_for_subscription_status(id, "enabled", common::WAIT)
        .await
        .unwrap();
    let status = fake
        .post_webhook_notification(id, json!({"user_id": "1", "broadcaster_user_id": "1337"}))
        .await
        .unwrap();
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(seen.recv().await.unwrap().kind, "notification");
}
