//! `GET /eventsub/ws`: one EventSub WebSocket session, Twitch's protocol.
//!
//! - `session_welcome` first, with the session id to subscribe with.
//! - No subscription within 10 s of the welcome ([`Timings::eventsub_unused`]):
//!   close 4003 "connection unused". A text or binary frame from the
//!   client: close 4001. Unanswered pings: 4002.
//! - `session_keepalive` when nothing was sent for ¾ of the keepalive
//!   window, so it always arrives inside the window the client watches.
//! - Events reach the session from the hub's bounded ring, as for TAU's
//!   own clients; a session that falls a ring behind, or stops reading
//!   for the client write timeout, is closed with 4005 (Twitch's
//!   "network timeout": libraries reconnect and resubscribe) instead of
//!   holding memory for it.
//! - The owner token revoked or its grant changed: a `revocation`
//!   (`authorization_revoked`) for every subscription, then close 4000.
//! - Drain (relay shutdown): the subscriptions and the last stored
//!   position are saved in the shared store under a one-time handover id,
//!   and the client gets `session_reconnect` with a `reconnect_url`
//!   (`TAU_PUBLIC_URL/eventsub/ws?handover=<id>`). Exactly as on Twitch,
//!   libraries connect there, keep the old socket until the new welcome,
//!   and do not resubscribe: the new session (on any replica, or this one
//!   after its restart) takes over the same subscription ids and first
//!   sends every stored event after the saved position, so nothing is
//!   lost; events the old socket still delivered meanwhile come again with
//!   the same message id (libraries drop those duplicates). The old socket
//!   closes 4004 after a grace period. An unknown or used handover id is
//!   closed 4007 ("invalid reconnect"). If the handover cannot be saved,
//!   the session closes 4000 instead, and libraries resubscribe.
//! - Resume beyond Twitch (TAU only): a session with subscriptions whose
//!   client simply went away (the socket dropped, or it was closed 4005
//!   for falling behind) is saved the same way, keyed by its session id.
//!   Reconnecting with `?resume=<old session id>` within ten minutes takes
//!   it over like a handover: same subscriptions, then every stored event
//!   the client missed. The session id is the secret, as the handover id
//!   is; it is known only to the client and its token's Helix listing.
//!   Used once; unknown or used: 4007. Twitch's libraries do not send it
//!   (they resubscribe, as on Twitch); a client written for TAU can.
//!
//! [`Timings::eventsub_unused`]: crate::timings::Timings::eventsub_unused

use std::{future::Future, pin::Pin, sync::Arc, time::Duration};

use axum::{
    extract::{
        ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade},
        Query, State,
    },
    response::{IntoResponse, Response},
};
use futures_util::{
    stream::{SplitSink, SplitStream},
    SinkExt, StreamExt,
};
use serde::{Deserialize, Serialize};
use serde_json::{value::RawValue, Map, Value};
use tokio::{
    sync::{
        broadcast::{self, error::TryRecvError},
        watch,
    },
    time::Instant,
};

use super::{frames, subscriptions::HelixError, SessionState, Subscription};
use crate::{
    app::AppState,
    event::{eventsub_type, EncodedEvent},
};

/// Close codes (Twitch's EventSub WebSocket reference).
const INTERNAL_ERROR: u16 = 4000;
const INBOUND_TRAFFIC: u16 = 4001;
const PING_PONG: u16 = 4002;
const UNUSED: u16 = 4003;
const GRACE_EXPIRED: u16 = 4004;
const NETWORK_TIMEOUT: u16 = 4005;
const INVALID_RECONNECT: u16 = 4007;

