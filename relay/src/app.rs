//! Application state, the router, and the server loop.
//!
//! [`build`] wires store → writer → bus → hub; [`router`] maps every route;
//! [`serve`] runs on a bound listener until the shutdown token fires, then
//! lets client sockets close cleanly. Tests call these directly.

use std::{ops::Deref, sync::Arc, time::Duration};

use axum::{
    extract::DefaultBodyLimit,
    routing::{get, post},
    Router,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    access::{self, guard::GuardState, routes::RouteTable, watch::TokenWatch},
    api,
    bus::{redis::RedisBus, Bus, LocalBus},
    catalog::Catalog,
    config::Config,
    dashboard, eventsub_server,
    hub::{self, Hub},
    ingest::webhook,
    metrics::Metrics,
    ops,
    secret::SecretKey,
    status::StatusBoard,
    store::{writer::EventWriter, Store, StoreError},
    streamers::Streamers,
    twitch::{self, Twitch},
};

/// Everything a request handler or background task may need.
///
/// One pointer: axum clones the state into every request, and a session
/// task keeps its copy for the connection's life, so a clone is one
/// reference count instead of one per part. Fields are reached through
/// [`Deref`] as if they were its own.
#[derive(Clone)]
pub struct AppState(Arc<AppParts>);

impl Deref for AppState {
    type Target = AppParts;

    fn deref(&self) -> &AppParts {
        &self.0
    }
}

/// What an [`AppState`] holds; each part is a handle of its own, cheap to
/// clone out for a task that needs only it.
pub struct AppParts {
    /// Validated configuration.
    pub config: Arc<Config>,
    /// The database.
    pub store: Store,
    /// Batching event writer (store, then publish).
    pub writer: EventWriter,
    /// Local fan-out to client sockets.
    pub hub: Hub,
    /// Carries events to every replica's hub.
    pub bus: Arc<dyn Bus>,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Runtime status.
    pub status: Arc<StatusBoard>,
    /// The EventSub catalog.
    pub catalog: &'static Catalog,
    /// Encrypts stored Twitch tokens.
    pub secret_key: SecretKey,
    /// Twitch side: tokens, Helix, connection status.
    pub twitch: Arc<Twitch>,
    /// Fires once on shutdown.
    pub shutdown: CancellationToken,
    /// Live view of API tokens (closes sockets of revoked tokens).
    pub token_watch: TokenWatch,
    /// Chat sockets' feed and chat senders.
    pub chat: Arc<crate::chat::Chat>,
    /// Chat bots: more accounts to send chat as.
    pub chat_bots: Arc<crate::chat_bots::ChatBots>,
    /// Watched streamers (other channels' going live and offline).
    pub streamers: Streamers,
    /// This replica's EventSub WebSocket sessions (`/eventsub/ws`).
    pub eventsub: crate::eventsub_server::Sessions,
    /// Signed webhook forwarding (targets' workers on this replica).
    pub forwarder: crate::forwarding::Forwarder,
}

impl AppParts {
    /// The narrow handle Twitch transports ingest through.
    pub fn ingest(&self) -> crate::ingest::Ingest {
        crate::ingest::Ingest {
            writer: self.writer.clone(),
            store: self.store.clone(),
            metrics: self.metrics.clone(),
            status: self.status.clone(),
            after_store: Some(self.streamers.tracker()),
        }
    }

    /// This replica's leases (socket holder, conduit manager, shards).
    pub fn leases(&self) -> twitch::lease::Leases {
        twitch::lease::Leases::new(
            self.store.clone(),
            self.config.replica_id.clone(),
            self.config.timings.clone(),
        )
    }
}

/// Why the relay could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The Redis URL is unusable.
    #[error("TAU_REDIS_URL: {0}")]
    Redis(#[from] ::redis::RedisError),
}

/// Opens the store and wires the pipeline (Redis bus if configured).
pub async fn build(config: Config, secret_key: SecretKey) -> Result<AppState, BuildError> {
    let store = Store::open_instance(
        &config.database_url,
        config.database.clone(),
        &config.instance,
    )
    .await?;
    build_on(config, secret_key, store).await
}

