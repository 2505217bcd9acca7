//! The EventSub WebSocket server: `/ws?keepalive_timeout_seconds=N` and the
//! reconnect URLs `/ws/reconnect/<token>`.
//!
//! One task owns each socket. It sends the welcome, then loops over: commands
//! from tests ([`WsCommand`]), frames from the client, the keepalive timer
//! (a `session_keepalive` after an idle interval), optional WebSocket pings
//! ([`crate::Options::ping_interval`]), the "subscribe in time or
//! 4003" deadline, and, after a `session_reconnect`, the grace deadline that
//! closes the old socket. The client may only send Pong (and Ping); anything
//! else closes the socket with 4001. When the socket ends, its subscriptions
//! and conduit shards are disabled with the status matching the close reason.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant};

use crate::error::HelixError;
use crate::state::{new_id, now_rfc3339, random_token, Session, Transport, WsCommand};
use crate::FakeTwitch;

/// Allowed `keepalive_timeout_seconds`, and the default.
const KEEPALIVE_RANGE: std::ops::RangeInclusive<u64> = 10..=600;
const DEFAULT_KEEPALIVE: u64 = 10;
/// Longest a held reconnect waits for [`FakeTwitch::set_hold_reconnect_welcome`].
const MAX_HOLD: Duration = Duration::from_secs(3600);

/// WebSocket routes.
pub(crate) fn router() -> Router<FakeTwitch> {
    Router::new()
        .route("/ws", get(connect))
        .route("/ws/reconnect/{token}", get(reconnect))
}

/// A message envelope: `{metadata, payload}`; returns `(message_id, text)`.
pub(crate) fn envelope(
    message_type: &str,
    sub: Option<(&str, &str)>,
    payload: Value,
) -> (String, String) {
    let id = new_id();
    let mut metadata =
        json!({"message_id": id, "message_type": message_type, "message_timestamp": now_rfc3339()});
    if let Some((sub_type, version)) = sub {
        metadata["subscription_type"] = json!(sub_type);
        metadata["subscription_version"] = json!(version);
    }
    (
        id,
        json!({"metadata": metadata, "payload": payload}).to_string(),
    )
}

/// The subscription status a close code leaves behind.
pub(crate) fn status_for_close(code: u16) -> &'static str {
    match code {
        4000 => "websocket_internal_error",
        4001 => "websocket_received_inbound_traffic",
        4002 => "websocket_failed_ping_pong",
        4004 => "websocket_failed_to_reconnect",
        4005 => "websocket_network_timeout",
        4006 => "websocket_network_error",
        _ => "websocket_disconnected",
    }
}

async fn connect(
    State(fake): State<FakeTwitch>,
    Query(q): Query<HashMap<String, String>>,
    ws: WebSocketUpgrade,
) -> Response {
    let keepalive = match q.get("keepalive_timeout_seconds").map(|v| v.parse::<u64>()) {
        None => DEFAULT_KEEPALIVE,
        Some(Ok(n)) if KEEPALIVE_RANGE.contains(&n) => n,
        Some(_) => {
            let msg = "keepalive_timeout_seconds must be an integer between 10 and 600";
            return HelixError::new(StatusCode::BAD_REQUEST, msg).into_response();
        }
    };
    if fake.state().refuse_websockets {
        let msg = "EventSub is unavailable (simulated outage)";
        return HelixError::new(StatusCode::SERVICE_UNAVAILABLE, msg).into_response();
    }
    ws.on_upgrade(move |socket| fake.run_session(socket, keepalive, None))
}

async fn reconnect(
    State(fake): State<FakeTwitch>,
    Path(token): Path<String>,
    ws: WebSocketUpgrade,
) -> Response {
    let old = {
        let mut st = fake.state();
        let old = st.reconnect_tokens.remove(&token);
        old.and_then(|id| st.session(&id).map(|s| (id, s.keepalive_timeout_seconds)))
    };
    ws.on_upgrade(move |mut socket| async move {
        match old {
            Some((old_id, keepalive)) => fake.run_session(socket, keepalive, Some(old_id)).await,
            None => {
                let _ = socket.send(close_frame(4007, "invalid reconnect")).await;
            }
        }
    })
}

fn close_frame(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.to_string().into(),
    }))
}

