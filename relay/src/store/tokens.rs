//! API tokens: only a SHA-256 hash is stored, with the token's role.
//!
//! Why a fast, unsalted hash is enough: generated tokens carry 160 random
//! bits and a seeded `TAU_API_TOKEN` must be at least 32 characters
//! (checked in `config`), so there is no dictionary to attack and no salt
//! to add; a slow password hash would only slow every request down. A
//! lookup by hash never compares a secret byte by byte: the secret is never
//! in the database, and its hash is an index key.
//!
//! The displayed *hint* is the first 8 hex characters of that hash, never
//! of the token itself (a prefix of a short seed would give it away).
//!
//! Every change (create, revoke, new role, new value) bumps the
//! `api_tokens_revision` setting in the same transaction; each replica
//! polls it ([`crate::access::watch`]) to close the sockets of a token that
//! lost power.

use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::{any::AnyRow, Row};
use uuid::Uuid;

use super::{now_us, Result, Store, StoreError};
use crate::access::{Grant, Role};

/// Prefix that makes TAU tokens recognisable to secret scanners.
const TOKEN_PREFIX: &str = "tau_";
/// Settings key bumped whenever the token table changes.
pub const TOKENS_REVISION: &str = "api_tokens_revision";
/// Hex characters of the hash shown as the hint (32 bits: enough to tell
/// tokens apart, useless for guessing one).
const HINT_LEN: usize = 8;

/// A token's public record (never the token itself).
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct ApiToken {
    /// Token id (for revocation).
    pub id: String,
    /// Human label, unique.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// Event types an overlay token is limited to (`None`: all).
    pub event_types: Option<Vec<String>>,
    /// First characters of the token's hash, to recognise it.
    pub hint: String,
    /// Creation time, µs since epoch.
    pub created_us: i64,
    /// Last successful use, µs since epoch.
    pub last_used_us: Option<i64>,
}

impl ApiToken {
    /// The token's powers.
    pub fn grant(&self) -> Grant {
        Grant {
            role: self.role,
            event_types: self.event_types.clone(),
        }
    }
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

fn hint_of(hash: &str) -> String {
    hash[..HINT_LEN].to_string()
}

/// `last_used_us` is written when it is at least this old.
const LAST_USED_RESOLUTION_US: i64 = 60_000_000;

const COLUMNS: &str = "id, name, role, event_types, hint, created_us, last_used_us";

fn decode(r: &AnyRow) -> Result<ApiToken> {
    let role: String = r.try_get("role")?;
    let types: Option<String> = r.try_get("event_types")?;
    Ok(ApiToken {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        role: Role::parse(&role)
            .ok_or_else(|| StoreError::Malformed(format!("unknown token role {role:?}")))?,
        event_types: types
            .map(|t| serde_json::from_str(&t))
            .transpose()
            .map_err(|e| StoreError::Malformed(format!("token event_types: {e}")))?,
        hint: r.try_get("hint")?,
        created_us: r.try_get("created_us")?,
        last_used_us: r.try_get("last_used_us")?,
    })
}

fn types_json(grant: &Grant) -> Option<String> {
    grant
        .event_types
        .as_ref()
        .map(|t| serde_json::to_string(t).expect("strings serialize"))
}

/// Bumps [`TOKENS_REVISION`] inside `tx`.
async fn bump(tx: &mut sqlx::Transaction<'_, sqlx::Any>) -> Result<()> {
    sqlx::query(
        "INSERT INTO settings (name, value, updated_us) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_us = excluded.updated_us",
    )
    .bind(TOKENS_REVISION)
    .bind(Uuid::new_v4().to_string())
    .bind(now_us())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(e) if e.is_unique_violation())
}

impl Store {
    /// Creates a new random token; `Duplicate` if `name` is taken.
    pub async fn create_token(&self, name: &str, grant: &Grant) -> Result<NewToken> {
        let mut bytes = [0u8; 20];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let token = format!("{TOKEN_PREFIX}{}", hex::encode(bytes));
        let record = self.insert_token(name, &token, grant).await?;
        Ok(NewToken { record, token })
    }

