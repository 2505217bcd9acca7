//! Removing bots and putting them in or out of channels.

use super::ChatBots;
use crate::{
    chat::send::channel_login,
    store::{ChatBotChannel, StoreError},
    twitch::helix::TokenKind,
};

/// Why a change of the bots was refused; the text is what the caller is told.
#[derive(Debug, thiserror::Error)]
pub enum BotError {
    /// No bot by that id or login.
    #[error("no chat bot named \"{0}\"")]
    NoBot(String),
    /// No bot channel by that id.
    #[error("no chat bot channel with id \"{0}\"")]
    NoChannel(String),
    /// The channel is not a Twitch login.
    #[error("{0}")]
    BadChannel(String),
    /// Twitch has no such channel.
    #[error("Twitch has no channel \"{0}\"")]
    UnknownChannel(String),
    /// The bot is in that channel already.
    #[error("{bot} is already in #{channel}")]
    AlreadyIn {
        /// The bot's login.
        bot: String,
        /// The channel's login.
        channel: String,
    },
    /// Twitch could not be asked.
    #[error("Twitch could not look the channel up: {0}")]
    Twitch(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ChatBots {
    /// Removes the bot `key` (id or login): its token is revoked at
    /// Twitch (best effort), its channels go with it, its sockets close.
    pub async fn remove(&self, key: &str) -> Result<(), BotError> {
        let row = self
            .store
            .chat_bot(key)
            .await?
            .ok_or_else(|| BotError::NoBot(key.to_string()))?;
        self.revoke(&row).await;
        self.store.delete_chat_bot(&row.id).await?;
        tracing::info!(bot = %row.user_login, "chat bot removed");
        self.changed().await;
        Ok(())
    }

    /// Puts bot `bot` (id or login) in channel `channel` (`#login` or
    /// `login`, looked up at Twitch).
    pub async fn join(
        &self,
        helix: &crate::twitch::helix::Helix,
        bot: &str,
        channel: &str,
    ) -> Result<ChatBotChannel, BotError> {
        let row = self
            .store
            .chat_bot(bot)
            .await?
            .ok_or_else(|| BotError::NoBot(bot.to_string()))?;
        let login = channel_login(Some(channel))
            .map_err(|e| BotError::BadChannel(e.to_string()))?
            .ok_or_else(|| BotError::BadChannel("channel must be a Twitch login".into()))?;
        let user = helix
            .user_by_login(&login, TokenKind::App)
            .await
            .map_err(|e| BotError::Twitch(e.to_string()))?
            .ok_or_else(|| BotError::UnknownChannel(login.clone()))?;
        let joined = self
            .store
            .insert_chat_bot_channel(&row.id, &user.login, &user.id)
            .await
            .map_err(|err| match err {
                StoreError::Duplicate(_) => BotError::AlreadyIn {
                    bot: row.user_login.clone(),
                    channel: login.clone(),
                },
                other => other.into(),
            })?;
        self.changed().await;
        Ok(joined)
    }

    /// Takes a bot out of a channel (the channel row's id).
    pub async fn leave(&self, id: &str) -> Result<(), BotError> {
        self.store
            .delete_chat_bot_channel(id)
            .await?
            .ok_or_else(|| BotError::NoChannel(id.to_string()))?;
        self.changed().await;
        Ok(())
    }

    /// Records whether the bot may chat in a channel (from Twitch's answer
    /// to a message); publishes a change.
    pub async fn set_channel_status(&self, bot_id: &str, channel_id: &str, failure: Option<&str>) {
        let status = if failure.is_some() {
            "failed"
        } else {
            "joined"
        };
        match self
            .store
            .set_chat_bot_channel_status(bot_id, channel_id, status, failure)
            .await
        {
            Ok(true) => self.changed().await,
            Ok(false) => {}
            Err(err) => tracing::warn!(error = %err, "recording a bot channel's status failed"),
        }
    }
}
