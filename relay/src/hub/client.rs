//! One client socket: handshake, optional resume, live events, ping/pong.
//!
//! The socket closes with 1008 when its token is revoked or its grant
//! changes ([`crate::access::watch`]), within a second on every replica.
//!
//! Resume (`since`) subscribes to live events *before* reading the store,
//! then skips live events at or below the last stored position sent: no
//! gap and no duplicate at the seam.

use std::{future::Future, pin::Pin, sync::Arc, time::Duration};

use axum::{
    extract::{
        ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade},
        Extension, State,
    },
    response::Response,
};
use futures_util::{
    stream::{SplitSink, SplitStream},
    SinkExt, StreamExt,
};
use tokio::sync::broadcast::{self, error::TryRecvError};
use uuid::Uuid;

use super::handshake::{self, Accepted, HANDSHAKE_TIMEOUT};
use crate::{access::guard::SocketNeed, app::AppState, event::EncodedEvent};

/// Socket read buffer, allocated up front and kept for the connection's
/// life (tungstenite's default is 128 KiB). Clients send one small JSON
/// frame and then only pongs, so 512 bytes hold anything they normally
/// send; a larger frame (up to [`MAX_CLIENT_MESSAGE`]) grows it as needed.
/// This buffer was the largest part of an idle client's memory at 4 KiB.
const READ_BUFFER: usize = 512;
/// Bytes buffered before a write is pushed to the socket: a burst of
/// events leaves in one write. Allocated only when something is sent; the
/// capacity a burst grew stays with the connection (at most this plus one
/// frame while the client keeps reading), so an idle client that never
/// received anything holds none of it.
const WRITE_BUFFER: usize = 16 * 1024;
/// Unflushed bytes after which the session waits for the socket to drain
/// (with the client write timeout) before feeding more.
const FLUSH_AT: usize = 256 * 1024;
/// Hard cap on buffered outgoing bytes per client: [`FLUSH_AT`] plus the
/// largest event (webhook bodies are at most 1 MiB) still leaves room for
/// the close frame that tells a stuck client where to resume.
const MAX_WRITE_BUFFER: usize = 2 * 1024 * 1024;
/// Largest frame a client may send (the handshake is tiny).
const MAX_CLIENT_MESSAGE: usize = 16 * 1024;
/// Stored events read per query while resuming.
const RESUME_PAGE: i64 = 500;
/// Close code for policy failures (bad token).
const CLOSE_POLICY: u16 = 1008;
/// Close code for "going away" (server shutdown, ping timeout).
const CLOSE_AWAY: u16 = 1001;
/// Close code for "try again later" (client too slow).
const CLOSE_TRY_AGAIN: u16 = 1013;

/// `GET /ws/twitch-events/`: upgrades with explicit buffer sizes.
pub async fn websocket_route(
    State(app): State<AppState>,
    Extension(SocketNeed(need)): Extension<SocketNeed>,
    ws: WebSocketUpgrade,
) -> Response {
    ws.read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_write_buffer_size(MAX_WRITE_BUFFER)
        .max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_MESSAGE)
        .on_upgrade(move |socket| serve(socket, app, need))
}

type Sink = SplitSink<WebSocket, Message>;

/// Why a client session ended early.
enum End {
    /// The socket failed or closed; nothing more to send.
    Gone,
    /// Close with this code and reason.
    Close(u16, String),
}

/// Resolves with a close reason once the session's token loses power.
type Lost = Pin<Box<dyn Future<Output = &'static str> + Send>>;

struct Session {
    sink: Sink,
    /// Fires when the token is revoked or its grant changes.
    lost: Lost,
    app: AppState,
    types: Option<std::collections::HashSet<String>>,
    /// Highest stored position handled (sent or filtered out).
    last_seq: i64,
    /// TAU id of that event, offered as the resume point when we drop a client.
    last_id: Option<Uuid>,
    /// Bytes fed since the socket last drained.
    unflushed: usize,
    /// A write that cannot complete in this time marks the client as stuck.
    write_timeout: Duration,
}

