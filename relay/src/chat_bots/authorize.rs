//! Adding a chat bot: Twitch's authorization-code flow as the bot.
//!
//! The link uses the broadcaster flow's callback URL
//! (`<public>/twitch-callback/`), so a Twitch application registers one
//! URL; its one-time state is stored marked as a bot's, and the callback
//! ([`crate::twitch::routes`]) hands such a code to [`complete`].
//! `force_verify=true` makes Twitch show its consent page even to someone
//! who authorized the application before, so they see which account they
//! are logged in as. The broadcaster's own account is refused (its
//! authorization revoked): a bot is another account.

use super::{status_for, tokens::FixedToken, ChatBots, SCOPES};
use crate::{
    app::AppState,
    error::ApiError,
    store::NewChatBot,
    twitch::{
        outcome::{self, Page},
        routes::{new_state, redirect_uri},
        tokens::UserToken,
        TwitchError,
    },
};

/// Twitch's consent page for a bot, and its one-time state.
pub async fn link(app: &AppState) -> Result<(String, String), ApiError> {
    let client_id = app
        .twitch
        .credentials
        .load()
        .await
        .ok_or(TwitchError::NotConfigured)?
        .client_id;
    let state = new_state(app, true).await?;
    let mut url = url::Url::parse(&format!(
        "{}/authorize",
        app.config.twitch.auth_url.as_str().trim_end_matches('/')
    ))
    .map_err(|e| ApiError::Internal(e.into()))?;
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &client_id)
        .append_pair("redirect_uri", &redirect_uri(app))
        .append_pair("scope", &SCOPES.join(" "))
        .append_pair("force_verify", "true")
        .append_pair("state", &state);
    Ok((url.to_string(), state))
}

/// Whether `token` is the broadcaster's account.
async fn is_broadcaster(app: &AppState, token: &UserToken) -> bool {
    let login = token.login.as_deref().unwrap_or_default();
    if let Some(configured) = &app.config.twitch.broadcaster {
        if configured.eq_ignore_ascii_case(login) {
            return true;
        }
    }
    match app.twitch.tokens.user_info().await {
        Some(broadcaster) => broadcaster.user_id.is_some() && broadcaster.user_id == token.user_id,
        None => false,
    }
}

/// Exchanges the bot's code, stores the bot, and says how it went.
pub async fn complete(app: &AppState, code: &str) -> Page {
    let bots = &app.chat_bots;
    let token = match app.twitch.tokens.exchange(code, &redirect_uri(app)).await {
        Ok(token) => token,
        Err(err) => {
            tracing::error!(error = %err, "chat bot code exchange failed");
            return outcome::bot_failed(&format!(
                "Twitch did not accept the authorization code ({err})."
            ));
        }
    };
    let (Some(user_id), Some(login)) = (token.user_id.clone(), token.login.clone()) else {
        bots.tokens.revoke(token.access_token()).await;
        return outcome::bot_failed("Twitch did not say which account authorized.");
    };
    if is_broadcaster(app, &token).await {
        tracing::warn!(%login, "chat bot authorization by the broadcaster's account refused");
        bots.tokens.revoke(token.access_token()).await;
        return outcome::bot_is_broadcaster(&login);
    }
    let name = display_name(bots, &token, &login).await;
    match bots.authorized(&token, &user_id, &login, &name).await {
        Ok(created) => {
            tracing::info!(bot = %login, created, "chat bot authorized");
            outcome::bot_authorized(&name, created)
        }
        Err(err) => {
            tracing::error!(error = %err, "storing a chat bot failed");
            outcome::bot_failed("TAU could not store the bot (the relay's log says why).")
        }
    }
}

/// The bot's display name (`GET /users` with its new token; its login if
/// Twitch fails).
async fn display_name(bots: &ChatBots, token: &UserToken, login: &str) -> String {
    let auth = FixedToken {
        bots,
        token: token.access_token(),
    };
    match bots.tokens.client().user_by_login(&auth, login).await {
        Ok(Some(user)) => user.display_name,
        Ok(None) => login.to_string(),
        Err(err) => {
            tracing::warn!(error = %err, "looking up a new chat bot's name failed");
            login.to_string()
        }
    }
}

impl ChatBots {
    /// Stores a freshly authorized bot (replacing an existing one's
    /// tokens); true if it is new. Publishes the change.
    pub async fn authorized(
        &self,
        token: &UserToken,
        user_id: &str,
        login: &str,
        name: &str,
    ) -> Result<bool, crate::store::StoreError> {
        let sealed = self.tokens.seal(token);
        let (status, reason) = status_for(name, &token.scopes);
        let (_, created) = self
            .store
            .upsert_chat_bot(&NewChatBot {
                user_id,
                user_login: login,
                user_name: name,
                scopes: &token.scopes,
                token: &sealed,
                expires_us: token.expires_at.timestamp_micros(),
                status: (status.as_str(), reason.as_deref()),
            })
            .await?;
        self.changed().await;
        Ok(created)
    }
}
