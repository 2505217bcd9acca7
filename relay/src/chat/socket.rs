//! The chat sockets: `/ws/irc-messages/` and `/ws/chat-bots/<login>/`.
//!
//! Both open like `/ws/twitch-events/` (first frame `{"token": …}`, any
//! role; an overlay token limited to some event types gets only those) and
//! close with 1008 when the token is revoked or demoted. Then:
//!
//! - every chat event of the account's chat arrives as `{"irc_username",
//!   "data", "event_type", "event_data"}` ([`super::feed`]);
//! - `{"event": "keep_alive"}` arrives every 30 s, as from the original;
//! - a frame `{"irc_channel": "#name", "message": "…",
//!   "reply_parent_message_id"?}` sends as the socket's account (bot role
//!   or stronger); the answer, in the order sent, is `{"event":
//!   "chat_message_sent", "message_id", "is_sent", "drop_reason",
//!   "irc_channel", "irc_username"}` or `{"error": "…"}`. Sends still
//!   waiting for the rate limit are abandoned when the socket closes.
//!
//! `/ws/chat-bots/<login>/` for a login that is no sender answers, after
//! authentication, `{"error": "no chat bot named \"x\""}` and closes with
//! 1008 (1013 while Twitch is not connected, as that may change).

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::Arc,
};

use tokio::time::Instant;

use axum::{
    extract::{
        ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade},
        Extension, State,
    },
    response::Response,
};
use futures_util::{
    future::BoxFuture,
    stream::{FuturesOrdered, SplitSink, SplitStream},
    SinkExt, StreamExt,
};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::broadcast;

use super::{
    feed::Dedup,
    send::{SendError, SendRequest},
    Chat,
};
use crate::{
    access::{guard::SocketNeed, needs, Role},
    api::extract::PathParam,
    app::AppState,
    hub::{handshake, HANDSHAKE_TIMEOUT},
};

/// Largest frame a client may send (a 500-character message and JSON).
const MAX_CLIENT_MESSAGE: usize = 16 * 1024;
/// Sends one socket may have waiting for Twitch at once.
const MAX_IN_FLIGHT: usize = 64;
/// Close codes: policy (bad token, no such bot), going away, try later.
pub(crate) const CLOSE_POLICY: u16 = 1008;
pub(crate) const CLOSE_AWAY: u16 = 1001;
pub(crate) const CLOSE_TRY_AGAIN: u16 = 1013;
/// The original's answer to a token it did not know.
pub(crate) const UNKNOWN_TOKEN: &str = "the provided token does not match any users.";

/// `GET /ws/irc-messages/`: the broadcaster's chat.
pub async fn irc_messages_route(
    State(app): State<AppState>,
    Extension(SocketNeed(need)): Extension<SocketNeed>,
    ws: WebSocketUpgrade,
) -> Response {
    upgrade(ws).on_upgrade(move |socket| serve(socket, app, need, None))
}

/// `GET /ws/chat-bots/{login}/`: the chat of sender `login`.
pub async fn chat_bot_route(
    State(app): State<AppState>,
    Extension(SocketNeed(need)): Extension<SocketNeed>,
    PathParam(login): PathParam<String>,
    ws: WebSocketUpgrade,
) -> Response {
    upgrade(ws).on_upgrade(move |socket| serve(socket, app, need, Some(login)))
}

pub(crate) fn upgrade(ws: WebSocketUpgrade) -> WebSocketUpgrade {
    ws.read_buffer_size(4 * 1024)
        .write_buffer_size(16 * 1024)
        .max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_MESSAGE)
}

pub(crate) type Sink = SplitSink<WebSocket, Message>;

/// A frame a client sends to chat.
#[derive(Deserialize)]
struct Outgoing {
    irc_channel: Option<String>,
    message: Option<String>,
    reply_parent_message_id: Option<String>,
}

/// One authenticated chat socket.
struct Session {
    chat: Arc<Chat>,
    /// The token's role (sending needs bot).
    role: Role,
    /// Event types the token may see, if limited.
    types: Option<HashSet<String>>,
    /// The sender this socket is (`None`: the broadcaster, named per frame).
    account: Option<String>,
    /// A chat bot's TAU id and the user ids of its channels (whose chat
    /// the socket shows); `None`: the broadcaster's chat.
    bot: Option<(String, HashSet<String>)>,
    /// Events already shown (see [`super::feed::ChatFrame::dedup`]).
    seen: Seen,
    /// Sends waiting for Twitch, answered in order.
    pending: FuturesOrdered<BoxFuture<'static, String>>,
}

