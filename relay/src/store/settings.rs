//! Named values (for example the encrypted Twitch tokens).

use sqlx::Row;

use super::{now_us, Result, Store};

impl Store {
    /// Reads a setting.
    pub async fn setting(&self, name: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT value FROM settings WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.get::<String, _>(0)))
    }

    /// Creates or replaces a setting.
    pub async fn set_setting(&self, name: &str, value: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO settings (name, value, updated_us) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_us = excluded.updated_us",
        )
        .bind(name)
        .bind(value)
        .bind(now_us())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Replaces a setting only if it still holds `expected` (compare and
    /// set); false if another writer changed it first.
    pub async fn replace_setting(&self, name: &str, expected: &str, value: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE settings SET value = $3, updated_us = $4 WHERE name = $1 AND value = $2",
        )
        .bind(name)
        .bind(expected)
        .bind(value)
        .bind(now_us())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Removes settings named `prefix…` last written before `cutoff_us`
    /// (e.g. OAuth states of flows nobody finished); returns how many.
    pub async fn delete_stale_settings(&self, prefix: &str, cutoff_us: i64) -> Result<u64> {
        let done = sqlx::query("DELETE FROM settings WHERE name LIKE $1 AND updated_us < $2")
            .bind(format!("{prefix}%"))
            .bind(cutoff_us)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// Removes a setting and returns its value, in one statement: of two
    /// callers racing for it, exactly one gets it (one-time values).
    pub async fn take_setting(&self, name: &str) -> Result<Option<String>> {
        let row = sqlx::query("DELETE FROM settings WHERE name = $1 RETURNING value")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.get::<String, _>(0)))
    }

    /// Removes a setting.
    pub async fn delete_setting(&self, name: &str) -> Result<()> {
        sqlx::query("DELETE FROM settings WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::store::Store;

    #[tokio::test]
    async fn settings_upsert_and_delete() {
        let store = Store::in_memory().await;
        assert_eq!(store.setting("a").await.unwrap(), None);
        store.set_setting("a", "1").await.unwrap();
        store.set_setting("a", "2").await.unwrap();
        assert_eq!(store.setting("a").await.unwrap().as_deref(), Some("2"));
        assert!(!store.replace_setting("a", "1", "3").await.unwrap());
        assert!(store.replace_setting("a", "2", "3").await.unwrap());
        assert_eq!(store.setting("a").await.unwrap().as_deref(), Some("3"));
        assert_eq!(store.take_setting("a").await.unwrap().as_deref(), Some("3"));
        assert_eq!(store.take_setting("a").await.unwrap(), None, "taken once");
        store.set_setting("a", "4").await.unwrap();
        store.delete_setting("a").await.unwrap();
        assert_eq!(store.setting("a").await.unwrap(), None);
        store.set_setting("oauth_state:x", "1").await.unwrap();
        store.set_setting("keep", "1").await.unwrap();
        let later = crate::store::now_us() + 1;
        assert_eq!(
            store
                .delete_stale_settings("oauth_state:", later)
                .await
                .unwrap(),
            1
        );
        assert_eq!(store.setting("keep").await.unwrap().as_deref(), Some("1"));
    }
}
