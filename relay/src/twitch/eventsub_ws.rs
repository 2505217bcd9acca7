//! The EventSub WebSocket session manager.
//!
//! Connect → welcome → create every subscription inside the keepalive
//! window → read. Silence longer than the keepalive window (plus a grace)
//! means a dead connection. `session_reconnect` opens the new URL while the
//! old socket keeps delivering, and switches only when the new welcome
//! arrives (subscriptions carry over; Twitch message ids dedupe any
//! overlap). Any close (4000-4007) or failure starts a fresh session after
//! an exponential backoff, with the subscriptions created again.

use std::{sync::Arc, time::Duration};

use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::{
    tungstenite::{protocol::WebSocketConfig, Message},
    MaybeTlsStream, WebSocketStream,
};

use super::{
    helix::TokenKind,
    lease::{HeldLease, LEASE_RENEW},
    subscriptions::{desired, Ids},
    SubscriptionStatus, Twitch, TwitchError,
};
use crate::{
    app::AppState,
    ingest::{
        ingest_notification, ingest_revocation, IncomingNotification, NotificationBody,
        SubscriptionInfo,
    },
};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Extra silence tolerated beyond Twitch's keepalive window.
const KEEPALIVE_GRACE: Duration = Duration::from_secs(5);
/// How long a welcome may take after connecting.
const WELCOME_TIMEOUT: Duration = Duration::from_secs(10);
/// Backoff bounds between sessions.
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(120);
/// Twitch allows 300 enabled subscriptions per connection.
const MAX_SUBSCRIPTIONS: usize = 300;
/// The lease that makes exactly one replica hold the socket (Twitch allows
/// 3 connections per user token; two replicas must never subscribe at once).
const SOCKET_LEASE: &str = "eventsub-websocket";
/// How long socket events are retried while the store is down.
const INGEST_PATIENCE: Duration = Duration::from_secs(60);

#[derive(Deserialize)]
struct Envelope {
    metadata: Metadata,
    #[serde(default)]
    payload: Value,
}

#[derive(Deserialize)]
struct Metadata {
    message_id: String,
    message_type: String,
}

struct Welcome {
    session_id: String,
    keepalive: Duration,
}

/// What Twitch's close codes mean, for the log.
pub fn close_reason(code: u16) -> &'static str {
    match code {
        4000 => "internal server error",
        4001 => "client sent inbound traffic",
        4002 => "client failed ping-pong",
        4003 => "connection unused (no subscription in time)",
        4004 => "reconnect grace time expired",
        4005 => "network timeout",
        4006 => "network error",
        4007 => "invalid reconnect",
        _ => "closed",
    }
}

/// What a session does after its welcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Create the subscriptions itself with the broadcaster's user token
    /// (one replica at a time, by lease).
    User,
    /// Become a conduit shard (every replica; subscriptions live on the conduit).
    Shard,
}

/// Starts the manager for the user-token WebSocket transport; it runs until shutdown.
pub fn spawn(app: AppState) {
    tokio::spawn(run(app));
}