async fn serve(socket: WebSocket, app: AppState, need: Role, bot: Option<String>) {
    let (mut sink, mut stream) = socket.split();
    let accepted = match tokio::time::timeout(HANDSHAKE_TIMEOUT, first_text(&mut stream)).await {
        Ok(Some(text)) => handshake::accept(&text, &app.store, app.catalog, need).await,
        Ok(None) => return,
        Err(_) => Err("no token received within 10 seconds".into()),
    };
    let accepted = match accepted {
        Ok(accepted) => accepted,
        Err(message) => {
            let message = if message == "invalid token" {
                UNKNOWN_TOKEN.to_string()
            } else {
                message
            };
            refuse(&mut sink, &message, CLOSE_POLICY).await;
            return;
        }
    };
    let mut bot_rooms = None;
    let account = match bot {
        None => None,
        Some(login) => match app.chat.sender(Some(&login)).await {
            Ok(sender) => {
                if let Some(id) = sender.bot {
                    bot_rooms = Some((id.clone(), rooms_of(&app, &id).await));
                }
                Some(sender.login)
            }
            Err(err) => {
                let code = match err {
                    SendError::NotReady(_) => CLOSE_TRY_AGAIN,
                    _ => CLOSE_POLICY,
                };
                refuse(&mut sink, &err.to_string(), code).await;
                return;
            }
        },
    };
    let mut session = Session {
        chat: app.chat.clone(),
        role: accepted.token.role,
        types: accepted.types,
        account,
        bot: bot_rooms,
        seen: Seen::default(),
        pending: FuturesOrdered::new(),
    };
    let frames = app.chat.frames();
    let lost = app.token_watch.lost(accepted.token);
    app.metrics.clients_connected.inc();
    let end = session
        .run(&app, &mut sink, &mut stream, frames, lost)
        .await;
    app.metrics.clients_connected.dec();
    if let Some((code, reason)) = end {
        let patience = app.config.timings.client_write_timeout;
        let _ = tokio::time::timeout(patience, close(&mut sink, code, &reason)).await;
    }
}

/// The user ids of chat bot `bot_id`'s channels.
async fn rooms_of(app: &AppState, bot_id: &str) -> HashSet<String> {
    match app.chat_bots.channels().await {
        Ok(channels) => channels
            .into_iter()
            .filter(|c| c.bot_id == bot_id)
            .map(|c| c.channel_id)
            .collect(),
        Err(err) => {
            tracing::warn!(error = %err, "reading a chat bot's channels failed");
            HashSet::new()
        }
    }
}

/// The last [`Seen::KEEP`] copy keys a socket showed, and when.
#[derive(Default)]
struct Seen {
    order: VecDeque<String>,
    keys: HashMap<String, Instant>,
}

impl Seen {
    /// How many keys are remembered (copies arrive within moments).
    const KEEP: usize = 512;

    /// True unless `dedup` names a copy of an event already shown (within
    /// its window, if it has one).
    fn first(&mut self, dedup: &Dedup) -> bool {
        let now = Instant::now();
        if let Some(at) = self.keys.get_mut(&dedup.key) {
            match dedup.window {
                Some(window) if now.duration_since(*at) >= window => {
                    *at = now;
                    return true;
                }
                _ => return false,
            }
        }
        self.keys.insert(dedup.key.clone(), now);
        self.order.push_back(dedup.key.clone());
        if self.order.len() > Self::KEEP {
            if let Some(old) = self.order.pop_front() {
                self.keys.remove(&old);
            }
        }
        true
    }
}

/// Tells the client why, then closes.
pub(crate) async fn refuse(sink: &mut Sink, message: &str, code: u16) {
    tracing::info!(reason = %message, "chat socket refused");
    let body = json!({ "error": message }).to_string();
    let _ = tokio::time::timeout(HANDSHAKE_TIMEOUT, async {
        let _ = sink.send(Message::Text(body.into())).await;
        let _ = close(sink, code, message).await;
    })
    .await;
}

pub(crate) async fn first_text(stream: &mut SplitStream<WebSocket>) -> Option<String> {
    while let Some(Ok(message)) = stream.next().await {
        match message {
            Message::Text(text) => return Some(text.to_string()),
            Message::Close(_) => return None,
            _ => continue,
        }
    }
    None
}

pub(crate) async fn close(sink: &mut Sink, code: u16, reason: &str) -> Result<(), axum::Error> {
    let mut reason = reason.to_string();
    // A close reason may carry at most 123 bytes.
    while reason.len() > 123 {
        reason.pop();
    }
    let frame = CloseFrame {
        code,
        reason: Utf8Bytes::from(reason),
    };
    sink.send(Message::Close(Some(frame))).await
}

