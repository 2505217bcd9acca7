//! Application state, the router, and the server loop.
//!
//! [`build`] wires store → writer → bus → hub; [`router`] maps every route;
//! [`serve`] runs on a bound listener until the shutdown token fires, then
//! lets client sockets close cleanly. Tests call these directly.

use std::{sync::Arc, time::Duration};

use axum::{
    extract::DefaultBodyLimit,
    routing::{get, post},
    Router,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    api,
    bus::{redis::RedisBus, Bus, LocalBus},
    catalog::Catalog,
    config::Config,
    dashboard,
    hub::{self, Hub},
    ingest::webhook,
    metrics::Metrics,
    ops,
    secret::SecretKey,
    status::StatusBoard,
    store::{writer::EventWriter, Store, StoreError},
    twitch::{self, Twitch},
};

/// Everything a request handler or background task may need; cheap to clone.
#[derive(Clone)]
pub struct AppState {
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
    let writer = EventWriter::spawn(store.clone(), bus.clone());
    let twitch = Arc::new(Twitch::new(&config, store.clone(), secret_key.clone()));
    AppState {
        twitch,
        config: Arc::new(config),
        store,
        writer,
        hub,
        bus,
        metrics: Arc::new(Metrics::default()),
        status: Arc::new(StatusBoard::default()),
        catalog: Catalog::get(),
        secret_key,
        shutdown,
    }
}

/// Routes `path` and `path/` to the same handler (TAU's trailing slash is optional).
pub(crate) fn both<S: Clone + Send + Sync + 'static>(
    router: Router<S>,
    path: &str,
    method: axum::routing::MethodRouter<S>,
) -> Router<S> {
    let trimmed = path.trim_end_matches('/');
    router
        .route(trimmed, method.clone())
        .route(&format!("{trimmed}/"), method)
}

/// Every route of the relay.
pub fn router(state: AppState) -> Router {
    let mut r = Router::new()
        .route(
            "/twitch/eventsub",
            post(webhook::eventsub_webhook).layer(DefaultBodyLimit::max(webhook::MAX_BODY)),
        )
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics));
    r = both(r, "/ws/twitch-events", get(hub::websocket_route));
    r = r
        .route("/twitch/authorize", get(twitch::routes::authorize))
        .route("/twitch-callback/", get(twitch::routes::callback))
        .route("/twitch-callback", get(twitch::routes::callback))
        .route(
            "/api/v1/twitch/authorize",
            post(twitch::routes::authorize_json),
        )
        .route(
            "/api/twitch/helix/{*path}",
            axum::routing::any(twitch::routes::passthrough),
        );
    r = api::routes(r);
    r = dashboard::routes(r);
    r.with_state(state)
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            panic_response,
        ))
}

/// The backstop for a bug: a handler that panics answers 500 with TAU's
/// error shape and a log line, and the server keeps serving.
fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    crate::error::ApiError::Internal(anyhow::anyhow!("handler panicked: {message}")).into_response()
}

/// Serves until `state.shutdown` fires, then gives clients time to close.
pub async fn serve(listener: TcpListener, state: AppState) -> std::io::Result<()> {
    let shutdown = state.shutdown.clone();
    let metrics = state.metrics.clone();
    let app = router(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await?;
    // Client tasks saw the same token and are sending close frames: wait briefly.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while metrics.clients_connected.get() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Starts the Twitch side: hourly token validation and, for the WebSocket
/// transport, the EventSub session manager. Does nothing without credentials.
pub fn spawn_twitch(state: &AppState) {
    if state.config.twitch.client_id.is_none() || state.config.twitch.client_secret.is_none() {
        tracing::info!(
            "no Twitch credentials (TWITCH_CLIENT_ID/SECRET): test events, replay and history only"
        );
        return;
    }
    state
        .twitch
        .tokens
        .clone()
        .spawn_validation(state.shutdown.clone());
    match state.config.transport {
        crate::config::Transport::WebSocket => twitch::eventsub_ws::spawn(state.clone()),
        crate::config::Transport::Webhook if !state.config.manage_subscriptions => {
            tracing::info!("webhook subscriptions are managed elsewhere (TAU_MANAGE_SUBSCRIPTIONS=false); only receiving")
        }
        crate::config::Transport::Webhook => twitch::app_subs::spawn_webhook(state.clone()),
        crate::config::Transport::Conduit => twitch::conduit::spawn(state.clone()),
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
            if let Err(err) = store
                .delete_stale_settings("oauth_state:", stale_states)
                .await
            {
                tracing::warn!(error = %err, "cleaning OAuth states failed");
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
