//! Delivers stored events to the local hub strictly in store order, never
//! skipping one and never stalling.
//!
//! Events reach a replica from its own writer and from other replicas via
//! Redis, so they can arrive out of order, twice, or (during a Redis
//! outage) not at all. Inserts are serialized (commit order = `seq` order),
//! so when event `s` arrives every event below `s` that will ever exist is
//! already committed. Positions still have holes: a sequence value is
//! consumed by every `ON CONFLICT DO NOTHING` (each Twitch resend) and by
//! every rolled-back batch, and events may be deleted. So a gap below `s` is
//! filled by a *bounded* read (`last < seq < s`): a successful read proves
//! which positions in the gap hold events, and only then does the sequencer
//! move past the gap. A failed read moves nothing: the events after the gap
//! are held (bounded) and the read is retried with backoff. A periodic
//! catch-up read finds whatever Redis never delivered.
//!
//! Most gaps close by themselves: under load, another replica's events
//! reach Redis a little after this replica's later ones, and arrive within
//! a millisecond or two. So a gap is read only once it has stayed open for
//! `sequencer_gap_grace` (a few milliseconds); reading at once put a store
//! round trip on nearly every commit of a busy fleet.
//!
//! The starting position is one the sequencer actually read (the newest
//! stored event, retried until the store answers), never a guess.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use tokio::{sync::mpsc, time::Instant};
use tokio_util::sync::CancellationToken;

use crate::{event::EncodedEvent, hub::Hub, store::Store, timings::Timings};

/// Queue bound in front of the sequencer; overflow is recovered from the store.
const QUEUE: usize = 8192;
/// Stored events held while a gap below them is unresolved; beyond this the
/// newest are let go (they are in the store and will be read back).
const MAX_HELD: usize = 16_384;
/// Rows per store read.
const PAGE: i64 = 500;

/// Handle for offering events; cheap to clone.
#[derive(Clone, Debug)]
pub struct Sequencer {
    tx: mpsc::Sender<Arc<EncodedEvent>>,
}

impl Sequencer {
    /// Starts the sequencer task. It positions itself after the newest
    /// stored event once the store answers; events offered meanwhile wait.
    pub fn start(
        store: Store,
        hub: Hub,
        timings: &Timings,
        shutdown: CancellationToken,
    ) -> Sequencer {
        let (tx, rx) = mpsc::channel(QUEUE);
        let state = State {
            source: store,
            hub,
            last: 0,
            held: BTreeMap::new(),
            backoff: Backoff::new(timings.store_retry_min, timings.store_retry_max),
            gap_grace: timings.sequencer_gap_grace,
        };
        tokio::spawn(state.run(rx, timings.catch_up_interval, shutdown));
        Sequencer { tx }
    }

    /// Offers an event (never blocks; a full queue drops it, and the
    /// catch-up read recovers stored ones).
    pub fn offer(&self, event: Arc<EncodedEvent>) {
        if self.tx.try_send(event).is_err() {
            tracing::warn!(
                "sequencer queue full; stored events will be caught up from the database"
            );
        }
    }
}

/// Where stored events are read back from (the store; a scripted fake in tests).
trait EventSource: Send + Sync + 'static {
    /// The newest stored position (0 when empty).
    fn newest(&self) -> impl std::future::Future<Output = crate::store::Result<i64>> + Send;
    /// Up to `limit` events with `after < seq < before`, oldest first.
    fn between(
        &self,
        after: i64,
        before: Option<i64>,
        limit: i64,
    ) -> impl std::future::Future<Output = crate::store::Result<Vec<(i64, Arc<EncodedEvent>)>>> + Send;
}

impl EventSource for Store {
    async fn newest(&self) -> crate::store::Result<i64> {
        self.max_seq().await
    }

    async fn between(
        &self,
        after: i64,
        before: Option<i64>,
        limit: i64,
    ) -> crate::store::Result<Vec<(i64, Arc<EncodedEvent>)>> {
        let rows = self.events_between(after, before, limit).await?;
        Ok(rows
            .into_iter()
            .map(|row| (row.seq, row.event.encode(Some(row.seq))))
            .collect())
    }
}

