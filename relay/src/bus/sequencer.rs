//! Delivers stored events to the local hub strictly in store order.
//!
//! Events reach a replica from its own writer and from other replicas via
//! Redis, so they can arrive out of order, twice, or (during a Redis
//! outage) not at all. Inserts are serialized (commit order = `seq` order),
//! so when event `s` arrives every event below `s` that will ever exist is
//! already committed: a gap is filled with one query. A periodic catch-up
//! query finds whatever Redis never delivered. Clients therefore see each
//! stored event once, in order, on every replica.

use std::{sync::Arc, time::Duration};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::{event::EncodedEvent, hub::Hub, store::Store};

/// Queue bound in front of the sequencer; overflow is recovered from the store.
const QUEUE: usize = 8192;
/// How often the store is checked for events nobody delivered.
pub const CATCH_UP_INTERVAL: Duration = Duration::from_secs(1);
/// Rows per catch-up query.
const PAGE: i64 = 500;

/// Handle for offering events; cheap to clone.
#[derive(Clone, Debug)]
pub struct Sequencer {
    tx: mpsc::Sender<Arc<EncodedEvent>>,
}

impl Sequencer {
    /// Starts the sequencer task, positioned after the newest stored event.
    pub async fn start(store: Store, hub: Hub, shutdown: CancellationToken) -> Sequencer {
        let last = store.max_seq().await.unwrap_or(0);
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(store, hub, rx, last, shutdown));
        Sequencer { tx }
    }

    /// Offers an event (never blocks; a full queue drops it, and the
    /// catch-up query recovers stored ones).
    pub fn offer(&self, event: Arc<EncodedEvent>) {
        if self.tx.try_send(event).is_err() {
            tracing::warn!(
                "sequencer queue full; stored events will be caught up from the database"
            );
        }
    }
}

async fn run(
    store: Store,
    hub: Hub,
    mut rx: mpsc::Receiver<Arc<EncodedEvent>>,
    mut last: i64,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(CATCH_UP_INTERVAL);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            event = rx.recv() => match event {
                Some(event) => deliver(&store, &hub, &mut last, event).await,
                None => return,
            },
            _ = tick.tick() => catch_up(&store, &hub, &mut last, i64::MAX).await,
        }
    }
}

async fn deliver(store: &Store, hub: &Hub, last: &mut i64, event: Arc<EncodedEvent>) {
    let Some(seq) = event.seq else {
        // Test events and replays are not stored: deliver as they come.
        hub.dispatch(event);
        return;
    };
    if seq <= *last {
        return;
    }
    if seq > *last + 1 {
        catch_up(store, hub, last, seq).await;
        if seq <= *last {
            return;
        }
    }
    *last = seq;
    hub.dispatch(event);
}

/// Dispatches stored events after `last` and below `before`, in order.
async fn catch_up(store: &Store, hub: &Hub, last: &mut i64, before: i64) {
    loop {
        let rows = match store.events_after(*last, PAGE).await {
            Ok(rows) => rows,
            Err(err) => {
                tracing::warn!(error = %err, "sequencer cannot read the store; will retry");
                return;
            }
        };
        let full = rows.len() as i64 == PAGE;
        for row in rows.into_iter().take_while(|r| r.seq < before) {
            *last = row.seq;
            hub.dispatch(row.event.encode(Some(row.seq)));
        }
        if !full || *last + 1 >= before {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{event::EventIndex, store::events::tests::twitch_event};

    async fn stored(store: &Store, id: &str) -> Arc<EncodedEvent> {
        let event = twitch_event(id, "channel-follow", "{}");
        let seq = store
            .insert_batch(&[(&event, &EventIndex::default())])
            .await
            .unwrap()[0]
            .unwrap();
        event.encode(Some(seq))
    }

    #[tokio::test]
    async fn out_of_order_duplicate_and_missing_events_come_out_once_in_order() {
        let store = Store::in_memory().await;
        let hub = Hub::new(64);
        let mut rx = hub.subscribe();
        let sequencer =
            Sequencer::start(store.clone(), hub.clone(), CancellationToken::new()).await;
        let e1 = stored(&store, "a").await;
        let e2 = stored(&store, "b").await;
        let e3 = stored(&store, "c").await;
        let e4 = stored(&store, "d").await;
        // e3 first (gap: 1 and 2 fetched from the store), then dupes, e4 never offered.
        sequencer.offer(e3.clone());
        sequencer.offer(e1.clone());
        sequencer.offer(e2);
        sequencer.offer(e3);
        let mut seqs = Vec::new();
        while seqs.len() < 4 {
            let event = tokio::time::timeout(Duration::from_secs(5), rx.recv())
                .await
                .unwrap()
                .unwrap();
            seqs.push(event.seq.unwrap());
        }
        assert_eq!(
            seqs,
            [
                e1.seq.unwrap(),
                e1.seq.unwrap() + 1,
                e1.seq.unwrap() + 2,
                e4.seq.unwrap()
            ]
        );
        assert!(
            tokio::time::timeout(Duration::from_millis(1500), rx.recv())
                .await
                .is_err(),
            "nothing twice"
        );
    }
}