/// Twitch's default keepalive window and the range it accepts.
const DEFAULT_KEEPALIVE: u64 = 10;
const KEEPALIVE_RANGE: std::ops::RangeInclusive<u64> = 10..=600;
/// How long a draining session keeps delivering after `session_reconnect`.
const HANDOVER_GRACE: Duration = Duration::from_secs(4);
/// Setting name prefix of saved handovers (swept after ten minutes).
pub const HANDOVER_PREFIX: &str = "eventsub_handover:";
/// Stored events read per query while catching up after a handover.
const CATCH_UP_PAGE: i64 = 500;
/// Largest frame a client may send (it should send none).
const MAX_CLIENT_MESSAGE: usize = 4 * 1024;
/// Hard cap on buffered outgoing bytes per session.
const MAX_WRITE_BUFFER: usize = 2 * 1024 * 1024;

/// `?keepalive_timeout_seconds=` and TAU's `?handover=` and `?resume=`.
#[derive(Debug, Deserialize)]
pub struct Connect {
    /// Keepalive window in seconds, 10 to 600 (default 10).
    keepalive_timeout_seconds: Option<String>,
    /// Set in a `reconnect_url`: take over a draining session.
    handover: Option<String>,
    /// A session id of this client's that was disconnected: resume it.
    resume: Option<String>,
}

/// Which saved session a connection takes over.
enum TakeOver {
    /// A draining session's (`?handover=`).
    Handover(String),
    /// A disconnected session's (`?resume=`).
    Resume(String),
}

impl TakeOver {
    fn from(connect: Connect) -> Option<TakeOver> {
        match (connect.handover, connect.resume) {
            (Some(id), _) => Some(TakeOver::Handover(id)),
            (None, Some(session)) => Some(TakeOver::Resume(session)),
            (None, None) => None,
        }
    }

    /// The setting it is saved under (both swept by [`HANDOVER_PREFIX`]).
    fn key(&self) -> String {
        match self {
            TakeOver::Handover(id) => format!("{HANDOVER_PREFIX}{id}"),
            TakeOver::Resume(session) => resume_key(session),
        }
    }
}

/// Where a disconnected session is saved for `?resume=`.
fn resume_key(session_id: &str) -> String {
    format!("{HANDOVER_PREFIX}resume:{session_id}")
}

/// A draining session, saved for the session that takes over.
#[derive(Serialize, Deserialize)]
struct Handover {
    token_id: String,
    token_hint: String,
    subscriptions: Vec<Subscription>,
    last_seq: i64,
    keepalive: u64,
}

/// `GET /eventsub/ws`: upgrades (400 in Twitch's shape for a bad
/// keepalive value).
pub async fn route(
    State(app): State<AppState>,
    Query(connect): Query<Connect>,
    ws: WebSocketUpgrade,
) -> Response {
    let keepalive = match connect.keepalive_timeout_seconds.as_deref() {
        None => DEFAULT_KEEPALIVE,
        Some(raw) => match raw.parse::<u64>() {
            Ok(secs) if KEEPALIVE_RANGE.contains(&secs) => secs,
            _ => {
                return HelixError::bad_request(
                    "keepalive_timeout_seconds must be an integer from 10 to 600",
                )
                .into_response()
            }
        },
    };
    ws.max_write_buffer_size(MAX_WRITE_BUFFER)
        .max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_MESSAGE)
        .on_upgrade(move |socket| serve(socket, app, keepalive, TakeOver::from(connect)))
}

type Sink = SplitSink<WebSocket, Message>;
type Lost = Pin<Box<dyn Future<Output = &'static str> + Send>>;

