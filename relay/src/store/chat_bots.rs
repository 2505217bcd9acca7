//! Chat bots and their channels (see [`crate::chat_bots`]).
//!
//! A bot is unique by its Twitch user id: authorizing the same account
//! again replaces its tokens in place (same TAU id, channels kept). Its
//! token is stored sealed (the caller seals it); a refreshed token is
//! written only over the sealed text it replaces (compare and set), so of
//! two replicas refreshing at once the first write wins and the other
//! reads it.

use sqlx::{any::AnyRow, Row};
use uuid::Uuid;

use super::{now_us, Result, Store, StoreError};

/// One chat bot as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatBotRow {
    /// TAU's id (a UUID).
    pub id: String,
    /// Twitch user id.
    pub user_id: String,
    /// Login, lower case.
    pub user_login: String,
    /// Display name.
    pub user_name: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// The sealed token pair (never shown).
    pub token: String,
    /// When the access token expires, µs since the epoch.
    pub expires_us: i64,
    /// `ready`, `token_invalid` or `scope_missing`.
    pub status: String,
    /// Why, when not ready.
    pub reason: Option<String>,
    /// When it was first authorized.
    pub created_us: i64,
    /// When it last changed.
    pub updated_us: i64,
}

/// One channel a bot is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatBotChannel {
    /// TAU's id (a UUID).
    pub id: String,
    /// The bot's TAU id.
    pub bot_id: String,
    /// The channel's login.
    pub channel_login: String,
    /// The channel's Twitch user id.
    pub channel_id: String,
    /// `joined`, `pending` or `failed`.
    pub status: String,
    /// Why, when failed.
    pub reason: Option<String>,
    /// When it was added.
    pub created_us: i64,
}

/// A freshly authorized bot's facts.
#[derive(Debug, Clone)]
pub struct NewChatBot<'a> {
    /// Twitch user id.
    pub user_id: &'a str,
    /// Login.
    pub user_login: &'a str,
    /// Display name.
    pub user_name: &'a str,
    /// Granted scopes.
    pub scopes: &'a [String],
    /// The sealed token pair.
    pub token: &'a str,
    /// Access token expiry, µs.
    pub expires_us: i64,
    /// Initial status and reason.
    pub status: (&'a str, Option<&'a str>),
}

const BOT_COLUMNS: &str = "id, user_id, user_login, user_name, scopes, token, expires_us, \
     status, reason, created_us, updated_us";
const CHANNEL_COLUMNS: &str = "id, bot_id, channel_login, channel_id, status, reason, created_us";

fn decode_bot(r: &AnyRow) -> Result<ChatBotRow> {
    let scopes: String = r.try_get("scopes")?;
    Ok(ChatBotRow {
        id: r.try_get("id")?,
        user_id: r.try_get("user_id")?,
        user_login: r.try_get("user_login")?,
        user_name: r.try_get("user_name")?,
        scopes: scopes.split_whitespace().map(str::to_string).collect(),
        token: r.try_get("token")?,
        expires_us: r.try_get("expires_us")?,
        status: r.try_get("status")?,
        reason: r.try_get("reason")?,
        created_us: r.try_get("created_us")?,
        updated_us: r.try_get("updated_us")?,
    })
}

fn decode_channel(r: &AnyRow) -> Result<ChatBotChannel> {
    Ok(ChatBotChannel {
        id: r.try_get("id")?,
        bot_id: r.try_get("bot_id")?,
        channel_login: r.try_get("channel_login")?,
        channel_id: r.try_get("channel_id")?,
        status: r.try_get("status")?,
        reason: r.try_get("reason")?,
        created_us: r.try_get("created_us")?,
    })
}

