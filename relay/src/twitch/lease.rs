//! Holding a lease from the shared store, renewed in the background.
//!
//! Used wherever exactly one replica may act: the EventSub WebSocket
//! session (user-token transport), the conduit manager, each conduit shard.
//! A holder that cannot renew for a whole lifetime is told through `lost`
//! and must stop acting; a successor takes the expired lease.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::app::AppState;

/// Lease lifetime: a dead holder is replaced within this plus one renewal,
/// inside Twitch's 10 s keepalive window.
pub const LEASE_TTL: Duration = Duration::from_secs(6);
/// How often holders renew (and standbys retry).
pub const LEASE_RENEW: Duration = Duration::from_secs(2);

/// A lease this replica holds.
#[derive(Debug)]
pub struct HeldLease {
    /// Lease name.
    pub name: String,
    /// Fires if the lease was lost (taken over, or not renewable).
    pub lost: CancellationToken,
    stop: CancellationToken,
}

impl HeldLease {
    /// Takes `name` for this replica if free (or already ours), and keeps renewing it.
    pub async fn take(app: &AppState, name: &str) -> Option<HeldLease> {
        let ttl = LEASE_TTL.as_micros() as i64;
        let holder = app.config.replica_id.clone();
        match app.store.acquire_lease(name, &holder, ttl).await {
            Ok(Some(held)) => {
                tracing::debug!(lease = name, fencing = held.fencing, "lease held");
                let lease = HeldLease {
                    name: name.to_string(),
                    lost: CancellationToken::new(),
                    stop: CancellationToken::new(),
                };
                let (store, name, lost, stop) = (
                    app.store.clone(),
                    name.to_string(),
                    lease.lost.clone(),
                    lease.stop.clone(),
                );
                tokio::spawn(async move {
                    let mut renewed = tokio::time::Instant::now();
                    loop {
                        tokio::select! {
                            _ = stop.cancelled() => return,
                            _ = tokio::time::sleep(LEASE_RENEW) => {}
                        }
                        match store.acquire_lease(&name, &holder, ttl).await {
                            Ok(Some(_)) => renewed = tokio::time::Instant::now(),
                            Ok(None) => {
                                tracing::warn!(lease = %name, "another replica took the lease");
                                lost.cancel();
                                return;
                            }
                            Err(err) if renewed.elapsed() >= LEASE_TTL - LEASE_RENEW => {
                                tracing::warn!(lease = %name, error = %err, "cannot renew the lease; giving it up");
                                lost.cancel();
                                return;
                            }
                            Err(err) => {
                                tracing::warn!(lease = %name, error = %err, "lease renewal failed; retrying")
                            }
                        }
                    }
                });
                Some(lease)
            }
            Ok(None) => None,
            Err(err) => {
                tracing::warn!(lease = name, error = %err, "cannot take the lease");
                None
            }
        }
    }

    /// Stops renewing; on shutdown or loss also expires it so a successor need not wait.
    pub async fn release(self, app: &AppState) {
        self.stop.cancel();
        if app.shutdown.is_cancelled() || self.lost.is_cancelled() {
            let _ = app
                .store
                .release_lease(&self.name, &app.config.replica_id)
                .await;
        }
    }
}

impl Drop for HeldLease {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Names of unexpired leases starting with `prefix` (e.g. the shards in use).
pub async fn live(app: &AppState, prefix: &str) -> Vec<String> {
    app.store.live_leases(prefix).await.unwrap_or_default()
}
