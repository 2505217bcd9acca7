//! The conduit transport: subscriptions belong to a conduit, and every
//! replica's EventSub WebSocket session is one of its shards.
//!
//! - Each replica claims the lowest free shard index (a lease per shard),
//!   grows the conduit if it has fewer shards, and assigns its session to
//!   that shard within 10 s of the welcome (again after a reconnect).
//! - One replica, the manager (a lease), creates the conduit once (its id
//!   is kept in the shared store), keeps `shard_count` equal to the shards
//!   in use, and reconciles the app-token subscriptions that target it
//!   (plus `conduit.shard.disabled`). A replica restart loses nothing but
//!   its shard assignment: the subscriptions live on the conduit.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use super::{
    app_subs::{self, Target},
    helix::TokenKind,
    lease::{self, HeldLease},
    TwitchError,
};
use crate::app::AppState;

/// Settings key of the conduit id.
const CONDUIT_SETTING: &str = "conduit_id";
/// Lease of the replica that manages the conduit and its subscriptions.
const MANAGER_LEASE: &str = "conduit-manager";
/// Prefix of the per-shard leases (`conduit-shard:00007`).
const SHARD_LEASE: &str = "conduit-shard:";
/// Most shards a fleet claims (Twitch allows 20,000 per conduit).
const MAX_SHARDS: usize = 1000;
/// How often the manager re-checks shard count and subscriptions.
const MANAGE_EVERY: Duration = Duration::from_secs(5);

fn shard_lease(index: usize) -> String {
    format!("{SHARD_LEASE}{index:05}")
}

/// Starts the manager loop and this replica's shard session.
pub fn spawn(app: AppState) {
    tokio::spawn(manage(app.clone()));
    super::eventsub_ws::spawn_shard(app);
}

async fn manage(app: AppState) {
    loop {
        if let Some(held) = HeldLease::take(&app, MANAGER_LEASE).await {
            tracing::info!("managing the conduit");
            while !held.lost.is_cancelled() && !app.shutdown.is_cancelled() {
                if let Err(err) = manage_once(&app).await {
                    tracing::warn!(error = %err, "conduit management failed");
                    app.twitch.update(|s| s.last_error = Some(err.to_string()));
                }
                tokio::select! {
                    _ = app.shutdown.cancelled() => break,
                    _ = held.lost.cancelled() => break,
                    _ = tokio::time::sleep(MANAGE_EVERY) => {}
                }
            }
            held.release(&app).await;
        }
        tokio::select! {
            _ = app.shutdown.cancelled() => return,
            _ = tokio::time::sleep(lease::LEASE_RENEW) => {}
        }
    }
}

/// One management pass: conduit exists, shard count fits, subscriptions converge.
pub async fn manage_once(app: &AppState) -> Result<(), TwitchError> {
    let conduit_id = ensure_conduit(app).await?;
    let in_use = lease::live(app, SHARD_LEASE).await;
    let wanted = in_use
        .iter()
        .filter_map(|name| name.strip_prefix(SHARD_LEASE)?.parse::<usize>().ok())
        .max()
        .map_or(1, |highest| highest + 1);
    if shard_count(app, &conduit_id).await? != Some(wanted) {
        set_shard_count(app, &conduit_id, wanted).await?;
        tracing::info!(shards = wanted, "conduit resized to the shards in use");
    }
    let report = app_subs::reconcile(app, &Target::Conduit { conduit_id }).await;
    app_subs::report(app, report);
    Ok(())
}

/// The conduit's id, creating the conduit if the stored one is gone.
pub async fn ensure_conduit(app: &AppState) -> Result<String, TwitchError> {
    let (_, listed) = app
        .twitch
        .helix
        .json(Method::GET, "eventsub/conduits", None, TokenKind::App)
        .await?;
    let existing: Vec<String> = listed["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["id"].as_str().map(str::to_string))
        .collect();
    if let Some(id) = app.store.setting(CONDUIT_SETTING).await? {
        if existing.contains(&id) {
            return Ok(id);
        }
        tracing::warn!(conduit_id = %id, "stored conduit no longer exists at Twitch; creating a new one");
    }
    let (_, created) = app
        .twitch
        .helix
        .json(
            Method::POST,
            "eventsub/conduits",
            Some(&json!({"shard_count": 1})),
            TokenKind::App,
        )
        .await?;
    let id = created["data"][0]["id"]
        .as_str()
        .ok_or_else(|| TwitchError::Socket("conduit creation returned no id".into()))?
        .to_string();
    app.store.set_setting(CONDUIT_SETTING, &id).await?;
    tracing::info!(conduit_id = %id, "created the conduit");
    Ok(id)
}

async fn shard_count(app: &AppState, conduit_id: &str) -> Result<Option<usize>, TwitchError> {
    let (_, listed) = app
        .twitch
        .helix
        .json(Method::GET, "eventsub/conduits", None, TokenKind::App)
        .await?;
    Ok(listed["data"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["id"] == conduit_id)
        .and_then(|c| c["shard_count"].as_u64())
        .map(|n| n as usize))
}

async fn set_shard_count(
    app: &AppState,
    conduit_id: &str,
    count: usize,
) -> Result<(), TwitchError> {
    let body = json!({"id": conduit_id, "shard_count": count});
    app.twitch
        .helix
        .json(
            Method::PATCH,
            "eventsub/conduits",
            Some(&body),
            TokenKind::App,
        )
        .await?;
    Ok(())
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
    let mut claimed = None;
    for index in 0..MAX_SHARDS {
        if let Some(lease) = HeldLease::take(app, &shard_lease(index)).await {
            claimed = Some(Shard { index, lease });
            break;
        }
    }
    let shard =
        claimed.ok_or_else(|| TwitchError::Socket(format!("all {MAX_SHARDS} shards are taken")))?;
    if shard_count(app, &conduit_id).await?.unwrap_or(0) <= shard.index {
        set_shard_count(app, &conduit_id, shard.index + 1).await?;
    }
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

/// Points shard `index` at `session_id` (after a welcome or a reconnect).
pub async fn reassign(app: &AppState, index: usize, session_id: &str) -> Result<(), TwitchError> {
    let conduit_id = wait_for_conduit(app).await?;
    assign(app, &conduit_id, index, session_id).await
}

async fn assign(
    app: &AppState,
    conduit_id: &str,
    index: usize,
    session_id: &str,
) -> Result<(), TwitchError> {
    let body = json!({
        "conduit_id": conduit_id,
        "shards": [{"id": index.to_string(), "transport": {"method": "websocket", "session_id": session_id}}],
    });
    let (_, answer) = app
        .twitch
        .helix
        .json(
            Method::PATCH,
            "eventsub/conduits/shards",
            Some(&body),
            TokenKind::App,
        )
        .await?;
    match answer["errors"].as_array() {
        Some(errors) if !errors.is_empty() => Err(TwitchError::Socket(format!(
            "shard {index} not assigned: {}",
            Value::from(errors.clone())
        ))),
        _ => Ok(()),
    }
}

/// The conduit id once the manager has created it (waits up to 8 s).
async fn wait_for_conduit(app: &AppState) -> Result<String, TwitchError> {
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
