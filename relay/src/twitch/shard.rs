//! This replica's conduit shard, Twitch side.
//!
//! Every replica runs one EventSub WebSocket session ([`crate::ingest::socket`])
//! and makes it a shard of the fleet's conduit: it claims the lowest free
//! shard index (a lease per index), grows the conduit if needed and
//! assigns the session to that shard within 10 s of the welcome, and again
//! after each reconnect hand-over (shards, unlike WebSocket subscriptions,
//! do not follow a session). Every assignment first proves (fencing
//! number) that the index is still this replica's, so a replica that was
//! presumed dead never points a successor's shard at its own session.

use futures_util::future::BoxFuture;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::{
    conduit::{set_shard_count, shard_count, wait_for_conduit, SHARD_LEASE},
    lease::HeldLease,
    websocket::socket_ingest,
    TwitchError,
};
use crate::{
    app::AppState,
    ingest::socket::{self, Binding, Welcome},
};

/// Most shards a fleet claims (Twitch allows 20,000 per conduit).
const MAX_SHARDS: usize = 1000;

fn shard_lease(index: usize) -> String {
    format!("{SHARD_LEASE}{index:05}")
}

/// Starts this replica's shard session; it runs until shutdown. Returns
/// the token that fires once its pipeline is drained.
pub fn spawn(app: AppState) -> CancellationToken {
    let ctx = socket_ingest(&app);
    let drained = ctx.pipeline.drained();
    tokio::spawn(socket::run(ctx, ShardSocket { app, shard: None }));
    drained
}

/// A shard this replica holds.
#[derive(Debug)]
pub struct Shard {
    /// Shard id (index).
    pub index: usize,
    /// The lease on that index.
    pub lease: HeldLease,
}

/// Claims the lowest free shard for `session_id` and assigns the session to it.
pub async fn claim_shard(app: &AppState, session_id: &str) -> Result<Shard, TwitchError> {
    let conduit_id = wait_for_conduit(app).await?;
    let leases = app.leases();
    let mut claimed = None;
    for index in 0..MAX_SHARDS {
        if let Some(lease) = leases.try_take(&shard_lease(index)).await? {
            claimed = Some(Shard { index, lease });
            break;
        }
    }
    let shard =
        claimed.ok_or_else(|| TwitchError::Socket(format!("all {MAX_SHARDS} shards are taken")))?;
    if shard_count(app, &conduit_id).await?.unwrap_or(0) <= shard.index {
        set_shard_count(app, &conduit_id, shard.index + 1).await?;
    }
    shard.lease.verify().await?;
    assign(app, &conduit_id, shard.index, session_id).await?;
    tracing::info!(
        shard = shard.index,
        session_id,
        "session assigned to conduit shard"
    );
    app.twitch.update(|s| {
        s.state = "connected".into();
        s.session_id = Some(session_id.to_string());
        s.last_error = None;
    });
    Ok(shard)
}

/// Points `shard` at `session_id` after a reconnect, if still ours.
pub async fn reassign(app: &AppState, shard: &Shard, session_id: &str) -> Result<(), TwitchError> {
    let conduit_id = wait_for_conduit(app).await?;
    shard.lease.verify().await?;
    assign(app, &conduit_id, shard.index, session_id).await
}

async fn assign(
    app: &AppState,
    conduit_id: &str,
    index: usize,
    session_id: &str,
) -> Result<(), TwitchError> {
    let transport = json!({"method": "websocket", "session_id": session_id});
    let errors = app
        .twitch
        .helix
        .assign_shard(conduit_id, index, transport)
        .await?;
    if errors.is_empty() {
        Ok(())
    } else {
        Err(TwitchError::Socket(format!(
            "shard {index} not assigned: {}",
            Value::from(errors)
        )))
    }
}

/// Binding of a conduit shard session.
struct ShardSocket {
    app: AppState,
    shard: Option<Shard>,
}

impl Binding for ShardSocket {
    fn name(&self) -> &'static str {
        "conduit shard"
    }

    fn acquire(&mut self) -> BoxFuture<'_, bool> {
        // Every replica is a shard; the index is claimed after the welcome.
        Box::pin(async { !self.app.shutdown.is_cancelled() })
    }

    fn bind<'a>(&'a mut self, welcome: &'a Welcome) -> BoxFuture<'a, Result<(), TwitchError>> {
        Box::pin(async move {
            self.shard = Some(claim_shard(&self.app, &welcome.session_id).await?);
            Ok(())
        })
    }

    fn rebind<'a>(&'a mut self, welcome: &'a Welcome) -> BoxFuture<'a, Result<(), TwitchError>> {
        Box::pin(async move {
            let shard = self
                .shard
                .as_ref()
                .ok_or_else(|| TwitchError::Socket("no conduit shard held".into()))?;
            reassign(&self.app, shard, &welcome.session_id).await
        })
    }

    fn lost(&self) -> CancellationToken {
        self.shard
            .as_ref()
            .map(|s| s.lease.lost.clone())
            .unwrap_or_default()
    }

    fn release(&mut self, expire: bool) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if let Some(shard) = self.shard.take() {
                shard.lease.release(expire).await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use tau_fake_twitch::FakeTwitch;

    use super::*;
    use crate::twitch::lease::LeaseError;

    /// A replica whose shard lease was taken over must not point the
    /// successor's shard at its own session: the fencing check refuses
    /// before any request reaches Twitch.
    #[tokio::test]
    async fn a_stale_shard_holder_assigns_nothing() {
        let fake = FakeTwitch::start().await;
        let app = crate::twitch::test_app(&fake).await;
        app.store.set_setting("conduit_id", "c1").await.unwrap();
        let lease = app.leases().take(&shard_lease(0)).await.unwrap();
        let shard = Shard { index: 0, lease };
        app.store
            .take_over_lease(&shard_lease(0), "another-replica")
            .await
            .unwrap();
        let err = reassign(&app, &shard, "session-1").await.unwrap_err();
        assert!(
            matches!(err, TwitchError::Lease(LeaseError::Lost(_))),
            "{err}"
        );
        assert!(
            fake.requests()
                .iter()
                .all(|r| !r.path.contains("conduits/shards")),
            "no shard assignment was sent"
        );
        assert!(shard.lease.lost.is_cancelled(), "the loss is noticed");
    }
}
