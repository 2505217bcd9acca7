//! The buffer between a Twitch socket and the store.
//!
//! A socket has no acknowledgements, so an event read from it exists only
//! in this process until it is stored. The reader must never wait for the
//! store (a stalled reader stops answering pings and Twitch drops the
//! session), so it [`Pipeline::push`]es into a bounded queue and moves on.
//! One writer task drains the queue:
//! - in arrival order: up to [`IN_FLIGHT`] writes at a time, issued in
//!   order (`FuturesOrdered`) so the batching `EventWriter` commits them
//!   together and in sequence; after a failure only the oldest event is
//!   retried until the store answers, so a recovering store sees them in
//!   order;
//! - each failed write is retried with backoff (`store_retry_min`..`max`)
//!   until the event has waited `socket_ingest_patience`;
//! - the queue belongs to the transport, not to a session, so a session
//!   ending (lease lost, close, reconnect) never drops a buffered event.
//!
//! An event dropped anyway (queue full, patience exhausted, shutdown with
//! the store down) is logged with its message id and counted in
//! `tau_events_lost_total{source}`.

use std::{collections::VecDeque, sync::Arc, time::Duration};

use futures_util::{stream::FuturesOrdered, StreamExt};
use tokio::{sync::mpsc, time::Instant};
use tokio_util::sync::CancellationToken;

use crate::{
    ingest::{Ingest, NotificationBody, SubscriptionInfo},
    metrics::{Metrics, SourceLabel},
    store::StoreError,
    timings::Timings,
};

/// Events held while the store is slow or down: at Twitch's rates for one
/// channel (a few per second at peaks) this covers minutes, and bounds
/// memory at tens of MiB of raw event JSON.
pub const BUFFER: usize = 10_000;
/// Writes issued together: enough for the writer to batch a burst into
/// one commit, few enough that one failure costs little to retry.
pub const IN_FLIGHT: usize = 64;

/// Something from the socket that must reach the store.
#[derive(Debug, Clone)]
pub enum Item {
    /// A notification's event, keyed by Twitch's message id.
    Event {
        /// Dedupe key (`<message id>` or `<message id>:<index>`).
        id: String,
        /// Subscription and raw event.
        body: NotificationBody,
    },
    /// A revocation, recorded once per message id.
    Revocation {
        /// Twitch's message id.
        id: String,
        /// The revoked subscription and its reason.
        subscription: SubscriptionInfo,
    },
}

impl Item {
    fn id(&self) -> &str {
        match self {
            Item::Event { id, .. } | Item::Revocation { id, .. } => id,
        }
    }
}

struct Queued {
    item: Item,
    arrived: Instant,
}

/// The sending side; cheap to clone. The writer task ends once every
/// handle is dropped and the queue is drained.
#[derive(Clone)]
pub struct Pipeline {
    tx: mpsc::Sender<Queued>,
    metrics: Arc<Metrics>,
    source: &'static str,
    drained: CancellationToken,
}

impl Pipeline {
    /// Starts the writer task for events from `source` (`websocket`).
    /// After `shutdown`, a write that fails is not retried.
    pub fn spawn(
        ingest: Ingest,
        timings: &Timings,
        shutdown: CancellationToken,
        source: &'static str,
    ) -> Pipeline {
        let (tx, rx) = mpsc::channel(BUFFER);
        let writer = Writer {
            ingest: ingest.clone(),
            patience: timings.socket_ingest_patience,
            retry_min: timings.store_retry_min,
            retry_max: timings.store_retry_max,
            shutdown,
            source,
        };
        let drained = CancellationToken::new();
        let done = drained.clone().drop_guard();
        tokio::spawn(async move {
            let _done = done;
            writer.run(rx).await;
        });
        Pipeline {
            tx,
            metrics: ingest.metrics,
            source,
            drained,
        }
    }

    /// Fires once the writer task has ended: every handle was dropped and
    /// every queued item was stored or logged as lost.
    pub fn drained(&self) -> CancellationToken {
        self.drained.clone()
    }

    /// Queues `item` without waiting; if the queue is full it is lost (logged).
    pub fn push(&self, item: Item) {
        let queued = Queued {
            item,
            arrived: Instant::now(),
        };
        if let Err(err) = self.tx.try_send(queued) {
            let (why, queued) = match err {
                mpsc::error::TrySendError::Full(q) => ("socket buffer full", q),
                mpsc::error::TrySendError::Closed(q) => ("socket writer stopped", q),
            };
            lost(&self.metrics, self.source, &queued.item, why);
        }
    }
}