/// Wires the pipeline on an open store; with `TAU_REDIS_URL` the bus is Redis.
pub async fn build_on(
    config: Config,
    secret_key: SecretKey,
    store: Store,
) -> Result<AppState, BuildError> {
    let hub = Hub::new(config.client_queue);
    let shutdown = CancellationToken::new();
    let bus: Arc<dyn Bus> = match &config.redis_url {
        Some(url) => Arc::new(
            RedisBus::start(
                url,
                &config.instance,
                config.replica_id.clone(),
                store.clone(),
                hub.clone(),
                &config.timings,
                shutdown.clone(),
            )
            .await?,
        ),
        None => Arc::new(LocalBus::new(hub.clone())),
    };
    Ok(assemble(config, secret_key, store, hub, bus, shutdown))
}

/// Wires the embedded pipeline (in-process bus) on an open store.
pub fn build_with_store(config: Config, secret_key: SecretKey, store: Store) -> AppState {
    let hub = Hub::new(config.client_queue);
    let bus: Arc<dyn Bus> = Arc::new(LocalBus::new(hub.clone()));
    assemble(
        config,
        secret_key,
        store,
        hub,
        bus,
        CancellationToken::new(),
    )
}

fn assemble(
    config: Config,
    secret_key: SecretKey,
    store: Store,
    hub: Hub,
    bus: Arc<dyn Bus>,
    shutdown: CancellationToken,
) -> AppState {
    let metrics = Arc::new(Metrics::default());
    let writer = EventWriter::spawn(store.clone(), bus.clone(), metrics.commits.clone());
    let twitch = Arc::new(Twitch::new(&config, store.clone(), secret_key.clone()));
    crate::replicas::spawn_presence(
        store.clone(),
        config.replica_id.clone(),
        &config.timings,
        shutdown.clone(),
    );
    // Credentials stored from the dashboard on another replica.
    twitch.credentials.spawn_poll(shutdown.clone());
    let token_watch = TokenWatch::new(store.clone());
    token_watch.spawn(shutdown.clone());
    // Another replica changed the event types: subscribe anew here too.
    let resubscribe = twitch.clone();
    twitch
        .event_types
        .spawn(shutdown.clone(), move || resubscribe.request_resubscribe());
    let chat_bots = Arc::new(crate::chat_bots::ChatBots::new(
        store.clone(),
        twitch.tokens.clone(),
    ));
    chat_bots.spawn(shutdown.clone());
    let chat = Arc::new(crate::chat::Chat::start(
        &hub,
        twitch.clone(),
        chat_bots.clone(),
        config.twitch.broadcaster.clone(),
        config.client_queue,
        shutdown.clone(),
    ));
    // A resubscribe asked on another replica (e.g. a standby): the same.
    twitch.spawn_fleet_resubscribe(shutdown.clone());
    // A replaced Twitch application: the same.
    twitch.spawn_follow_credentials(shutdown.clone());
    // A change of the watched streamers is a fleet-wide resubscribe.
    let streamers = Streamers::new(&config, store.clone(), twitch.clone());
    let forwarder = crate::forwarding::Forwarder::new(
        store.clone(),
        secret_key.clone(),
        config.timings.clone(),
        config.replica_id.clone(),
        metrics.clone(),
        hub.clone(),
    );
    forwarder.spawn(shutdown.clone());
    AppState(Arc::new(AppParts {
        forwarder,
        eventsub: crate::eventsub_server::Sessions::default(),
        chat,
        chat_bots,
        streamers,
        token_watch,
        twitch,
        config: Arc::new(config),
        store,
        writer,
        hub,
        bus,
        metrics,
        status: Arc::new(StatusBoard::default()),
        catalog: Catalog::get(),
        secret_key,
        shutdown,
    }))
}

