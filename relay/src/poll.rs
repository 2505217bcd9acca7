//! Noticing, within seconds, what another replica changed in the shared
//! store.
//!
//! Why polling: replicas share nothing but the database (the Redis bus is
//! optional and carries events only), so a change made on one replica (a
//! revoked token, chosen event types, a watched streamer) reaches the
//! others by each re-reading one small stored value every few seconds.
//! The replica that made the change acts at once; the poll is for the
//! others. [`spawn_every`] is that loop; [`Revision`] is the small value
//! for lists that are too big to compare (a setting that every change
//! rewrites with a fresh random value).

use std::{future::Future, time::Duration};

use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::store::{Store, StoreError};

/// Runs `tick` now and then every `period` until `shutdown`. A slow tick
/// delays the next one rather than piling up.
pub fn spawn_every<F, Fut>(period: Duration, shutdown: CancellationToken, mut tick: F)
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = interval.tick() => tick().await,
            }
        }
    });
}

/// A stored revision: a setting every change rewrites with a new random
/// value, and what this replica last saw of it.
pub struct Revision {
    store: Store,
    name: &'static str,
    /// The value last seen (`None`: not read yet; `Some(None)`: unset).
    seen: Mutex<Option<Option<String>>>,
}

impl Revision {
    /// The revision kept in setting `name`.
    pub fn new(store: Store, name: &'static str) -> Revision {
        Revision {
            store,
            name,
            seen: Mutex::new(None),
        }
    }

    /// Records a change made here: the others will see it move; this
    /// replica will not (it acted already).
    pub async fn bump(&self) -> Result<(), StoreError> {
        let mut seen = self.seen.lock().await;
        let value = Uuid::new_v4().to_string();
        self.store.set_setting(self.name, &value).await?;
        *seen = Some(Some(value));
        Ok(())
    }

    /// True if another replica changed it since the last call (the first
    /// call only learns the current value).
    pub async fn moved(&self) -> Result<bool, StoreError> {
        let mut seen = self.seen.lock().await;
        let now = self.store.setting(self.name).await?;
        let moved = seen.as_ref().is_some_and(|before| *before != now);
        *seen = Some(now);
        Ok(moved)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    };

    use super::*;

    #[tokio::test]
    async fn a_revision_moves_for_the_others_only() {
        let store = Store::in_memory().await;
        let here = Revision::new(store.clone(), "r");
        let there = Revision::new(store.clone(), "r");
        assert!(!there.moved().await.unwrap(), "the first read learns");
        here.bump().await.unwrap();
        assert!(!here.moved().await.unwrap(), "its own change");
        assert!(there.moved().await.unwrap());
        assert!(!there.moved().await.unwrap(), "seen once");
        // Another replica bumping it while this one was not looking.
        Revision::new(store.clone(), "r").bump().await.unwrap();
        assert!(here.moved().await.unwrap());
    }

    #[tokio::test]
    async fn the_loop_ticks_at_once_then_each_period_until_shutdown() {
        let ticks = Arc::new(AtomicUsize::new(0));
        let shutdown = CancellationToken::new();
        let counter = ticks.clone();
        spawn_every(Duration::from_millis(200), shutdown.clone(), move || {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
            }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(ticks.load(Ordering::SeqCst), 1, "at once");
        tokio::time::sleep(Duration::from_millis(400)).await;
        let seen = ticks.load(Ordering::SeqCst);
        assert!((2..=4).contains(&seen), "{seen} ticks");
        shutdown.cancel();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let stopped = ticks.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            ticks.load(Ordering::SeqCst),
            stopped,
            "no tick after shutdown"
        );
    }
}