/// How a session ended.
enum End {
    /// The socket is gone.
    Gone,
    /// Close with this code and reason.
    Close(u16, &'static str),
}

struct Session {
    app: AppState,
    id: String,
    connected_at: String,
    keepalive: Duration,
    sink: Sink,
    state: watch::Receiver<SessionState>,
    lost: Option<Lost>,
    /// Highest stored position handled.
    last_seq: i64,
    /// `session_reconnect` was sent: the successor holds the subscriptions.
    handed_over: bool,
    last_sent: Instant,
    write_timeout: Duration,
}

async fn serve(socket: WebSocket, app: AppState, keepalive: u64, saved: Option<TakeOver>) {
    let (sink, mut stream) = socket.split();
    let id = uuid::Uuid::new_v4().to_string();
    let connected_at = frames::timestamp(chrono::Utc::now());
    let (initial, saved_seq) = match saved {
        None => (SessionState::default(), None),
        Some(saved) => match take_over(&app, &saved, &id, &connected_at).await {
            Some((state, seq)) => (state, Some(seq)),
            None => {
                let mut sink = sink;
                let _ = close(&mut sink, INVALID_RECONNECT, "invalid reconnect").await;
                return;
            }
        },
    };
    // Live events first, the store after: nothing falls between the two.
    let live = app.hub.subscribe();
    // A new session starts at the store's end: a handover or resume of it
    // later catches up from there, not from the beginning of history.
    let taken_over = saved_seq.is_some();
    let last_seq = match saved_seq {
        Some(seq) => seq,
        None => match app.store.max_seq().await {
            Ok(seq) => seq,
            Err(err) => {
                tracing::error!(error = %err, "EventSub session: reading the store's position failed");
                let mut sink = sink;
                let _ = close(&mut sink, INTERNAL_ERROR, "internal server error").await;
                return;
            }
        },
    };
    let state = app.eventsub.open(&id, initial);
    app.metrics.clients_connected.inc();
    let mut session = Session {
        write_timeout: app.config.timings.client_write_timeout,
        app: app.clone(),
        id: id.clone(),
        connected_at,
        keepalive: Duration::from_secs(keepalive),
        sink,
        state,
        lost: None,
        last_seq,
        handed_over: false,
        last_sent: Instant::now(),
    };
    let end = session.run(live, taken_over, &mut stream).await;
    let client_left = matches!(end, End::Gone | End::Close(NETWORK_TIMEOUT, _));
    if client_left && !session.handed_over {
        session.save_for_resume(keepalive).await;
    }
    app.eventsub.close(&id);
    app.metrics.clients_connected.dec();
    if let End::Close(code, reason) = end {
        let _ = tokio::time::timeout(
            session.write_timeout,
            close(&mut session.sink, code, reason),
        )
        .await;
    }
}

/// Loads and deletes a saved handover or disconnected session; `None` if
/// unknown or its token no longer stands.
async fn take_over(
    app: &AppState,
    saved: &TakeOver,
    session_id: &str,
    connected_at: &str,
) -> Option<(SessionState, i64)> {
    let key = saved.key();
    let saved = app.store.setting(&key).await.ok()??;
    app.store.delete_setting(&key).await.ok()?;
    let saved: Handover = serde_json::from_str(&saved).ok()?;
    let owner = app.store.token_by_id(&saved.token_id).await.ok()??;
    if owner.hint != saved.token_hint {
        return None;
    }
    let subscriptions = saved
        .subscriptions
        .into_iter()
        .map(|mut sub| {
            sub.transport.session_id = session_id.to_string();
            sub.transport.connected_at = Some(connected_at.to_string());
            sub
        })
        .collect();
    // The key holds the handover or session id: a secret, not logged.
    tracing::info!("EventSub session taken over after a reconnect or resume");
    Some((
        SessionState {
            owner: Some(owner),
            subscriptions,
        },
        saved.last_seq,
    ))
}

async fn close(sink: &mut Sink, code: u16, reason: &str) -> Result<(), axum::Error> {
    let frame = CloseFrame {
        code,
        reason: Utf8Bytes::from(reason),
    };
    sink.send(Message::Close(Some(frame))).await
}

impl Session {
    async fn run(
        &mut self,
        mut live: broadcast::Receiver<Arc<EncodedEvent>>,
        taken_over: bool,
        stream: &mut SplitStream<WebSocket>,
    ) -> End {
        let welcome = frames::welcome(&self.id, &self.connected_at, self.keepalive.as_secs());
        if let Err(end) = self.send(welcome).await {
            return end;
        }
        self.watch_owner();
        if taken_over {
            if let Err(end) = self.catch_up(&mut live).await {
                return end;
            }
        }
        match self.relay(&mut live, stream).await {
            Err(end) => end,
            Ok(()) => self.hand_over(&mut live, stream).await,
        }
    }

