//! Live runtime facts for `/api/v1/status` and `/ws/tau-status/`.
//!
//! Also the relay's one shared `events_stored` count for status sockets:
//! each socket re-reads the status document every couple of seconds, and a
//! `COUNT(*)` over the whole history per socket per poll would grow with
//! both the history and the number of open dashboards. One count per relay,
//! at most [`EVENT_COUNT_MAX_AGE`] old, serves them all.

use std::{
    future::Future,
    sync::{
        atomic::{AtomicI64, Ordering},
        Mutex,
    },
    time::Duration,
};

use chrono::{DateTime, Utc};
use tokio::{sync::watch, time::Instant};

use crate::store::{Revocation, Store, StoreError};

/// How old the shared `events_stored` count may be: status sockets poll
/// every 2 s, so at most one `COUNT(*)` per relay per poll, and a socket
/// shows a count at most two polls behind.
pub const EVENT_COUNT_MAX_AGE: Duration = Duration::from_secs(2);

/// What the relay knows about itself right now; shared by all tasks.
#[derive(Debug)]
pub struct StatusBoard {
    started_at: DateTime<Utc>,
    last_event_us: AtomicI64,
    last_revocation: Mutex<Option<Revocation>>,
    /// Bumped on every change, so status sockets can push updates.
    changes: watch::Sender<u64>,
    /// The shared `events_stored` count of status sockets.
    events_stored: SharedCount,
}

impl Default for StatusBoard {
    fn default() -> StatusBoard {
        StatusBoard {
            started_at: Utc::now(),
            last_event_us: AtomicI64::new(0),
            last_revocation: Mutex::new(None),
            changes: watch::Sender::new(0),
            events_stored: SharedCount::default(),
        }
    }
}

impl StatusBoard {
    /// When this process started.
    pub fn started_at(&self) -> DateTime<Utc> {
        self.started_at
    }

    /// Notes that a new Twitch event was stored.
    pub fn event_received(&self) {
        self.last_event_us
            .store(Utc::now().timestamp_micros(), Ordering::Relaxed);
    }

    /// When the last Twitch event was stored by this process.
    pub fn last_event_at(&self) -> Option<DateTime<Utc>> {
        match self.last_event_us.load(Ordering::Relaxed) {
            0 => None,
            us => DateTime::from_timestamp_micros(us),
        }
    }

    /// Notes a revocation and tells watchers.
    pub fn revoked(&self, revocation: Revocation) {
        *self.last_revocation.lock().expect("status lock") = Some(revocation);
        self.changes.send_modify(|n| *n += 1);
    }

    /// The last revocation seen by this process.
    pub fn last_revocation(&self) -> Option<Revocation> {
        self.last_revocation.lock().expect("status lock").clone()
    }

    /// A receiver that wakes on every change.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Events in the history, counted at most [`EVENT_COUNT_MAX_AGE`] ago
    /// (one `COUNT(*)` however many status sockets ask at once).
    pub async fn events_stored(&self, store: &Store) -> Result<i64, StoreError> {
        self.events_stored
            .get(EVENT_COUNT_MAX_AGE, || store.count_events())
            .await
    }

    /// Events in the history, counted now (REST: a caller that just stored
    /// an event sees it); refreshes the shared count too.
    pub async fn events_stored_now(&self, store: &Store) -> Result<i64, StoreError> {
        self.events_stored
            .get(Duration::ZERO, || store.count_events())
            .await
    }
}

/// A count shared by many readers and refreshed by at most one of them at a
/// time: whoever finds it too old recounts while the others wait for (and
/// then reuse) that result.
#[derive(Debug, Default)]
struct SharedCount {
    /// The last count and when it was taken.
    last: tokio::sync::Mutex<Option<(Instant, i64)>>,
}

impl SharedCount {
    /// The count if it is younger than `max_age`, else `recount`'s.
    async fn get<F, Fut, E>(&self, max_age: Duration, recount: F) -> Result<i64, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<i64, E>>,
    {
        let mut last = self.last.lock().await;
        if let Some((at, count)) = *last {
            if at.elapsed() < max_age {
                return Ok(count);
            }
        }
        let count = recount().await?;
        *last = Some((Instant::now(), count));
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{atomic::AtomicUsize, Arc};

    use super::*;

    /// A recount that takes 50 ms, counts its calls, and returns that number.
    async fn slow_recount(calls: &AtomicUsize) -> Result<i64, ()> {
        let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
        Ok(n as i64)
    }

    #[tokio::test(start_paused = true)]
    async fn many_readers_share_one_count_per_max_age() {
        let shared = Arc::new(SharedCount::default());
        let calls = Arc::new(AtomicUsize::new(0));
        let read = || {
            let (shared, calls) = (shared.clone(), calls.clone());
            tokio::spawn(async move {
                shared
                    .get(EVENT_COUNT_MAX_AGE, || slow_recount(&calls))
                    .await
            })
        };
        // 100 sockets polling at once: one recount, everyone gets it.
        let readers: Vec<_> = (0..100).map(|_| read()).collect();
        for reader in readers {
            assert_eq!(reader.await.unwrap(), Ok(1));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // Still fresh: no recount.
        tokio::time::advance(EVENT_COUNT_MAX_AGE / 2).await;
        assert_eq!(read().await.unwrap(), Ok(1));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // Too old: the next reader recounts, once.
        tokio::time::advance(EVENT_COUNT_MAX_AGE).await;
        let readers: Vec<_> = (0..100).map(|_| read()).collect();
        for reader in readers {
            assert_eq!(reader.await.unwrap(), Ok(2));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_zero_max_age_always_recounts_and_a_failure_is_not_cached() {
        let shared = SharedCount::default();
        let calls = AtomicUsize::new(0);
        assert_eq!(
            shared.get(Duration::ZERO, || slow_recount(&calls)).await,
            Ok(1)
        );
        assert_eq!(
            shared.get(Duration::ZERO, || slow_recount(&calls)).await,
            Ok(2)
        );
        // A fresh exact count also serves the shared readers.
        assert_eq!(
            shared
                .get(EVENT_COUNT_MAX_AGE, || slow_recount(&calls))
                .await,
            Ok(2)
        );
        // A failed recount leaves nothing behind: the next reader retries.
        let fresh = SharedCount::default();
        assert_eq!(
            fresh.get(EVENT_COUNT_MAX_AGE, || async { Err(()) }).await,
            Err::<i64, ()>(())
        );
        assert_eq!(
            fresh
                .get(EVENT_COUNT_MAX_AGE, || slow_recount(&calls))
                .await,
            Ok(3)
        );
    }
}
