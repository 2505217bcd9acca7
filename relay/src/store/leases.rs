//! Leases: at most one replica runs a singleton job (the EventSub
//! WebSocket session, since Twitch allows 3 connections per user token;
//! the conduit manager; each conduit shard).
//!
//! A lease row names its holder and expiry; taking it over bumps a fencing
//! number, so a holder that was presumed dead can tell it lost the lease,
//! and [`Store::lease_holds`] lets it prove, right before acting, that it
//! still holds the lease with the number it was given.
//!
//! Expiry is computed on the database's clock (Postgres `clock_timestamp()`),
//! never on each replica's wall clock: replicas whose clocks disagree by
//! seconds would otherwise take a live lease from each other, or keep a dead
//! one. SQLite is embedded in one process, so its local clock is the
//! database's clock.

use super::{now_us, Result, Store};
use crate::config::DatabaseKind;

/// A held lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// Lease name.
    pub name: String,
    /// Fencing number: grows with every change of holder.
    pub fencing: i64,
}

/// "Now" in microseconds as the database computes it (Postgres), for SQL.
const PG_NOW_US: &str = "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::BIGINT";

impl Store {
    /// SQL for "now, in microseconds": the database's clock on Postgres, a
    /// bound parameter `$n` (the local clock) on SQLite.
    fn lease_now(&self, param: usize) -> String {
        match self.kind {
            DatabaseKind::Postgres => PG_NOW_US.to_string(),
            DatabaseKind::Sqlite => format!("${param}"),
        }
    }

