//! Webhook targets of [`crate::forwarding`]: configuration, the delivery
//! cursor and the counters shown to operators.
//!
//! Configuration and delivery progress are written by different
//! statements ([`Store::update_webhook_target`] never touches the cursor
//! or counters, the delivery statements never touch the configuration), so
//! an edit made on the dashboard while a replica delivers loses neither.
//! The secret is stored sealed; this layer never sees it in plain text.

use serde_json::{Map, Value};
use sqlx::{any::AnyRow, Row};

use super::{now_us, Result, Store, StoreError};

/// A stored webhook target.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookTarget {
    /// TAU's id (a UUID).
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Where events are POSTed.
    pub url: String,
    /// The signing secret, sealed with the relay's key.
    pub sealed_secret: String,
    /// EventSub type names; empty: every type.
    pub event_types: Vec<String>,
    /// Fields every forwarded event must carry with these values.
    pub conditions: Map<String, Value>,
    /// Last event position handled (delivered, or skipped as not matching).
    pub cursor: i64,
    /// `manual` or `failing` when paused.
    pub paused_reason: Option<String>,
    /// Waiting for an asynchronous challenge (Helix-created targets).
    pub pending: bool,
    /// Events delivered (2xx).
    pub delivered: i64,
    /// Attempts that failed (non-2xx, timeout, connection error).
    pub failed_attempts: i64,
    /// The last failure, in words (`None` after a success).
    pub last_error: Option<String>,
    /// Start of the current run of failures.
    pub failing_since_us: Option<i64>,
    /// When the failed event is tried again.
    pub next_attempt_us: Option<i64>,
    /// Last 2xx.
    pub last_success_us: Option<i64>,
    /// Last attempt of any outcome.
    pub last_attempt_us: Option<i64>,
    /// When it was added.
    pub created_us: i64,
}

/// The configurable part of a target, as written by REST.
#[derive(Debug, Clone)]
pub struct TargetConfig {
    /// Unique name.
    pub name: String,
    /// Where events are POSTed.
    pub url: String,
    /// The signing secret, sealed.
    pub sealed_secret: String,
    /// EventSub type names; empty: every type.
    pub event_types: Vec<String>,
    /// Condition filter.
    pub conditions: Map<String, Value>,
}

const COLUMNS: &str = "id, name, url, secret, event_types, conditions, cursor_seq, paused_reason, \
    pending, delivered, failed_attempts, last_error, failing_since_us, next_attempt_us, \
    last_success_us, last_attempt_us, created_us";

fn decode(r: &AnyRow) -> Result<WebhookTarget> {
    let json = |column: &str| -> Result<Value> {
        let text: String = r.try_get(column)?;
        serde_json::from_str(&text).map_err(|e| StoreError::Malformed(format!("{column}: {e}")))
    };
    let event_types = serde_json::from_value(json("event_types")?)
        .map_err(|e| StoreError::Malformed(format!("event_types: {e}")))?;
    let Value::Object(conditions) = json("conditions")? else {
        return Err(StoreError::Malformed("conditions: not an object".into()));
    };
    Ok(WebhookTarget {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        url: r.try_get("url")?,
        sealed_secret: r.try_get("secret")?,
        event_types,
        conditions,
        cursor: r.try_get("cursor_seq")?,
        paused_reason: r.try_get("paused_reason")?,
        pending: r.try_get::<i64, _>("pending")? != 0,
        delivered: r.try_get("delivered")?,
        failed_attempts: r.try_get("failed_attempts")?,
        last_error: r.try_get("last_error")?,
        failing_since_us: r.try_get("failing_since_us")?,
        next_attempt_us: r.try_get("next_attempt_us")?,
        last_success_us: r.try_get("last_success_us")?,
        last_attempt_us: r.try_get("last_attempt_us")?,
        created_us: r.try_get("created_us")?,
    })
}

fn unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(e) if e.is_unique_violation())
}

