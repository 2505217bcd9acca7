//! Ingest: the only place that speaks Twitch's wire format.
//!
//! Each transport (webhook here; EventSub WebSocket and conduit shards
//! later) parses its envelope and calls [`ingest_notification`] or
//! [`ingest_revocation`], so dedupe, storage and publication are one path.

pub mod signature;
pub mod webhook;

use serde::Deserialize;
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::{
    app::AppState,
    event::{tau_event_type, EventIndex, Origin, TauEvent, SOURCE_EVENTSUB},
    metrics::SourceLabel,
    store::{now_us, writer::WriteOutcome, Revocation, StoreError},
};

/// The parts of Twitch's `subscription` object TAU uses.
#[derive(Debug, Clone, Deserialize)]
pub struct SubscriptionInfo {
    /// Subscription id.
    #[serde(default)]
    pub id: String,
    /// EventSub type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Version.
    pub version: String,
    /// Status (the reason, on revocations).
    #[serde(default)]
    pub status: String,
    /// Transport (method etc.).
    #[serde(default)]
    pub transport: serde_json::Value,
}

/// A notification body: `{"subscription": ..., "event": ...}`; the event
/// stays raw so it is stored byte for byte.
#[derive(Debug, Deserialize)]
pub struct NotificationBody {
    /// The subscription it belongs to.
    pub subscription: SubscriptionInfo,
    /// Twitch's event object, verbatim.
    pub event: Box<RawValue>,
}

/// A notification as it arrives: one `event`, or (drop entitlements) a
/// batch of `events`.
#[derive(Debug, Deserialize)]
pub struct IncomingNotification {
    /// The subscription it belongs to.
    pub subscription: SubscriptionInfo,
    /// The event, for ordinary notifications.
    pub event: Option<Box<RawValue>>,
    /// The events of a batched notification (`drop.entitlement.grant`).
    pub events: Option<Vec<Box<RawValue>>>,
}

impl IncomingNotification {
    /// One `(event id, body)` per TAU event. Batch entries get the id
    /// `<message id>:<index>`, so a retried batch dedupes entry by entry.
    pub fn split(self, message_id: &str) -> Result<Vec<(String, NotificationBody)>, &'static str> {
        match (self.event, self.events) {
            (Some(event), _) => Ok(vec![(
                message_id.to_string(),
                NotificationBody {
                    subscription: self.subscription,
                    event,
                },
            )]),
            (None, Some(events)) if !events.is_empty() => Ok(events
                .into_iter()
                .enumerate()
                .map(|(i, event)| {
                    let body = NotificationBody {
                        subscription: self.subscription.clone(),
                        event,
                    };
                    (format!("{message_id}:{i}"), body)
                })
                .collect()),
            _ => Err("notification has no `event` (or `events`)"),
        }
    }
}

/// Stores, deduplicates and publishes one Twitch notification.
pub async fn ingest_notification(
    app: &AppState,
    message_id: &str,
    body: NotificationBody,
    source: &'static str,
) -> Result<WriteOutcome, StoreError> {
    let index = EventIndex::from_event_data(&body.event);
    let event = TauEvent {
        id: Some(Uuid::new_v4()),
        event_id: message_id.to_string(),
        event_type: tau_event_type(&body.subscription.kind),
        version: body.subscription.version,
        event_source: SOURCE_EVENTSUB.to_string(),
        event_data: body.event,
        created: chrono::Utc::now(),
        origin: Origin::Twitch,
    };
    let event_type = event.event_type.clone();
    let outcome = app.writer.write(event, index).await?;
    match outcome {
        WriteOutcome::Stored(_) => {
            app.metrics
                .events_ingested
                .get_or_create(&SourceLabel { source })
                .inc();
            app.status.event_received();
            tracing::debug!(message_id, event_type, source, "event stored");
        }
        WriteOutcome::Duplicate => {
            app.metrics.events_duplicate.inc();
            tracing::debug!(message_id, event_type, source, "duplicate message ignored");
        }
    }
    Ok(outcome)
}

/// Records a revocation (once per message id) and logs it.
pub async fn ingest_revocation(
    app: &AppState,
    message_id: &str,
    subscription: &SubscriptionInfo,
) -> Result<(), StoreError> {
    let transport = subscription.transport["method"]
        .as_str()
        .unwrap_or("unknown")
        .to_string();
    let revocation = Revocation {
        message_id: message_id.to_string(),
        subscription_id: subscription.id.clone(),
        subscription_type: subscription.kind.clone(),
        version: subscription.version.clone(),
        status: subscription.status.clone(),
        transport,
        received_us: now_us(),
    };
    if app.store.record_revocation(&revocation).await? {
        tracing::warn!(
            subscription_id = %revocation.subscription_id,
            subscription_type = %revocation.subscription_type,
            reason = %revocation.status,
            "Twitch revoked a subscription"
        );
        app.status.revoked(revocation);
    }
    Ok(())
}
