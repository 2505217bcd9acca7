//! Helpers shared by the integration tests: a WebSocket client, Helix calls
//! and fast [`Options`].

#![allow(dead_code)]

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;
use tau_fake_twitch::{FakeTwitch, Options};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Client side of an EventSub WebSocket.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long a test waits for anything before failing.
pub const WAIT: Duration = Duration::from_secs(5);

/// Options with short timers so tests run in well under a second each.
pub fn fast() -> Options {
    Options {
        keepalive_interval: Some(Duration::from_millis(150)),
        subscribe_deadline: Some(Duration::from_millis(600)),
        reconnect_grace: Duration::from_millis(800),
        ..Options::default()
    }
}

pub async fn connect(url: &str) -> Ws {
    tokio_tungstenite::connect_async(url)
        .await
        .expect("websocket connects")
        .0
}

/// What the server sent next: a JSON text frame or a close code.
#[derive(Debug)]
pub enum Frame {
    Json(Value),
    Closed(u16),
}

/// Next text frame or close (skipping ping/pong).
pub async fn next_frame(ws: &mut Ws) -> Frame {
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("server sent something in time");
        match msg {
            Some(Ok(Message::Text(t))) => {
                return Frame::Json(serde_json::from_str(&t).expect("JSON frame"))
            }
            Some(Ok(Message::Close(frame))) => {
                return Frame::Closed(frame.map_or(1005, |f| f.code.into()))
            }
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return Frame::Closed(1006),
        }
    }
}

/// Next JSON message whose `metadata.message_type` is `kind`, skipping keepalives.
pub async fn next_of(ws: &mut Ws, kind: &str) -> Value {
    loop {
        match next_frame(ws).await {
            Frame::Json(v) if v["metadata"]["message_type"] == kind => return v,
            Frame::Json(v) if v["metadata"]["message_type"] == "session_keepalive" => continue,
            other => panic!("expected {kind}, got {other:?}"),
        }
    }
}

/// Reads until the server closes; returns the close code (keepalives skipped).
pub async fn close_code(ws: &mut Ws) -> u16 {
    loop {
        match next_frame(ws).await {
            Frame::Closed(code) => return code,
            Frame::Json(v) if v["metadata"]["message_type"] == "session_keepalive" => continue,
            Frame::Json(v) => panic!("expected close, got {v}"),
        }
    }
}

/// Connects and returns the socket and the welcome's session id.
pub async fn connect_welcomed(fake: &FakeTwitch) -> (Ws, String) {
    let mut ws = connect(&fake.eventsub_ws_url()).await;
    let welcome = next_of(&mut ws, "session_welcome").await;
    let id = welcome["payload"]["session"]["id"]
        .as_str()
        .expect("session id")
        .to_string();
    (ws, id)
}

/// A Helix request with `Client-Id` and `Authorization: Bearer token`.
pub fn helix(
    fake: &FakeTwitch,
    method: reqwest::Method,
    path: &str,
    token: &str,
) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .request(method, format!("{}{path}", fake.api_url()))
        .header("Client-Id", FakeTwitch::CLIENT_ID)
        .bearer_auth(token)
}

/// `POST /eventsub/subscriptions`; returns status and JSON body.
pub async fn subscribe(fake: &FakeTwitch, token: &str, body: Value) -> (u16, Value) {
    let resp = helix(
        fake,
        reqwest::Method::POST,
        "/eventsub/subscriptions",
        token,
    )
    .json(&body)
    .send()
    .await
    .expect("helix answers");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("JSON body"))
}

/// A WebSocket subscription request body.
pub fn ws_sub(sub_type: &str, version: &str, condition: Value, session_id: &str) -> Value {
    serde_json::json!({
        "type": sub_type,
        "version": version,
        "condition": condition,
        "transport": {"method": "websocket", "session_id": session_id},
    })
}
