//! Ingest: the only place that speaks Twitch's wire format, and the home of
//! every Twitch transport.
//!
//! - [`webhook`]: `POST /twitch/eventsub` (acknowledged only once stored).
//! - [`socket`]: EventSub WebSocket sessions, for the user-token transport
//!   and as conduit shards (no acknowledgements: a pipeline holds events
//!   while the store is down).
//!
//! Each transport parses its envelope and hands events to an [`Ingest`]
//! handle ([`Ingest::notification`], [`Ingest::revocation`]), so dedupe,
//! storage and publication are one path. The handle carries only what
//! ingest needs (writer, store for revocations, metrics, status board, and
//! an [`AfterStore`] for what must follow a stored event, such as the
//! watched-streamers tracker), not the whole application state.

pub mod signature;
pub mod socket;
pub mod webhook;

use std::sync::Arc;

use serde::Deserialize;
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::{
    event::{tau_event_type, EventIndex, Origin, TauEvent, SOURCE_EVENTSUB},
    metrics::{Metrics, SourceLabel},
    status::StatusBoard,
    store::{
        now_us,
        writer::{EventWriter, WriteOutcome},
        Revocation, Store, StoreError,
    },
};

/// Acts on notifications once they are durably stored, on the replica
/// that ingested them (once per delivery, never for a duplicate). Called
/// inline on the ingest path: it must not wait (queue and return).
pub trait AfterStore: Send + Sync {
    /// Whether events of EventSub type `kind` interest it (only those are
    /// kept for [`AfterStore::stored`]).
    fn wants(&self, kind: &str) -> bool;
    /// A notification of `kind` with Twitch's `event` was stored.
    fn stored(&self, kind: &str, event: &RawValue);
}

/// What every transport needs to ingest: cheap to clone.
#[derive(Clone)]
pub struct Ingest {
    /// Batching event writer (store, then publish).
    pub writer: EventWriter,
    /// The store, for revocations.
    pub store: Store,
    /// Counters for ingested, duplicate and lost events.
    pub metrics: Arc<Metrics>,
    /// Last event and last revocation, for status pages.
    pub status: Arc<StatusBoard>,
    /// Told about each stored notification it wants (watched streamers).
    pub after_store: Option<Arc<dyn AfterStore>>,
}

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
#[derive(Debug, Clone, Deserialize)]
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

impl Ingest {
    /// Stores, deduplicates and publishes one Twitch notification.
    pub async fn notification(
        &self,
        message_id: &str,
        body: NotificationBody,
        source: &'static str,
    ) -> Result<WriteOutcome, StoreError> {
        let index = EventIndex::from_event_data(&body.event);
        // Copied only for the few types an observer wants (not per event).
        let after = self
            .after_store
            .as_ref()
            .filter(|after| after.wants(&body.subscription.kind))
            .map(|after| (after, body.subscription.kind.clone(), body.event.clone()));
        let event = TauEvent {
            // Time-ordered (v7), so the store's unique index on `id` grows
            // at its right edge: a random v4 id dirtied a random index page
            // per event, and every dirty page is written to the WAL again
            // at each commit.
            id: Some(Uuid::now_v7()),
            event_id: message_id.to_string(),
            event_type: tau_event_type(&body.subscription.kind),
            version: body.subscription.version,
            event_source: SOURCE_EVENTSUB.to_string(),
            event_data: body.event,
            created: chrono::Utc::now(),
            origin: Origin::Twitch,
        };
        let event_type = event.event_type.clone();
        let outcome = self.writer.write(event, index).await?;
        match outcome {
            WriteOutcome::Stored(_) => {
                self.metrics
                    .events_ingested
                    .get_or_create(&SourceLabel { source })
                    .inc();
                self.status.event_received();
                tracing::debug!(message_id, event_type, source, "event stored");
                if let Some((after, kind, event)) = after {
                    after.stored(&kind, &event);
                }
            }
            WriteOutcome::Duplicate => {
                self.metrics.events_duplicate.inc();
                tracing::debug!(message_id, event_type, source, "duplicate message ignored");
            }
        }
        Ok(outcome)
    }

    /// Records a revocation (once per message id) and logs it.
    pub async fn revocation(
        &self,
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
        if self.store.record_revocation(&revocation).await? {
            tracing::warn!(
                subscription_id = %revocation.subscription_id,
                subscription_type = %revocation.subscription_type,
                reason = %revocation.status,
                "Twitch revoked a subscription"
            );
            self.status.revoked(revocation);
        }
        Ok(())
    }
}
