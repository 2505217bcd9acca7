//! Which token a Helix request carries, and app tokens.
//!
//! [`Auth`] is the seam between the HTTP client and token storage: the
//! client asks it for a token, and for a new one when Twitch answers 401.
//! The relay implements it over its stored (encrypted) user token; both
//! sides use [`AppAuth`] for the application's token.
//!
//! App tokens (client credentials) are cached per client id (the operator
//! serves many Twitch applications), renewed [`RENEW_MARGIN`] before Twitch
//! says they expire, and forgotten when Twitch answers 401. One fetch per
//! client id at a time: concurrent askers wait for it and reuse its token.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::client::Client;
use crate::error::{Error, Result};

/// Renew a cached app token this long before Twitch says it expires.
pub const RENEW_MARGIN: Duration = Duration::from_secs(300);

/// The token a request carries and how to get a new one.
pub trait Auth: Sync {
    /// The caller's error type; every [`Error`] maps into it.
    type Error: From<Error> + Send;

    /// The `Client-Id` the token belongs to.
    fn client_id(&self) -> Result<String, Self::Error>;

    /// A token to use now.
    fn token(&self, client: &Client) -> impl Future<Output = Result<String, Self::Error>> + Send;

    /// A token to use instead of `rejected`, which Twitch answered 401 to.
    fn renew(
        &self,
        client: &Client,
        rejected: &str,
    ) -> impl Future<Output = Result<String, Self::Error>> + Send;
}

/// A Twitch application's credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Client id.
    pub client_id: String,
    /// Client secret.
    pub client_secret: String,
}

impl std::fmt::Debug for Credentials {
    // Hand-written so the secret never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// One cached app token.
#[derive(Clone)]
pub(crate) struct Cached {
    /// The access token.
    pub(crate) token: String,
    /// When to fetch a new one (expiry minus [`RENEW_MARGIN`]).
    renew_at: Instant,
}

/// App tokens by client id.
#[derive(Default)]
pub struct AppTokens {
    /// One slot per client id; a slot's lock is held while fetching.
    slots: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Cached>>>>>,
}

impl AppTokens {
    pub(crate) fn slot(&self, client_id: &str) -> Arc<tokio::sync::Mutex<Option<Cached>>> {
        self.slots
            .lock()
            .expect("app token lock")
            .entry(client_id.to_string())
            .or_default()
            .clone()
    }

    /// An app token for `creds`, fetched by client credentials when none
    /// is cached or it is about to expire.
    pub async fn get(&self, client: &Client, creds: &Credentials) -> Result<String> {
        let slot = self.slot(&creds.client_id);
        let mut cached = slot.lock().await;
        if let Some(c) = cached.as_ref().filter(|c| c.renew_at > Instant::now()) {
            return Ok(c.token.clone());
        }
        let fetched = client.client_credentials(creds).await?;
        let ttl = Duration::from_secs(fetched.expires_in.unwrap_or(3600).max(0) as u64);
        *cached = Some(Cached {
            token: fetched.access_token.clone(),
            renew_at: Instant::now() + ttl.saturating_sub(RENEW_MARGIN),
        });
        tracing::debug!(client_id = %creds.client_id, "fetched a new Twitch app access token");
        Ok(fetched.access_token)
    }

    /// Forgets `token` if it is the cached one for `client_id` (Twitch said 401).
    pub async fn invalidate(&self, client_id: &str, token: &str) {
        let slot = self.slot(client_id);
        let mut cached = slot.lock().await;
        if cached.as_ref().is_some_and(|c| c.token == token) {
            *cached = None;
        }
    }
}

/// Helix requests with the app token of `creds`.
#[derive(Clone, Copy)]
pub struct AppAuth<'a> {
    /// The token cache.
    pub tokens: &'a AppTokens,
    /// Whose app token.
    pub creds: &'a Credentials,
}

impl<'a> AppAuth<'a> {
    /// App-token auth for `creds`, cached in `tokens`.
    pub fn new(tokens: &'a AppTokens, creds: &'a Credentials) -> AppAuth<'a> {
        AppAuth { tokens, creds }
    }
}

impl Auth for AppAuth<'_> {
    type Error = Error;

    fn client_id(&self) -> Result<String> {
        Ok(self.creds.client_id.clone())
    }

    async fn token(&self, client: &Client) -> Result<String> {
        self.tokens.get(client, self.creds).await
    }

    async fn renew(&self, client: &Client, rejected: &str) -> Result<String> {
        self.tokens
            .invalidate(&self.creds.client_id, rejected)
            .await;
        self.tokens.get(client, self.creds).await
    }
}