    /// Takes or renews `name` for `holder` for `ttl_us`; `None` if another
    /// replica holds it and it has not expired.
    pub async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl_us: i64,
    ) -> Result<Option<Lease>> {
        let now = self.lease_now(4);
        let sql = format!(
            "INSERT INTO leases (name, holder, fencing, expires_us) VALUES ($1, $2, 1, {now} + $3) \
             ON CONFLICT (name) DO UPDATE SET \
               fencing = CASE WHEN leases.holder = excluded.holder THEN leases.fencing ELSE leases.fencing + 1 END, \
               holder = excluded.holder, expires_us = excluded.expires_us \
             WHERE leases.holder = excluded.holder OR leases.expires_us < {now} \
             RETURNING fencing"
        );
        let mut query = sqlx::query_scalar(&sql)
            .bind(name)
            .bind(holder)
            .bind(ttl_us);
        if self.kind == DatabaseKind::Sqlite {
            query = query.bind(now_us());
        }
        let fencing: Option<i64> = query.fetch_optional(&self.pool).await?;
        Ok(fencing.map(|fencing| Lease {
            name: name.to_string(),
            fencing,
        }))
    }

    /// Whether `holder` still holds `name` with fencing number `fencing`,
    /// unexpired: the check made right before acting on a lease.
    pub async fn lease_holds(&self, name: &str, holder: &str, fencing: i64) -> Result<bool> {
        let sql = format!(
            "SELECT COUNT(*) FROM leases WHERE name = $1 AND holder = $2 AND fencing = $3 \
             AND expires_us >= {}",
            self.lease_now(4)
        );
        let mut query = sqlx::query_scalar(&sql)
            .bind(name)
            .bind(holder)
            .bind(fencing);
        if self.kind == DatabaseKind::Sqlite {
            query = query.bind(now_us());
        }
        let count: i64 = query.fetch_one(&self.pool).await?;
        Ok(count == 1)
    }

    /// Names of unexpired leases whose name starts with `prefix`.
    pub async fn live_leases(&self, prefix: &str) -> Result<Vec<String>> {
        let sql = format!(
            "SELECT name FROM leases WHERE name LIKE $1 AND expires_us >= {} ORDER BY name",
            self.lease_now(2)
        );
        let mut query = sqlx::query_scalar(&sql).bind(format!("{prefix}%"));
        if self.kind == DatabaseKind::Sqlite {
            query = query.bind(now_us());
        }
        Ok(query.fetch_all(&self.pool).await?)
    }

    /// Every unexpired lease as `(name, holder)`, by name.
    pub async fn live_lease_holders(&self) -> Result<Vec<(String, String)>> {
        let sql = format!(
            "SELECT name, holder FROM leases WHERE expires_us >= {} ORDER BY name",
            self.lease_now(1)
        );
        let mut query = sqlx::query_as(&sql);
        if self.kind == DatabaseKind::Sqlite {
            query = query.bind(now_us());
        }
        Ok(query.fetch_all(&self.pool).await?)
    }

    /// Deletes the leases named `prefix…` that expired more than
    /// `expired_us` ago (released leases count as long expired).
    pub async fn forget_expired_leases(&self, prefix: &str, expired_us: i64) -> Result<()> {
        let sql = format!(
            "DELETE FROM leases WHERE name LIKE $1 AND expires_us < {} - $2",
            self.lease_now(3)
        );
        let mut query = sqlx::query(&sql)
            .bind(format!("{prefix}%"))
            .bind(expired_us);
        if self.kind == DatabaseKind::Sqlite {
            query = query.bind(now_us());
        }
        query.execute(&self.pool).await?;
        Ok(())
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

    /// Hands `name` to `holder` at once, as a takeover after expiry would
    /// (tests: a takeover without waiting out a lifetime).
    #[cfg(test)]
    pub(crate) async fn take_over_lease(&self, name: &str, holder: &str) -> Result<()> {
        sqlx::query(
            "UPDATE leases SET holder = $2, fencing = fencing + 1, expires_us = $3 WHERE name = $1",
        )
        .bind(name)
        .bind(holder)
        .bind(now_us() + 60_000_000)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Runs one statement (tests: break and repair the schema to simulate
    /// a failing database).
    #[cfg(test)]
    pub(crate) async fn execute_for_tests(&self, sql: &str) -> Result<()> {
        sqlx::query(sql).execute(&self.pool).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::store::Store;

    /// One holder at a time, fencing grows on takeover, and the fencing
    /// check refuses a stale holder.
    async fn leases_are_exclusive_and_fenced(store: &Store) {
        let a = store
            .acquire_lease("socket", "a", 60_000_000)
            .await
            .unwrap()
            .unwrap();
        assert!(store.lease_holds("socket", "a", a.fencing).await.unwrap());
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
        assert!(
            !store.lease_holds("socket", "a", a.fencing).await.unwrap(),
            "an expired lease is not held"
        );
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
        assert!(
            !store.lease_holds("socket", "a", a.fencing).await.unwrap(),
            "the stale holder is refused"
        );
        assert!(
            !store.lease_holds("socket", "b", a.fencing).await.unwrap(),
            "an old fencing number is refused"
        );
        assert!(store.lease_holds("socket", "b", b.fencing).await.unwrap());
        assert_eq!(store.live_leases("sock").await.unwrap(), vec!["socket"]);
        assert!(store.live_leases("other").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn sqlite_leases_are_exclusive_and_fenced() {
        leases_are_exclusive_and_fenced(&Store::in_memory().await).await;
    }

    #[tokio::test]
    async fn postgres_leases_are_exclusive_and_fenced() {
        let Some((_pg, store)) = Store::on_throwaway_postgres("postgres_leases_fenced").await
        else {
            return;
        };
        leases_are_exclusive_and_fenced(&store).await;
        // Expiry follows the database's clock: a lease for 60 s expires
        // about 60 s after the database's now.
        let db_now: i64 = sqlx::query_scalar(&format!("SELECT {}", super::PG_NOW_US))
            .fetch_one(&store.pool)
            .await
            .unwrap();
        let expires: i64 =
            sqlx::query_scalar("SELECT expires_us FROM leases WHERE name = 'socket'")
                .fetch_one(&store.pool)
                .await
                .unwrap();
        assert!(
            (expires - db_now - 60_000_000).abs() < 5_000_000,
            "{expires} vs {db_now}"
        );
    }
}
