//! Leases: at most one replica runs a singleton job (the EventSub
//! WebSocket session, since Twitch allows 3 connections per user token).
//!
//! A lease row names its holder and expiry; taking it over bumps a fencing
//! number, so a holder that was presumed dead can tell it lost the lease.
//! Holders renew well before expiry; a successor takes an expired lease.

use super::{now_us, Result, Store};

/// A held lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// Lease name.
    pub name: String,
    /// Fencing number: grows with every change of holder.
    pub fencing: i64,
}

impl Store {
    /// Takes or renews `name` for `holder` for `ttl_us`; `None` if another
    /// replica holds it and it has not expired.
    pub async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl_us: i64,
    ) -> Result<Option<Lease>> {
        let now = now_us();
        let fencing: Option<i64> = sqlx::query_scalar(
            "INSERT INTO leases (name, holder, fencing, expires_us) VALUES ($1, $2, 1, $3) \
             ON CONFLICT (name) DO UPDATE SET \
               fencing = CASE WHEN leases.holder = excluded.holder THEN leases.fencing ELSE leases.fencing + 1 END, \
               holder = excluded.holder, expires_us = excluded.expires_us \
             WHERE leases.holder = excluded.holder OR leases.expires_us < $4 \
             RETURNING fencing",
        )
        .bind(name)
        .bind(holder)
        .bind(now + ttl_us)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(fencing.map(|fencing| Lease {
            name: name.to_string(),
            fencing,
        }))
    }

    /// Names of unexpired leases whose name starts with `prefix`.
    pub async fn live_leases(&self, prefix: &str) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT name FROM leases WHERE name LIKE $1 AND expires_us >= $2 ORDER BY name",
        )
        .bind(format!("{prefix}%"))
        .bind(now_us())
        .fetch_all(&self.pool)
        .await?)
    }

    /// Gives the lease up (on clean shutdown) so a successor need not wait.
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<()> {
        sqlx::query("UPDATE leases SET expires_us = 0 WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::store::Store;

    #[tokio::test]
    async fn one_holder_at_a_time_and_fencing_grows_on_takeover() {
        let store = Store::in_memory().await;
        let a = store
            .acquire_lease("socket", "a", 60_000_000)
            .await
            .unwrap()
            .unwrap();
        assert!(store
            .acquire_lease("socket", "b", 60_000_000)
            .await
            .unwrap()
            .is_none());
        let renewed = store
            .acquire_lease("socket", "a", 60_000_000)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            renewed.fencing, a.fencing,
            "renewal keeps the fencing number"
        );
        store.release_lease("socket", "a").await.unwrap();
        let b = store
            .acquire_lease("socket", "b", 60_000_000)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(b.fencing, a.fencing + 1);
        assert!(store
            .acquire_lease("socket", "a", 60_000_000)
            .await
            .unwrap()
            .is_none());
    }
}