    /// Starts watching the owner token once there is one.
    fn watch_owner(&mut self) {
        if self.lost.is_none() {
            if let Some(owner) = self.state.borrow().owner.clone() {
                self.lost = Some(Box::pin(self.app.token_watch.lost(owner)));
            }
        }
    }

    /// Relays live events until the session ends (`Err`) or the relay
    /// drains (`Ok`).
    async fn relay(
        &mut self,
        live: &mut broadcast::Receiver<Arc<EncodedEvent>>,
        stream: &mut SplitStream<WebSocket>,
    ) -> Result<(), End> {
        let shutdown = self.app.shutdown.clone();
        let unused_after = Instant::now() + self.app.config.timings.eventsub_unused;
        let mut used = !self.state.borrow().subscriptions.is_empty();
        let mut ping = tokio::time::interval(self.app.config.ws_ping_interval);
        ping.tick().await;
        let mut heard_since_ping = true;
        loop {
            let keepalive_at = self.last_sent + self.keepalive * 3 / 4;
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => return Ok(()),
                why = async { self.lost.as_mut().expect("checked").await }, if self.lost.is_some() => {
                    tracing::info!(reason = why, "EventSub session closed: its token lost power");
                    self.revoke_all().await?;
                    return Err(End::Close(INTERNAL_ERROR, "token revoked or changed"));
                }
                changed = self.state.changed() => {
                    if changed.is_err() {
                        return Err(End::Close(INTERNAL_ERROR, "internal server error"));
                    }
                    used |= !self.state.borrow().subscriptions.is_empty();
                    self.watch_owner();
                }
                frame = stream.next() => match frame {
                    Some(Ok(Message::Text(_) | Message::Binary(_))) => {
                        return Err(End::Close(INBOUND_TRAFFIC, "client sent inbound traffic"));
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return Err(End::Gone),
                    Some(Ok(_)) => heard_since_ping = true,
                },
                received = live.recv() => match received {
                    Ok(event) => {
                        self.deliver_encoded(&event).await?;
                        loop {
                            match live.try_recv() {
                                Ok(event) => self.deliver_encoded(&event).await?,
                                Err(TryRecvError::Lagged(n)) => return Err(self.too_slow(n)),
                                Err(_) => break,
                            }
                        }
                        self.flush().await?;
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => return Err(self.too_slow(n)),
                    Err(broadcast::error::RecvError::Closed) => return Ok(()),
                },
                _ = tokio::time::sleep_until(unused_after), if !used => {
                    return Err(End::Close(UNUSED, "connection unused"));
                }
                _ = tokio::time::sleep_until(keepalive_at) => {
                    self.send(frames::keepalive()).await?;
                }
                _ = ping.tick() => {
                    if !heard_since_ping {
                        return Err(End::Close(PING_PONG, "client failed ping-pong"));
                    }
                    heard_since_ping = false;
                    self.send_message(Message::Ping(bytes::Bytes::new())).await?;
                }
            }
        }
    }

    /// Saves the session for its successor and sends `session_reconnect`;
    /// keeps delivering until the client leaves or the grace period ends.
    async fn hand_over(
        &mut self,
        live: &mut broadcast::Receiver<Arc<EncodedEvent>>,
        stream: &mut SplitStream<WebSocket>,
    ) -> End {
        let state = self.state.borrow().clone();
        let Some(owner) = state.owner else {
            // Nothing subscribed: nothing to carry over.
            return End::Close(GRACE_EXPIRED, "server shutting down");
        };
        let handover = uuid::Uuid::new_v4().simple().to_string();
        let saved = Handover {
            token_id: owner.id,
            token_hint: owner.hint,
            subscriptions: state.subscriptions,
            last_seq: self.last_seq,
            keepalive: self.keepalive.as_secs(),
        };
        let value = serde_json::to_string(&saved).expect("a handover serializes");
        if let Err(err) = self
            .app
            .store
            .set_setting(&format!("{HANDOVER_PREFIX}{handover}"), &value)
            .await
        {
            tracing::warn!(error = %err, "saving an EventSub handover failed; closing instead");
            return End::Close(INTERNAL_ERROR, "internal server error");
        }
        self.handed_over = true;
        let url = reconnect_url(&self.app, &handover, saved.keepalive);
        if let Err(end) = self
            .send(frames::reconnect(&self.id, &self.connected_at, &url))
            .await
        {
            return end;
        }
        let grace = tokio::time::sleep(HANDOVER_GRACE);
        tokio::pin!(grace);
        loop {
            tokio::select! {
                _ = &mut grace => return End::Close(GRACE_EXPIRED, "reconnect grace time expired"),
                frame = stream.next() => match frame {
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return End::Gone,
                    Some(Ok(_)) => {}
                },
                received = live.recv() => match received {
                    Ok(event) => {
                        if let Err(end) = self.deliver_encoded(&event).await {
                            return end;
                        }
                        if let Err(end) = self.flush().await {
                            return end;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => {
                        // Nothing more will come: wait out the grace period.
                        (&mut grace).await;
                        return End::Close(GRACE_EXPIRED, "reconnect grace time expired");
                    }
                },
            }
        }
    }

    /// The client went away: saves the subscriptions and position for a
    /// `?resume=` with this session's id (nothing without subscriptions).
    async fn save_for_resume(&mut self, keepalive: u64) {
        let state = self.state.borrow().clone();
        let Some(owner) = state.owner else { return };
        if state.subscriptions.is_empty() {
            return;
        }
        let saved = Handover {
            token_id: owner.id,
            token_hint: owner.hint,
            subscriptions: state.subscriptions,
            last_seq: self.last_seq,
            keepalive,
        };
        let value = serde_json::to_string(&saved).expect("a session serializes");
        if let Err(err) = self
            .app
            .store
            .set_setting(&resume_key(&self.id), &value)
            .await
        {
            tracing::warn!(error = %err, "saving a disconnected EventSub session failed; it cannot be resumed");
        }
    }

    /// After a handover or resume: every stored event after the saved position, then
    /// whatever live events are ready (repeated if the ring overflowed).
    async fn catch_up(
        &mut self,
        live: &mut broadcast::Receiver<Arc<EncodedEvent>>,
    ) -> Result<(), End> {
        loop {
            loop {
                let rows = self
                    .app
                    .store
                    .events_after(self.last_seq, CATCH_UP_PAGE)
                    .await
                    .map_err(|err| {
                        tracing::error!(error = %err, "EventSub catch-up query failed");
                        End::Close(INTERNAL_ERROR, "internal server error")
                    })?;
                let done = (rows.len() as i64) < CATCH_UP_PAGE;
                for row in rows {
                    self.last_seq = row.seq;
                    let kind = eventsub_type(&row.event.event_type);
                    let fields = serde_json::from_str(row.event.event_data.get()).ok();
                    self.deliver(
                        &kind,
                        &row.event.event_id,
                        &row.event.event_data,
                        fields.as_ref(),
                    )
                    .await?;
                }
                self.flush().await?;
                if done {
                    break;
                }
            }
            loop {
                match live.try_recv() {
                    Ok(event) => self.deliver_encoded(&event).await?,
                    Err(TryRecvError::Lagged(_)) => break,
                    Err(TryRecvError::Empty) => return self.flush().await,
                    Err(TryRecvError::Closed) => return Err(End::Gone),
                }
            }
        }
    }

    /// One event from the hub: skipped if already handled (by position).
    /// The event is parsed once for all sessions ([`super::parsed`]).
    async fn deliver_encoded(&mut self, event: &Arc<EncodedEvent>) -> Result<(), End> {
        if let Some(seq) = event.seq {
            if seq <= self.last_seq {
                return Ok(());
            }
            self.last_seq = seq;
        }
        let Some(parsed) = self.app.eventsub.parsed(event) else {
            return Ok(());
        };
        self.deliver(
            &parsed.kind,
            &parsed.event_id,
            &parsed.event_data,
            parsed.fields.as_ref(),
        )
        .await
    }

    /// Sends `event` (whose `fields` are given) to every subscription of
    /// this session that wants it.
    async fn deliver(
        &mut self,
        kind: &str,
        event_id: &str,
        event: &RawValue,
        fields: Option<&Map<String, Value>>,
    ) -> Result<(), End> {
        let matching: Vec<Subscription> = self
            .state
            .borrow()
            .subscriptions
            .iter()
            .filter(|s| s.wants(kind, fields))
            .cloned()
            .collect();
        for sub in &matching {
            // One notification per event and subscription; its id is the
            // event's own when one subscription matches.
            let message_id = if matching.len() == 1 {
                event_id.to_string()
            } else {
                format!("{event_id}.{}", sub.id)
            };
            let frame = frames::notification(&message_id, sub, event);
            self.feed(frame).await?;
            self.app.metrics.events_delivered.inc();
        }
        Ok(())
    }

    /// A `revocation` for every subscription (the owner token lost power).
    async fn revoke_all(&mut self) -> Result<(), End> {
        let subs = self.state.borrow().subscriptions.clone();
        for mut sub in subs {
            sub.status = "authorization_revoked".into();
            self.feed(frames::revocation(&sub)).await?;
        }
        self.flush().await
    }

    async fn feed(&mut self, frame: String) -> Result<(), End> {
        let fed = tokio::time::timeout(
            self.write_timeout,
            self.sink.feed(Message::Text(frame.into())),
        )
        .await;
        self.last_sent = Instant::now();
        match fed {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => Err(self.write_failed(err)),
            Err(_) => Err(self.stuck()),
        }
    }

    async fn flush(&mut self) -> Result<(), End> {
        match tokio::time::timeout(self.write_timeout, self.sink.flush()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => Err(self.write_failed(err)),
            Err(_) => Err(self.stuck()),
        }
    }

    async fn send(&mut self, frame: String) -> Result<(), End> {
        self.feed(frame).await?;
        self.flush().await
    }

    async fn send_message(&mut self, message: Message) -> Result<(), End> {
        match tokio::time::timeout(self.write_timeout, self.sink.send(message)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => Err(self.write_failed(err)),
            Err(_) => Err(self.stuck()),
        }
    }

    fn write_failed(&self, err: axum::Error) -> End {
        use tokio_tungstenite::tungstenite::Error;
        match err.into_inner().downcast_ref::<Error>() {
            Some(Error::WriteBufferFull(_)) => self.stuck(),
            _ => End::Gone,
        }
    }

    fn stuck(&self) -> End {
        self.app.metrics.slow_clients_disconnected.inc();
        tracing::warn!(session = %self.id, "EventSub client stopped reading; disconnected");
        End::Close(NETWORK_TIMEOUT, "network timeout: client stopped reading")
    }

    fn too_slow(&self, missed: u64) -> End {
        self.app.metrics.events_dropped.inc_by(missed);
        self.app.metrics.slow_clients_disconnected.inc();
        tracing::warn!(session = %self.id, missed, "EventSub client too slow; disconnected");
        End::Close(NETWORK_TIMEOUT, "network timeout: client too slow")
    }
}

/// `TAU_PUBLIC_URL` as a websocket URL to take over `handover`.
fn reconnect_url(app: &AppState, handover: &str, keepalive: u64) -> String {
    let mut url = app.config.public_url.clone();
    let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
    let _ = url.set_scheme(scheme);
    let base = url.as_str().trim_end_matches('/');
    format!("{base}/eventsub/ws?handover={handover}&keepalive_timeout_seconds={keepalive}")
}
