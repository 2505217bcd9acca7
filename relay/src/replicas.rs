//! Which replicas of the fleet are alive, and what each one holds.
//!
//! Replicas share only the database, so each one announces itself there:
//! it holds a lease named `replica:<id>`, renewed like every other lease
//! and expiring on the database's clock when the replica dies. The status
//! document lists the live ones with the singleton jobs each holds (the
//! EventSub socket, the conduit manager, conduit shards, bot sessions),
//! read from the same lease table: an operator sees at a glance how many
//! pods serve the channel and which one talks to Twitch. A replica that
//! cannot write its lease (database down) simply drops out of the list
//! until it can; nothing else depends on it.

use serde::Serialize;
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

use crate::{
    store::{Store, StoreError},
    timings::Timings,
};

/// Lease name prefix of a replica's presence.
const PRESENCE: &str = "replica:";

/// Presence leases expired this long are deleted (pods come and go with
/// new names; their rows should not pile up).
const FORGET_AFTER_US: i64 = 24 * 3600 * 1_000_000;

/// One live replica, as the status shows it.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct ReplicaStatus {
    /// The replica's name (`TAU_REPLICA_ID`, the pod name on Kubernetes).
    #[schema(example = "tau-mychannel-7d9c8-x2x4q")]
    pub id: String,
    /// This is the replica that answered.
    pub this_replica: bool,
    /// The singleton jobs it holds (lease names, e.g. `eventsub-websocket`,
    /// `conduit-manager`, `conduit-shard:0`).
    pub holds: Vec<String>,
}

/// Keeps this replica's presence lease until `shutdown`, then releases it
/// so the list shrinks at once on a clean stop.
pub fn spawn_presence(
    store: Store,
    replica_id: String,
    timings: &Timings,
    shutdown: CancellationToken,
) {
    let ttl_us = timings.lease_ttl.as_micros() as i64;
    let name = format!("{PRESENCE}{replica_id}");
    let renew = timings.lease_renew;
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(renew);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut forgot = false;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = interval.tick() => {}
            }
            if let Err(err) = store.acquire_lease(&name, &replica_id, ttl_us).await {
                tracing::debug!(error = %err, "renewing this replica's presence failed");
                continue;
            }
            if !forgot {
                forgot = store
                    .forget_expired_leases(PRESENCE, FORGET_AFTER_US)
                    .await
                    .is_ok();
            }
        }
        let _ = store.release_lease(&name, &replica_id).await;
    });
}

/// The live replicas, this one first, then by name.
pub async fn live(store: &Store, this_replica: &str) -> Result<Vec<ReplicaStatus>, StoreError> {
    let leases = store.live_lease_holders().await?;
    let mut replicas: Vec<ReplicaStatus> = leases
        .iter()
        .filter_map(|(name, holder)| {
            let id = name.strip_prefix(PRESENCE)?;
            (id == holder).then(|| ReplicaStatus {
                id: id.to_string(),
                this_replica: id == this_replica,
                holds: leases
                    .iter()
                    .filter(|(other, h)| h == holder && !other.starts_with(PRESENCE))
                    .map(|(other, _)| other.clone())
                    .collect(),
            })
        })
        .collect();
    replicas.sort_by(|a, b| (!a.this_replica, &a.id).cmp(&(!b.this_replica, &b.id)));
    Ok(replicas)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn live_replicas_list_what_each_holds_and_leave_on_shutdown() {
        let store = Store::in_memory().await;
        let timings = Timings {
            lease_renew: Duration::from_millis(50),
            ..Timings::default()
        };
        let a = CancellationToken::new();
        let b = CancellationToken::new();
        spawn_presence(store.clone(), "a".into(), &timings, a.clone());
        spawn_presence(store.clone(), "b".into(), &timings, b.clone());
        store
            .acquire_lease("eventsub-websocket", "b", 60_000_000)
            .await
            .unwrap();
        let mut seen = Vec::new();
        for _ in 0..100 {
            seen = live(&store, "b").await.unwrap();
            if seen.len() == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            seen,
            vec![
                ReplicaStatus {
                    id: "b".into(),
                    this_replica: true,
                    holds: vec!["eventsub-websocket".into()],
                },
                ReplicaStatus {
                    id: "a".into(),
                    this_replica: false,
                    holds: vec![],
                },
            ]
        );
        a.cancel();
        for _ in 0..100 {
            seen = live(&store, "b").await.unwrap();
            if seen.len() == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(seen.len(), 1, "a stopped replica leaves the list: {seen:?}");
        assert_eq!(seen[0].id, "b");
    }
}
