//! Subscriptions Twitch revoked (kept for the status page and operators).

use serde::Serialize;
use sqlx::Row;

use super::{Result, Store};

/// One revocation notice from Twitch.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Revocation {
    /// Twitch message id (dedupe key).
    pub message_id: String,
    /// The revoked subscription's id.
    pub subscription_id: String,
    /// Its EventSub type.
    pub subscription_type: String,
    /// Its version.
    pub version: String,
    /// Why: `user_removed`, `authorization_revoked`, `notification_failures_exceeded`, `version_removed`.
    pub status: String,
    /// `webhook`, `websocket` or `conduit`.
    pub transport: String,
    /// When TAU received it, µs since epoch.
    pub received_us: i64,
}

impl Store {
    /// Records a revocation; false if this message was already recorded.
    pub async fn record_revocation(&self, r: &Revocation) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO revocations (message_id, subscription_id, subscription_type, version, status, transport, received_us) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (message_id) DO NOTHING",
        )
        .bind(&r.message_id)
        .bind(&r.subscription_id)
        .bind(&r.subscription_type)
        .bind(&r.version)
        .bind(&r.status)
        .bind(&r.transport)
        .bind(r.received_us)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The most recent revocations, newest first.
    pub async fn recent_revocations(&self, limit: i64) -> Result<Vec<Revocation>> {
        let rows = sqlx::query(
            "SELECT message_id, subscription_id, subscription_type, version, status, transport, received_us \
             FROM revocations ORDER BY received_us DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| Revocation {
                message_id: r.get("message_id"),
                subscription_id: r.get("subscription_id"),
                subscription_type: r.get("subscription_type"),
                version: r.get("version"),
                status: r.get("status"),
                transport: r.get("transport"),
                received_us: r.get("received_us"),
            })
            .collect())
    }
}