/// Sleeps until `at`, or forever when `None`.
async fn sleep_opt(at: Option<Instant>) {
    match at {
        Some(at) => sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl FakeTwitch {
    /// Registers a session, waits out a held reconnect, moves subscriptions
    /// from `from` (a reconnect), sends the welcome and serves the socket.
    async fn run_session(self, mut socket: WebSocket, keepalive: u64, from: Option<String>) {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let id = format!("AgoQ{}", random_token(32));
        let connected_at = now_rfc3339();
        self.state().sessions.push(Session {
            id: id.clone(),
            keepalive_timeout_seconds: keepalive,
            connected_at: connected_at.clone(),
            connected: true,
            welcomed: false,
            keepalives_paused: false,
            reconnect_url: None,
            reconnected_from: from.clone(),
            handed_over: false,
            close_code: None,
            tx,
        });
        self.notify();
        if from.is_some() {
            let _ = self
                .wait_until(MAX_HOLD, "reconnect hold", |st| {
                    (!st.hold_reconnect_welcome).then_some(())
                })
                .await;
        }
        self.welcome_bookkeeping(&id, &connected_at, from.as_deref());
        let session = json!({"session": {
            "id": id, "status": "connected", "connected_at": connected_at,
            "keepalive_timeout_seconds": keepalive, "reconnect_url": null, "recovery_url": null,
        }});
        let (_, welcome) = envelope("session_welcome", None, session);
        let (code, status) = if socket.send(Message::Text(welcome.into())).await.is_err() {
            (1006, "websocket_network_error")
        } else {
            let fresh = from.is_none();
            self.serve(&mut socket, &mut rx, &id, &connected_at, keepalive, fresh)
                .await
        };
        self.finish(&id, code, status);
    }

    /// Serves a welcomed socket until it ends; returns the close code and the
    /// status its subscriptions get. `fresh` sessions (not reconnects) must
    /// be put to use before the subscribe deadline.
    async fn serve(
        &self,
        socket: &mut WebSocket,
        rx: &mut mpsc::UnboundedReceiver<WsCommand>,
        id: &str,
        connected_at: &str,
        keepalive: u64,
        fresh: bool,
    ) -> (u16, &'static str) {
        let opts = self.options();
        let interval = opts
            .keepalive_interval
            .unwrap_or(Duration::from_secs(keepalive.saturating_sub(1).max(1)));
        let mut deadline = fresh.then(|| {
            Instant::now()
                + opts
                    .subscribe_deadline
                    .unwrap_or(Duration::from_secs(keepalive))
        });
        let grace = opts.reconnect_grace;
        let mut reconnect_deadline: Option<Instant> = None;
        let mut last_sent = Instant::now();
        let mut next_ping = opts.ping_interval.map(|every| Instant::now() + every);
        loop {
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    Some(WsCommand::Send(text)) => {
                        if socket.send(Message::Text(text.into())).await.is_err() { break (1006, "websocket_network_error"); }
                        last_sent = Instant::now();
                    }
                    Some(WsCommand::Reconnect(url)) => {
                        let payload = json!({"session": {
                            "id": id, "status": "reconnecting", "connected_at": connected_at,
                            "keepalive_timeout_seconds": null, "reconnect_url": url, "recovery_url": null,
                        }});
                        let (_, text) = envelope("session_reconnect", None, payload);
                        if socket.send(Message::Text(text.into())).await.is_err() { break (1006, "websocket_network_error"); }
                        last_sent = Instant::now();
                        reconnect_deadline = Some(Instant::now() + grace);
                    }
                    Some(WsCommand::Close(code, reason)) => {
                        let _ = socket.send(close_frame(code, &reason)).await;
                        break (code, status_for_close(code));
                    }
                    None => break (1000, "websocket_disconnected"),
                },
                frame = socket.recv() => match frame {
                    Some(Ok(Message::Text(_) | Message::Binary(_))) => {
                        let _ = socket.send(close_frame(4001, "client sent inbound traffic")).await;
                        break (4001, status_for_close(4001));
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    Some(Ok(Message::Close(frame))) => break (frame.map_or(1005, |f| f.code), "websocket_disconnected"),
                    Some(Err(_)) | None => break (1006, "websocket_disconnected"),
                },
                () = sleep_until(last_sent + interval) => {
                    let paused = self.state().session(id).is_some_and(|s| s.keepalives_paused);
                    if !paused {
                        let (_, text) = envelope("session_keepalive", None, json!({}));
                        if socket.send(Message::Text(text.into())).await.is_err() { break (1006, "websocket_network_error"); }
                    }
                    last_sent = Instant::now();
                },
                () = sleep_opt(next_ping) => {
                    if socket.send(Message::Ping(Default::default())).await.is_err() { break (1006, "websocket_network_error"); }
                    next_ping = opts.ping_interval.map(|every| Instant::now() + every);
                },
                () = sleep_opt(deadline) => {
                    deadline = None;
                    if !self.session_in_use(id) {
                        let _ = socket.send(close_frame(4003, "connection unused")).await;
                        break (4003, status_for_close(4003));
                    }
                },
                () = sleep_opt(reconnect_deadline) => {
                    let handed_over = self.state().session(id).is_some_and(|s| s.handed_over);
                    let code = if handed_over { 1000 } else { 4004 };
                    let _ = socket.send(close_frame(code, if handed_over { "reconnected" } else { "reconnect grace time expired" })).await;
                    break (code, status_for_close(code));
                },
            }
        }
    }

    /// Marks a session welcomed; for a reconnect, moves the old session's
    /// enabled subscriptions and conduit shards to it.
    fn welcome_bookkeeping(&self, id: &str, connected_at: &str, from: Option<&str>) {
        let mut st = self.state();
        if let Some(old) = from {
            let retarget = |t: &mut Transport, status: &str| match t {
                Transport::WebSocket {
                    session_id,
                    connected_at: at,
                    ..
                } if session_id == old && status == "enabled" => {
                    *session_id = id.to_string();
                    *at = connected_at.to_string();
                }
                _ => {}
            };
            st.subscriptions
                .iter_mut()
                .for_each(|s| retarget(&mut s.transport, &s.status));
            for shard in st.conduits.iter_mut().flat_map(|c| c.shards.iter_mut()) {
                if let Some(t) = shard.transport.as_mut() {
                    retarget(t, &shard.status);
                }
            }
            if let Some(old) = st.session_mut(old) {
                old.handed_over = true;
            }
        }
        if let Some(s) = st.session_mut(id) {
            s.welcomed = true;
        }
        drop(st);
        self.notify();
    }

    /// Whether a session holds an enabled subscription or a conduit shard
    /// (or is being replaced through a reconnect, which the grace timer handles).
    fn session_in_use(&self, id: &str) -> bool {
        let st = self.state();
        st.session(id).is_some_and(|s| s.reconnect_url.is_some())
            || st.shard_of(id).is_some()
            || st
                .subscriptions
                .iter()
                .any(|s| s.is_enabled() && s.transport.session_id() == Some(id))
    }

    /// Records a closed session, disables what was bound to it and announces
    /// disabled conduit shards (`conduit.shard.disabled`).
    fn finish(&self, id: &str, code: u16, status: &str) {
        let now = now_rfc3339();
        let mut st = self.state();
        let disable = |t: &mut Transport, state: &mut String| match t {
            Transport::WebSocket {
                session_id,
                disconnected_at,
                ..
            } if session_id == id && state == "enabled" => {
                *state = status.to_string();
                *disconnected_at = Some(now.clone());
                true
            }
            _ => false,
        };
        for sub in &mut st.subscriptions {
            disable(&mut sub.transport, &mut sub.status);
        }
        let mut disabled = Vec::new();
        for conduit in &mut st.conduits {
            for shard in &mut conduit.shards {
                if shard
                    .transport
                    .as_mut()
                    .is_some_and(|t| disable(t, &mut shard.status))
                {
                    disabled.push((conduit.id.clone(), shard.clone()));
                }
            }
        }
        if let Some(s) = st.session_mut(id) {
            s.connected = false;
            s.close_code = Some(code);
        }
        drop(st);
        self.notify();
        for (conduit_id, shard) in disabled {
            let fake = self.clone();
            tokio::spawn(async move { fake.announce_shard_disabled(&conduit_id, &shard).await });
        }
    }
}