/// Every route of the relay, each with its access rule (see [`access`]).
pub fn routes() -> RouteTable {
    use crate::access::{routes::Need, Role};
    use axum::http::Method;
    let admin = Need::Token(Role::Admin);
    let t = RouteTable::new()
        .add(
            Method::POST,
            "/twitch/eventsub",
            Need::Public,
            post(webhook::eventsub_webhook).layer(DefaultBodyLimit::max(webhook::MAX_BODY)),
        )
        .add(Method::GET, "/healthz", Need::Public, get(ops::healthz))
        .add(Method::GET, "/readyz", Need::Public, get(ops::readyz))
        .add(Method::GET, "/metrics", Need::Public, get(ops::metrics))
        .add(
            Method::GET,
            "/ws/twitch-events",
            Need::Socket(Role::Overlay),
            get(hub::websocket_route),
        )
        .add(
            Method::GET,
            "/ws/irc-messages",
            Need::Socket(Role::Overlay),
            get(crate::chat::socket::irc_messages_route),
        )
        .add(
            Method::GET,
            "/ws/chat-bots/{login}",
            Need::Socket(Role::Overlay),
            get(crate::chat::socket::chat_bot_route),
        )
        .add(
            Method::GET,
            "/ws/chat-bots/status",
            Need::Socket(Role::Overlay),
            get(crate::chat_bots::status::status_route),
        )
        .add(
            Method::GET,
            "/api/v1/chat-bots/twitch-callback",
            Need::Public,
            get(twitch::routes::callback),
        )
        .add(
            Method::GET,
            "/twitch/authorize",
            admin,
            get(twitch::routes::authorize),
        )
        .add(
            Method::GET,
            "/twitch-callback",
            Need::Public,
            get(twitch::routes::callback),
        )
        .add(
            Method::POST,
            "/api/v1/twitch/authorize",
            admin,
            post(twitch::routes::authorize_json),
        )
        .add(
            Method::GET,
            "/eventsub/ws",
            Need::Public,
            get(eventsub_server::session::route),
        )
        .add(
            Method::POST,
            "/helix/eventsub/subscriptions",
            Need::Token(Role::Overlay),
            post(eventsub_server::subscriptions::create).layer(axum::middleware::map_response(
                eventsub_server::ratelimit::add_headers,
            )),
        )
        .add(
            Method::GET,
            "/helix/eventsub/subscriptions",
            Need::Token(Role::Overlay),
            get(eventsub_server::subscriptions::list).layer(axum::middleware::map_response(
                eventsub_server::ratelimit::add_headers,
            )),
        )
        .add(
            Method::DELETE,
            "/helix/eventsub/subscriptions",
            Need::Token(Role::Overlay),
            axum::routing::delete(eventsub_server::subscriptions::delete).layer(
                axum::middleware::map_response(eventsub_server::ratelimit::add_headers),
            ),
        )
        .add(
            Method::GET,
            "/oauth2/validate",
            Need::Public,
            get(eventsub_server::subscriptions::validate),
        )
        .any(
            "/api/twitch/helix/{*path}",
            Need::Token(Role::Bot),
            axum::routing::any(api::helix::passthrough),
        );
    dashboard::routes(api::routes(t))
}

/// The router: [`routes`] behind the access guard, with its state. Served
/// inside [`crate::http_stack`].
pub fn router(state: AppState) -> Router {
    let (router, rules) = routes().into_parts();
    let guard = GuardState {
        app: state.clone(),
        rules: Arc::new(rules),
    };
    router
        .route_layer(axum::middleware::from_fn_with_state(
            guard,
            access::guard::guard,
        ))
        .with_state(state)
}