    /// Makes `token` the one token called `name` (e.g. `TAU_API_TOKEN`),
    /// with `grant`. A changed seed replaces the previous one, which stops
    /// working (and its sockets close).
    pub async fn seed_token(&self, name: &str, token: &str, grant: &Grant) -> Result<()> {
        let digest = hash(token);
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE api_tokens SET token_hash = $2, hint = $3, role = $4, event_types = $5 \
             WHERE name = $1 AND token_hash <> $2",
        )
        .bind(name)
        .bind(&digest)
        .bind(hint_of(&digest))
        .bind(grant.role.as_str())
        .bind(types_json(grant))
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() > 0 {
            bump(&mut tx).await?;
        }
        tx.commit().await?;
        if done.rows_affected() == 0 && self.authenticate(token).await?.is_none() {
            match self.insert_token(name, token, grant).await {
                // A replica starting at the same moment seeded it first.
                Err(StoreError::Duplicate(_)) if self.authenticate(token).await?.is_some() => {}
                other => {
                    other?;
                }
            }
        }
        Ok(())
    }

    async fn insert_token(&self, name: &str, token: &str, grant: &Grant) -> Result<ApiToken> {
        let digest = hash(token);
        let record = ApiToken {
            id: Uuid::new_v4().to_string(),
            name: name.to_string(),
            role: grant.role,
            event_types: grant.event_types.clone(),
            hint: hint_of(&digest),
            created_us: now_us(),
            last_used_us: None,
        };
        let taken: Option<String> = sqlx::query_scalar("SELECT id FROM api_tokens WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        if taken.is_some() {
            return Err(StoreError::Duplicate(name.to_string()));
        }
        // The revision moves on creation too, so every replica's token
        // view soon holds the new token (its sockets are then judged
        // against a view that knows it).
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO api_tokens (id, name, role, event_types, token_hash, hint, created_us) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&record.id)
        .bind(&record.name)
        .bind(record.role.as_str())
        .bind(types_json(grant))
        .bind(&digest)
        .bind(&record.hint)
        .bind(record.created_us)
        .execute(&mut *tx)
        .await
        .map_err(|err| match unique_violation(&err) {
            true => StoreError::Duplicate(name.to_string()),
            false => err.into(),
        })?;
        bump(&mut tx).await?;
        tx.commit().await?;
        Ok(record)
    }

    /// The token's record if `token` is valid.
    pub async fn authenticate(&self, token: &str) -> Result<Option<ApiToken>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM api_tokens WHERE token_hash = $1"
        ))
        .bind(hash(token))
        .fetch_optional(&self.pool)
        .await?;
        let Some(mut record) = row.as_ref().map(decode).transpose()? else {
            return Ok(None);
        };
        // Record the use, at most once a minute per token (a write per
        // request would cost more than the lookup).
        let now = now_us();
        if record
            .last_used_us
            .is_none_or(|last| now - last >= LAST_USED_RESOLUTION_US)
        {
            let updated = sqlx::query("UPDATE api_tokens SET last_used_us = $1 WHERE id = $2")
                .bind(now)
                .bind(&record.id)
                .execute(&self.pool)
                .await;
            match updated {
                Ok(_) => record.last_used_us = Some(now),
                // Authentication does not depend on the bookkeeping.
                Err(err) => tracing::debug!(error = %err, "token last use not recorded"),
            }
        }
        Ok(Some(record))
    }

    /// The record of token `id`, if it exists.
    pub async fn token_by_id(&self, id: &str) -> Result<Option<ApiToken>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM api_tokens WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(decode).transpose()
    }

    /// All tokens, oldest first.
    pub async fn list_tokens(&self) -> Result<Vec<ApiToken>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM api_tokens ORDER BY created_us"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode).collect()
    }

    /// Revokes tokens whose id, name or hint is `which`; returns how many.
    pub async fn revoke_token(&self, which: &str) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("DELETE FROM api_tokens WHERE id = $1 OR name = $1 OR hint = $1")
            .bind(which)
            .execute(&mut *tx)
            .await?;
        bump(&mut tx).await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    /// Revokes the token with this id; returns whether it existed.
    pub async fn revoke_token_id(&self, id: &str) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("DELETE FROM api_tokens WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        bump(&mut tx).await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    /// Revokes exactly the given token value.
    pub async fn revoke_token_value(&self, token: &str) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("DELETE FROM api_tokens WHERE token_hash = $1")
            .bind(hash(token))
            .execute(&mut *tx)
            .await?;
        bump(&mut tx).await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// Gives the token `id` a new value (same name and grant); the old
    /// value stops working. `None` if there is no such token.
    pub async fn rotate_token(&self, id: &str) -> Result<Option<NewToken>> {
        let mut bytes = [0u8; 20];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let token = format!("{TOKEN_PREFIX}{}", hex::encode(bytes));
        let digest = hash(&token);
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("UPDATE api_tokens SET token_hash = $2, hint = $3 WHERE id = $1")
            .bind(id)
            .bind(&digest)
            .bind(hint_of(&digest))
            .execute(&mut *tx)
            .await?;
        bump(&mut tx).await?;
        tx.commit().await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        let record = self.authenticate(&token).await?;
        Ok(record.map(|record| NewToken { record, token }))
    }

    /// Gives the token `id` a new grant; false if there is no such token.
    pub async fn set_grant(&self, id: &str, grant: &Grant) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("UPDATE api_tokens SET role = $2, event_types = $3 WHERE id = $1")
            .bind(id)
            .bind(grant.role.as_str())
            .bind(types_json(grant))
            .execute(&mut *tx)
            .await?;
        bump(&mut tx).await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// How many tokens exist.
    pub async fn count_tokens(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM api_tokens")
            .fetch_one(&self.pool)
            .await?)
    }

    /// How many admin tokens exist.
    pub async fn count_admins(&self) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM api_tokens WHERE role = 'admin'")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// The current token revision (changes whenever the token table does).
    pub async fn tokens_revision(&self) -> Result<Option<String>> {
        self.setting(TOKENS_REVISION).await
    }
}

