//! The Twitch side: Twitch API knowledge (tokens, Helix, subscriptions,
//! leases, conduit management). The transports that *receive* from Twitch
//! (webhook handler, EventSub WebSocket sessions, conduit shard sessions)
//! live in [`crate::ingest`]; what a socket session is *for* is decided
//! here, behind [`crate::ingest::socket::Binding`].
//!
//! - [`credentials`]: the application's client id and secret, now (the
//!   environment's, else the ones entered in the dashboard).
//! - [`tokens`]: app token (client credentials, fetched again on expiry or
//!   401) and the broadcaster's user token (encrypted at rest, refreshed on
//!   401 and before expiry, validated hourly as Twitch requires).
//! - [`helix`]: Helix requests with the right token and one refresh-and-retry,
//!   through the shared `tau-twitch` client (also the OAuth calls and the
//!   subscription plan, which the operator uses too).
//! - [`subscriptions`]: which EventSub subscriptions the relay wants, the
//!   broadcaster-id lookup, and creating them for one WebSocket session.
//! - [`websocket`]: the user-token WebSocket transport's Twitch side
//!   (authorization, the socket lease, subscriptions per session).
//! - [`lease`]: one replica at a time (socket holder, conduit manager,
//!   shards), with fencing checks before acting.
//! - [`conduit`]: the conduit and its manager (shard count, subscriptions).
//! - [`shard`]: this replica's conduit shard (claim and assign a session).
//! - [`app_subs`]: app-token subscriptions (webhook and conduit transports).
//! - [`event_types`]: which EventSub types to subscribe to, now (the
//!   dashboard's stored choice, else `TAU_EVENTSUB_TYPES`).
//! - [`observe`]: webhook relays whose subscriptions the operator makes
//!   show Twitch's list for their callback.
//! - [`routes`]: the OAuth code flow and the Helix passthrough.
//! - [`outcome`]: the styled pages the OAuth callback answers with.
//!
//! Base URLs come from configuration, so tests use a fake Twitch.

pub mod app_subs;
pub mod conduit;
pub mod credentials;
pub mod event_types;
pub mod helix;
pub mod lease;
pub mod observe;
pub mod outcome;
pub mod routes;
pub mod shard;
pub mod subscriptions;
pub mod tokens;
pub mod websocket;