async fn serve(socket: WebSocket, app: AppState, need: crate::access::Role) {
    let (mut sink, mut stream) = socket.split();
    let accepted = match tokio::time::timeout(HANDSHAKE_TIMEOUT, first_text(&mut stream)).await {
        // Boxed: the store lookups' futures are large, and inline they would
        // stay part of this task's allocation for the connection's life.
        Ok(Some(text)) => Box::pin(handshake::accept(&text, &app.store, app.catalog, need)).await,
        Ok(None) => return,
        Err(_) => Err("no token received within 10 seconds".into()),
    };
    let Accepted {
        types,
        since_seq,
        token,
        since_id,
    } = match accepted {
        Ok(accepted) => accepted,
        Err(message) => {
            tracing::info!(reason = %message, "websocket client rejected");
            let body = serde_json::json!({ "error": message }).to_string();
            let _ = sink.send(Message::Text(body.into())).await;
            let _ = close(&mut sink, CLOSE_POLICY, &message, HANDSHAKE_TIMEOUT).await;
            return;
        }
    };
    // Subscribe before reading the store so nothing falls between the two.
    let live = app.hub.subscribe();
    app.metrics.clients_connected.inc();
    let lost = Box::pin(app.token_watch.lost(token));
    let mut session = Session {
        lost,
        sink,
        write_timeout: app.config.timings.client_write_timeout,
        app,
        types,
        last_seq: 0,
        // A client dropped before anything new reached it resumes where it asked to.
        last_id: since_id,
        unflushed: 0,
    };
    let end = session.run(live, since_seq, &mut stream).await;
    session.app.metrics.clients_connected.dec();
    if let End::Close(code, reason) = end {
        // A stuck client gets the close frame if it reads again within the
        // write timeout; everything fed before it (up to the resume id) too.
        let _ = close(&mut session.sink, code, &reason, session.write_timeout).await;
    }
}

async fn first_text(stream: &mut SplitStream<WebSocket>) -> Option<String> {
    while let Some(Ok(message)) = stream.next().await {
        match message {
            Message::Text(text) => return Some(text.to_string()),
            Message::Close(_) => return None,
            _ => continue,
        }
    }
    None
}

async fn close(
    sink: &mut Sink,
    code: u16,
    reason: &str,
    patience: Duration,
) -> Result<(), axum::Error> {
    // A close reason may carry at most 123 bytes.
    let mut reason = reason.to_string();
    while reason.len() > 123 {
        reason.pop();
    }
    let frame = CloseFrame {
        code,
        reason: Utf8Bytes::from(reason),
    };
    tokio::time::timeout(patience, sink.send(Message::Close(Some(frame))))
        .await
        .unwrap_or(Ok(()))
}

impl Session {
    async fn run(
        &mut self,
        live: broadcast::Receiver<Arc<EncodedEvent>>,
        since_seq: Option<i64>,
        stream: &mut SplitStream<WebSocket>,
    ) -> End {
        match self.relay(live, since_seq, stream).await {
            Ok(()) => End::Gone,
            Err(end) => end,
        }
    }