#[cfg(test)]
mod tests {
    use crate::{
        access::{Grant, Role},
        store::{Store, StoreError},
    };

    #[tokio::test]
    async fn tokens_are_hashed_checked_and_revoked() {
        let store = Store::in_memory().await;
        let admin = Grant::role(Role::Admin);
        let new = store.create_token("bot", &admin).await.unwrap();
        assert!(new.token.starts_with("tau_") && new.token.len() == 44);
        let stored: String = sqlx::query_scalar("SELECT token_hash FROM api_tokens")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_ne!(stored, new.token, "the token itself is never stored");
        assert_eq!(store.list_tokens().await.unwrap()[0].last_used_us, None);
        let used = store.authenticate(&new.token).await.unwrap().unwrap();
        let last_used = used.last_used_us.expect("a use is recorded");
        assert_eq!(
            store.list_tokens().await.unwrap()[0].last_used_us,
            Some(last_used)
        );
        // Within a minute another use is not written again.
        let again = store.authenticate(&new.token).await.unwrap().unwrap();
        assert_eq!(again.last_used_us, Some(last_used));
        assert!(store.authenticate("tau_wrong").await.unwrap().is_none());
        let seed = "a-seeded-token-of-at-least-32-chars";
        store.seed_token("seed", seed, &admin).await.unwrap();
        store.seed_token("seed", seed, &admin).await.unwrap();
        assert_eq!(store.count_tokens().await.unwrap(), 2);
        assert_eq!(store.revoke_token("bot").await.unwrap(), 1);
        assert!(store.authenticate(&new.token).await.unwrap().is_none());
    }