impl Session {
    /// Relays until the session ends: `Some((code, reason))` to close with.
    async fn run(
        &mut self,
        app: &AppState,
        sink: &mut Sink,
        stream: &mut SplitStream<WebSocket>,
        mut frames: broadcast::Receiver<Arc<super::feed::ChatFrame>>,
        lost: impl std::future::Future<Output = &'static str>,
    ) -> Option<(u16, String)> {
        tokio::pin!(lost);
        let mut bot_changes = app.chat_bots.changes();
        let timeout = app.config.timings.client_write_timeout;
        let mut keepalive = tokio::time::interval(app.config.timings.chat_keepalive);
        keepalive.tick().await;
        let mut ping = tokio::time::interval(app.config.ws_ping_interval);
        ping.tick().await;
        let mut heard_since_ping = true;
        loop {
            // Utf8Bytes: a chat frame's bytes are shared with every other
            // socket showing it (see `ChatFrame::render`), not copied.
            let out: Utf8Bytes = tokio::select! {
                biased;
                _ = app.shutdown.cancelled() => return Some((CLOSE_AWAY, "server shutting down".into())),
                why = &mut lost => return Some((CLOSE_POLICY, why.into())),
                change = bot_changes.recv() => {
                    let change = match change {
                        Ok(change) => change,
                        Err(broadcast::error::RecvError::Lagged(_)) => {
                            // Missed changes: read this bot's channels again.
                            if let Some((id, rooms)) = &mut self.bot {
                                *rooms = rooms_of(app, id).await;
                            }
                            continue;
                        }
                        Err(broadcast::error::RecvError::Closed) => {
                            return Some((CLOSE_AWAY, "server shutting down".into()))
                        }
                    };
                    let Some((id, rooms)) = &mut self.bot else { continue };
                    if change.chat_bot.id != *id {
                        continue;
                    }
                    if change.event == "Deleted" {
                        return Some((CLOSE_POLICY, "this chat bot was removed".into()));
                    }
                    *rooms = rooms_of(app, id).await;
                    continue;
                }
                inbound = stream.next() => match inbound {
                    Some(Ok(Message::Text(text))) => {
                        heard_since_ping = true;
                        match self.outgoing(&text) {
                            Some(answer) => answer.into(),
                            None => continue,
                        }
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
                    Some(Ok(_)) => { heard_since_ping = true; continue }
                },
                Some(answer) = self.pending.next(), if !self.pending.is_empty() => answer.into(),
                frame = frames.recv() => match frame {
                    Ok(frame) => match self.render(&frame) {
                        Some(text) => text,
                        None => continue,
                    },
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        return Some((CLOSE_TRY_AGAIN, format!(
                            "client too slow: {n} chat events behind; history is at /api/v1/twitch-events"
                        )));
                    }
                    Err(broadcast::error::RecvError::Closed) => return Some((CLOSE_AWAY, "server shutting down".into())),
                },
                _ = keepalive.tick() => json!({"event": "keep_alive"}).to_string().into(),
                _ = ping.tick() => {
                    if !heard_since_ping {
                        return Some((CLOSE_AWAY, "no pong received: connection considered dead".into()));
                    }
                    heard_since_ping = false;
                    match tokio::time::timeout(timeout, sink.send(Message::Ping(bytes::Bytes::new()))).await {
                        Ok(Ok(())) => continue,
                        _ => return None,
                    }
                }
            };
            match tokio::time::timeout(timeout, sink.send(Message::Text(out))).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return None,
                Err(_) => {
                    return Some((
                        CLOSE_TRY_AGAIN,
                        format!("client stopped reading for {}s", timeout.as_secs()),
                    ))
                }
            }
        }
    }

    /// The frame for this socket, if the event is for it (once).
    fn render(&mut self, frame: &super::feed::ChatFrame) -> Option<Utf8Bytes> {
        let shown = match &self.bot {
            Some((_, rooms)) => frame.test || rooms.contains(&frame.room_id),
            None => frame.broadcaster_chat,
        };
        if !shown {
            return None;
        }
        if let Some(types) = &self.types {
            if !types.contains(&frame.event_type) {
                return None;
            }
        }
        if let Some(dedup) = &frame.dedup {
            if !self.seen.first(dedup) {
                return None;
            }
        }
        let name = self.account.as_deref().unwrap_or(&frame.channel_login);
        Some(frame.render(name))
    }

    /// Handles a client's frame: an immediate answer (an error), or `None`
    /// when a send was queued (its answer comes from `pending`).
    fn outgoing(&mut self, text: &str) -> Option<String> {
        let error = |message: String| Some(json!({ "error": message }).to_string());
        let Ok(frame) = serde_json::from_str::<Outgoing>(text) else {
            return error(
                r##"frames must be JSON: {"irc_channel": "#name", "message": "..."}"##.into(),
            );
        };
        if !self.role.covers(Role::Bot) {
            return error(format!("sending chat: {}", needs(Role::Bot, self.role)));
        }
        let Some(message) = frame.message else {
            return error(
                r##"nothing to send: {"irc_channel": "#name", "message": "..."}"##.into(),
            );
        };
        if self.pending.len() >= MAX_IN_FLIGHT {
            return error(format!(
                "{MAX_IN_FLIGHT} messages of this socket already wait for Twitch; wait for their answers"
            ));
        }
        let request = SendRequest {
            message,
            irc_channel: frame.irc_channel,
            irc_username: self.account.clone(),
            reply_parent_message_id: frame.reply_parent_message_id,
        };
        let chat = self.chat.clone();
        self.pending.push_back(Box::pin(async move {
            match chat.send(request).await {
                Ok(sent) => {
                    let mut value = serde_json::to_value(sent).expect("a sent message serializes");
                    value["event"] = json!("chat_message_sent");
                    value.to_string()
                }
                Err(err) => json!({ "error": err.to_string() }).to_string(),
            }
        }));
        None
    }
}
