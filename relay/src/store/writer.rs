//! The batching event writer.
//!
//! Ingest hands each event to one writer task and waits for the outcome.
//! The writer drains whatever is queued (up to [`MAX_BATCH`]) into one
//! transaction, so under load many events share a commit, and at rest an
//! event is committed at once. After the commit it publishes the new events
//! in store order, then answers each waiter: the webhook acknowledges Twitch
//! only after its event is durable.

use std::{sync::Arc, time::Instant};

use tokio::sync::{mpsc, oneshot};

use super::{Result, Store, StoreError};
use crate::{
    bus::Bus,
    event::{EventIndex, TauEvent},
    metrics::CommitMetrics,
};

/// Most events committed together.
pub const MAX_BATCH: usize = 512;
/// Queue bound between ingest and the writer (back-pressure on ingest).
const QUEUE: usize = 4096;

/// What happened to a written event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Stored at this position and published.
    Stored(i64),
    /// Its Twitch message id was already stored: nothing done.
    Duplicate,
}

struct Request {
    event: TauEvent,
    index: EventIndex,
    reply: oneshot::Sender<Result<WriteOutcome>>,
}

/// Handle to the writer task; cheap to clone.
#[derive(Clone, Debug)]
pub struct EventWriter {
    tx: mpsc::Sender<Request>,
}

impl EventWriter {
    /// Starts the writer task, which times its commits into `commits`.
    /// It ends when every handle is dropped.
    pub fn spawn(store: Store, publisher: Arc<dyn Bus>, commits: CommitMetrics) -> EventWriter {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(store, publisher, commits, rx));
        EventWriter { tx }
    }

    /// Stores `event` (deduplicated by `event_id`) and publishes it if new.
    pub async fn write(&self, event: TauEvent, index: EventIndex) -> Result<WriteOutcome> {
        let (reply, outcome) = oneshot::channel();
        self.tx
            .send(Request {
                event,
                index,
                reply,
            })
            .await
            .map_err(|_| StoreError::WriterGone)?;
        outcome.await.map_err(|_| StoreError::WriterGone)?
    }
}

async fn run(
    store: Store,
    publisher: Arc<dyn Bus>,
    commits: CommitMetrics,
    mut rx: mpsc::Receiver<Request>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        commit(
            &store,
            publisher.as_ref(),
            &commits,
            std::mem::take(&mut batch),
        )
        .await;
    }
}

async fn commit(store: &Store, publisher: &dyn Bus, commits: &CommitMetrics, batch: Vec<Request>) {
    // A Twitch resend can arrive twice in one batch: keep the first.
    let mut seen = std::collections::HashSet::new();
    let (unique, dupes): (Vec<_>, Vec<_>) = batch
        .into_iter()
        .partition(|r| seen.insert(r.event.event_id.clone()));
    let rows: Vec<_> = unique.iter().map(|r| (&r.event, &r.index)).collect();
    let started = Instant::now();
    let inserted = store.insert_batch(&rows).await;
    commits.seconds.observe(started.elapsed().as_secs_f64());
    commits.events.observe(rows.len() as f64);
    match inserted {
        Ok(seqs) => {
            for (request, seq) in unique.into_iter().zip(seqs) {
                let outcome = match seq {
                    Some(seq) => {
                        publisher.publish(request.event.encode(Some(seq)));
                        WriteOutcome::Stored(seq)
                    }
                    None => WriteOutcome::Duplicate,
                };
                let _ = request.reply.send(Ok(outcome));
            }
            for request in dupes {
                let _ = request.reply.send(Ok(WriteOutcome::Duplicate));
            }
        }
        Err(err) => {
            tracing::error!(error = %err, events = unique.len() + dupes.len(), "event batch not stored");
            let message = err.to_string();
            for request in unique.into_iter().chain(dupes) {
                let _ = request
                    .reply
                    .send(Err(StoreError::BatchFailed(message.clone())));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::{event::EncodedEvent, store::events::tests::twitch_event};

    #[derive(Default)]
    struct Recorder(Mutex<Vec<i64>>);
    impl Bus for Recorder {
        fn publish(&self, event: Arc<EncodedEvent>) {
            self.0.lock().unwrap().push(event.seq.unwrap());
        }
    }

    #[tokio::test]
    async fn concurrent_writes_share_batches_and_publish_in_order() {
        let store = Store::in_memory().await;
        let recorder = Arc::new(Recorder::default());
        let metrics = crate::metrics::Metrics::default();
        let writer = EventWriter::spawn(store.clone(), recorder.clone(), metrics.commits.clone());
        let mut tasks = Vec::new();
        for i in 0..200 {
            let writer = writer.clone();
            // Every id twice: exactly one of each pair is stored.
            let id = format!("m{}", i / 2);
            tasks.push(tokio::spawn(async move {
                let e = twitch_event(&id, "channel-follow", "{}");
                let index = EventIndex::default();
                writer.write(e, index).await.unwrap()
            }));
        }
        let mut stored = 0;
        for t in tasks {
            if matches!(t.await.unwrap(), WriteOutcome::Stored(_)) {
                stored += 1;
            }
        }
        assert_eq!(stored, 100);
        assert_eq!(store.count_events().await.unwrap(), 100);
        let published = recorder.0.lock().unwrap().clone();
        assert_eq!(published.len(), 100);
        assert!(
            published.windows(2).all(|w| w[0] < w[1]),
            "published in store order"
        );
        // Every batch was timed, and every event handed to the store
        // counted: at least the 100 stored, at most all 200 (a resend in
        // a later batch reaches the store; one in the same batch doesn't).
        let text = metrics.render();
        let value = |name: &str| -> f64 {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
                .unwrap_or_else(|| panic!("{name} missing from\n{text}"))
        };
        let batches = value("tau_event_commit_seconds_count");
        assert!(batches >= 1.0);
        assert_eq!(value("tau_event_commit_events_count"), batches);
        let events = value("tau_event_commit_events_sum");
        assert!((100.0..=200.0).contains(&events), "{events} events");
        assert!(value("tau_event_commit_seconds_sum") > 0.0);
    }
}
