//! The buffer between a Twitch socket and the store.
//!
//! A socket has no acknowledgements, so an event read from it exists only
//! in this process until it is stored. The reader must never wait for the
//! store (a stalled reader stops answering pings and Twitch drops the
//! session), so it [`Pipeline::push`]es into a bounded queue and moves on.
//! One writer task drains the queue:
//! - in arrival order: up to [`IN_FLIGHT`] writes outstanding, issued in
//!   order (`FuturesOrdered`) as a sliding window, so the batching
//!   `EventWriter` commits a burst together and in sequence while the next
//!   batch queues up behind the commit; after a failure nothing newer is
//!   issued and only the oldest event is retried until the store answers,
//!   so a recovering store sees them in order;
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
    store::{writer::MAX_BATCH, StoreError},
    timings::Timings,
};

/// Events held while the store is slow or down: at Twitch's rates for one
/// channel (a few per second at peaks) this covers minutes, and bounds
/// memory at tens of MiB of raw event JSON.
pub const BUFFER: usize = 10_000;
/// Writes outstanding at once: two of the batching writer's largest
/// batches, so a full batch ([`MAX_BATCH`]) queues up while the one before
/// it commits. With one batch's worth, the commit in progress held about
/// half the window and the next could fill only the other half: commits
/// of ~254 events, each waited for in turn.
pub const IN_FLIGHT: usize = 2 * MAX_BATCH;

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
        // Events whose write failed, oldest first: nothing newer is issued
        // until they are written (or lost), so a recovering store sees
        // them in order.
        let mut held: VecDeque<Queued> = VecDeque::new();
        let mut wait = self.retry_min;
        loop {
            if held.is_empty() {
                let Some(kept) = self.stream(&mut rx).await else {
                    return;
                };
                tracing::warn!(
                    waiting = kept.len() + rx.len(),
                    "store failed; holding socket events and retrying"
                );
                held = kept;
            }
            if self.shutdown.is_cancelled() {
                // No time left to wait for the store: account for the rest.
                rx.close();
                while let Ok(queued) = rx.try_recv() {
                    held.push_back(queued);
                }
                for queued in held.drain(..) {
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
            // While the store fails, probe with the oldest event alone.
            if held.is_empty() || self.write_round(&mut held, 1).await > 0 {
                continue;
            }
            tracing::info!(
                waiting = held.len() + rx.len(),
                "store is back; writing the held socket events"
            );
            wait = self.retry_min;
            let rest = held.len();
            self.write_round(&mut held, rest).await;
        }
    }

    /// Writes queued events as they come, keeping up to [`IN_FLIGHT`]
    /// writes outstanding (a sliding window, issued in order): the writer
    /// batches whatever is queued while it commits, so commits overlap with
    /// the next batch filling up instead of waiting for a whole round.
    /// Returns `None` once the queue is closed and drained; after a failed
    /// write, stops issuing, lets the outstanding writes finish and returns
    /// the failed events still within their patience, in order.
    async fn stream(&self, rx: &mut mpsc::Receiver<Queued>) -> Option<VecDeque<Queued>> {
        let mut in_flight = FuturesOrdered::new();
        let mut open = true;
        let mut failed: Option<VecDeque<Queued>> = None;
        loop {
            while open && failed.is_none() && in_flight.len() < IN_FLIGHT {
                match rx.try_recv() {
                    Ok(queued) => in_flight.push_back(self.write_owned(queued)),
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => open = false,
                }
            }
            if in_flight.is_empty() {
                if failed.is_some() || !open {
                    return failed;
                }
                match rx.recv().await {
                    Some(queued) => in_flight.push_back(self.write_owned(queued)),
                    None => return None,
                }
                continue;
            }
            let room = open && failed.is_none() && in_flight.len() < IN_FLIGHT;
            tokio::select! {
                biased;
                Some((queued, result)) = in_flight.next() => {
                    if let Err(err) = result {
                        self.keep_or_lose(queued, &err, failed.get_or_insert_with(VecDeque::new));
                    }
                }
                queued = rx.recv(), if room => match queued {
                    Some(queued) => in_flight.push_back(self.write_owned(queued)),
                    None => open = false,
                },
            }
        }
    }

    /// Writes the first `n` held items concurrently, issued in order;
    /// keeps the failed ones (in order) at the front unless their patience
    /// is spent. Returns how many failed.
    async fn write_round(&self, held: &mut VecDeque<Queued>, n: usize) -> usize {
        let round: FuturesOrdered<_> = held.drain(..n).map(|q| self.write_owned(q)).collect();
        let results: Vec<_> = round.collect().await;
        let mut kept = VecDeque::new();
        let mut failed = 0;
        for (queued, result) in results {
            let Err(err) = result else { continue };
            failed += 1;
            self.keep_or_lose(queued, &err, &mut kept);
        }
        for queued in kept.into_iter().rev() {
            held.push_front(queued);
        }
        failed
    }

    /// After a failed write: keeps the event for a retry, or, when its
    /// patience is spent or the relay is shutting down, counts it lost.
    fn keep_or_lose(&self, queued: Queued, err: &StoreError, kept: &mut VecDeque<Queued>) {
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
            kept.push_back(queued);
        }
    }

    /// [`Writer::write`], handing the event back with the outcome.
    ///
    /// Unconstrained by Tokio's cooperative budget: with hundreds of writes
    /// in flight the budget runs out mid-window, and a write that yields
    /// for it is woken later than the writes issued after it (deferred
    /// wake-ups run last-in first-out), reaching the writer's queue out of
    /// arrival order. Unbudgeted, each write enters that queue on its
    /// first poll, in issue order (a full queue waits in line, fairly).
    fn write_owned(
        &self,
        queued: Queued,
    ) -> impl std::future::Future<Output = (Queued, Result<(), StoreError>)> + '_ {
        tokio::task::unconstrained(async move {
            let result = self.write(&queued.item).await;
            (queued, result)
        })
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
