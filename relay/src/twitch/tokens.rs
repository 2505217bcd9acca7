//! OAuth tokens: the app token and the broadcaster's user token.
//!
//! The user token pair is kept in the settings table, sealed with the
//! relay's secret key. Refresh tokens rotate: the new one is stored each
//! time. An invalid refresh token turns the state into "authorization
//! needed" (shown in status and the dashboard) instead of failing loops.
//!
//! Several tasks (and replicas) may find the token expired at once. In a
//! process, refreshes are single-flight: one request, the others reuse its
//! result. Across replicas, every write of a refreshed or validated token is
//! a compare-and-set on the stored value, so an older token never
//! overwrites a newer one, and a replica whose refresh loses the race to a
//! peer (Twitch rotated the refresh token) waits briefly for the peer's
//! token instead of declaring the authorization lost.
//!
//! The HTTP calls to Twitch's OAuth server and the app-token cache are the
//! shared `tau-twitch` crate's; this module owns storage and state. The
//! client id and secret come from [`Credentials`] (they may change while
//! the relay runs): the cached app token belongs to one pair and is dropped
//! when the pair changes. The stored user token stays (normally it belongs
//! to the same application; if not, Twitch refuses its refresh and the
//! state turns into "authorization needed").

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tau_twitch::{oauth::TokenResponse, AppTokens, Credentials};
use tokio::sync::Mutex;

use super::{
    credentials::{AppCredentials, Credentials as AppCredentialsHandle},
    Result, TwitchError,
};
use crate::{secret::SecretKey, store::Store};

/// Settings key of the sealed user token.
const USER_TOKEN_SETTING: &str = "twitch_user_token";
/// Refresh a user token this long before it expires.
pub(crate) const REFRESH_MARGIN: chrono::Duration = chrono::Duration::minutes(5);
/// After a refused refresh, how long to look for a token a peer replica
/// refreshed at the same moment (its save may still be in flight).
const PEER_REFRESH_WAIT: Duration = Duration::from_secs(2);

/// The broadcaster's tokens and what Twitch said about them.
#[derive(Clone, Serialize, Deserialize)]
pub struct UserToken {
    access_token: String,
    refresh_token: String,
    /// When the access token expires.
    pub expires_at: DateTime<Utc>,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// The authorizing user's id (from /validate).
    pub user_id: Option<String>,
    /// The authorizing user's login.
    pub login: Option<String>,
}

impl UserToken {
    /// The access token (for a Helix request; never log it).
    pub(crate) fn access_token(&self) -> &str {
        &self.access_token
    }
}

impl std::fmt::Debug for UserToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserToken")
            .field("expires_at", &self.expires_at)
            .field("scopes", &self.scopes)
            .field("login", &self.login)
            .finish_non_exhaustive()
    }
}

/// The outcome of an authorization-code exchange.
#[derive(Debug)]
pub enum Authorization {
    /// The configured broadcaster (or any account, if none is configured)
    /// authorized TAU; the tokens are stored.
    Accepted(UserToken),
    /// Another account authorized TAU; its token was revoked, nothing stored.
    WrongAccount {
        /// The account that was used.
        login: String,
    },
}

/// What status pages may show about tokens (never the tokens).
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UserTokenState {
    /// Never authorized.
    Missing,
    /// Usable.
    Valid,
    /// Refresh failed or Twitch revoked it: the broadcaster must connect again.
    AuthorizationNeeded,
}

/// What status pages may show about the app token (never the token): whether
/// Twitch accepts the app's client id and secret.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AppTokenState {
    /// No client id and secret: neither TWITCH_CLIENT_ID / TWITCH_CLIENT_SECRET
    /// nor entered in the dashboard.
    Missing,
    /// Not asked for yet, or only the network failed so far.
    Unknown,
    /// Twitch issued one: the client credentials are accepted.
    Valid,
    /// Twitch refused the client credentials.
    Rejected,
}

/// The app token cache of one client id and secret.
struct AppCache {
    /// Whose tokens these are (`None`: nobody's yet).
    credentials: Option<AppCredentials>,
    /// The cached app token.
    tokens: std::sync::Arc<AppTokens>,
    /// The app token's state and, when rejected, Twitch's reason.
    state: (AppTokenState, Option<String>),
}