/// Starts this replica's conduit shard session; it runs until shutdown.
pub fn spawn_shard(app: AppState) {
    tokio::spawn(async move {
        let twitch = app.twitch.clone();
        let mut backoff = BACKOFF_MIN;
        while !app.shutdown.is_cancelled() {
            twitch.update(|s| s.state = "connecting".into());
            let outcome = session(&app, &twitch, &mut backoff, Mode::Shard).await;
            if app.shutdown.is_cancelled() {
                return;
            }
            let reason = outcome
                .err()
                .map(|e| e.to_string())
                .unwrap_or_else(|| "session ended".into());
            tracing::warn!(retry_in = ?backoff, "conduit shard session ended: {reason}");
            twitch.update(|s| {
                s.state = "backoff".into();
                s.session_id = None;
                s.last_error = Some(reason);
            });
            tokio::select! {
                _ = app.shutdown.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    });
}

async fn run(app: AppState) {
    let twitch = app.twitch.clone();
    let mut backoff = BACKOFF_MIN;
    loop {
        if app.shutdown.is_cancelled() {
            return;
        }
        if let Err(err) = twitch.tokens.user_token().await {
            twitch.update(|s| {
                s.state = "waiting_for_authorization".into();
                s.last_error = Some(err.to_string());
            });
            tracing::info!("EventSub WebSocket waits for authorization: {err}");
            tokio::select! {
                _ = app.shutdown.cancelled() => return,
                _ = twitch.authorized.notified() => {}
                // The token lives in the shared store: another replica may receive it.
                _ = tokio::time::sleep(LEASE_RENEW) => {}
            }
            continue;
        }
        let Some(lease) = HeldLease::take(&app, SOCKET_LEASE).await else {
            twitch.update(|s| {
                s.state = "standby".into();
                s.session_id = None;
                s.last_error = Some("another replica holds the EventSub socket".into());
            });
            tokio::select! {
                _ = app.shutdown.cancelled() => return,
                _ = tokio::time::sleep(LEASE_RENEW) => {}
            }
            continue;
        };
        twitch.update(|s| s.state = "connecting".into());
        let outcome = tokio::select! {
            outcome = session(&app, &twitch, &mut backoff, Mode::User) => outcome,
            _ = lease.lost.cancelled() => Err(TwitchError::Socket("lost the EventSub lease to another replica".into())),
        };
        lease.release(&app).await;
        if app.shutdown.is_cancelled() {
            return;
        }
        let reason = match outcome {
            Ok(()) => "session ended".to_string(),
            Err(err) => err.to_string(),
        };
        tracing::warn!(retry_in = ?backoff, "EventSub WebSocket session ended: {reason}");
        twitch.update(|s| {
            s.state = "backoff".into();
            s.session_id = None;
            s.last_error = Some(reason);
            for sub in &mut s.subscriptions {
                sub.status = "websocket_disconnected".into();
            }
        });
        tokio::select! {
            _ = app.shutdown.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

async fn connect(url: &str) -> Result<Socket, TwitchError> {
    let config = WebSocketConfig::default()
        .read_buffer_size(64 * 1024)
        .max_message_size(Some(1024 * 1024));
    let (socket, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), false)
        .await
        .map_err(|e| TwitchError::Socket(format!("connect to {url}: {e}")))?;
    Ok(socket)
}

async fn read_welcome(socket: &mut Socket) -> Result<Welcome, TwitchError> {
    let deadline = tokio::time::Instant::now() + WELCOME_TIMEOUT;
    loop {
        let message = tokio::time::timeout_at(deadline, socket.next())
            .await
            .map_err(|_| TwitchError::Socket("no welcome within 10 s".into()))?;
        match message {
            Some(Ok(Message::Text(text))) => {
                let envelope: Envelope = serde_json::from_str(&text)
                    .map_err(|e| TwitchError::Socket(format!("malformed message: {e}")))?;
                if envelope.metadata.message_type == "session_welcome" {
                    let session = &envelope.payload["session"];
                    return Ok(Welcome {
                        session_id: session["id"].as_str().unwrap_or_default().to_string(),
                        keepalive: Duration::from_secs(
                            session["keepalive_timeout_seconds"].as_u64().unwrap_or(10),
                        ),
                    });
                }
            }
            Some(Ok(Message::Close(frame))) => {
                let code = frame.map(|f| u16::from(f.code)).unwrap_or(1005);
                return Err(TwitchError::Socket(format!(
                    "closed before welcome: {code} {}",
                    close_reason(code)
                )));
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(TwitchError::Socket(e.to_string())),
            None => return Err(TwitchError::Socket("closed before welcome".into())),
        }
    }
}

/// One session, from connect to its end (always an error saying why).
async fn session(
    app: &AppState,
    twitch: &Arc<Twitch>,
    backoff: &mut Duration,
    mode: Mode,
) -> Result<(), TwitchError> {
    let mut socket = connect(app.config.twitch.eventsub_ws_url.as_str()).await?;
    let mut welcome = read_welcome(&mut socket).await?;
    tracing::info!(session_id = %welcome.session_id, "EventSub WebSocket session welcomed");
    let shard = match mode {
        Mode::User => {
            subscribe_all(app, twitch, &welcome).await?;
            None
        }
        Mode::Shard => Some(super::conduit::claim_shard(app, &welcome.session_id).await?),
    };
    // Losing the shard's lease means another replica may take the index.
    let shard_lost = shard
        .as_ref()
        .map(|s| s.lease.lost.clone())
        .unwrap_or_default();
    *backoff = BACKOFF_MIN;
    loop {
        let message = tokio::select! {
            _ = app.shutdown.cancelled() => {
                let _ = socket.close(None).await;
                if let Some(shard) = shard {
                    shard.lease.release(app).await;
                }
                return Ok(());
            }
            _ = shard_lost.cancelled() => {
                return Err(TwitchError::Socket("lost the conduit shard lease".into()));
            }
            message = tokio::time::timeout(welcome.keepalive + KEEPALIVE_GRACE, socket.next()) => message,
        };
        let message = message
            .map_err(|_| TwitchError::Socket("keepalive window passed in silence".into()))?;
        match message {
            Some(Ok(Message::Text(text))) => {
                if let Some(url) = handle(app, twitch, &text).await {
                    let (new_socket, new_welcome) = handover(app, twitch, socket, &url).await?;
                    socket = new_socket;
                    welcome = new_welcome;
                    if let Some(shard) = &shard {
                        super::conduit::reassign(app, shard.index, &welcome.session_id).await?;
                    }
                }
            }
            Some(Ok(Message::Close(frame))) => {
                let code = frame.map(|f| u16::from(f.code)).unwrap_or(1005);
                return Err(TwitchError::Socket(format!(
                    "Twitch closed the session: {code} {}",
                    close_reason(code)
                )));
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(TwitchError::Socket(e.to_string())),
            None => return Err(TwitchError::Socket("connection closed".into())),
        }
    }
}

/// Opens `url` while the old socket keeps delivering; switches on the new welcome.
async fn handover(
    app: &AppState,
    twitch: &Arc<Twitch>,
    mut old: Socket,
    url: &str,
) -> Result<(Socket, Welcome), TwitchError> {
    tracing::info!("EventSub asked to reconnect; opening the new session");
    twitch.update(|s| s.state = "reconnecting".into());
    let mut new = Box::pin(async {
        let mut socket = connect(url).await?;
        let welcome = read_welcome(&mut socket).await?;
        Ok::<_, TwitchError>((socket, welcome))
    });
    let mut old_open = true;
    loop {
        tokio::select! {
            result = &mut new => {
                let (socket, welcome) = result?;
                if old_open {
                    let _ = old.close(None).await;
                }
                tracing::info!(session_id = %welcome.session_id, "EventSub reconnect complete");
                twitch.update(|s| {
                    s.state = "connected".into();
                    s.session_id = Some(welcome.session_id.clone());
                });
                return Ok((socket, welcome));
            }
            message = old.next(), if old_open => match message {
                Some(Ok(Message::Text(text))) => { handle(app, twitch, &text).await; }
                Some(Ok(_)) => {}
                _ => old_open = false,
            },
        }
    }
}

/// Handles one message; returns a reconnect URL for `session_reconnect`.
async fn handle(app: &AppState, twitch: &Arc<Twitch>, text: &str) -> Option<String> {
    let envelope: Envelope = match serde_json::from_str(text) {
        Ok(e) => e,
        Err(err) => {
            tracing::warn!(error = %err, "malformed EventSub WebSocket message ignored");
            return None;
        }
    };
    let message_id = envelope.metadata.message_id;
    match envelope.metadata.message_type.as_str() {
        "notification" => {
            let events = serde_json::from_value::<IncomingNotification>(envelope.payload)
                .map_err(|e| e.to_string())
                .and_then(|n| n.split(&message_id).map_err(str::to_string));
            match events {
                Ok(events) => {
                    for (event_id, body) in events {
                        ingest_with_retry(app, &event_id, body).await;
                    }
                }
                Err(err) => {
                    tracing::warn!(message_id, error = %err, "malformed notification ignored")
                }
            }
        }
        "revocation" => {
            if let Ok(sub) =
                serde_json::from_value::<SubscriptionInfo>(envelope.payload["subscription"].clone())
            {
                if let Err(err) = ingest_revocation(app, &message_id, &sub).await {
                    tracing::error!(error = %err, "revocation not recorded");
                }
                twitch.update(|s| {
                    for known in s.subscriptions.iter_mut().filter(|k| k.id == sub.id) {
                        known.status = sub.status.clone();
                    }
                });
            }
        }
        "session_reconnect" => {
            return envelope.payload["session"]["reconnect_url"]
                .as_str()
                .map(str::to_string);
        }
        _ => {}
    }
    None
}

/// The socket has no acknowledgements, so reading pauses while the store
/// is down: the event is retried (backoff up to 2 s) for up to
/// [`INGEST_PATIENCE`], long enough for a database restart, and only then
/// logged as lost. Meanwhile Twitch's messages wait in the socket buffer.
async fn ingest_with_retry(app: &AppState, message_id: &str, body: NotificationBody) {
    let (event, subscription) = (body.event, body.subscription);
    let started = tokio::time::Instant::now();
    let mut wait = Duration::from_millis(100);
    loop {
        let body = NotificationBody {
            subscription: subscription.clone(),
            event: event.clone(),
        };
        match ingest_notification(app, message_id, body, "websocket").await {
            Ok(_) => return,
            Err(err) if started.elapsed() < INGEST_PATIENCE && !app.shutdown.is_cancelled() => {
                tracing::warn!(message_id, error = %err, "store failed; holding the socket and retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(2));
            }
            Err(err) => {
                tracing::error!(message_id, kind = %subscription.kind, error = %err, "event from the socket lost: store unavailable");
                return;
            }
        }
    }
}

/// Creates every wanted subscription for this session, concurrently.
async fn subscribe_all(
    app: &AppState,
    twitch: &Arc<Twitch>,
    welcome: &Welcome,
) -> Result<(), TwitchError> {
    let token = twitch
        .tokens
        .user_info()
        .await
        .ok_or(TwitchError::AuthorizationNeeded)?;
    let user_id = token.user_id.clone().unwrap_or_default();
    let broadcaster_id = broadcaster_id(app, twitch, &user_id).await?;
    let ids = Ids {
        broadcaster_id,
        user_id,
        client_id: app.config.twitch.client_id.clone().unwrap_or_default(),
    };
    let (mut wanted, skipped) = desired(&app.config.eventsub_types, &ids);
    if wanted.len() > MAX_SUBSCRIPTIONS {
        tracing::warn!(
            wanted = wanted.len(),
            "more than 300 subscriptions wanted; Twitch allows 300 per connection"
        );
        wanted.truncate(MAX_SUBSCRIPTIONS);
    }
    let transport = serde_json::json!({"method": "websocket", "session_id": welcome.session_id});
    let results: Vec<SubscriptionStatus> = futures_util::stream::iter(wanted)
        .map(|want| {
            let body = want.request(transport.clone());
            async move {
                let status = match twitch
                    .helix
                    .create_subscription(&body, TokenKind::User)
                    .await
                {
                    Ok(Some(created)) => SubscriptionStatus {
                        id: created["id"].as_str().unwrap_or_default().into(),
                        kind: want.kind.clone(),
                        version: want.version.clone(),
                        status: created["status"].as_str().unwrap_or("enabled").into(),
                    },
                    Ok(None) => SubscriptionStatus {
                        id: String::new(),
                        kind: want.kind.clone(),
                        version: want.version.clone(),
                        status: "already_exists".into(),
                    },
                    Err(err) => {
                        tracing::warn!(kind = %want.kind, error = %err, "subscription not created");
                        SubscriptionStatus {
                            id: String::new(),
                            kind: want.kind.clone(),
                            version: want.version.clone(),
                            status: format!("failed: {err}"),
                        }
                    }
                };
                status
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    let enabled = results.iter().filter(|s| s.status == "enabled").count();
    tracing::info!(
        enabled,
        total = results.len(),
        "EventSub subscriptions created"
    );
    twitch.update(|s| {
        s.state = "connected".into();
        s.session_id = Some(welcome.session_id.clone());
        s.keepalive_seconds = Some(welcome.keepalive.as_secs());
        s.connected_at = Some(crate::event::format_created(chrono::Utc::now()));
        s.subscriptions = results;
        s.skipped = skipped
            .iter()
            .map(|(k, why)| format!("{k}: {why}"))
            .collect();
        s.last_error = None;
    });
    Ok(())
}

/// The channel's user id: `TWITCH_BROADCASTER` looked up once (then kept),
/// else the authorizing user.
async fn broadcaster_id(
    app: &AppState,
    twitch: &Arc<Twitch>,
    user_id: &str,
) -> Result<String, TwitchError> {
    let Some(login) = &app.config.twitch.broadcaster else {
        return Ok(user_id.to_string());
    };
    let key = format!("broadcaster_id:{login}");
    if let Some(id) = app.store.setting(&key).await? {
        return Ok(id);
    }
    let (id, _, _) = twitch
        .helix
        .user_by_login(login, TokenKind::User)
        .await?
        .ok_or_else(|| {
            TwitchError::Socket(format!("Twitch has no user {login:?} (TWITCH_BROADCASTER)"))
        })?;
    app.store.set_setting(&key, &id).await?;
    app.store.set_setting("broadcaster_id", &id).await?;
    Ok(id)
}
