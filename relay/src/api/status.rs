//! `GET /api/v1/status`: what the relay is doing. Never a token or secret.

use std::time::Duration;

use axum::{
    extract::{
        ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade},
        Extension, State,
    },
    response::Response,
    Json,
};
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::{openapi::AuthErrors, Authenticated};
use crate::{
    access::{guard::SocketNeed, needs, Role},
    app::AppState,
    config::Transport,
    error::ApiError,
    event::{format_created, tau_event_type},
    replicas::ReplicaStatus,
    store::Revocation,
    twitch::{
        conduit::ConduitReport,
        credentials::Source,
        routes::redirect_uri,
        subscriptions::{missing_scopes, scopes_for},
        tokens::{AppTokenState, UserTokenState},
        ConnectionStatus,
    },
};

/// How many recent revocations the status shows.
const RECENT_REVOCATIONS: i64 = 20;

/// What the relay is doing (the operator reads it too:
/// `operator/tests/fixtures/relay-status-*.json`).
#[derive(Debug, Serialize, ToSchema)]
pub struct StatusDocument {
    /// The relay's version.
    version: &'static str,
    /// When this replica started (RFC 3339).
    #[schema(format = DateTime)]
    started_at: String,
    /// `sqlite` or `postgres`.
    #[schema(example = "sqlite")]
    database: String,
    /// Client sockets open on this replica.
    clients_connected: i64,
    /// Events in the history.
    events_stored: i64,
    /// When this replica last received an event (RFC 3339).
    #[schema(format = DateTime)]
    last_event_at: Option<String>,
    /// The Twitch side.
    twitch: TwitchStatus,
    /// Twitch's most recent subscription revocations, newest first.
    revocations: Vec<Revocation>,
    /// Watched streamers (`/api/v1/streamers`).
    streamers: StreamersStatus,
    /// The fleet's live replicas (this one first) and what each holds.
    replicas: Vec<ReplicaStatus>,
}

/// Watched streamers, counted.
#[derive(Debug, Serialize, ToSchema)]
pub struct StreamersStatus {
    /// Streamers subscribed to (on the list, not disabled).
    watched: i64,
    /// Of those, the ones live now.
    live: i64,
    /// How many this transport can watch (5 on the websocket).
    cap: usize,
}

/// The Twitch side of the status: what is configured and connected.
#[derive(Debug, Serialize, ToSchema)]
pub struct TwitchStatus {
    /// The Twitch application's client id is known (from the environment
    /// or entered in the dashboard).
    client_id_configured: bool,
    /// Where the client id and secret come from: `environment`
    /// (`TWITCH_CLIENT_ID` / `TWITCH_CLIENT_SECRET`, which win), `dashboard`
    /// (entered on the Setup page), or `null` when not configured.
    credentials_source: Option<Source>,
    /// `TWITCH_WEBHOOK_SECRET` is set.
    webhook_secret_configured: bool,
    /// The channel this relay serves (`TWITCH_BROADCASTER`).
    broadcaster: Option<String>,
    /// The OAuth redirect URL the Twitch application must register.
    #[schema(example = "https://tau.example.com/twitch-callback/")]
    redirect_uri: String,
    /// The event types this relay subscribes to (TAU spelling).
    #[schema(example = json!(["channel-follow", "channel-raid"]))]
    event_types: Vec<String>,
    /// The broadcaster's authorization.
    user_token: UserTokenStatus,
    /// The app's client credentials.
    app_token: AppTokenStatus,
    /// The EventSub connection of this replica.
    eventsub: ConnectionStatus,
    /// The fleet's conduit (conduit transport only).
    conduit: Option<ConduitReport>,
}

/// The user token as status pages show it (never the token).
#[derive(Debug, Serialize, ToSchema)]
pub struct UserTokenStatus {
    /// Whether there is a usable one.
    state: UserTokenState,
    /// The authorizing account.
    login: Option<String>,
    /// The scopes it grants.
    scopes: Option<Vec<String>>,
    /// Every scope the configured event types need (what Connect asks for).
    scopes_needed: Vec<String>,
    /// Needed scopes the stored token does not grant (empty without a
    /// token): those types' events do not arrive until the broadcaster
    /// connects again.
    scopes_missing: Vec<String>,
    /// When the access token expires (it is refreshed before).
    #[schema(format = DateTime)]
    expires_at: Option<String>,
}

/// The app token as status pages show it (never the token).
#[derive(Debug, Serialize, ToSchema)]
pub struct AppTokenStatus {
    /// Whether Twitch accepts the client credentials.
    state: AppTokenState,
    /// Twitch's reason for refusing them.
    error: Option<String>,
}

/// `GET /api/v1/status`.
#[utoipa::path(
    get,
    path = "/api/v1/status",
    tag = "status",
    security(("token" = [])),
    responses(
        (status = 200, description = "What the relay is doing; never a token or secret", body = StatusDocument),
        AuthErrors,
    )
)]
pub async fn status(
    _: Authenticated,
    State(app): State<AppState>,
) -> Result<Json<StatusDocument>, ApiError> {
    Ok(Json(document(&app, EventCount::Now).await?))
}

/// How fresh the document's `events_stored` must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventCount {
    /// Counted for this request (REST: a caller that just stored an event
    /// sees it).
    Now,
    /// The relay's shared count, a few seconds old at most (status sockets:
    /// one `COUNT(*)` per relay, not one per socket per poll).
    Shared,
}