/// Logs and counts an item that will never be stored.
fn lost(metrics: &Metrics, source: &'static str, item: &Item, why: &str) {
    match item {
        Item::Event { id, body } => {
            metrics
                .events_lost
                .get_or_create(&SourceLabel { source })
                .inc();
            tracing::error!(message_id = %id, kind = %body.subscription.kind, source, "event from Twitch lost: {why}");
        }
        Item::Revocation { id, subscription } => {
            tracing::error!(message_id = %id, subscription_id = %subscription.id, "revocation not recorded: {why}");
        }
    }
}

struct Writer {
    ingest: Ingest,
    patience: Duration,
    retry_min: Duration,
    retry_max: Duration,
    shutdown: CancellationToken,
    source: &'static str,
}

impl Writer {
    async fn run(self, mut rx: mpsc::Receiver<Queued>) {
        let mut pending: VecDeque<Queued> = VecDeque::new();
        let mut failing = false;
        let mut wait = self.retry_min;
        loop {
            if pending.is_empty() {
                let mut fresh = Vec::new();
                if rx.recv_many(&mut fresh, IN_FLIGHT).await == 0 {
                    return;
                }
                pending.extend(fresh);
            }
            while !failing && pending.len() < IN_FLIGHT {
                match rx.try_recv() {
                    Ok(queued) => pending.push_back(queued),
                    Err(_) => break,
                }
            }
            // While the store fails, probe with the oldest event alone.
            let round = if failing { 1 } else { pending.len() };
            let failed = self.write_round(&mut pending, round).await;
            if failed == 0 {
                if failing {
                    tracing::info!(
                        waiting = pending.len() + rx.len(),
                        "store is back; writing the held socket events"
                    );
                }
                failing = false;
                wait = self.retry_min;
                continue;
            }
            if !failing {
                tracing::warn!(
                    waiting = pending.len() + rx.len(),
                    "store failed; holding socket events and retrying"
                );
            }
            failing = true;
            if self.shutdown.is_cancelled() {
                // No time left to wait for the store: account for the rest.
                rx.close();
                while let Ok(queued) = rx.try_recv() {
                    pending.push_back(queued);
                }
                for queued in pending.drain(..) {
                    let why = "shutting down with the store unavailable";
                    lost(&self.ingest.metrics, self.source, &queued.item, why);
                }
                return;
            }
            tokio::select! {
                _ = self.shutdown.cancelled() => {}
                _ = tokio::time::sleep(wait) => {}
            }
            wait = (wait * 2).min(self.retry_max);
        }
    }

    /// Writes the first `n` pending items concurrently, issued in order;
    /// keeps the failed ones (in order) at the front unless their patience
    /// is spent. Returns how many failed.
    async fn write_round(&self, pending: &mut VecDeque<Queued>, n: usize) -> usize {
        let results: Vec<Result<(), StoreError>> = {
            let mut round: FuturesOrdered<_> = pending
                .iter()
                .take(n)
                .map(|q| self.write(&q.item))
                .collect();
            let mut results = Vec::with_capacity(n);
            while let Some(result) = round.next().await {
                results.push(result);
            }
            results
        };
        let mut kept = Vec::new();
        let mut failed = 0;
        for (queued, result) in pending.drain(..n).zip(results) {
            let Err(err) = result else { continue };
            failed += 1;
            if self.shutdown.is_cancelled() {
                lost(
                    &self.ingest.metrics,
                    self.source,
                    &queued.item,
                    &format!("shutting down with the store unavailable ({err})"),
                );
            } else if queued.arrived.elapsed() >= self.patience {
                let why = format!("store unavailable for {:?} ({err})", self.patience);
                lost(&self.ingest.metrics, self.source, &queued.item, &why);
            } else {
                tracing::debug!(message_id = queued.item.id(), error = %err, "socket event not stored yet");
                kept.push(queued);
            }
        }
        for queued in kept.into_iter().rev() {
            pending.push_front(queued);
        }
        failed
    }

    async fn write(&self, item: &Item) -> Result<(), StoreError> {
        match item {
            Item::Event { id, body } => self
                .ingest
                .notification(id, body.clone(), self.source)
                .await
                .map(|_| ()),
            Item::Revocation { id, subscription } => self.ingest.revocation(id, subscription).await,
        }
    }
}

#[cfg(test)]
#[path = "pipeline_tests.rs"]
mod tests;