/// Errors talking to Twitch.
#[derive(Debug, thiserror::Error)]
pub enum TwitchError {
    /// No client id and secret (neither the environment nor the dashboard).
    #[error("Twitch is not configured: enter the Twitch application's client id and secret on the dashboard's Setup page (or set TWITCH_CLIENT_ID and TWITCH_CLIENT_SECRET)")]
    NotConfigured,
    /// No broadcaster has authorized TAU yet, or the authorization was lost.
    #[error("authorization needed: open the dashboard and connect your Twitch account")]
    AuthorizationNeeded,
    /// The network or Twitch failed.
    #[error("request to Twitch failed: {0}")]
    Http(#[from] reqwest::Error),
    /// Twitch answered with an error status.
    #[error("Twitch answered {status}: {message}")]
    Status {
        /// HTTP status.
        status: u16,
        /// Twitch's message.
        message: String,
    },
    /// The EventSub WebSocket failed.
    #[error("EventSub WebSocket: {0}")]
    Socket(String),
    /// Storing tokens failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// A lease could not be proven held, so this replica must not act.
    #[error(transparent)]
    Lease(#[from] lease::LeaseError),
}

impl From<tau_twitch::Error> for TwitchError {
    fn from(err: tau_twitch::Error) -> TwitchError {
        use tau_twitch::Error as Shared;
        match err {
            Shared::Http(source) => TwitchError::Http(source),
            Shared::Status {
                status, message, ..
            } => TwitchError::Status { status, message },
            Shared::RateLimited { wait, .. } => TwitchError::Status {
                status: 429,
                message: format!("rate limit reached; Twitch resets it in {wait:?}"),
            },
            other
            @ (Shared::BadResponse { .. } | Shared::BadBaseUrl(_) | Shared::BadSegment(_)) => {
                TwitchError::Socket(other.to_string())
            }
        }
    }
}

/// Result alias of this layer.
pub type Result<T, E = TwitchError> = std::result::Result<T, E>;

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::sync::{watch, Notify};

use crate::{config::Config, secret::SecretKey, store::Store};

/// One subscription as Twitch reported it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct SubscriptionStatus {
    /// Twitch's subscription id (empty if creation failed).
    pub id: String,
    /// EventSub type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Version.
    pub version: String,
    /// Its condition (which channel: several watched streamers share a type).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub condition: serde_json::Map<String, serde_json::Value>,
    /// `enabled`, a revocation reason, or the error that prevented creation.
    pub status: String,
}

/// The EventSub connection as status pages show it.
#[derive(Debug, Clone, Serialize, Default, utoipa::ToSchema)]
pub struct ConnectionStatus {
    /// `websocket` or `webhook`.
    pub transport: String,
    /// `disabled`, `waiting_for_credentials` (no client id and secret yet),
    /// `waiting_for_authorization`, `connecting`, `connected`,
    /// `reconnecting`, `backoff`.
    pub state: String,
    /// Current EventSub WebSocket session id.
    pub session_id: Option<String>,
    /// Keepalive window Twitch announced, seconds.
    pub keepalive_seconds: Option<u64>,
    /// When the current session was welcomed.
    pub connected_at: Option<String>,
    /// Subscriptions of the current session or app.
    pub subscriptions: Vec<SubscriptionStatus>,
    /// Types skipped because their condition cannot be filled.
    pub skipped: Vec<String>,
    /// The last problem, in words.
    pub last_error: Option<String>,
}

/// The relay's Twitch side: tokens, Helix, connection status.
pub struct Twitch {
    /// The application's client id and secret, now (ask it, never the
    /// configuration).
    pub credentials: credentials::Credentials,
    /// OAuth tokens.
    pub tokens: Arc<tokens::TokenManager>,
    /// Helix client.
    pub helix: helix::Helix,
    /// Woken when a broadcaster authorizes TAU.
    pub authorized: Notify,
    /// Bumped by `POST /api/v1/twitch/resubscribe`: the transport's loop
    /// makes its subscriptions anew (a watch, not a `Notify`, so a request
    /// made while the loop is busy is seen when it next waits).
    pub resubscribe: watch::Sender<u64>,
    /// Connection status (shown by `/api/v1/status`).
    pub connection: Mutex<ConnectionStatus>,
    /// The EventSub types to subscribe to (read it, never the configuration).
    pub event_types: event_types::EventTypes,
    /// Resubscribe requests made on any replica (see
    /// [`Twitch::request_fleet_resubscribe`]).
    fleet_resubscribe: Arc<crate::poll::Revision>,
}

/// The setting a fleet-wide resubscribe request rewrites.
pub const FLEET_RESUBSCRIBE: &str = "resubscribe_revision";
/// How often each replica looks for one.
pub const FLEET_POLL: std::time::Duration = std::time::Duration::from_secs(2);

impl Twitch {
    /// Builds the Twitch side from configuration.
    pub fn new(config: &Config, store: Store, key: SecretKey) -> Twitch {
        let http = reqwest::Client::builder()
            .timeout(config.timings.http_timeout)
            .user_agent(concat!("tau-relay/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("HTTP client builds");
        let client = tau_twitch::Client::with_http(
            http,
            config.twitch.api_url.clone(),
            config.twitch.auth_url.clone(),
        );
        let credentials = credentials::Credentials::new(&config.twitch, store.clone(), key.clone());
        let tokens = Arc::new(tokens::TokenManager::new(
            client.clone(),
            credentials.clone(),
            store.clone(),
            key,
        ));
        Twitch {
            credentials,
            helix: helix::Helix::new(client, tokens.clone()),
            tokens,
            authorized: Notify::new(),
            resubscribe: watch::Sender::new(0),
            connection: Mutex::new(ConnectionStatus {
                transport: match config.transport {
                    crate::config::Transport::WebSocket => "websocket".into(),
                    crate::config::Transport::Webhook => "webhook".into(),
                    crate::config::Transport::Conduit => "conduit".into(),
                },
                state: "disabled".into(),
                ..Default::default()
            }),
            fleet_resubscribe: Arc::new(crate::poll::Revision::new(
                store.clone(),
                FLEET_RESUBSCRIBE,
            )),
            event_types: event_types::EventTypes::new(config, store),
        }
    }

    /// Asks every replica's transport to make its subscriptions anew: this
    /// one at once, the others (among them the one holding the EventSub
    /// socket, when this is a standby) within [`FLEET_POLL`].
    pub async fn request_fleet_resubscribe(&self) -> Result<(), crate::store::StoreError> {
        self.fleet_resubscribe.bump().await?;
        self.request_resubscribe();
        Ok(())
    }

    /// Follows resubscribe requests made on other replicas until `shutdown`.
    pub fn spawn_fleet_resubscribe(
        self: &Arc<Self>,
        shutdown: tokio_util::sync::CancellationToken,
    ) {
        let this = self.clone();
        crate::poll::spawn_every(FLEET_POLL, shutdown, move || {
            let this = this.clone();
            async move {
                match this.fleet_resubscribe.moved().await {
                    Ok(true) => {
                        tracing::info!("another replica asked for a resubscribe");
                        this.request_resubscribe();
                    }
                    Ok(false) => {}
                    Err(err) => {
                        tracing::debug!(error = %err, "reading the resubscribe revision failed")
                    }
                }
            }
        });
    }

    /// Until `shutdown`: when the application changes from one pair to
    /// another (replaced in the dashboard, here or on another replica), the
    /// transport makes its subscriptions anew with the new app's tokens
    /// (the app token was dropped with the old pair). A first pair needs no
    /// resubscribe: the transport starts with it.
    pub fn spawn_follow_credentials(
        self: &Arc<Self>,
        shutdown: tokio_util::sync::CancellationToken,
    ) {
        let this = self.clone();
        let mut rx = self.credentials.watch();
        tokio::spawn(async move {
            let mut before = rx.borrow_and_update().clone();
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    changed = rx.changed() => if changed.is_err() { return },
                }
                let now = rx.borrow_and_update().clone();
                if let (Some(old), Some(new)) = (&before, &now) {
                    if old.credentials != new.credentials {
                        tracing::info!(client_id = %new.credentials.client_id, "the Twitch application changed; resubscribing");
                        this.request_resubscribe();
                    }
                }
                before = now;
            }
        });
    }