impl AppCache {
    fn new(credentials: Option<AppCredentials>) -> AppCache {
        AppCache {
            credentials,
            tokens: Default::default(),
            state: (AppTokenState::Unknown, None),
        }
    }
}

/// Issues, refreshes and validates tokens.
pub struct TokenManager {
    /// The shared Twitch client (OAuth calls).
    client: tau_twitch::Client,
    /// The application's client id and secret, now.
    credentials: AppCredentialsHandle,
    /// Where the sealed user token is kept.
    store: Store,
    /// Seals the user token.
    key: SecretKey,
    /// The app token, cached for the current credentials.
    app: std::sync::Mutex<AppCache>,
    /// The user token's state.
    state: std::sync::Mutex<UserTokenState>,
    /// The access token whose refresh Twitch refused, if any.
    refused: std::sync::Mutex<Option<String>>,
    /// Held while refreshing: one refresh request at a time in this process.
    refreshing: Mutex<()>,
}

impl TokenManager {
    /// A manager; loads nothing until first use.
    pub fn new(
        client: tau_twitch::Client,
        credentials: AppCredentialsHandle,
        store: Store,
        key: SecretKey,
    ) -> TokenManager {
        TokenManager {
            client,
            credentials,
            store,
            key,
            app: std::sync::Mutex::new(AppCache::new(None)),
            state: std::sync::Mutex::new(UserTokenState::Missing),
            refused: std::sync::Mutex::new(None),
            refreshing: Mutex::new(()),
        }
    }

    /// The current client id and secret (read from the store on first use).
    async fn credentials(&self) -> Result<Credentials> {
        self.credentials
            .load()
            .await
            .ok_or(TwitchError::NotConfigured)
    }

    /// The app token cache for `creds`: a new, empty one when the
    /// credentials changed since it was filled.
    fn app_cache(&self, creds: &Credentials) -> std::sync::Arc<AppTokens> {
        let mut app = self.app.lock().expect("app token lock");
        if app.credentials.as_ref() != Some(creds) {
            *app = AppCache::new(Some(creds.clone()));
        }
        app.tokens.clone()
    }

    /// Records Twitch's verdict on `creds` (if they are still the cached ones).
    fn set_app_state(&self, creds: &Credentials, verdict: (AppTokenState, Option<String>)) {
        let mut app = self.app.lock().expect("app token lock");
        if app.credentials.as_ref() == Some(creds) {
            app.state = verdict;
        }
    }

    /// Asks Twitch for an app token with `creds` (client credentials
    /// grant): whether Twitch accepts them. On success the token is kept,
    /// ready for when `creds` become the current credentials.
    pub async fn check_app(&self, creds: &Credentials) -> Result<()> {
        let tokens = std::sync::Arc::new(AppTokens::default());
        tokens.get(&self.client, creds).await?;
        *self.app.lock().expect("app token lock") = AppCache {
            credentials: Some(creds.clone()),
            tokens,
            state: (AppTokenState::Valid, None),
        };
        Ok(())
    }

    /// The application's credentials handle.
    pub fn app_credentials(&self) -> &AppCredentialsHandle {
        &self.credentials
    }

    /// The shared Twitch client (Helix with another account's token).
    pub(crate) fn client(&self) -> &tau_twitch::Client {
        &self.client
    }

    /// The application's client id, now.
    pub fn client_id(&self) -> Result<String> {
        self.credentials
            .client_id()
            .ok_or(TwitchError::NotConfigured)
    }

    /// The user token state for status pages.
    pub fn state(&self) -> UserTokenState {
        self.state.lock().expect("token state lock").clone()
    }

    fn set_state(&self, state: UserTokenState) {
        *self.state.lock().expect("token state lock") = state;
    }

    /// The app token's state for status pages, and Twitch's reason when it
    /// refused the client credentials.
    pub fn app_state(&self) -> (AppTokenState, Option<String>) {
        let Some(current) = self.credentials.current() else {
            return (AppTokenState::Missing, None);
        };
        let app = self.app.lock().expect("app token lock");
        if app.credentials.as_ref() != Some(&current) {
            return (AppTokenState::Unknown, None);
        }
        app.state.clone()
    }