impl Store {
    /// Every chat bot, oldest first.
    pub async fn chat_bots(&self) -> Result<Vec<ChatBotRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {BOT_COLUMNS} FROM chat_bots ORDER BY created_us, id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode_bot).collect()
    }

    /// The bot whose TAU id or login (any case) is `key`.
    pub async fn chat_bot(&self, key: &str) -> Result<Option<ChatBotRow>> {
        let (column, value) = match Uuid::parse_str(key) {
            Ok(id) => ("id", id.to_string()),
            Err(_) => (
                "user_login",
                key.trim_start_matches('#').to_ascii_lowercase(),
            ),
        };
        let row = sqlx::query(&format!(
            "SELECT {BOT_COLUMNS} FROM chat_bots WHERE {column} = $1 \
             ORDER BY created_us LIMIT 1"
        ))
        .bind(value)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(decode_bot).transpose()
    }

    /// Adds a bot, or replaces an existing one's names, tokens and status
    /// (same Twitch user). The row after, and whether it is new.
    pub async fn upsert_chat_bot(&self, bot: &NewChatBot<'_>) -> Result<(ChatBotRow, bool)> {
        let now = now_us();
        let row = sqlx::query(&format!(
            "INSERT INTO chat_bots ({BOT_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) \
             ON CONFLICT (user_id) DO UPDATE SET user_login = excluded.user_login, \
             user_name = excluded.user_name, scopes = excluded.scopes, token = excluded.token, \
             expires_us = excluded.expires_us, status = excluded.status, \
             reason = excluded.reason, updated_us = excluded.updated_us \
             RETURNING {BOT_COLUMNS}"
        ))
        .bind(Uuid::new_v4().to_string())
        .bind(bot.user_id)
        .bind(bot.user_login.to_ascii_lowercase())
        .bind(bot.user_name)
        .bind(bot.scopes.join(" "))
        .bind(bot.token)
        .bind(bot.expires_us)
        .bind(bot.status.0)
        .bind(bot.status.1)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        let row = decode_bot(&row)?;
        let created = row.created_us == now && row.updated_us == now;
        Ok((row, created))
    }

    /// Replaces a bot's sealed token only if it still holds `expected`;
    /// false if another writer changed it first (or the bot is gone).
    pub async fn replace_chat_bot_token(
        &self,
        id: &str,
        expected: &str,
        token: &str,
        expires_us: i64,
        scopes: &[String],
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE chat_bots SET token = $3, expires_us = $4, scopes = $5, updated_us = $6 \
             WHERE id = $1 AND token = $2",
        )
        .bind(id)
        .bind(expected)
        .bind(token)
        .bind(expires_us)
        .bind(scopes.join(" "))
        .bind(now_us())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Sets a bot's status; true if it changed.
    pub async fn set_chat_bot_status(
        &self,
        id: &str,
        status: &str,
        reason: Option<&str>,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE chat_bots SET status = $2, reason = $3, updated_us = $4 \
             WHERE id = $1 AND (status <> $2 OR COALESCE(reason, '') <> $5)",
        )
        .bind(id)
        .bind(status)
        .bind(reason)
        .bind(now_us())
        .bind(reason.unwrap_or_default())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Removes a bot (by TAU id) and its channels; the removed row.
    pub async fn delete_chat_bot(&self, id: &str) -> Result<Option<ChatBotRow>> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(&format!(
            "DELETE FROM chat_bots WHERE id = $1 RETURNING {BOT_COLUMNS}"
        ))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        sqlx::query("DELETE FROM chat_bot_channels WHERE bot_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(decode_bot(&row)?))
    }

    /// Every bot's channels, oldest first.
    pub async fn chat_bot_channels(&self) -> Result<Vec<ChatBotChannel>> {
        let rows = sqlx::query(&format!(
            "SELECT {CHANNEL_COLUMNS} FROM chat_bot_channels ORDER BY created_us, id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode_channel).collect()
    }

    /// Puts a bot in a channel; `Duplicate` if it is there already.
    pub async fn insert_chat_bot_channel(
        &self,
        bot_id: &str,
        channel_login: &str,
        channel_id: &str,
    ) -> Result<ChatBotChannel> {
        let channel = ChatBotChannel {
            id: Uuid::new_v4().to_string(),
            bot_id: bot_id.into(),
            channel_login: channel_login.to_ascii_lowercase(),
            channel_id: channel_id.into(),
            status: "joined".into(),
            reason: None,
            created_us: now_us(),
        };
        let inserted = sqlx::query(&format!(
            "INSERT INTO chat_bot_channels ({CHANNEL_COLUMNS}) VALUES ($1, $2, $3, $4, $5, NULL, $6)"
        ))
        .bind(&channel.id)
        .bind(&channel.bot_id)
        .bind(&channel.channel_login)
        .bind(&channel.channel_id)
        .bind(&channel.status)
        .bind(channel.created_us)
        .execute(&self.pool)
        .await;
        match inserted {
            Ok(_) => Ok(channel),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(StoreError::Duplicate(format!("#{}", channel.channel_login)))
            }
            Err(err) => Err(err.into()),
        }
    }

    /// Takes a bot out of a channel (by the channel row's TAU id).
    pub async fn delete_chat_bot_channel(&self, id: &str) -> Result<Option<ChatBotChannel>> {
        let row = sqlx::query(&format!(
            "DELETE FROM chat_bot_channels WHERE id = $1 RETURNING {CHANNEL_COLUMNS}"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(decode_channel).transpose()
    }

    /// Sets the status of bot `bot_id` in channel `channel_id`; true if it changed.
    pub async fn set_chat_bot_channel_status(
        &self,
        bot_id: &str,
        channel_id: &str,
        status: &str,
        reason: Option<&str>,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE chat_bot_channels SET status = $3, reason = $4 \
             WHERE bot_id = $1 AND channel_id = $2 AND status <> $3",
        )
        .bind(bot_id)
        .bind(channel_id)
        .bind(status)
        .bind(reason)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn bots_upsert_by_user_and_take_their_channels_along(store: &Store) {
        let scopes = vec!["user:write:chat".to_string()];
        let new = NewChatBot {
            user_id: "900",
            user_login: "Helper_Bot",
            user_name: "Helper_Bot",
            scopes: &scopes,
            token: "sealed-1",
            expires_us: 1,
            status: ("ready", None),
        };
        let (first, created) = store.upsert_chat_bot(&new).await.unwrap();
        assert!(created);
        assert_eq!(first.user_login, "helper_bot");
        let again = NewChatBot {
            token: "sealed-2",
            ..new.clone()
        };
        let (second, created) = store.upsert_chat_bot(&again).await.unwrap();
        assert!(!created, "the same Twitch user");
        assert_eq!(second.id, first.id);
        assert_eq!(second.token, "sealed-2");
        assert_eq!(
            store.chat_bot("HELPER_BOT").await.unwrap(),
            Some(second.clone())
        );

        assert!(!store
            .replace_chat_bot_token(&first.id, "sealed-1", "sealed-3", 2, &scopes)
            .await
            .unwrap());
        assert!(store
            .replace_chat_bot_token(&first.id, "sealed-2", "sealed-3", 2, &scopes)
            .await
            .unwrap());
        assert!(store
            .set_chat_bot_status(&first.id, "token_invalid", Some("gone"))
            .await
            .unwrap());
        assert!(!store
            .set_chat_bot_status(&first.id, "token_invalid", Some("gone"))
            .await
            .unwrap());
        assert!(store
            .set_chat_bot_status(&first.id, "ready", None)
            .await
            .unwrap());

        let channel = store
            .insert_chat_bot_channel(&first.id, "Cooler_User", "1337")
            .await
            .unwrap();
        assert!(matches!(
            store
                .insert_chat_bot_channel(&first.id, "cooler_user", "1337")
                .await,
            Err(StoreError::Duplicate(_))
        ));
        assert!(store
            .set_chat_bot_channel_status(&first.id, "1337", "failed", Some("no"))
            .await
            .unwrap());
        assert_eq!(store.chat_bot_channels().await.unwrap()[0].status, "failed");
        assert_eq!(
            store
                .delete_chat_bot_channel(&channel.id)
                .await
                .unwrap()
                .map(|c| c.id),
            Some(channel.id.clone())
        );
        store
            .insert_chat_bot_channel(&first.id, "other", "7")
            .await
            .unwrap();
        assert!(store.delete_chat_bot(&first.id).await.unwrap().is_some());
        assert!(store.delete_chat_bot(&first.id).await.unwrap().is_none());
        assert!(store.chat_bot_channels().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn sqlite_chat_bots() {
        bots_upsert_by_user_and_take_their_channels_along(&Store::in_memory().await).await;
    }

    /// The same SQL on Postgres (skipped without a Postgres to start).
    #[tokio::test]
    async fn postgres_chat_bots() {
        let Some((_pg, store)) = Store::on_throwaway_postgres("postgres_chat_bots").await else {
            return;
        };
        bots_upsert_by_user_and_take_their_channels_along(&store).await;
    }
}