    /// Resumes if asked, then relays live events until the session ends
    /// (always with `Err`, which says how).
    async fn relay(
        &mut self,
        mut live: broadcast::Receiver<Arc<EncodedEvent>>,
        since_seq: Option<i64>,
        stream: &mut SplitStream<WebSocket>,
    ) -> Result<(), End> {
        if let Some(seq) = since_seq {
            self.last_seq = seq;
            // Boxed like the handshake: store queries are large futures
            // that an idle session should not carry.
            Box::pin(self.resume(&mut live)).await?;
        }
        let shutdown = self.app.shutdown.clone();
        let mut ping = tokio::time::interval(self.app.config.ws_ping_interval);
        ping.tick().await;
        let mut heard_since_ping = true;
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => return Err(End::Close(CLOSE_AWAY, "server shutting down".into())),
                why = &mut self.lost => {
                    tracing::info!(reason = why, "websocket client closed: its token lost power");
                    return Err(End::Close(CLOSE_POLICY, why.into()));
                }
                frame = stream.next() => match frame {
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return Err(End::Gone),
                    // Pongs, and anything else a client sends, prove it is alive.
                    Some(Ok(_)) => heard_since_ping = true,
                },
                received = live.recv() => match received {
                    Ok(event) => {
                        self.queue(&event).await?;
                        // Coalesce whatever else is ready into one flush.
                        loop {
                            match live.try_recv() {
                                Ok(event) => self.queue(&event).await?,
                                Err(TryRecvError::Lagged(n)) => return Err(self.too_slow(n)),
                                Err(_) => break,
                            }
                        }
                        self.flush().await?;
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => return Err(self.too_slow(n)),
                    Err(broadcast::error::RecvError::Closed) => return Err(End::Close(CLOSE_AWAY, "server shutting down".into())),
                },
                _ = ping.tick() => {
                    if !heard_since_ping {
                        return Err(End::Close(CLOSE_AWAY, "no pong received: connection considered dead".into()));
                    }
                    heard_since_ping = false;
                    self.send_now(Message::Ping(bytes::Bytes::new())).await?;
                }
            }
        }
    }

    /// Sends stored events after `last_seq`, then whatever live events are
    /// ready; repeats if the live ring overflowed meanwhile (those events
    /// are all in the store).
    async fn resume(
        &mut self,
        live: &mut broadcast::Receiver<Arc<EncodedEvent>>,
    ) -> Result<(), End> {
        loop {
            loop {
                let rows = self
                    .app
                    .store
                    .events_after(self.last_seq, RESUME_PAGE)
                    .await
                    .map_err(|err| {
                        tracing::error!(error = %err, "resume query failed");
                        End::Close(
                            1011,
                            "server error while resuming; reconnect with since".into(),
                        )
                    })?;
                let done = (rows.len() as i64) < RESUME_PAGE;
                for row in rows {
                    self.queue(&row.event.encode(Some(row.seq))).await?;
                }
                self.flush().await?;
                if done {
                    break;
                }
            }
            loop {
                match live.try_recv() {
                    Ok(event) => self.queue(&event).await?,
                    Err(TryRecvError::Lagged(_)) => break,
                    Err(TryRecvError::Empty) => {
                        self.flush().await?;
                        return Ok(());
                    }
                    Err(TryRecvError::Closed) => return Err(End::Gone),
                }
            }
        }
    }

    /// Feeds one event to the socket unless filtered out or already sent.
    async fn queue(&mut self, event: &EncodedEvent) -> Result<(), End> {
        if let Some(seq) = event.seq {
            if seq <= self.last_seq {
                return Ok(());
            }
            self.last_seq = seq;
            self.last_id = event.id;
        }
        if let Some(types) = &self.types {
            if !types.contains(&event.event_type) {
                return Ok(());
            }
        }
        let size = event.payload.len();
        match tokio::time::timeout(
            self.write_timeout,
            self.sink.feed(Message::Text(event.payload.clone())),
        )
        .await
        {
            Ok(Ok(())) => {
                self.app.metrics.events_delivered.inc();
                self.unflushed += size;
                if self.unflushed >= FLUSH_AT {
                    self.flush().await?;
                }
                Ok(())
            }
            Ok(Err(err)) => Err(self.write_failed(err)),
            Err(_) => Err(self.stuck()),
        }
    }

    /// A full write buffer means the client is not reading: slow, not gone.
    fn write_failed(&self, err: axum::Error) -> End {
        use tokio_tungstenite::tungstenite::Error;
        match err.into_inner().downcast_ref::<Error>() {
            Some(Error::WriteBufferFull(_)) => self.stuck(),
            _ => End::Gone,
        }
    }

    async fn flush(&mut self) -> Result<(), End> {
        match tokio::time::timeout(self.write_timeout, self.sink.flush()).await {
            Ok(Ok(())) => {
                self.unflushed = 0;
                Ok(())
            }
            Ok(Err(err)) => Err(self.write_failed(err)),
            Err(_) => Err(self.stuck()),
        }
    }

    async fn send_now(&mut self, message: Message) -> Result<(), End> {
        match tokio::time::timeout(self.write_timeout, self.sink.send(message)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => Err(self.write_failed(err)),
            Err(_) => Err(self.stuck()),
        }
    }

    fn stuck(&self) -> End {
        self.app.metrics.slow_clients_disconnected.inc();
        tracing::warn!(
            "websocket client stopped reading (write buffer full or stalled); disconnected"
        );
        End::Close(
            CLOSE_TRY_AGAIN,
            format!(
                "client stopped reading for {}s{}",
                self.write_timeout.as_secs(),
                self.resume_hint()
            ),
        )
    }

    /// `; resume with since=<id>` naming the last event fed to the socket
    /// (everything up to it precedes the close frame).
    fn resume_hint(&self) -> String {
        match self.last_id {
            Some(id) => format!("; resume with since={id}"),
            None => String::new(),
        }
    }

    fn too_slow(&self, missed: u64) -> End {
        self.app.metrics.events_dropped.inc_by(missed);
        self.app.metrics.slow_clients_disconnected.inc();
        tracing::warn!(missed, "websocket client too slow; disconnected");
        End::Close(
            CLOSE_TRY_AGAIN,
            format!(
                "client too slow: {missed} events behind{}",
                self.resume_hint()
            ),
        )
    }
}