/// Serves until `state.shutdown` fires, then gives clients time to close.
pub async fn serve(listener: TcpListener, state: AppState) -> std::io::Result<()> {
    let shutdown = state.shutdown.clone();
    let metrics = state.metrics.clone();
    let config = state.config.clone();
    let app = crate::http_stack::wrap(router(state), &config);
    axum::serve(
        crate::http_stack::accepting(listener),
        axum::ServiceExt::<axum::extract::Request>::into_make_service(app),
    )
    .with_graceful_shutdown(async move { shutdown.cancelled().await })
    .await?;
    // Client tasks saw the same token and are sending close frames: wait briefly.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while metrics.clients_connected.get() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Starts the Twitch side: hourly token validation and the transport's
/// background work. Without credentials yet (none in the environment, none
/// stored from the dashboard), it waits for them in the state
/// `waiting_for_credentials` and starts when they arrive, without a
/// restart; until then the relay serves test events, replay and history.
/// For the socket transports, returns a token that fires once the socket
/// pipeline has written (or accounted for) every event it held after
/// shutdown: wait for it before closing the store.
pub fn spawn_twitch(state: &AppState) -> Option<CancellationToken> {
    if state.twitch.credentials.current().is_some() {
        return start_twitch(state);
    }
    let socket = matches!(
        state.config.transport,
        crate::config::Transport::WebSocket | crate::config::Transport::Conduit
    );
    // Fires when the transport started later is drained (or never started).
    let drained = CancellationToken::new();
    let (state, outer) = (state.clone(), drained.clone());
    tokio::spawn(async move {
        let credentials = &state.twitch.credentials;
        if credentials.load().await.is_none() {
            tracing::info!("no Twitch application yet: enter its client id and secret on the dashboard's Setup page (or set TWITCH_CLIENT_ID/SECRET); test events, replay and history work meanwhile");
            state.twitch.update(|s| {
                s.state = "waiting_for_credentials".into();
                s.last_error = Some(twitch::TwitchError::NotConfigured.to_string());
            });
        }
        if credentials.wait(&state.shutdown).await.is_none() {
            outer.cancel();
            return;
        }
        tracing::info!("Twitch application configured: starting the Twitch side");
        let receiving_only = state.config.transport == crate::config::Transport::Webhook
            && !state.config.manage_subscriptions;
        state.twitch.update(|s| {
            s.state = if receiving_only {
                "disabled"
            } else {
                "connecting"
            }
            .into();
            s.last_error = None;
        });
        if let Some(inner) = start_twitch(&state) {
            inner.cancelled().await;
        }
        outer.cancel();
    });
    socket.then_some(drained)
}

/// [`spawn_twitch`] once there are credentials.
fn start_twitch(state: &AppState) -> Option<CancellationToken> {
    state
        .twitch
        .tokens
        .clone()
        .spawn_validation(state.shutdown.clone());
    state.chat_bots.spawn_validation(state.shutdown.clone());
    state.streamers.spawn_spec_sync(state.shutdown.clone());
    match state.config.transport {
        crate::config::Transport::WebSocket => {
            crate::chat_bots::reading::spawn(state.clone());
            Some(twitch::websocket::spawn(state.clone()))
        }
        crate::config::Transport::Webhook if !state.config.manage_subscriptions => {
            tracing::info!("webhook subscriptions are managed elsewhere (TAU_MANAGE_SUBSCRIPTIONS=false); only receiving, and showing what Twitch lists for this relay");
            twitch::observe::spawn(state.clone());
            None
        }
        crate::config::Transport::Webhook => {
            crate::chat_bots::reading::spawn_app_resubscribe(state.clone());
            twitch::app_subs::spawn_webhook(state.clone());
            None
        }
        crate::config::Transport::Conduit => {
            crate::chat_bots::reading::spawn_app_resubscribe(state.clone());
            Some(twitch::conduit::spawn(state.clone()))
        }
    }
}

/// Deletes events past the retention age and abandoned OAuth states, now
/// and then hourly.
pub fn spawn_retention(state: &AppState) {
    let retention = state.config.retention;
    let (store, shutdown) = (state.store.clone(), state.shutdown.clone());
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(3600));
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let stale_states =
                (chrono::Utc::now() - chrono::Duration::minutes(10)).timestamp_micros();
            for prefix in ["oauth_state:", eventsub_server::session::HANDOVER_PREFIX] {
                if let Err(err) = store.delete_stale_settings(prefix, stale_states).await {
                    tracing::warn!(error = %err, prefix, "cleaning stale settings failed");
                }
            }
            let Some(retention) = retention else { continue };
            let cutoff = chrono::Utc::now() - retention;
            match store.delete_events_before(cutoff.timestamp_micros()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, "retention: removed old events"),
                Err(err) => tracing::warn!(error = %err, "retention sweep failed"),
            }
        }
    });
}
