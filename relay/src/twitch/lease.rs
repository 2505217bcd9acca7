//! Holding a lease from the shared store, renewed in the background.
//!
//! Used wherever exactly one replica may act: the EventSub WebSocket
//! session (user-token transport), the conduit manager, each conduit shard.
//!
//! Losing a lease and being unable to renew it are different things:
//! - `lost` fires only when another replica has really taken the lease (a
//!   renewal answered "held by someone else"). A renewal that fails because
//!   the database is down is retried: while the database is down nobody
//!   else can take the lease either, so the holder keeps its socket and
//!   keeps receiving (the events wait in the socket pipeline).
//! - But a holder that has not renewed for a full lifetime cannot know
//!   whether a successor took over, so it must not *act* (create
//!   subscriptions, assign conduit shards): [`HeldLease::verify`] refuses
//!   unless the last renewal is younger than the lifetime AND the database
//!   confirms, with the fencing number, that the lease is still this
//!   replica's.
//!
//! Every renewal is bounded by the renewal interval, so a pool waiting for
//! a connection cannot stretch one renewal past the lifetime.

use std::sync::{Arc, Mutex};

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::{store::Store, timings::Timings};

/// Why a lease may not be acted on.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// No renewal succeeded for a whole lifetime: a successor may hold it.
    #[error("lease {0} not renewed for a whole lifetime; not acting on it")]
    Stale(String),
    /// The database says another holder (or a newer fencing number) has it.
    #[error("lease {0} is no longer held by this replica")]
    Lost(String),
    /// The database could not be asked.
    #[error("lease {0}: the store failed: {1}")]
    Store(String, #[source] crate::store::StoreError),
    /// The database did not answer in time.
    #[error("lease {0}: the store did not answer in time")]
    TimedOut(String),
}

/// Takes and renews leases for one replica; cheap to clone.
#[derive(Clone, Debug)]
pub struct Leases {
    store: Store,
    holder: String,
    timings: Timings,
}

impl Leases {
    /// Leases held as `holder` (the replica id) in `store`.
    pub fn new(store: Store, holder: String, timings: Timings) -> Leases {
        Leases {
            store,
            holder,
            timings,
        }
    }

    /// How often holders renew (and standbys retry).
    pub fn renew_every(&self) -> std::time::Duration {
        self.timings.lease_renew
    }

    /// Takes `name` for this replica if free (or already ours), and keeps
    /// renewing it; `None` if another replica holds it or the store failed
    /// (logged).
    pub async fn take(&self, name: &str) -> Option<HeldLease> {
        self.try_take(name).await.unwrap_or_else(|err| {
            tracing::warn!(lease = name, error = %err, "cannot take the lease");
            None
        })
    }

    /// Like [`Leases::take`], but a store failure is an error rather than
    /// "held elsewhere" (callers that scan many leases stop at once).
    pub async fn try_take(&self, name: &str) -> Result<Option<HeldLease>, LeaseError> {
        let ttl = self.timings.lease_ttl.as_micros() as i64;
        let asked = Instant::now();
        let attempt = self.store.acquire_lease(name, &self.holder, ttl);
        let held = match tokio::time::timeout(self.timings.lease_renew, attempt).await {
            Ok(Ok(Some(held))) => held,
            Ok(Ok(None)) => return Ok(None),
            Ok(Err(err)) => return Err(LeaseError::Store(name.to_string(), err)),
            Err(_) => return Err(LeaseError::TimedOut(name.to_string())),
        };
        tracing::debug!(lease = name, fencing = held.fencing, "lease held");
        let lease = HeldLease {
            name: name.to_string(),
            fencing: held.fencing,
            lost: CancellationToken::new(),
            renewed: Arc::new(Mutex::new(asked)),
            stop: CancellationToken::new(),
            leases: self.clone(),
        };
        tokio::spawn(renew(
            self.clone(),
            lease.name.clone(),
            lease.renewed.clone(),
            lease.lost.clone(),
            lease.stop.clone(),
        ));
        Ok(Some(lease))
    }

    /// Names of unexpired leases starting with `prefix` (e.g. the shards in use).
    pub async fn live(&self, prefix: &str) -> Vec<String> {
        self.store.live_leases(prefix).await.unwrap_or_default()
    }
}

/// Renews `name` every `lease_renew` until stopped or taken over. A failed
/// renewal is retried sooner (a quarter interval), so that when the
/// database returns the holder renews before a standby's next try.
async fn renew(
    leases: Leases,
    name: String,
    renewed: Arc<Mutex<Instant>>,
    lost: CancellationToken,
    stop: CancellationToken,
) {
    let ttl = leases.timings.lease_ttl.as_micros() as i64;
    let every = leases.timings.lease_renew;
    let mut wait = every;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        let asked = Instant::now();
        let attempt = leases.store.acquire_lease(&name, &leases.holder, ttl);
        match tokio::time::timeout(every, attempt).await {
            Ok(Ok(Some(_))) => {
                *renewed.lock().expect("lease clock") = asked;
                wait = every;
            }
            Ok(Ok(None)) => {
                tracing::warn!(lease = %name, "another replica took the lease");
                lost.cancel();
                return;
            }
            Ok(Err(err)) => {
                tracing::warn!(lease = %name, error = %err, "lease renewal failed; retrying");
                wait = every / 4;
            }
            Err(_) => {
                tracing::warn!(lease = %name, "lease renewal timed out; retrying");
                wait = every / 4;
            }
        }
    }
}

