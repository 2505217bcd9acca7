//! A bot's tokens: usable, refreshed, validated, revoked.
//!
//! The crypto, the refresh request and the validation are the
//! broadcaster's ([`TokenManager::seal`], [`TokenManager::refreshed`],
//! [`TokenManager::validate_access`]); this module keeps them in the bot's
//! row. A refreshed pair is written only over the pair it replaces, so a
//! replica that lost the race reads the winner's. When Twitch refuses the
//! refresh (revoked, or the refresh token is gone) the bot turns
//! `token_invalid` with a reason in words; other bots and the broadcaster
//! are unaffected.

use chrono::Utc;

use super::{status_for, BotStatus, ChatBots};
use crate::{
    store::ChatBotRow,
    twitch::{
        tokens::{UserToken, REFRESH_MARGIN},
        TwitchError,
    },
};

/// What to do when Twitch no longer accepts `name`'s authorization.
pub fn invalid_reason(name: &str) -> String {
    format!("Twitch no longer accepts {name}'s authorization: add the bot again")
}

/// A bot's token as Helix requests carry it.
pub struct BotAuth<'a> {
    /// The bots.
    pub bots: &'a ChatBots,
    /// The bot's TAU id.
    pub bot_id: &'a str,
}

impl tau_twitch::Auth for BotAuth<'_> {
    type Error = TwitchError;

    fn client_id(&self) -> Result<String, TwitchError> {
        self.bots.tokens.client_id()
    }

    async fn token(&self, _: &tau_twitch::Client) -> Result<String, TwitchError> {
        self.bots.access_token(self.bot_id).await
    }

    async fn renew(&self, _: &tau_twitch::Client, rejected: &str) -> Result<String, TwitchError> {
        self.bots.refresh(self.bot_id, rejected).await
    }
}

/// A token that is not stored yet (a bot being authorized): no renewal.
pub struct FixedToken<'a> {
    /// The bots (for the client id).
    pub bots: &'a ChatBots,
    /// The access token.
    pub token: &'a str,
}

impl tau_twitch::Auth for FixedToken<'_> {
    type Error = TwitchError;

    fn client_id(&self) -> Result<String, TwitchError> {
        self.bots.tokens.client_id()
    }

    async fn token(&self, _: &tau_twitch::Client) -> Result<String, TwitchError> {
        Ok(self.token.to_string())
    }

    async fn renew(&self, _: &tau_twitch::Client, _: &str) -> Result<String, TwitchError> {
        Err(TwitchError::AuthorizationNeeded)
    }
}

impl ChatBots {
    fn open(&self, row: &ChatBotRow) -> Result<UserToken, TwitchError> {
        self.tokens.open(&row.token)
    }

    async fn stored(&self, bot_id: &str) -> Result<ChatBotRow, TwitchError> {
        self.store
            .chat_bot(bot_id)
            .await?
            .ok_or(TwitchError::AuthorizationNeeded)
    }

    /// A usable access token of the bot, refreshed first if about to expire.
    pub async fn access_token(&self, bot_id: &str) -> Result<String, TwitchError> {
        let row = self.stored(bot_id).await?;
        if row.status == BotStatus::TokenInvalid.as_str() {
            return Err(TwitchError::AuthorizationNeeded);
        }
        let token = self.open(&row)?;
        if token.expires_at - REFRESH_MARGIN <= Utc::now() {
            return self.refresh(bot_id, token.access_token()).await;
        }
        Ok(token.access_token().to_string())
    }

