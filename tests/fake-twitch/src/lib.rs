//! A hermetic fake of the parts of Twitch that TAU talks to, for tests.
//!
//! [`FakeTwitch::start`] binds `127.0.0.1:0` and serves, on that one port:
//!
//! - `/oauth2/...` — the `id.twitch.tv` OAuth server: client credentials,
//!   authorization code (auto-approved as the broadcaster), refresh with
//!   rotation, validate, revoke;
//! - `/helix/...` — Helix: EventSub subscriptions, conduits and shards,
//!   users, with `Ratelimit-*` headers and Twitch's JSON error bodies;
//! - `/ws` — the EventSub WebSocket server: welcome, keepalives, 4003 when
//!   unused, 4001 on inbound traffic, notifications, revocations, and
//!   `session_reconnect` hand-over via `/ws/reconnect/<token>`.
//!
//! Webhook subscriptions are verified and fed by signed POSTs to their
//! callback, exactly as Twitch signs them. Tests steer the fake with methods
//! on the cheap-to-clone [`FakeTwitch`] handle (expire tokens, revoke
//! authorization, push events, close sessions, ...) and inspect what it saw
//! ([`FakeTwitch::requests`], [`FakeTwitch::subscriptions`]).
//!
//! # Layout
//!
//! - `state`: the shared world (tokens, subscriptions, conduits, sessions,
//!   request log), its lock and the wait-for-change machinery;
//! - `types`: the public snapshot types ([`Subscription`], [`SessionInfo`], ...);
//! - `recorder`: middleware logging every request into the world;
//! - `oauth`: `/oauth2` routes and token control;
//! - `helix`: `/helix` routing, authentication, rate-limit headers, `/users`;
//! - `chat`: `POST /helix/chat/messages` (with Twitch's echo to
//!   `channel.chat.message` subscriptions) and chat controls;
//! - `streams`: other users, `/streams`, going live and offline;
//! - `subscriptions` / `conduits`: the EventSub Helix endpoints;
//! - `eventsub_ws`: the WebSocket server (one task per session);
//! - `ws_control`: pushing notifications, reconnects, closes, revocations;
//! - `webhook`: signing, verification challenges and notification POSTs;
//! - [`catalog`]: known subscription types and the scopes they need;
//! - `error`: [`FakeError`] and the HTTP error bodies.
//!
//! # Example
//!
//! ```no_run
//! # async fn demo() {
//! use tau_fake_twitch::FakeTwitch;
//! let twitch = FakeTwitch::start().await;
//! let (access, _refresh) = twitch.issue_user_token(&["bits:read"], 3600);
//! // point the code under test at twitch.api_url(), twitch.eventsub_ws_url() ...
//! let session = twitch.wait_for_session(std::time::Duration::from_secs(5)).await.unwrap();
//! twitch
//!     .send_notification(&session.id, "channel.cheer", "1", serde_json::json!({"bits": 100}))
//!     .await
//!     .unwrap();
//! # let _ = access;
//! # }
//! ```

#![warn(missing_docs)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use axum::Router;
use tokio::sync::watch;

pub mod catalog;
mod chat;
mod conduits;
mod error;
mod eventsub_ws;
mod helix;
mod oauth;
mod recorder;
mod state;
mod streams;
mod subscriptions;
mod types;
mod webhook;
mod ws_control;

pub use chat::SentChat;
pub use error::FakeError;
pub use streams::StreamInfo;
pub use types::{AuthKind, Conduit, RecordedRequest, SessionInfo, Shard, Subscription, Transport};
pub use webhook::{sign, WebhookOverrides};
pub use ws_control::ShardDelivery;

use state::{Shared, State};

/// Timings and behaviour switches, chosen at start.
#[derive(Clone, Debug)]
pub struct Options {
    /// Idle time after which a `session_keepalive` is sent. `None`: the
    /// session's `keepalive_timeout_seconds` minus one second (as Twitch).
    pub keepalive_interval: Option<Duration>,
    /// How long a fresh session may stay without a subscription (or conduit
    /// shard) before it is closed with 4003. `None`: the keepalive timeout.
    pub subscribe_deadline: Option<Duration>,
    /// After `session_reconnect`, when the old socket is closed (4004 if the
    /// client never connected to the reconnect URL). Twitch: 30 s.
    pub reconnect_grace: Duration,
    /// Send the webhook verification challenge right after a webhook
    /// subscription (or shard) is created, like Twitch. Turn off to call
    /// [`FakeTwitch::verify_webhook`] by hand.
    pub auto_verify_webhooks: bool,
    /// `expires_in` of user tokens from the code and refresh flows (Twitch: ~4 h).
    pub user_token_expires_in: u64,
    /// `expires_in` of app tokens (Twitch: ~60 days).
    pub app_token_expires_in: u64,
    /// How long a webhook callback may take to answer.
    pub webhook_timeout: Duration,
    /// Send a WebSocket Ping this often on every EventSub session (Twitch
    /// and the Twitch CLI ping every few seconds, whether or not keepalives
    /// are paused). `None`: no pings.
    pub ping_interval: Option<Duration>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            keepalive_interval: None,
            subscribe_deadline: None,
            reconnect_grace: Duration::from_secs(30),
            auto_verify_webhooks: true,
            user_token_expires_in: 14_400,
            app_token_expires_in: 5_184_000,
            webhook_timeout: Duration::from_secs(10),
            ping_interval: None,
        }
    }
}

