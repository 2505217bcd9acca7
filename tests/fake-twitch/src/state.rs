//! The shared, mutable world of the fake: tokens, subscriptions, conduits,
//! WebSocket sessions and the request log (the public types live in `types`).
//!
//! Everything lives behind one synchronous [`Mutex`] that is never held across
//! an `.await`, so control methods on [`FakeTwitch`] can be plain `fn`s. Every
//! mutation that a test might wait for bumps a [`watch`] counter; waiters
//! re-check their condition on each bump.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use rand::distributions::Alphanumeric;
use rand::Rng;
use tokio::sync::{mpsc, watch};

use crate::error::FakeError;
pub(crate) use crate::types::{
    AuthKind, Conduit, RecordedRequest, SessionInfo, Shard, Subscription, Transport,
};
use crate::{FakeTwitch, Options};

/// Everything one fake server owns; shared by all [`FakeTwitch`] clones.
pub(crate) struct Shared {
    /// Where the server listens.
    pub addr: SocketAddr,
    /// Timings chosen at start.
    pub options: Options,
    /// The mutable world.
    pub state: Mutex<State>,
    /// Bumped on every change a test may wait for.
    pub changed: watch::Sender<u64>,
    /// Client used for webhook deliveries (never follows redirects, like Twitch).
    pub http: reqwest::Client,
}

/// `(user id, login)` of a user who is not the broadcaster.
pub(crate) type UserRef = (String, String);

/// The mutable world.
pub(crate) struct State {
    /// Access tokens, app and user.
    pub tokens: HashMap<String, Token>,
    /// Refresh token → the scopes it grants and `(user id, login)` of its
    /// user when that is not the broadcaster.
    pub refresh_tokens: HashMap<String, (Vec<String>, Option<UserRef>)>,
    /// Authorization codes handed out by `/oauth2/authorize`, single use.
    pub auth_codes: HashMap<String, AuthCode>,
    /// Whether the broadcaster authorized our client id (app-token subscriptions).
    pub authorized: bool,
    /// Whether `/oauth2/authorize` answers `error=access_denied`.
    pub deny_authorization: bool,
    /// `(user id, login)` `/oauth2/authorize` approves as, instead of the
    /// broadcaster (someone logged into Twitch with another account).
    pub authorize_as: Option<(String, String)>,
    /// While true, connections to a reconnect URL wait before their welcome.
    pub hold_reconnect_welcome: bool,
    /// While true, new connections to `/ws` are refused with 503 (an outage).
    pub refuse_websockets: bool,
    /// All subscriptions in creation order (disabled ones stay listed).
    pub subscriptions: Vec<Subscription>,
    /// All conduits in creation order.
    pub conduits: Vec<Conduit>,
    /// All WebSocket sessions ever opened, in connection order.
    pub sessions: Vec<Session>,
    /// Reconnect URL token → session it replaces.
    pub reconnect_tokens: HashMap<String, String>,
    /// Every HTTP request served.
    pub requests: Vec<RecordedRequest>,
    /// The client secret the token endpoint accepts (rotated by tests,
    /// like "New Secret" in Twitch's developer console).
    pub client_secret: String,
    /// Helix points left in the current window.
    pub ratelimit_remaining: u32,
    /// When the current Helix rate-limit window ends.
    pub ratelimit_reset: Instant,
    /// Callback host → base URL webhooks for it are delivered to instead
    /// (see [`FakeTwitch::route_webhooks`]).
    pub webhook_routes: HashMap<String, String>,
    /// Chat messages sent and the next drop (see `chat`).
    pub chat: crate::chat::ChatState,
    /// Users besides the broadcaster, and live broadcasts.
    pub channels: crate::streams::Channels,
    /// Channels (user ids) where only their broadcaster may chat: other
    /// senders get 403, as a bot that is neither a moderator nor allowed
    /// by `channel:bot` does.
    pub bot_chat_refused: std::collections::HashSet<String>,
}

impl State {
    pub(crate) fn new() -> Self {
        State {
            tokens: HashMap::new(),
            refresh_tokens: HashMap::new(),
            auth_codes: HashMap::new(),
            authorized: true,
            deny_authorization: false,
            authorize_as: None,
            hold_reconnect_welcome: false,
            refuse_websockets: false,
            subscriptions: Vec::new(),
            conduits: Vec::new(),
            sessions: Vec::new(),
            reconnect_tokens: HashMap::new(),
            requests: Vec::new(),
            client_secret: crate::FakeTwitch::CLIENT_SECRET.into(),
            ratelimit_remaining: crate::helix::RATELIMIT_POINTS,
            ratelimit_reset: Instant::now() + Duration::from_secs(60),
            webhook_routes: HashMap::new(),
            chat: Default::default(),
            channels: Default::default(),
            bot_chat_refused: Default::default(),
        }
    }

    /// The live access token `token`, if it is known and not expired.
    pub(crate) fn valid_token(&self, token: &str) -> Option<&Token> {
        self.tokens
            .get(token)
            .filter(|t| !t.expired && t.expires_at > Instant::now())
    }