    /// An app access token, fetched by client credentials when needed.
    pub async fn app_token(&self) -> Result<String> {
        let creds = self.credentials().await?;
        let response = self
            .app_cache(&creds)
            .get(&self.client, &creds)
            .await
            .map_err(TwitchError::from);
        // Twitch's 4xx is a verdict on the credentials; a network failure is not.
        let verdict = match &response {
            Ok(_) => Some((AppTokenState::Valid, None)),
            Err(TwitchError::Status { status, message })
                if (400..500).contains(status) && *status != 429 =>
            {
                Some((AppTokenState::Rejected, Some(message.clone())))
            }
            Err(_) => None,
        };
        if let Some(verdict) = verdict {
            self.set_app_state(&creds, verdict);
        }
        response
    }

    /// Forgets `token` if it is the cached app token (Twitch said 401).
    pub async fn invalidate_app_token(&self, token: &str) {
        if let Some(creds) = self.credentials.current() {
            self.app_cache(&creds)
                .invalidate(&creds.client_id, token)
                .await;
        }
    }

    /// `token` sealed with the relay's key, as it is stored (the
    /// broadcaster's in the settings, a chat bot's in its row).
    pub(crate) fn seal(&self, token: &UserToken) -> String {
        self.key
            .seal(&serde_json::to_string(token).expect("token serializes"))
    }

    /// A stored token, opened.
    pub(crate) fn open(&self, sealed: &str) -> Result<UserToken> {
        let json = self
            .key
            .open(sealed)
            .map_err(|e| TwitchError::Socket(e.to_string()))?;
        serde_json::from_str(&json).map_err(|e| TwitchError::Socket(e.to_string()))
    }

    /// Reads the user token from the shared store (not a local cache:
    /// another replica may have refreshed and rotated it).
    async fn load_user(&self) -> Result<Option<UserToken>> {
        Ok(self.load_user_sealed().await?.map(|(token, _)| token))
    }

    /// The stored token and its sealed text (the compare-and-set key).
    async fn load_user_sealed(&self) -> Result<Option<(UserToken, String)>> {
        let Some(sealed) = self.store.setting(USER_TOKEN_SETTING).await? else {
            return Ok(None);
        };
        let token = self.open(&sealed)?;
        let mut state = self.state.lock().expect("token state lock");
        let refused = self.refused.lock().expect("token state lock");
        // A token other than the refused one means someone authorized again.
        if *state == UserTokenState::Missing
            || (*state == UserTokenState::AuthorizationNeeded
                && refused.as_deref() != Some(token.access_token.as_str()))
        {
            *state = UserTokenState::Valid;
        }
        Ok(Some((token, sealed)))
    }

    /// Stores a token: unconditionally for a new authorization
    /// (`expected = None`), else only over the stored text `expected`.
    /// False if another writer replaced it first.
    async fn save_user(&self, token: &UserToken, expected: Option<&str>) -> Result<bool> {
        let sealed = self.seal(token);
        let saved = match expected {
            None => {
                self.store.set_setting(USER_TOKEN_SETTING, &sealed).await?;
                true
            }
            Some(expected) => {
                self.store
                    .replace_setting(USER_TOKEN_SETTING, expected, &sealed)
                    .await?
            }
        };
        if saved {
            self.set_state(UserTokenState::Valid);
        }
        Ok(saved)
    }

