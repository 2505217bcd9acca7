//! `/ws/chat-bots/status/`: the bots, live (the original TAU's chat bot
//! status socket).
//!
//! Opens like every TAU socket (first frame `{"token": …}`, overlay role
//! or stronger; an unknown token is answered with the original's
//! `{"error": "the provided token does not match any users."}` and 1008).
//! Then one `{"event": "Updated", "chatBot": ChatBot}` per bot, then
//! `{"event": "Created" | "Updated" | "Deleted", "chatBot": …}` on every
//! change made on any replica, and `{"event": "keep_alive"}` every 30 s.
//! Nothing the client sends after the token is read. The original's
//! `chatBot` fields are all kept; TAU adds `session`, the bot's own
//! EventSub session as this replica sees it, whose changes are sent as
//! `Updated` within [`super::POLL`].

use axum::{
    extract::{ws::Message, ws::WebSocket, Extension, State, WebSocketUpgrade},
    response::Response,
};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::broadcast;

use super::BotChange;
use crate::{
    access::{guard::SocketNeed, Role},
    app::AppState,
    chat::socket::{
        close, first_text, refuse, upgrade, Sink, CLOSE_AWAY, CLOSE_POLICY, CLOSE_TRY_AGAIN,
        UNKNOWN_TOKEN,
    },
    hub::{handshake, HANDSHAKE_TIMEOUT},
};

/// `GET /ws/chat-bots/status/`.
pub async fn status_route(
    State(app): State<AppState>,
    Extension(SocketNeed(need)): Extension<SocketNeed>,
    ws: WebSocketUpgrade,
) -> Response {
    upgrade(ws).on_upgrade(move |socket| serve(socket, app, need))
}

async fn serve(socket: WebSocket, app: AppState, need: Role) {
    let (mut sink, mut stream) = socket.split();
    let accepted = match tokio::time::timeout(HANDSHAKE_TIMEOUT, first_text(&mut stream)).await {
        Ok(Some(text)) => handshake::accept(&text, &app.store, app.catalog, need).await,
        Ok(None) => return,
        Err(_) => Err("no token received within 10 seconds".into()),
    };
    let accepted = match accepted {
        Ok(accepted) => accepted,
        Err(message) if message == "invalid token" => {
            return refuse(&mut sink, UNKNOWN_TOKEN, CLOSE_POLICY).await
        }
        Err(message) => return refuse(&mut sink, &message, CLOSE_POLICY).await,
    };
    // Subscribe before reading the list: no change falls in between.
    let changes = app.chat_bots.changes();
    let bots = match app.chat_bots.list().await {
        Ok(bots) => bots,
        Err(err) => {
            tracing::warn!(error = %err, "reading chat bots failed");
            return refuse(
                &mut sink,
                "the store is unavailable; retry",
                CLOSE_TRY_AGAIN,
            )
            .await;
        }
    };
    app.metrics.clients_connected.inc();
    let lost = app.token_watch.lost(accepted.token);
    let end = run(&app, &mut sink, &mut stream, bots, changes, lost).await;
    app.metrics.clients_connected.dec();
    if let Some((code, reason)) = end {
        let patience = app.config.timings.client_write_timeout;
        let _ = tokio::time::timeout(patience, close(&mut sink, code, &reason)).await;
    }
}

async fn run(
    app: &AppState,
    sink: &mut Sink,
    stream: &mut futures_util::stream::SplitStream<WebSocket>,
    bots: Vec<super::ChatBot>,
    mut changes: broadcast::Receiver<std::sync::Arc<BotChange>>,
    lost: impl std::future::Future<Output = &'static str>,
) -> Option<(u16, String)> {
    tokio::pin!(lost);
    let timeout = app.config.timings.client_write_timeout;
    let mut first: std::collections::VecDeque<String> = bots
        .into_iter()
        .map(|chat_bot| {
            json!(BotChange {
                event: "Updated",
                chat_bot
            })
            .to_string()
        })
        .collect();
    let mut keepalive = tokio::time::interval(app.config.timings.chat_keepalive);
    keepalive.tick().await;
    loop {
        let out = if let Some(frame) = first.pop_front() {
            frame
        } else {
            tokio::select! {
                biased;
                _ = app.shutdown.cancelled() => return Some((CLOSE_AWAY, "server shutting down".into())),
                why = &mut lost => return Some((CLOSE_POLICY, why.into())),
                inbound = stream.next() => match inbound {
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
                    Some(Ok(_)) => continue,
                },
                change = changes.recv() => match change {
                    Ok(change) => json!(*change).to_string(),
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        return Some((CLOSE_TRY_AGAIN, "client too slow: reconnect for the current bots".into()));
                    }
                    Err(broadcast::error::RecvError::Closed) => return Some((CLOSE_AWAY, "server shutting down".into())),
                },
                _ = keepalive.tick() => json!({"event": "keep_alive"}).to_string(),
            }
        };
        match tokio::time::timeout(timeout, sink.send(Message::Text(out.into()))).await {
            Ok(Ok(())) => {}
            _ => return None,
        }
    }
}