impl Store {
    /// Every target, oldest first.
    pub async fn webhook_targets(&self) -> Result<Vec<WebhookTarget>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM webhook_targets ORDER BY created_us, id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode).collect()
    }

    /// One target.
    pub async fn webhook_target(&self, id: &str) -> Result<Option<WebhookTarget>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM webhook_targets WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(decode).transpose()
    }

    /// Adds target `id` delivering events after position `cursor`;
    /// `Duplicate` if the name is taken.
    pub async fn insert_webhook_target(
        &self,
        id: &str,
        config: &TargetConfig,
        cursor: i64,
        pending: bool,
    ) -> Result<WebhookTarget> {
        let now = now_us();
        let inserted = sqlx::query(
            "INSERT INTO webhook_targets (id, name, url, secret, event_types, conditions, \
             cursor_seq, pending, created_us, updated_us) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
        )
        .bind(id)
        .bind(&config.name)
        .bind(&config.url)
        .bind(&config.sealed_secret)
        .bind(serde_json::to_string(&config.event_types).expect("strings serialize"))
        .bind(Value::Object(config.conditions.clone()).to_string())
        .bind(cursor)
        .bind(i64::from(pending))
        .bind(now)
        .execute(&self.pool)
        .await;
        match inserted {
            Ok(_) => {}
            Err(err) if unique_violation(&err) => {
                return Err(StoreError::Duplicate(config.name.clone()))
            }
            Err(err) => return Err(err.into()),
        }
        self.webhook_target(id)
            .await?
            .ok_or_else(|| StoreError::Malformed("inserted target vanished".into()))
    }

    /// Replaces a target's configuration; false if it does not exist,
    /// `Duplicate` if the new name is taken.
    pub async fn update_webhook_target(&self, id: &str, config: &TargetConfig) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE webhook_targets SET name = $2, url = $3, secret = $4, event_types = $5, \
             conditions = $6, updated_us = $7 WHERE id = $1",
        )
        .bind(id)
        .bind(&config.name)
        .bind(&config.url)
        .bind(&config.sealed_secret)
        .bind(serde_json::to_string(&config.event_types).expect("strings serialize"))
        .bind(Value::Object(config.conditions.clone()).to_string())
        .bind(now_us())
        .execute(&self.pool)
        .await;
        match done {
            Ok(done) => Ok(done.rows_affected() == 1),
            Err(err) if unique_violation(&err) => Err(StoreError::Duplicate(config.name.clone())),
            Err(err) => Err(err.into()),
        }
    }

    /// Pauses (`Some(reason)`) or resumes (`None`) a target; resuming
    /// forgets the current run of failures, so retries start now. False if
    /// it does not exist.
    pub async fn set_webhook_paused(&self, id: &str, reason: Option<&str>) -> Result<bool> {
        let sql = if reason.is_some() {
            "UPDATE webhook_targets SET paused_reason = $2, updated_us = $3 WHERE id = $1"
        } else {
            "UPDATE webhook_targets SET paused_reason = $2, failing_since_us = NULL, \
             next_attempt_us = NULL, updated_us = $3 WHERE id = $1"
        };
        let done = sqlx::query(sql)
            .bind(id)
            .bind(reason)
            .bind(now_us())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Marks an asynchronously verified target as live (`pending` off).
    pub async fn confirm_webhook_target(&self, id: &str) -> Result<bool> {
        let done = sqlx::query("UPDATE webhook_targets SET pending = 0 WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Removes a target; false if it did not exist.
    pub async fn delete_webhook_target(&self, id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM webhook_targets WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Moves the cursor past events that do not match (never backwards).
    pub async fn skip_webhook_events(&self, id: &str, seq: i64) -> Result<()> {
        sqlx::query("UPDATE webhook_targets SET cursor_seq = $2 WHERE id = $1 AND cursor_seq < $2")
            .bind(id)
            .bind(seq)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records the delivery of the event at `seq`: the cursor moves past
    /// it and the run of failures (if any) ends.
    pub async fn webhook_delivered(&self, id: &str, seq: i64) -> Result<()> {
        let now = now_us();
        sqlx::query(
            "UPDATE webhook_targets SET cursor_seq = $2, delivered = delivered + 1, \
             last_error = NULL, failing_since_us = NULL, next_attempt_us = NULL, \
             last_success_us = $3, last_attempt_us = $3 \
             WHERE id = $1 AND cursor_seq < $2",
        )
        .bind(id)
        .bind(seq)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records a failed attempt, to be retried at `next_attempt_us`; a run
    /// of failures older than `pause_after_us` pauses the target
    /// (`failing`). Returns whether it is paused now.
    pub async fn webhook_failed(
        &self,
        id: &str,
        error: &str,
        next_attempt_us: i64,
        pause_after_us: i64,
    ) -> Result<bool> {
        let now = now_us();
        let paused: Option<Option<String>> = sqlx::query_scalar(
            "UPDATE webhook_targets SET failed_attempts = failed_attempts + 1, last_error = $2, \
             last_attempt_us = $3, next_attempt_us = $4, \
             failing_since_us = COALESCE(failing_since_us, $3), \
             paused_reason = CASE WHEN COALESCE(failing_since_us, $3) <= $3 - $5 \
               THEN 'failing' ELSE paused_reason END \
             WHERE id = $1 RETURNING paused_reason",
        )
        .bind(id)
        .bind(error)
        .bind(now)
        .bind(next_attempt_us)
        .bind(pause_after_us)
        .fetch_optional(&self.pool)
        .await?;
        Ok(matches!(paused, Some(Some(_))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(name: &str) -> TargetConfig {
        TargetConfig {
            name: name.into(),
            url: "http://127.0.0.1:1/hook".into(),
            sealed_secret: "sealed".into(),
            event_types: vec!["channel.follow".into()],
            conditions: serde_json::json!({"broadcaster_user_id": "1"})
                .as_object()
                .unwrap()
                .clone(),
        }
    }

    #[tokio::test]
    async fn targets_keep_config_and_progress_apart() {
        let store = Store::in_memory().await;
        let target = store
            .insert_webhook_target("t1", &config("a"), 7, false)
            .await
            .unwrap();
        assert_eq!(target.cursor, 7);
        assert_eq!(target.event_types, ["channel.follow"]);
        assert!(matches!(
            store
                .insert_webhook_target("t2", &config("a"), 0, false)
                .await,
            Err(StoreError::Duplicate(_))
        ));
        store.webhook_delivered(&target.id, 9).await.unwrap();
        store.webhook_delivered(&target.id, 8).await.unwrap();
        let mut changed = config("b");
        changed.event_types.clear();
        assert!(store
            .update_webhook_target(&target.id, &changed)
            .await
            .unwrap());
        let now = store.webhook_target(&target.id).await.unwrap().unwrap();
        assert_eq!((now.cursor, now.delivered), (9, 1), "older seq is ignored");
        assert_eq!(now.name, "b");
        assert!(now.event_types.is_empty());
        // A run of failures pauses once it is older than the window.
        assert!(!store
            .webhook_failed(&target.id, "500", 0, 60_000_000)
            .await
            .unwrap());
        assert!(store.webhook_failed(&target.id, "500", 0, 0).await.unwrap());
        let paused = store.webhook_target(&target.id).await.unwrap().unwrap();
        assert_eq!(paused.paused_reason.as_deref(), Some("failing"));
        assert_eq!(paused.failed_attempts, 2);
        assert!(store.set_webhook_paused(&target.id, None).await.unwrap());
        let resumed = store.webhook_target(&target.id).await.unwrap().unwrap();
        assert_eq!(resumed.paused_reason, None);
        assert_eq!(resumed.failing_since_us, None);
        assert!(store.delete_webhook_target(&target.id).await.unwrap());
        assert!(!store.delete_webhook_target(&target.id).await.unwrap());
    }
}