    /// A token newer than `stale` that a peer stored within `wait`, if any.
    async fn peer_token(&self, stale: &str, wait: Duration) -> Result<Option<String>> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(latest) = self.load_user().await? {
                if latest.access_token != stale {
                    return Ok(Some(latest.access_token));
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The user token's public facts, if any.
    pub async fn user_info(&self) -> Option<UserToken> {
        self.load_user().await.ok().flatten()
    }

    /// A usable user access token, refreshed first if it is about to expire.
    pub async fn user_token(&self) -> Result<String> {
        let token = self
            .load_user()
            .await?
            .ok_or(TwitchError::AuthorizationNeeded)?;
        if self.state() == UserTokenState::AuthorizationNeeded {
            return Err(TwitchError::AuthorizationNeeded);
        }
        if token.expires_at - REFRESH_MARGIN <= Utc::now() {
            return self.refresh_user(&token.access_token).await;
        }
        Ok(token.access_token)
    }

    /// Refreshes the user token unless another task already replaced `stale`.
    pub async fn refresh_user(&self, stale: &str) -> Result<String> {
        self.credentials().await?;
        // Single flight: whoever waited here finds the token already new.
        let _flight = self.refreshing.lock().await;
        let (current, current_sealed) = self
            .load_user_sealed()
            .await?
            .ok_or(TwitchError::AuthorizationNeeded)?;
        if current.access_token != stale {
            return Ok(current.access_token);
        }
        let token = match self.refreshed(&current).await {
            Ok(token) => token,
            Err(TwitchError::Status { status, message }) if status == 400 || status == 401 => {
                // A peer replica may have refreshed (and rotated) it first;
                // its save may still be on the way.
                if let Some(latest) = self.peer_token(stale, PEER_REFRESH_WAIT).await? {
                    return Ok(latest);
                }
                *self.refused.lock().expect("token state lock") =
                    Some(current.access_token.clone());
                self.set_state(UserTokenState::AuthorizationNeeded);
                tracing::error!(
                    status,
                    %message,
                    "Twitch refused to refresh the user token: the broadcaster must authorize TAU again (open the dashboard)"
                );
                return Err(TwitchError::AuthorizationNeeded);
            }
            Err(err) => return Err(err),
        };
        let mut expected = current_sealed;
        loop {
            if self.save_user(&token, Some(&expected)).await? {
                tracing::info!("refreshed the Twitch user token");
                return Ok(token.access_token);
            }
            // Someone wrote first. A peer's refresh wins (every replica then
            // agrees on one token); a validation of the stale token is
            // simply written over.
            match self.load_user_sealed().await? {
                Some((latest, _)) if latest.access_token != stale => return Ok(latest.access_token),
                Some((_, sealed)) => expected = sealed,
                None => return Err(TwitchError::AuthorizationNeeded),
            }
        }
    }

    /// Asks Twitch for a new pair in place of `current` (any user's: the
    /// broadcaster's or a chat bot's). Twitch rotates refresh tokens: the
    /// new one replaces the old, which stops working. A 400/401 means the
    /// authorization is gone (revoked, or the refresh token was used).
    pub(crate) async fn refreshed(&self, current: &UserToken) -> Result<UserToken> {
        let creds = self.credentials().await?;
        let response: TokenResponse = self
            .client
            .refresh(&creds, &current.refresh_token)
            .await
            .map_err(TwitchError::from)?;
        Ok(UserToken {
            access_token: response.access_token,
            refresh_token: response
                .refresh_token
                .unwrap_or_else(|| current.refresh_token.clone()),
            expires_at: Utc::now() + chrono::Duration::seconds(response.expires_in.unwrap_or(3600)),
            scopes: if response.scope.is_empty() {
                current.scopes.clone()
            } else {
                response.scope
            },
            user_id: current.user_id.clone(),
            login: current.login.clone(),
        })
    }

    /// Exchanges an authorization code for a token pair and validates it
    /// (filling in its user); stores nothing.
    pub(crate) async fn exchange(&self, code: &str, redirect_uri: &str) -> Result<UserToken> {
        let creds = self.credentials().await?;
        let response = self
            .client
            .exchange_code(&creds, code, redirect_uri)
            .await?;
        let mut token = UserToken {
            access_token: response.access_token,
            refresh_token: response.refresh_token.unwrap_or_default(),
            expires_at: Utc::now() + chrono::Duration::seconds(response.expires_in.unwrap_or(3600)),
            scopes: response.scope,
            user_id: None,
            login: None,
        };
        let validated = self.validate_access(&token.access_token).await?;
        token.user_id = validated.user_id;
        token.login = validated.login;
        Ok(token)
    }

    /// Exchanges an authorization code for tokens and stores them, unless
    /// they belong to another account than `expected` (the configured
    /// broadcaster): those are revoked at Twitch and nothing is stored.
    pub async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: &str,
        expected: Option<&str>,
    ) -> Result<Authorization> {
        let token = self.exchange(code, redirect_uri).await?;
        let login = token.login.clone().unwrap_or_default();
        if let Some(expected) = expected {
            if !login.eq_ignore_ascii_case(expected) {
                tracing::warn!(%login, %expected, "authorization by another account than TWITCH_BROADCASTER refused; nothing stored");
                self.revoke(&token.access_token).await;
                return Ok(Authorization::WrongAccount { login });
            }
        }
        self.save_user(&token, None).await?;
        tracing::info!(login = ?token.login, scopes = ?token.scopes, "broadcaster authorized TAU");
        Ok(Authorization::Accepted(token))
    }

    /// Revokes an access token at Twitch (best effort: it expires anyway).
    pub(crate) async fn revoke(&self, access: &str) {
        let Ok(id) = self.client_id() else {
            return;
        };
        if let Err(err) = self.client.revoke(&id, access).await {
            tracing::warn!(error = %err, "revoking an unwanted user token failed");
        }
    }

    pub(crate) async fn validate_access(
        &self,
        access: &str,
    ) -> Result<tau_twitch::oauth::Validation> {
        Ok(self.client.validate(access).await?)
    }

    /// Validates the user token (Twitch requires it at start and hourly);
    /// a 401 triggers a refresh.
    pub async fn validate_user(&self) -> Result<()> {
        let Some((token, sealed)) = self.load_user_sealed().await? else {
            return Ok(());
        };
        match self.validate_access(&token.access_token).await {
            Ok(v) => {
                let mut updated = token.clone();
                updated.scopes = v.scopes;
                if let Some(secs) = v.expires_in.filter(|s| *s > 0) {
                    updated.expires_at = Utc::now() + chrono::Duration::seconds(secs);
                }
                updated.user_id = v.user_id.or(updated.user_id);
                updated.login = v.login.or(updated.login);
                // Only over the token we validated: a refresh that landed
                // meanwhile is newer and must not be overwritten.
                if !self.save_user(&updated, Some(&sealed)).await? {
                    tracing::debug!("user token changed while validating; kept the newer one");
                }
                Ok(())
            }
            Err(TwitchError::Status { status: 401, .. }) => {
                self.refresh_user(&token.access_token).await.map(|_| ())
            }
            Err(err) => Err(err),
        }
    }

    /// Validates now and every hour until `shutdown`.
    pub fn spawn_validation(
        self: std::sync::Arc<Self>,
        shutdown: tokio_util::sync::CancellationToken,
    ) {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(3600));
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tick.tick() => {}
                }
                if let Err(err) = self.validate_user().await {
                    tracing::warn!(error = %err, "user token validation failed");
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use tau_fake_twitch::FakeTwitch;

    use super::*;
    use crate::{config::Config, twitch::Twitch};

    /// A Twitch side on `fake` with no credentials in the environment.
    async fn without_credentials(fake: &FakeTwitch) -> Twitch {
        let mut config = Config::for_tests();
        config.twitch.api_url = fake.api_url().parse().unwrap();
        config.twitch.auth_url = fake.auth_url().parse().unwrap();
        Twitch::new(&config, Store::in_memory().await, SecretKey::generate())
    }

    fn pair(secret: &str) -> Credentials {
        Credentials {
            client_id: FakeTwitch::CLIENT_ID.into(),
            client_secret: secret.into(),
        }
    }

    #[tokio::test]
    async fn the_app_token_belongs_to_one_pair_of_credentials() {
        let fake = FakeTwitch::start().await;
        let twitch = without_credentials(&fake).await;
        let tokens = &twitch.tokens;
        assert_eq!(tokens.app_state().0, AppTokenState::Missing);
        assert!(matches!(
            tokens.app_token().await,
            Err(TwitchError::NotConfigured)
        ));

        // A refused pair is not adopted; an accepted one is, token and all.
        assert!(tokens.check_app(&pair("wrong")).await.is_err());
        tokens
            .check_app(&pair(FakeTwitch::CLIENT_SECRET))
            .await
            .unwrap();
        twitch
            .credentials
            .store(pair(FakeTwitch::CLIENT_SECRET))
            .await
            .unwrap();
        assert_eq!(tokens.app_state().0, AppTokenState::Valid);
        let first = tokens.app_token().await.unwrap();
        assert_eq!(tokens.app_token().await.unwrap(), first, "cached");

        // Another pair: the cached token is dropped, not handed out.
        twitch.credentials.store(pair("rotated")).await.unwrap();
        assert_eq!(tokens.app_state().0, AppTokenState::Unknown);
        assert!(tokens.app_token().await.is_err(), "asked Twitch anew");
        assert_eq!(tokens.app_state().0, AppTokenState::Rejected);

        // Back to the good pair: a fresh token.
        twitch
            .credentials
            .store(pair(FakeTwitch::CLIENT_SECRET))
            .await
            .unwrap();
        assert!(tokens.app_token().await.is_ok());
        assert_eq!(tokens.app_state().0, AppTokenState::Valid);
    }
}