/// The status document (shared by REST and `/ws/tau-status/`).
pub async fn document(app: &AppState, count: EventCount) -> Result<StatusDocument, ApiError> {
    let events_stored = match count {
        EventCount::Now => app.status.events_stored_now(&app.store).await?,
        EventCount::Shared => app.status.events_stored(&app.store).await?,
    };
    let revocations = app.store.recent_revocations(RECENT_REVOCATIONS).await?;
    let twitch = &app.config.twitch;
    app.twitch.credentials.load().await;
    let credentials_source = app.twitch.credentials.source();
    let user = app.twitch.tokens.user_info().await;
    let (app_token, app_token_error) = app.twitch.tokens.app_state();
    // The fleet's conduit (from the shared store), whichever replica answers.
    let types = app.twitch.event_types.current().await;
    let scopes_needed = scopes_for(&types);
    let scopes_missing = match &user {
        Some(user) => missing_scopes(&scopes_needed, &user.scopes),
        None => Vec::new(),
    };
    let (watched, live) = app.streamers.counts().await?;
    let conduit = match app.config.transport {
        Transport::Conduit => Some(crate::twitch::conduit::report(app).await?),
        _ => None,
    };
    Ok(StatusDocument {
        version: env!("CARGO_PKG_VERSION"),
        started_at: format_created(app.status.started_at()),
        database: format!("{:?}", app.store.kind()).to_lowercase(),
        clients_connected: app.metrics.clients_connected.get(),
        events_stored,
        last_event_at: app.status.last_event_at().map(format_created),
        twitch: TwitchStatus {
            client_id_configured: credentials_source.is_some(),
            credentials_source,
            webhook_secret_configured: twitch.webhook_secret.is_some(),
            broadcaster: twitch.broadcaster.clone(),
            redirect_uri: redirect_uri(app),
            event_types: event_types(&types),
            user_token: UserTokenStatus {
                state: app.twitch.tokens.state(),
                login: user.as_ref().and_then(|u| u.login.clone()),
                scopes: user.as_ref().map(|u| u.scopes.clone()),
                scopes_needed,
                scopes_missing,
                expires_at: user.as_ref().map(|u| format_created(u.expires_at)),
            },
            app_token: AppTokenStatus {
                state: app_token,
                error: app_token_error,
            },
            eventsub: app.twitch.connection(),
            conduit,
        },
        revocations,
        streamers: StreamersStatus {
            watched,
            live,
            cap: app.streamers.cap(),
        },
        replicas: crate::replicas::live(&app.store, &app.config.replica_id).await?,
    })
}

/// The configured types in TAU spelling, each once, in configuration order.
fn event_types(configured: &[(String, String)]) -> Vec<String> {
    let mut types: Vec<String> = Vec::new();
    for (kind, _) in configured {
        let tau = tau_event_type(kind);
        if !types.contains(&tau) {
            types.push(tau);
        }
    }
    types
}

/// How often the status socket re-checks the document for changes.
const STATUS_POLL: Duration = Duration::from_secs(2);

/// `GET /ws/tau-status/`: `{"token"}` first, then the status document
/// whenever it changes. Authenticated like every socket (the original
/// leaked bot tokens on an unauthenticated sibling); closed with 1008 when
/// the token is revoked or its grant changes.
pub async fn status_socket(
    State(app): State<AppState>,
    Extension(SocketNeed(need)): Extension<SocketNeed>,
    ws: WebSocketUpgrade,
) -> Response {
    ws.read_buffer_size(4096)
        .max_message_size(16 * 1024)
        .on_upgrade(move |socket| serve_status(socket, app, need))
}

async fn close(sink: &mut futures_util::stream::SplitSink<WebSocket, Message>, reason: &str) {
    let _ = sink
        .send(Message::Text(json!({ "error": reason }).to_string().into()))
        .await;
    let frame = CloseFrame {
        code: 1008,
        reason: reason.into(),
    };
    let _ = sink.send(Message::Close(Some(frame))).await;
}

async fn serve_status(socket: WebSocket, app: AppState, need: Role) {
    let (mut sink, mut stream) = socket.split();
    let first = tokio::time::timeout(crate::hub::HANDSHAKE_TIMEOUT, stream.next()).await;
    let token = match first {
        Ok(Some(Ok(Message::Text(text)))) => serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["token"].as_str().map(str::to_string)),
        _ => None,
    };
    let record = match token {
        Some(token) => app.store.authenticate(&token).await.ok().flatten(),
        None => None,
    };
    let record = match record {
        Some(record) if record.role.covers(need) => record,
        Some(record) => return close(&mut sink, &needs(need, record.role)).await,
        None => return close(&mut sink, "invalid or missing token").await,
    };
    let lost = app.token_watch.lost(record);
    tokio::pin!(lost);
    let mut last = String::new();
    let mut changes = app.status.watch();
    let mut poll = tokio::time::interval(STATUS_POLL);
    loop {
        match document(&app, EventCount::Shared).await {
            Ok(doc) => {
                let text = serde_json::to_string(&doc).expect("status serializes");
                if text != last {
                    if sink.send(Message::Text(text.clone().into())).await.is_err() {
                        return;
                    }
                    last = text;
                }
            }
            Err(err) => tracing::warn!(error = %err, "status document failed"),
        }
        tokio::select! {
            _ = app.shutdown.cancelled() => {
                let _ = sink.send(Message::Close(Some(CloseFrame { code: 1001, reason: "server shutting down".into() }))).await;
                return;
            }
            why = &mut lost => return close(&mut sink, why).await,
            _ = changes.changed() => {}
            _ = poll.tick() => {}
            frame = stream.next() => match frame {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
        }
    }
}