    /// Migration 0020 on tokens stored before roles: all become admin,
    /// duplicate names are made unique, hints are re-derived from hashes.
    #[tokio::test]
    async fn roles_migration_keeps_old_tokens_working_as_admins() {
        use sqlx::{any::AnyPoolOptions, Executor, Row};
        sqlx::any::install_default_drivers();
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
            .unwrap();
        for sql in [
            include_str!("../../migrations/sqlite/0001_init.sql"),
            include_str!("../../migrations/sqlite/0002_leases.sql"),
            include_str!("../../migrations/sqlite/0005_deleted_events.sql"),
        ] {
            pool.execute(sql).await.unwrap();
        }
        for (id, name, created) in [("a", "cli", 1), ("b", "cli", 2), ("c", "bot", 3)] {
            sqlx::query("INSERT INTO api_tokens (id, name, token_hash, hint, created_us) VALUES ($1, $2, $3, 'tau_abcd', $4)")
                .bind(id)
                .bind(name)
                .bind(format!("{id}0123456789abcdef"))
                .bind(created)
                .execute(&pool)
                .await
                .unwrap();
        }
        pool.execute(include_str!("../../migrations/sqlite/0020_token_roles.sql"))
            .await
            .unwrap();
        let rows = sqlx::query("SELECT id, name, role, hint FROM api_tokens ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap();
        let got: Vec<(String, String, String, String)> = rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect();
        let row = |id: &str, name: &str, hint: &str| {
            (
                id.to_string(),
                name.to_string(),
                "admin".to_string(),
                hint.to_string(),
            )
        };
        assert_eq!(
            got,
            [
                row("a", "cli", "a0123456"),
                row("b", "cli-b", "b0123456"),
                row("c", "bot", "c0123456")
            ]
        );
    }

    #[tokio::test]
    async fn hints_come_from_the_hash_and_names_are_unique() {
        let store = Store::in_memory().await;
        let seed = "short-prefix-shows-nothing-0123456789";
        store
            .seed_token("TAU_API_TOKEN", seed, &Grant::role(Role::Admin))
            .await
            .unwrap();
        let record = store.authenticate(seed).await.unwrap().unwrap();
        assert_eq!(record.hint.len(), 8);
        assert!(record.hint.bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(
            !seed.contains(&record.hint),
            "hint is not a piece of the token"
        );
        let overlay = Grant {
            role: Role::Overlay,
            event_types: Some(vec!["channel-follow".into()]),
        };
        let first = store.create_token("obs", &overlay).await.unwrap();
        assert_eq!(first.record.grant(), overlay);
        assert!(matches!(
            store.create_token("obs", &overlay).await,
            Err(StoreError::Duplicate(name)) if name == "obs"
        ));
        let listed = store.list_tokens().await.unwrap();
        assert_eq!(listed[1].event_types, overlay.event_types);
    }

    #[tokio::test]
    async fn a_new_seed_replaces_the_old_one_and_bumps_the_revision() {
        let store = Store::in_memory().await;
        let admin = Grant::role(Role::Admin);
        let old = "the-first-seed-value-0123456789abcdef";
        let new = "the-second-seed-value-0123456789abcdef";
        store
            .seed_token("TAU_API_TOKEN", old, &admin)
            .await
            .unwrap();
        let before = store.tokens_revision().await.unwrap();
        store
            .seed_token("TAU_API_TOKEN", new, &admin)
            .await
            .unwrap();
        assert!(store.authenticate(old).await.unwrap().is_none());
        assert!(store.authenticate(new).await.unwrap().is_some());
        assert_eq!(store.count_tokens().await.unwrap(), 1);
        let after = store.tokens_revision().await.unwrap();
        assert_ne!(before, after);
        let id = store.authenticate(new).await.unwrap().unwrap().id;
        assert!(store.set_grant(&id, &Grant::role(Role::Bot)).await.unwrap());
        assert_ne!(store.tokens_revision().await.unwrap(), after);
        let record = store.authenticate(new).await.unwrap().unwrap();
        assert_eq!(record.role, Role::Bot);
    }
}