    /// Refreshes the bot's token unless it is no longer `stale`.
    pub async fn refresh(&self, bot_id: &str, stale: &str) -> Result<String, TwitchError> {
        let _flight = self.refreshing.lock().await;
        let row = self.stored(bot_id).await?;
        let current = self.open(&row)?;
        if current.access_token() != stale {
            return Ok(current.access_token().to_string());
        }
        let fresh = match self.tokens.refreshed(&current).await {
            Ok(fresh) => fresh,
            Err(TwitchError::Status { status, message }) if status == 400 || status == 401 => {
                // A peer replica may have refreshed it first.
                let latest = self.stored(bot_id).await?;
                if latest.token != row.token {
                    return Ok(self.open(&latest)?.access_token().to_string());
                }
                tracing::warn!(bot = %row.user_login, status, %message, "Twitch refused to refresh a chat bot's token");
                self.mark_invalid(&row).await;
                return Err(TwitchError::AuthorizationNeeded);
            }
            Err(err) => return Err(err),
        };
        let sealed = self.tokens.seal(&fresh);
        let saved = self
            .store
            .replace_chat_bot_token(
                bot_id,
                &row.token,
                &sealed,
                fresh.expires_at.timestamp_micros(),
                &fresh.scopes,
            )
            .await?;
        if saved {
            tracing::info!(bot = %row.user_login, "refreshed a chat bot's token");
            return Ok(fresh.access_token().to_string());
        }
        // Someone wrote first (a peer's refresh, or a new authorization).
        Ok(self
            .open(&self.stored(bot_id).await?)?
            .access_token()
            .to_string())
    }

    /// Marks the bot `token_invalid` and publishes it.
    async fn mark_invalid(&self, row: &ChatBotRow) {
        let reason = invalid_reason(&row.user_name);
        match self
            .store
            .set_chat_bot_status(&row.id, BotStatus::TokenInvalid.as_str(), Some(&reason))
            .await
        {
            Ok(true) => self.changed().await,
            Ok(false) => {}
            Err(err) => tracing::warn!(error = %err, "could not mark a chat bot's token invalid"),
        }
    }

    /// Validates every usable bot token (Twitch requires it hourly): new
    /// scopes and expiry are kept, a 401 refreshes (and a refused refresh
    /// marks the bot invalid). Failures are logged, never fatal.
    pub async fn validate_all(&self) {
        let rows = match self.store.chat_bots().await {
            Ok(rows) => rows,
            Err(err) => return tracing::warn!(error = %err, "reading chat bots failed"),
        };
        for row in rows {
            if row.status == BotStatus::TokenInvalid.as_str() {
                continue;
            }
            if let Err(err) = self.validate(&row).await {
                tracing::warn!(bot = %row.user_login, error = %err, "validating a chat bot's token failed");
            }
        }
    }

    async fn validate(&self, row: &ChatBotRow) -> Result<(), TwitchError> {
        let token = self.open(row)?;
        match self.tokens.validate_access(token.access_token()).await {
            Ok(v) => {
                let mut updated = token.clone();
                updated.scopes = v.scopes;
                if let Some(secs) = v.expires_in.filter(|s| *s > 0) {
                    updated.expires_at = Utc::now() + chrono::Duration::seconds(secs);
                }
                let sealed = self.tokens.seal(&updated);
                self.store
                    .replace_chat_bot_token(
                        &row.id,
                        &row.token,
                        &sealed,
                        updated.expires_at.timestamp_micros(),
                        &updated.scopes,
                    )
                    .await?;
                let (status, reason) = status_for(&row.user_name, &updated.scopes);
                if self
                    .store
                    .set_chat_bot_status(&row.id, status.as_str(), reason.as_deref())
                    .await?
                    || updated.scopes != row.scopes
                {
                    self.changed().await;
                }
                Ok(())
            }
            Err(TwitchError::Status { status: 401, .. }) => self
                .refresh(&row.id, token.access_token())
                .await
                .map(|_| ()),
            Err(err) => Err(err),
        }
    }

    /// Revokes the bot's token at Twitch (failures are logged: it expires anyway).
    pub(crate) async fn revoke(&self, row: &ChatBotRow) {
        match self.open(row) {
            Ok(token) => self.tokens.revoke(token.access_token()).await,
            Err(err) => {
                tracing::warn!(error = %err, "could not open a chat bot's token to revoke it")
            }
        }
    }
}