    /// Updates the connection status.
    pub fn update(&self, change: impl FnOnce(&mut ConnectionStatus)) {
        change(&mut self.connection.lock().expect("connection status lock"));
    }

    /// Asks this replica's transport to make its subscriptions anew.
    pub fn request_resubscribe(&self) {
        self.resubscribe.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Wakes on every resubscribe request made after this call.
    pub fn resubscribe_requests(&self) -> watch::Receiver<u64> {
        self.resubscribe.subscribe()
    }

    /// Which token looks users and streams up: the app token when the
    /// application is configured, else the broadcaster's.
    pub fn lookup_token(&self) -> helix::TokenKind {
        if self.credentials.current().is_some() {
            helix::TokenKind::App
        } else {
            helix::TokenKind::User
        }
    }

    /// A copy of the connection status.
    pub fn connection(&self) -> ConnectionStatus {
        self.connection
            .lock()
            .expect("connection status lock")
            .clone()
    }
}

/// An application wired to a fake Twitch, for the Twitch side's unit tests.
#[cfg(test)]
pub(crate) async fn test_app(fake: &tau_fake_twitch::FakeTwitch) -> crate::app::AppState {
    let mut config = Config::for_tests();
    config.twitch.client_id = Some(tau_fake_twitch::FakeTwitch::CLIENT_ID.into());
    config.twitch.client_secret = Some(tau_fake_twitch::FakeTwitch::CLIENT_SECRET.into());
    config.twitch.api_url = fake.api_url().parse().expect("fake URL");
    config.twitch.auth_url = fake.auth_url().parse().expect("fake URL");
    config.twitch.eventsub_ws_url = fake.eventsub_ws_url().parse().expect("fake URL");
    crate::app::build_with_store(config, SecretKey::generate(), Store::in_memory().await)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn pair(id: &str) -> credentials::AppCredentials {
        credentials::AppCredentials {
            client_id: id.into(),
            client_secret: "secret".into(),
        }
    }

    #[tokio::test]
    async fn a_replaced_application_resubscribes_and_a_first_one_does_not() {
        let config = Config::for_tests();
        let twitch = Arc::new(Twitch::new(
            &config,
            Store::in_memory().await,
            SecretKey::generate(),
        ));
        let shutdown = tokio_util::sync::CancellationToken::new();
        twitch.spawn_follow_credentials(shutdown.clone());
        let requests = twitch.resubscribe_requests();
        let settle = || tokio::time::sleep(Duration::from_millis(100));

        twitch.credentials.store(pair("first")).await.unwrap();
        settle().await;
        assert!(
            !requests.has_changed().unwrap(),
            "the first pair starts the transport"
        );
        twitch.credentials.store(pair("first")).await.unwrap();
        settle().await;
        assert!(!requests.has_changed().unwrap(), "the same pair again");
        twitch.credentials.store(pair("second")).await.unwrap();
        settle().await;
        assert!(requests.has_changed().unwrap(), "another app: resubscribe");
        shutdown.cancel();
    }
}