/// A lease this replica holds.
#[derive(Debug)]
pub struct HeldLease {
    /// Lease name.
    pub name: String,
    /// Fencing number the lease was taken with.
    pub fencing: i64,
    /// Fires if another replica took the lease over.
    pub lost: CancellationToken,
    /// When the last successful renewal was asked for (the database set the
    /// expiry after that, so the lease is surely ours until this plus the TTL).
    renewed: Arc<Mutex<Instant>>,
    stop: CancellationToken,
    leases: Leases,
}

impl HeldLease {
    /// Whether a renewal succeeded within the last lifetime.
    pub fn is_fresh(&self) -> bool {
        self.renewed.lock().expect("lease clock").elapsed() < self.leases.timings.lease_ttl
    }

    /// Proves, right before acting, that the lease is still this replica's
    /// with the fencing number it was taken with.
    pub async fn verify(&self) -> Result<(), LeaseError> {
        if self.lost.is_cancelled() {
            return Err(LeaseError::Lost(self.name.clone()));
        }
        if !self.is_fresh() {
            return Err(LeaseError::Stale(self.name.clone()));
        }
        let leases = &self.leases;
        let check = leases
            .store
            .lease_holds(&self.name, &leases.holder, self.fencing);
        match tokio::time::timeout(leases.timings.lease_renew, check).await {
            Ok(Ok(true)) => Ok(()),
            Ok(Ok(false)) => {
                self.lost.cancel();
                Err(LeaseError::Lost(self.name.clone()))
            }
            Ok(Err(err)) => Err(LeaseError::Store(self.name.clone(), err)),
            Err(_) => Err(LeaseError::TimedOut(self.name.clone())),
        }
    }

    /// Stops renewing; with `expire` (shutdown, loss) also expires the
    /// lease so a successor need not wait out its lifetime.
    pub async fn release(self, expire: bool) {
        self.stop.cancel();
        if expire || self.lost.is_cancelled() {
            let (store, holder) = (&self.leases.store, &self.leases.holder);
            let _ = tokio::time::timeout(
                self.leases.timings.lease_renew,
                store.release_lease(&self.name, holder),
            )
            .await;
        }
    }
}

impl Drop for HeldLease {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::DatabaseKind;

    fn short() -> Timings {
        Timings {
            lease_ttl: Duration::from_millis(800),
            lease_renew: Duration::from_millis(200),
            ..Timings::default()
        }
    }

    /// Waits up to 5 s for `cond`.
    async fn eventually(what: &str, cond: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !cond() {
            assert!(Instant::now() < deadline, "never: {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A renewal failure for longer than a lifetime: the lease is not lost
    /// (no successor could take it), but it may not be acted on; once the
    /// database answers again it is fresh and verifiable again. A takeover
    /// then fires `lost` and fails the fencing check.
    async fn outage_then_takeover(
        store: &Store,
        break_db: impl std::future::Future<Output = ()>,
        repair_db: impl std::future::Future<Output = ()>,
    ) {
        let leases = Leases::new(store.clone(), "a".into(), short());
        let held = leases.take("socket").await.expect("free lease");
        held.verify().await.unwrap();
        assert!(leases.take("socket").await.is_some(), "ours again");

        break_db.await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(!held.lost.is_cancelled(), "a renewal failure is not a loss");
        assert!(!held.is_fresh(), "not renewed for a lifetime");
        assert!(matches!(held.verify().await, Err(LeaseError::Stale(_))));

        repair_db.await;
        eventually("renewed after the outage", || held.is_fresh()).await;
        held.verify().await.unwrap();
        assert!(!held.lost.is_cancelled());

        store.take_over_lease("socket", "b").await.unwrap();
        assert!(matches!(held.verify().await, Err(LeaseError::Lost(_))));
        let third = Leases::new(store.clone(), "c".into(), short());
        assert!(third.take("socket").await.is_none(), "b holds it");
        assert!(
            leases.take("socket").await.is_none(),
            "a cannot take back a live lease"
        );
        eventually("the takeover noticed", || held.lost.is_cancelled()).await;
    }

    #[tokio::test]
    async fn sqlite_renewal_failure_keeps_and_takeover_loses_the_lease() {
        let dir = std::env::temp_dir().join(format!("tau-lease-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}", dir.join("tau.db").display());
        let store = Store::open(&url, DatabaseKind::Sqlite).await.unwrap();
        // A missing table makes every renewal fail, like a database outage.
        outage_then_takeover(
            &store,
            async {
                let sql = "ALTER TABLE leases RENAME TO leases_away";
                store.execute_for_tests(sql).await.unwrap()
            },
            async {
                let sql = "ALTER TABLE leases_away RENAME TO leases";
                store.execute_for_tests(sql).await.unwrap()
            },
        )
        .await;
        std::fs::remove_dir_all(dir).ok();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_renewal_failure_keeps_and_takeover_loses_the_lease() {
        let Some((pg, store)) = Store::on_throwaway_postgres("postgres_lease_outage").await else {
            return;
        };
        let pg = tokio::sync::Mutex::new(pg);
        outage_then_takeover(&store, async { pg.lock().await.stop().await }, async {
            pg.lock().await.start().await
        })
        .await;
    }
}
