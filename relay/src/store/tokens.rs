//! API tokens: only a SHA-256 hash is stored.
//!
//! Tokens are 160 random bits, so a fast hash is safe (no dictionary to
//! attack), and lookups by hash never compare a secret byte by byte.

use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;
use uuid::Uuid;

use super::{now_us, Result, Store};

/// Prefix that makes TAU tokens recognisable to secret scanners.
const TOKEN_PREFIX: &str = "tau_";

/// A token's public record (never the token itself).
#[derive(Debug, Clone, Serialize)]
pub struct ApiToken {
    /// Token id (for revocation).
    pub id: String,
    /// Human label.
    pub name: String,
    /// First characters of the token, to recognise it.
    pub hint: String,
    /// Creation time, µs since epoch.
    pub created_us: i64,
    /// Last successful use, µs since epoch.
    pub last_used_us: Option<i64>,
}

/// A freshly created token: the only moment its value is known.
#[derive(Debug)]
pub struct NewToken {
    /// Its record.
    pub record: ApiToken,
    /// The secret value, to show once.
    pub token: String,
}

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn hint(token: &str) -> String {
    token.chars().take(TOKEN_PREFIX.len() + 4).collect()
}

impl Store {
    /// Creates a new random token.
    pub async fn create_token(&self, name: &str) -> Result<NewToken> {
        let mut bytes = [0u8; 20];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let token = format!("{TOKEN_PREFIX}{}", hex::encode(bytes));
        let record = self.insert_token(name, &token).await?;
        Ok(NewToken { record, token })
    }

    /// Stores a given token (e.g. `TAU_API_TOKEN`) unless already present.
    pub async fn seed_token(&self, name: &str, token: &str) -> Result<()> {
        if self.authenticate(token).await?.is_none() {
            self.insert_token(name, token).await?;
        }
        Ok(())
    }

    async fn insert_token(&self, name: &str, token: &str) -> Result<ApiToken> {
        let record = ApiToken {
            id: Uuid::new_v4().to_string(),
            name: name.to_string(),
            hint: hint(token),
            created_us: now_us(),
            last_used_us: None,
        };
        sqlx::query(
            "INSERT INTO api_tokens (id, name, token_hash, hint, created_us) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&record.id)
        .bind(&record.name)
        .bind(hash(token))
        .bind(&record.hint)
        .bind(record.created_us)
        .execute(&self.pool)
        .await?;
        Ok(record)
    }

    /// The token's record if `token` is valid.
    pub async fn authenticate(&self, token: &str) -> Result<Option<ApiToken>> {
        let row = sqlx::query(
            "SELECT id, name, hint, created_us, last_used_us FROM api_tokens WHERE token_hash = $1",
        )
        .bind(hash(token))
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| ApiToken {
            id: r.get("id"),
            name: r.get("name"),
            hint: r.get("hint"),
            created_us: r.get("created_us"),
            last_used_us: r.get("last_used_us"),
        }))
    }

    /// All tokens, oldest first.
    pub async fn list_tokens(&self) -> Result<Vec<ApiToken>> {
        let rows = sqlx::query(
            "SELECT id, name, hint, created_us, last_used_us FROM api_tokens ORDER BY created_us",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| ApiToken {
                id: r.get("id"),
                name: r.get("name"),
                hint: r.get("hint"),
                created_us: r.get("created_us"),
                last_used_us: r.get("last_used_us"),
            })
            .collect())
    }

    /// Revokes tokens whose id, name or hint is `which`; returns how many.
    pub async fn revoke_token(&self, which: &str) -> Result<u64> {
        let done = sqlx::query("DELETE FROM api_tokens WHERE id = $1 OR name = $1 OR hint = $1")
            .bind(which)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// Revokes exactly the given token value.
    pub async fn revoke_token_value(&self, token: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM api_tokens WHERE token_hash = $1")
            .bind(hash(token))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// How many tokens exist.
    pub async fn count_tokens(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM api_tokens")
            .fetch_one(&self.pool)
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use crate::store::Store;

    #[tokio::test]
    async fn tokens_are_hashed_checked_and_revoked() {
        let store = Store::in_memory().await;
        let new = store.create_token("bot").await.unwrap();
        assert!(new.token.starts_with("tau_") && new.token.len() == 44);
        let stored: String = sqlx::query_scalar("SELECT token_hash FROM api_tokens")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_ne!(stored, new.token, "the token itself is never stored");
        assert!(store.authenticate(&new.token).await.unwrap().is_some());
        assert!(store.authenticate("tau_wrong").await.unwrap().is_none());
        store.seed_token("seed", "my-seeded-token").await.unwrap();
        store.seed_token("seed", "my-seeded-token").await.unwrap();
        assert_eq!(store.count_tokens().await.unwrap(), 2);
        assert_eq!(store.revoke_token("bot").await.unwrap(), 1);
        assert!(store.authenticate(&new.token).await.unwrap().is_none());
    }
}