/// Handle to one running fake Twitch; clones share the same server and state.
///
/// The server runs on the Tokio runtime that called [`FakeTwitch::start`] and
/// stops when that runtime shuts down.
#[derive(Clone)]
pub struct FakeTwitch {
    inner: Arc<Shared>,
}

impl std::fmt::Debug for FakeTwitch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeTwitch")
            .field("addr", &self.inner.addr)
            .finish_non_exhaustive()
    }
}

impl FakeTwitch {
    /// The client id the fake accepts (30 chars, like a real one).
    pub const CLIENT_ID: &'static str = "faketauclientid000000000000000";
    /// The client secret the fake accepts.
    pub const CLIENT_SECRET: &'static str = "faketauclientsecret00000000000";
    /// The only user: the broadcaster's id (matches Twitch's example payloads).
    pub const BROADCASTER_ID: &'static str = "1337";
    /// The broadcaster's login.
    pub const BROADCASTER_LOGIN: &'static str = "cooler_user";
    /// The broadcaster's display name.
    pub const BROADCASTER_NAME: &'static str = "Cooler_User";

    /// Starts a fake with default [`Options`] on `127.0.0.1:0`.
    pub async fn start() -> FakeTwitch {
        Self::start_with(Options::default()).await
    }

    /// Starts a fake with the given options on `127.0.0.1:0`.
    pub async fn start_with(options: Options) -> FakeTwitch {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        Self::serve_on(listener, options)
    }

    /// Serves a fake on a listener the caller bound (e.g. a bridge address
    /// pods can reach, as the `fake-twitch` binary does).
    pub fn serve_on(listener: tokio::net::TcpListener, options: Options) -> FakeTwitch {
        let addr: SocketAddr = listener.local_addr().expect("local addr");
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(options.webhook_timeout)
            .build()
            .expect("reqwest client");
        let (changed, _) = watch::channel(0);
        let fake = FakeTwitch {
            inner: Arc::new(Shared {
                addr,
                options,
                state: Mutex::new(State::new()),
                changed,
                http,
            }),
        };
        let app = fake.router();
        tokio::spawn(async move {
            if let Err(err) = axum::serve(listener, app).await {
                tracing::error!(%err, "fake twitch server stopped");
            }
        });
        fake
    }

    /// Every route, with request recording around it.
    fn router(&self) -> Router {
        Router::new()
            .nest("/oauth2", oauth::router())
            .nest("/helix", helix::router(self.clone()))
            .merge(eventsub_ws::router())
            .fallback(|| async { error::HelixError::new(StatusCode::NOT_FOUND, "Not Found") })
            .layer(axum::middleware::from_fn_with_state(
                self.clone(),
                recorder::record,
            ))
            .with_state(self.clone())
    }

    /// The socket address the fake listens on.
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// `http://127.0.0.1:P` — the root every other URL hangs off.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.inner.addr)
    }

    /// Helix base, `http://127.0.0.1:P/helix` (Twitch: `https://api.twitch.tv/helix`).
    pub fn api_url(&self) -> String {
        format!("{}/helix", self.base_url())
    }

    /// OAuth base, `http://127.0.0.1:P/oauth2` (Twitch: `https://id.twitch.tv/oauth2`).
    pub fn auth_url(&self) -> String {
        format!("{}/oauth2", self.base_url())
    }

    /// EventSub WebSocket URL, `ws://127.0.0.1:P/ws`.
    pub fn eventsub_ws_url(&self) -> String {
        format!("ws://{}/ws", self.inner.addr)
    }

    /// The options this fake was started with.
    pub fn options(&self) -> &Options {
        &self.inner.options
    }

    /// Every HTTP request served so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state().requests.clone()
    }

    /// Every subscription ever created and not deleted, oldest first.
    pub fn subscriptions(&self) -> Vec<Subscription> {
        self.state().subscriptions.clone()
    }

    /// One subscription by id.
    pub fn subscription(&self, id: &str) -> Option<Subscription> {
        self.state()
            .subscriptions
            .iter()
            .find(|s| s.id == id)
            .cloned()
    }

    /// Every conduit, oldest first.
    pub fn conduits(&self) -> Vec<Conduit> {
        self.state().conduits.clone()
    }

    /// Waits until at least `n` subscriptions are enabled; returns all enabled ones.
    pub async fn wait_for_subscriptions(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<Subscription>, FakeError> {
        self.wait_until(timeout, "enabled subscriptions", |st| {
            let enabled: Vec<_> = st
                .subscriptions
                .iter()
                .filter(|s| s.is_enabled())
                .cloned()
                .collect();
            (enabled.len() >= n).then_some(enabled)
        })
        .await
    }

    /// Waits until `subscription_id` has `status`; returns the subscription.
    pub async fn wait_for_subscription_status(
        &self,
        subscription_id: &str,
        status: &str,
        timeout: Duration,
    ) -> Result<Subscription, FakeError> {
        self.wait_until(timeout, "subscription status", |st| {
            st.subscriptions
                .iter()
                .find(|s| s.id == subscription_id && s.status == status)
                .cloned()
        })
        .await
    }
}
