//! The conduit transport: subscriptions belong to a conduit, and every
//! replica's EventSub WebSocket session is one of its shards.
//!
//! - Each replica claims the lowest free shard index (a lease per shard),
//!   grows the conduit if it has fewer shards, and assigns its session to
//!   that shard within 10 s of the welcome (again after a reconnect); see
//!   [`super::shard`].
//! - One replica, the manager (a lease), creates the conduit once (its id
//!   is kept in the shared store), keeps `shard_count` equal to the shards
//!   in use, and reconciles the app-token subscriptions that target it
//!   (plus `conduit.shard.disabled`). A replica restart loses nothing but
//!   its shard assignment: the subscriptions live on the conduit. Each
//!   management pass first proves (fencing number) that this replica is
//!   still the manager.
//! - What the manager found in its last pass (conduit id, subscriptions,
//!   the last failure) is kept in the shared store as a [`ConduitReport`],
//!   so every replica's `/api/v1/status` shows the fleet's conduit, not only
//!   the manager's (the operator asks whichever replica its Service picks).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{
    app_subs::{self, Target},
    SubscriptionStatus, TwitchError,
};
use crate::app::AppState;

/// Settings key of the conduit id.
const CONDUIT_SETTING: &str = "conduit_id";
/// Settings key of the manager's last [`ConduitReport`].
const REPORT_SETTING: &str = "conduit_report";
/// Lease of the replica that manages the conduit and its subscriptions.
const MANAGER_LEASE: &str = "conduit-manager";
/// Prefix of the per-shard leases (`conduit-shard:00007`).
pub(super) const SHARD_LEASE: &str = "conduit-shard:";
/// How often the manager re-checks shard count and subscriptions.
const MANAGE_EVERY: Duration = Duration::from_secs(5);

/// The fleet's conduit as the manager last found it; shown by every
/// replica's status. Ids and states only, never a token.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConduitReport {
    /// The conduit's id, once created.
    pub id: Option<String>,
    /// The conduit's wanted subscriptions and Twitch's status of each.
    pub subscriptions: Vec<SubscriptionStatus>,
    /// Why the manager's last pass failed, if it did.
    pub last_error: Option<String>,
}

/// The fleet's conduit: the stored id and the manager's last report.
pub async fn report(app: &AppState) -> Result<ConduitReport, crate::store::StoreError> {
    let stored = app.store.setting(REPORT_SETTING).await?;
    let mut report: ConduitReport = stored
        .and_then(|json| serde_json::from_str(&json).ok())
        .unwrap_or_default();
    // The id setting is the truth (the report may predate a new conduit).
    report.id = app.store.setting(CONDUIT_SETTING).await?;
    Ok(report)
}

/// Starts the manager loop and this replica's shard session; returns the
/// token that fires once the shard's socket pipeline is drained.
pub fn spawn(app: AppState) -> tokio_util::sync::CancellationToken {
    tokio::spawn(manage(app.clone()));
    super::shard::spawn(app)
}

async fn manage(app: AppState) {
    let leases = app.leases();
    let mut resubscribe = app.twitch.resubscribe_requests();
    loop {
        if let Some(held) = leases.take(MANAGER_LEASE).await {
            tracing::info!("managing the conduit");
            while !held.lost.is_cancelled() && !app.shutdown.is_cancelled() {
                // Act only while provably still the manager (fencing).
                let pass = match held.verify().await {
                    Ok(()) => manage_once(&app).await,
                    Err(err) => Err(err.into()),
                };
                if let Err(err) = pass {
                    tracing::warn!(error = %err, "conduit management failed");
                    app.twitch.update(|s| s.last_error = Some(err.to_string()));
                }
                tokio::select! {
                    _ = app.shutdown.cancelled() => break,
                    _ = held.lost.cancelled() => break,
                    _ = tokio::time::sleep(MANAGE_EVERY) => {}
                    Ok(()) = resubscribe.changed() => {
                        tracing::info!("resubscribe requested: reconciling conduit subscriptions now");
                    }
                }
            }
            held.release(app.shutdown.is_cancelled()).await;
        }
        tokio::select! {
            _ = app.shutdown.cancelled() => return,
            _ = tokio::time::sleep(leases.renew_every()) => {}
        }
    }
}

/// One management pass: conduit exists, shard count fits, subscriptions
/// converge; then what it found is stored for every replica's status.
pub async fn manage_once(app: &AppState) -> Result<(), TwitchError> {
    let outcome = converge(app).await;
    let report = ConduitReport {
        id: app.store.setting(CONDUIT_SETTING).await?,
        subscriptions: app.twitch.connection().subscriptions,
        last_error: outcome.as_ref().err().map(ToString::to_string),
    };
    let json = serde_json::to_string(&report).expect("report serializes");
    // Written only when it changed: the manager passes every few seconds.
    if app.store.setting(REPORT_SETTING).await?.as_deref() != Some(json.as_str()) {
        app.store.set_setting(REPORT_SETTING, &json).await?;
    }
    outcome
}

async fn converge(app: &AppState) -> Result<(), TwitchError> {
    let conduit_id = ensure_conduit(app).await?;
    let in_use = app.leases().live(SHARD_LEASE).await;
    let wanted = in_use
        .iter()
        .filter_map(|name| name.strip_prefix(SHARD_LEASE)?.parse::<usize>().ok())
        .max()
        .map_or(1, |highest| highest + 1);
    if shard_count(app, &conduit_id).await? != Some(wanted) {
        set_shard_count(app, &conduit_id, wanted).await?;
        tracing::info!(shards = wanted, "conduit resized to the shards in use");
    }
    let report = app_subs::reconcile(app, &Target::Conduit { conduit_id }).await?;
    tracing::info!(?report, "conduit subscriptions reconciled");
    Ok(())
}

/// The conduit's id, creating the conduit if the stored one is gone.
pub async fn ensure_conduit(app: &AppState) -> Result<String, TwitchError> {
    let listed = app.twitch.helix.conduits().await?;
    let existing: Vec<String> = listed
        .iter()
        .filter_map(|c| c["id"].as_str().map(str::to_string))
        .collect();
    if let Some(id) = app.store.setting(CONDUIT_SETTING).await? {
        if existing.contains(&id) {
            return Ok(id);
        }
        tracing::warn!(conduit_id = %id, "stored conduit no longer exists at Twitch; creating a new one");
    }
    let id = app.twitch.helix.create_conduit(1).await?;
    app.store.set_setting(CONDUIT_SETTING, &id).await?;
    tracing::info!(conduit_id = %id, "created the conduit");
    Ok(id)
}

pub(super) async fn shard_count(
    app: &AppState,
    conduit_id: &str,
) -> Result<Option<usize>, TwitchError> {
    let listed = app.twitch.helix.conduits().await?;
    Ok(listed
        .iter()
        .find(|c| c["id"] == conduit_id)
        .and_then(|c| c["shard_count"].as_u64())
        .map(|n| n as usize))
}

pub(super) async fn set_shard_count(
    app: &AppState,
    conduit_id: &str,
    count: usize,
) -> Result<(), TwitchError> {
    app.twitch.helix.resize_conduit(conduit_id, count).await
}

/// The conduit id once the manager has created it (waits up to 8 s).
pub(super) async fn wait_for_conduit(app: &AppState) -> Result<String, TwitchError> {
    for _ in 0..40 {
        if let Some(id) = app.store.setting(CONDUIT_SETTING).await? {
            return Ok(id);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(TwitchError::Socket(
        "no conduit yet (is a manager running with Twitch credentials?)".into(),
    ))
}