    pub(crate) fn session(&self, id: &str) -> Option<&Session> {
        self.sessions.iter().find(|s| s.id == id)
    }

    /// A session that is still connected, or why frames cannot reach it.
    pub(crate) fn connected_session(&self, id: &str) -> Result<&Session, crate::error::FakeError> {
        use crate::error::FakeError;
        let session = self
            .session(id)
            .ok_or_else(|| FakeError::UnknownSession(id.into()))?;
        if !session.connected {
            return Err(FakeError::SessionClosed(id.into()));
        }
        Ok(session)
    }

    pub(crate) fn session_mut(&mut self, id: &str) -> Option<&mut Session> {
        self.sessions.iter_mut().find(|s| s.id == id)
    }

    pub(crate) fn subscription_mut(&mut self, id: &str) -> Option<&mut Subscription> {
        self.subscriptions.iter_mut().find(|s| s.id == id)
    }

    pub(crate) fn conduit_mut(&mut self, id: &str) -> Option<&mut Conduit> {
        self.conduits.iter_mut().find(|c| c.id == id)
    }

    /// The (conduit id, shard id) a WebSocket session is assigned to, if any.
    pub(crate) fn shard_of(&self, session_id: &str) -> Option<(String, String)> {
        self.conduits.iter().find_map(|c| {
            c.shards
                .iter()
                .find(|s| matches!(&s.transport, Some(t) if t.session_id() == Some(session_id)))
                .map(|s| (c.id.clone(), s.id.clone()))
        })
    }
}

/// A stored access token.
pub(crate) struct Token {
    /// [`AuthKind::App`] or [`AuthKind::User`] (the broadcaster unless `user` says otherwise).
    pub kind: AuthKind,
    /// Granted scopes (empty for app tokens).
    pub scopes: Vec<String>,
    /// Natural end of life.
    pub expires_at: Instant,
    /// Forced invalid by a test or by `/oauth2/revoke`.
    pub expired: bool,
    /// `(user id, login)` of a user token that is not the broadcaster's.
    pub user: Option<(String, String)>,
}

/// An authorization code waiting to be exchanged.
pub(crate) struct AuthCode {
    /// Scopes the user approved.
    pub scopes: Vec<String>,
    /// The redirect URI the code was issued for; the exchange must repeat it.
    pub redirect_uri: String,
    /// `(user id, login)` who approved, if not the broadcaster.
    pub user: Option<(String, String)>,
}

/// A command for the task that owns one WebSocket session.
#[derive(Debug)]
pub(crate) enum WsCommand {
    /// Send this text frame.
    Send(String),
    /// Send `session_reconnect` with this URL and start the grace timer.
    Reconnect(String),
    /// Close with this code and reason.
    Close(u16, String),
}

/// Book-keeping for one EventSub WebSocket connection.
pub(crate) struct Session {
    /// Session id sent in the welcome.
    pub id: String,
    /// Announced keepalive window (10-600 s).
    pub keepalive_timeout_seconds: u64,
    /// When the socket connected (RFC 3339).
    pub connected_at: String,
    /// Socket still open.
    pub connected: bool,
    /// Welcome sent (false while a held reconnect waits).
    pub welcomed: bool,
    /// Keepalives suppressed by a test.
    pub keepalives_paused: bool,
    /// Set once `session_reconnect` was sent on this session.
    pub reconnect_url: Option<String>,
    /// The session this one replaced through a reconnect URL.
    pub reconnected_from: Option<String>,
    /// A successor session received its welcome; subscriptions moved there.
    pub handed_over: bool,
    /// Close code once closed (1000/1005/... when the client closed).
    pub close_code: Option<u16>,
    /// Commands for the socket task.
    pub tx: mpsc::UnboundedSender<WsCommand>,
}

/// Current time as Twitch formats it (RFC 3339, nanoseconds, `Z`).
pub(crate) fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// A random lowercase alphanumeric string, the shape of Twitch tokens.
pub(crate) fn random_token(len: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(|c| (c as char).to_ascii_lowercase())
        .collect()
}

/// A fresh UUID v4 string (subscription, conduit and message ids).
pub(crate) fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl FakeTwitch {
    /// Locks the world. Never hold the guard across an `.await`.
    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes every waiter so it re-checks its condition.
    pub(crate) fn notify(&self) {
        self.inner.changed.send_modify(|n| *n += 1);
    }

    /// Waits until `check` returns `Some`, re-checking after every change.
    pub(crate) async fn wait_until<T>(
        &self,
        timeout: Duration,
        what: &'static str,
        mut check: impl FnMut(&State) -> Option<T>,
    ) -> Result<T, FakeError> {
        let mut rx = self.inner.changed.subscribe();
        let wait = async {
            loop {
                if let Some(found) = check(&self.state()) {
                    return found;
                }
                // The sender lives as long as `self`; an error cannot happen.
                let _ = rx.changed().await;
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| FakeError::Timeout(timeout, what))
    }
}