/// Exponential backoff for store retries.
#[derive(Debug)]
struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    fn new(min: Duration, max: Duration) -> Backoff {
        Backoff {
            min,
            max,
            next: min,
        }
    }

    /// The wait before the next attempt; doubles each time up to `max`.
    fn fail(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(self.max);
        wait
    }

    fn reset(&mut self) {
        self.next = self.min;
    }
}

struct State<S> {
    source: S,
    hub: Hub,
    /// Highest position delivered, or proven to hold no event.
    last: i64,
    /// Stored events above an unresolved gap, by position.
    held: BTreeMap<i64, Held>,
    backoff: Backoff,
    /// How long a gap may stay open before it is read from the store.
    gap_grace: Duration,
}

/// An event waiting for the ones below it, and since when: the gap below
/// the lowest held event has been open that long.
struct Held {
    event: Arc<EncodedEvent>,
    arrived: Instant,
}

impl<S: EventSource> State<S> {
    async fn run(
        mut self,
        mut rx: mpsc::Receiver<Arc<EncodedEvent>>,
        catch_up_interval: Duration,
        shutdown: CancellationToken,
    ) {
        // Start only from a position actually read.
        loop {
            match self.source.newest().await {
                Ok(newest) => {
                    self.last = newest;
                    self.backoff.reset();
                    break;
                }
                Err(err) => {
                    let wait = self.backoff.fail();
                    tracing::warn!(error = %err, retry_in = ?wait, "sequencer cannot read its starting position; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
        let mut tick = tokio::time::interval(catch_up_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // While set, the store failed: no read before this instant.
        let mut retry_at: Option<Instant> = None;
        loop {
            self.release_contiguous();
            // While set, a gap is open: read it from the store at this
            // instant unless the bus has filled it by then. Each gap has its
            // own grace, counted from the arrival of the event above it, so
            // after one gap is read the next, already waiting as long, is
            // read at once rather than after a grace of its own.
            let gap_read_at = self
                .held
                .first_key_value()
                .map(|(_, held)| held.arrived + self.gap_grace);
            if retry_at.is_none() && gap_read_at.is_some_and(|at| at <= Instant::now()) {
                retry_at = self.read().await;
                continue;
            }
            let far = Instant::now() + Duration::from_secs(3600);
            tokio::select! {
                _ = shutdown.cancelled() => return,
                event = rx.recv() => match event {
                    Some(event) => self.accept(event),
                    None => return,
                },
                _ = tokio::time::sleep_until(retry_at.unwrap_or(far)), if retry_at.is_some() => {
                    retry_at = self.read().await;
                }
                // The loop's top reads the gap once its grace is over.
                _ = tokio::time::sleep_until(gap_read_at.unwrap_or(far)), if gap_read_at.is_some() && retry_at.is_none() => {}
                _ = tick.tick(), if retry_at.is_none() => {
                    retry_at = self.read().await;
                }
            }
        }
    }

    /// Takes one offered event: unstored ones go out at once, stored ones
    /// are held until everything below them is accounted for.
    fn accept(&mut self, event: Arc<EncodedEvent>) {
        let Some(seq) = event.seq else {
            // Test events and replays are not stored: deliver as they come.
            self.hub.dispatch(event);
            return;
        };
        if seq <= self.last {
            return;
        }
        let arrived = Instant::now();
        self.held.insert(seq, Held { event, arrived });
        if self.held.len() > MAX_HELD {
            // The newest held event is in the store: it will be read back.
            self.held.pop_last();
        }
    }

    /// Delivers held events that directly follow `last`.
    fn release_contiguous(&mut self) {
        while let Some(entry) = self.held.first_entry() {
            if *entry.key() != self.last + 1 {
                break;
            }
            self.last = *entry.key();
            self.hub.dispatch(entry.remove().event);
        }
    }

    /// Reads the store after `last`: up to the first held event (a gap), or
    /// to the end (catch-up). Returns when to retry if the store failed.
    async fn read(&mut self) -> Option<Instant> {
        let before = self.held.first_key_value().map(|(seq, _)| *seq);
        loop {
            match self.source.between(self.last, before, PAGE).await {
                Ok(rows) => {
                    let full = rows.len() as i64 >= PAGE;
                    for (seq, event) in rows {
                        // Rows come back in order, all above `last`.
                        self.last = seq;
                        self.hub.dispatch(event);
                    }
                    if full {
                        continue;
                    }
                    if let Some(before) = before {
                        // Proven: no stored event between `last` and `before`.
                        self.last = self.last.max(before - 1);
                    }
                    self.backoff.reset();
                    return None;
                }
                Err(err) => {
                    let wait = self.backoff.fail();
                    tracing::warn!(
                        error = %err,
                        after = self.last,
                        held = self.held.len(),
                        retry_in = ?wait,
                        "sequencer cannot read the store; holding later events and retrying"
                    );
                    return Some(Instant::now() + wait);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{
        atomic::{AtomicUsize, Ordering},
        Mutex,
    };

    use super::*;
    use crate::{
        event::EventIndex,
        store::{events::tests::twitch_event, StoreError},
    };

    /// A store stand-in: rows at chosen positions (holes anywhere), reads
    /// that fail on demand, and a count of reads to catch loops.
    #[derive(Clone, Default)]
    struct Scripted {
        rows: Arc<Mutex<BTreeMap<i64, Arc<EncodedEvent>>>>,
        failures_left: Arc<AtomicUsize>,
        reads: Arc<AtomicUsize>,
    }

    impl Scripted {
        fn put(&self, seq: i64) -> Arc<EncodedEvent> {
            let event = twitch_event(&format!("m{seq}"), "channel-follow", "{}").encode(Some(seq));
            self.rows.lock().unwrap().insert(seq, event.clone());
            event
        }
        fn fail_next(&self, n: usize) {
            self.failures_left.store(n, Ordering::SeqCst);
        }
        fn failing(&self) -> bool {
            self.reads.fetch_add(1, Ordering::SeqCst);
            self.failures_left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        }
    }

    fn down() -> StoreError {
        StoreError::Malformed("database is down (scripted)".into())
    }

    impl EventSource for Scripted {
        async fn newest(&self) -> crate::store::Result<i64> {
            if self.failing() {
                return Err(down());
            }
            Ok(self
                .rows
                .lock()
                .unwrap()
                .keys()
                .last()
                .copied()
                .unwrap_or(0))
        }
        async fn between(
            &self,
            after: i64,
            before: Option<i64>,
            limit: i64,
        ) -> crate::store::Result<Vec<(i64, Arc<EncodedEvent>)>> {
            if self.failing() {
                return Err(down());
            }
            Ok(self
                .rows
                .lock()
                .unwrap()
                .range(after + 1..before.unwrap_or(i64::MAX))
                .take(limit as usize)
                .map(|(s, e)| (*s, e.clone()))
                .collect())
        }
    }

    fn timings() -> Timings {
        Timings {
            catch_up_interval: Duration::from_millis(200),
            store_retry_min: Duration::from_millis(20),
            store_retry_max: Duration::from_millis(80),
            ..Timings::default()
        }
    }

    fn start(source: Scripted, hub: &Hub) -> mpsc::Sender<Arc<EncodedEvent>> {
        start_with(source, hub, timings())
    }

    fn start_with(source: Scripted, hub: &Hub, t: Timings) -> mpsc::Sender<Arc<EncodedEvent>> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let state = State {
            source,
            hub: hub.clone(),
            last: 0,
            held: BTreeMap::new(),
            backoff: Backoff::new(t.store_retry_min, t.store_retry_max),
            gap_grace: t.sequencer_gap_grace,
        };
        tokio::spawn(state.run(rx, t.catch_up_interval, CancellationToken::new()));
        tx
    }

    async fn receive(
        rx: &mut tokio::sync::broadcast::Receiver<Arc<EncodedEvent>>,
        n: usize,
    ) -> Vec<i64> {
        let mut seqs = Vec::new();
        while seqs.len() < n {
            let event = tokio::time::timeout(Duration::from_secs(5), rx.recv())
                .await
                .unwrap_or_else(|_| panic!("only {seqs:?} delivered, wanted {n}"))
                .unwrap();
            seqs.push(event.seq.unwrap());
        }
        seqs
    }

    async fn nothing_more(rx: &mut tokio::sync::broadcast::Receiver<Arc<EncodedEvent>>) {
        let extra = tokio::time::timeout(Duration::from_millis(600), rx.recv()).await;
        assert!(
            extra.is_err(),
            "delivered twice or out of thin air: {extra:?}"
        );
    }

    /// Lets the sequencer read its starting position.
    async fn settle() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    #[tokio::test]
    async fn a_failing_gap_read_holds_later_events_and_skips_nothing() {
        let source = Scripted::default();
        let hub = Hub::new(64);
        let mut rx = hub.subscribe();
        let tx = start(source.clone(), &hub);
        settle().await;
        let _ = (source.put(1), source.put(2));
        let e3 = source.put(3);
        source.fail_next(3);
        tx.send(e3.clone()).await.unwrap();
        // Three failed reads of the gap, then it is filled: 1, 2, 3 in order.
        assert_eq!(receive(&mut rx, 3).await, [1, 2, 3]);
        // The events of the gap arriving late are not delivered again.
        let e1 = source.rows.lock().unwrap()[&1].clone();
        tx.send(e1).await.unwrap();
        tx.send(e3).await.unwrap();
        nothing_more(&mut rx).await;
    }

    // Paused clock: the 50 ms between the two sends cannot stretch past
    // the grace on a busy machine.
    #[tokio::test(start_paused = true)]
    async fn a_gap_the_bus_fills_within_the_grace_is_not_read_and_one_it_does_not_is() {
        let source = Scripted::default();
        let hub = Hub::new(64);
        let mut rx = hub.subscribe();
        let t = Timings {
            // No periodic catch-up during the test: every read is a gap's.
            catch_up_interval: Duration::from_secs(600),
            sequencer_gap_grace: Duration::from_millis(300),
            ..timings()
        };
        let tx = start_with(source.clone(), &hub, t);
        settle().await;
        let (e1, e2) = (source.put(1), source.put(2));
        let reads_before = source.reads.load(Ordering::SeqCst);
        // Another replica's event 1 arrives after this one's event 2.
        tx.send(e2).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        tx.send(e1).await.unwrap();
        assert_eq!(receive(&mut rx, 2).await, [1, 2]);
        assert_eq!(
            source.reads.load(Ordering::SeqCst),
            reads_before,
            "the store was read for a gap the bus filled"
        );
        // Event 3 never comes over the bus: read once the grace is over.
        let (_, e4) = (source.put(3), source.put(4));
        tx.send(e4).await.unwrap();
        assert_eq!(receive(&mut rx, 2).await, [3, 4]);
        assert_eq!(source.reads.load(Ordering::SeqCst), reads_before + 1);
        nothing_more(&mut rx).await;
    }

    /// Under a Redis outage every other replica's event is a gap: each is
    /// read once its own grace is over, not one grace after the gap below
    /// it was read (which capped the fleet at ~1/grace gaps a second).
    #[tokio::test(start_paused = true)]
    async fn gaps_that_opened_together_are_read_after_one_grace_not_one_each() {
        let source = Scripted::default();
        let hub = Hub::new(64);
        let mut rx = hub.subscribe();
        let grace = Duration::from_millis(300);
        let t = Timings {
            catch_up_interval: Duration::from_secs(600),
            sequencer_gap_grace: grace,
            ..timings()
        };
        let tx = start_with(source.clone(), &hub, t);
        settle().await;
        let events: Vec<_> = (1..=6).map(|seq| source.put(seq)).collect();
        let start = Instant::now();
        // Only this replica's events (2, 4, 6) come over the bus.
        for event in events.iter().skip(1).step_by(2) {
            tx.send(event.clone()).await.unwrap();
        }
        assert_eq!(receive(&mut rx, 6).await, [1, 2, 3, 4, 5, 6]);
        // Paused clock: the elapsed time is the sequencer's own waiting.
        let waited = start.elapsed();
        assert!(
            waited >= grace && waited < 2 * grace,
            "three gaps took {waited:?} with a grace of {grace:?}"
        );
        nothing_more(&mut rx).await;
    }

    #[tokio::test]
    async fn holes_below_an_event_are_proven_empty_not_looped_on() {
        let source = Scripted::default();
        let hub = Hub::new(1024);
        let mut rx = hub.subscribe();
        let tx = start(source.clone(), &hub);
        settle().await;
        // 600 holes, then an event: more than a page of nothing below it.
        let mut expected = vec![];
        for seq in (1..=2).chain([603, 700]) {
            let event = source.put(seq);
            expected.push(seq);
            if seq == 700 {
                let reads_before = source.reads.load(Ordering::SeqCst);
                tx.send(event).await.unwrap();
                assert_eq!(receive(&mut rx, 4).await, expected);
                let reads = source.reads.load(Ordering::SeqCst) - reads_before;
                assert!(reads <= 3, "gap read repeated {reads} times");
            }
        }
        // A hole right below the next event.
        let e702 = source.put(702);
        tx.send(e702).await.unwrap();
        assert_eq!(receive(&mut rx, 1).await, [702]);
        // Idle: only the periodic catch-up reads, no spinning.
        let before = source.reads.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let idle_reads = source.reads.load(Ordering::SeqCst) - before;
        assert!(idle_reads <= 7, "{idle_reads} reads in 1 s while idle");
        nothing_more(&mut rx).await;
    }

    #[tokio::test]
    async fn a_full_page_of_events_below_the_gap_is_paged_through() {
        let source = Scripted::default();
        let hub = Hub::new(4096);
        let mut rx = hub.subscribe();
        let tx = start(source.clone(), &hub);
        settle().await;
        for seq in 1..=1200 {
            source.put(seq);
        }
        let last = source.put(1300);
        tx.send(last).await.unwrap();
        let seqs = receive(&mut rx, 1201).await;
        let want: Vec<i64> = (1..=1200).chain([1300]).collect();
        assert_eq!(seqs, want);
        nothing_more(&mut rx).await;
    }

    #[tokio::test]
    async fn starts_from_a_position_it_read_even_if_the_store_is_down_at_first() {
        let source = Scripted::default();
        for seq in 1..=5 {
            source.put(seq);
        }
        source.fail_next(4);
        let hub = Hub::new(64);
        let mut rx = hub.subscribe();
        let tx = start(source.clone(), &hub);
        // Four failed reads of the starting position, then one that works.
        let deadline = Instant::now() + Duration::from_secs(5);
        while source.reads.load(Ordering::SeqCst) < 5 {
            assert!(Instant::now() < deadline, "the start was never retried");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        settle().await;
        let e6 = source.put(6);
        tx.send(e6).await.unwrap();
        // History (1-5) is not replayed to live clients; 6 arrives once.
        assert_eq!(receive(&mut rx, 1).await, [6]);
        nothing_more(&mut rx).await;
    }

    #[tokio::test]
    async fn catch_up_delivers_what_no_bus_brought_and_unstored_events_pass_through() {
        let source = Scripted::default();
        let hub = Hub::new(64);
        let mut rx = hub.subscribe();
        let tx = start(source.clone(), &hub);
        settle().await;
        source.put(1);
        source.put(4);
        // Redis lost both: the periodic catch-up finds them.
        assert_eq!(receive(&mut rx, 2).await, [1, 4]);
        let test_event = twitch_event("t", "channel-follow", "{}").encode(None);
        tx.send(test_event).await.unwrap();
        let got = tokio::time::timeout(Duration::from_secs(2), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.seq, None);
    }

    #[tokio::test]
    async fn real_store_out_of_order_and_deleted_events() {
        let store = Store::in_memory().await;
        let hub = Hub::new(64);
        let mut rx = hub.subscribe();
        let sequencer = Sequencer::start(
            store.clone(),
            hub.clone(),
            &timings(),
            CancellationToken::new(),
        );
        settle().await;
        let mut events = Vec::new();
        for id in ["a", "b", "c", "d"] {
            let event = twitch_event(id, "channel-follow", "{}");
            let seq = store
                .insert_batch(&[(&event, &EventIndex::default())])
                .await
                .unwrap()[0]
                .unwrap();
            events.push((event.id.unwrap(), event.encode(Some(seq))));
        }
        // "b" is deleted before anyone delivered it: a real hole.
        assert!(store.delete_event(events[1].0).await.unwrap());
        sequencer.offer(events[2].1.clone());
        sequencer.offer(events[0].1.clone());
        sequencer.offer(events[2].1.clone());
        let first = events[0].1.seq.unwrap();
        assert_eq!(receive(&mut rx, 3).await, [first, first + 2, first + 3]);
        nothing_more(&mut rx).await;
    }
}
