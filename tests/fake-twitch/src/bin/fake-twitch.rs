//! The fake Twitch as a process, for tiers whose relays run elsewhere (pods
//! of the real-cluster tier, `.ci/cluster-tier.sh`).
//!
//! ```text
//! fake-twitch --listen 10.244.0.1:0 --control 127.0.0.1:0
//! ```
//!
//! Serves the fake (OAuth, Helix, EventSub WebSocket) on `--listen` and a
//! small control API on `--control` (keep it on loopback: it steers the
//! fake). Prints one line per listener once bound, `twitch http://A:P` and
//! `control http://A:P`, then serves until killed.
//!
//! Control API (JSON):
//! - `GET /sessions`: every EventSub WebSocket session, oldest first.
//! - `GET /subscriptions`: every subscription.
//! - `POST /notify` `{"type", "version", "event"}`: sends a notification on
//!   the newest connected session subscribed to that type; answers
//!   `{"message_id", "session_id"}`, or 404 when no session has it.
//! - `GET /requests`: `[{"method", "path"}]` of every request served.
//! - `POST /client-secret` `{"secret"}`: the token endpoint accepts only this
//!   client secret from now on (Twitch's "New Secret").
//! - `POST /expire-user-tokens`: every user access token answers 401 from
//!   now on, so the next use needs a refresh (which needs the client secret).

use std::net::SocketAddr;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tau_fake_twitch::{FakeTwitch, Options, Transport};

fn arg(name: &str) -> Option<String> {
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == name {
            return args.next();
        }
    }
    None
}

async fn sessions(State(fake): State<FakeTwitch>) -> Json<Value> {
    let list: Vec<Value> = fake
        .sessions()
        .await
        .into_iter()
        .map(|s| {
            json!({
                "id": s.id,
                "connected": s.connected,
                "welcomed": s.welcomed,
                "subscription_ids": s.subscription_ids,
            })
        })
        .collect();
    Json(Value::Array(list))
}

async fn subscriptions(State(fake): State<FakeTwitch>) -> Json<Value> {
    let list: Vec<Value> = fake.subscriptions().iter().map(|s| s.to_json()).collect();
    Json(Value::Array(list))
}

async fn requests(State(fake): State<FakeTwitch>) -> Json<Value> {
    let list: Vec<Value> = fake
        .requests()
        .iter()
        .map(|r| json!({"method": r.method, "path": r.path}))
        .collect();
    Json(Value::Array(list))
}

async fn notify(
    State(fake): State<FakeTwitch>,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let kind = body["type"].as_str().unwrap_or_default().to_string();
    let version = body["version"].as_str().unwrap_or("1").to_string();
    let event = body["event"].clone();
    // The newest connected session holding an enabled subscription of that type.
    let subs = fake.subscriptions();
    let session = fake.sessions().await.into_iter().rev().find(|s| {
        s.connected
            && subs.iter().any(|sub| {
                sub.sub_type == kind
                    && sub.version == version
                    && sub.is_enabled()
                    && matches!(&sub.transport, Transport::WebSocket { session_id, .. } if *session_id == s.id)
            })
    });
    let Some(session) = session else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": format!("no connected session subscribed to {kind}@{version}")})),
        );
    };
    match fake
        .send_notification(&session.id, &kind, &version, event)
        .await
    {
        Ok(id) => (
            StatusCode::OK,
            Json(json!({"message_id": id, "session_id": session.id})),
        ),
        Err(err) => (
            StatusCode::CONFLICT,
            Json(json!({"error": err.to_string()})),
        ),
    }
}

async fn client_secret(State(fake): State<FakeTwitch>, Json(body): Json<Value>) -> StatusCode {
    match body["secret"].as_str() {
        Some(secret) if !secret.is_empty() => {
            fake.rotate_client_secret(secret);
            StatusCode::NO_CONTENT
        }
        _ => StatusCode::BAD_REQUEST,
    }
}

async fn expire_user_tokens(State(fake): State<FakeTwitch>) -> StatusCode {
    fake.expire_user_tokens();
    StatusCode::NO_CONTENT
}

#[tokio::main]
async fn main() {
    let listen: SocketAddr = arg("--listen")
        .unwrap_or_else(|| "127.0.0.1:0".into())
        .parse()
        .expect("--listen ADDR:PORT");
    let control: SocketAddr = arg("--control")
        .unwrap_or_else(|| "127.0.0.1:0".into())
        .parse()
        .expect("--control ADDR:PORT");
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .unwrap_or_else(|e| panic!("bind {listen}: {e}"));
    let fake = FakeTwitch::serve_on(listener, Options::default());
    let control_listener = tokio::net::TcpListener::bind(control)
        .await
        .unwrap_or_else(|e| panic!("bind {control}: {e}"));
    let control_addr = control_listener.local_addr().expect("control addr");
    println!("twitch {}", fake.base_url());
    println!("control http://{control_addr}");
    let app = Router::new()
        .route("/sessions", get(sessions))
        .route("/subscriptions", get(subscriptions))
        .route("/requests", get(requests))
        .route("/notify", post(notify))
        .route("/client-secret", post(client_secret))
        .route("/expire-user-tokens", post(expire_user_tokens))
        .with_state(fake);
    axum::serve(control_listener, app)
        .await
        .expect("control server");
}
