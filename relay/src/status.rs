//! Live runtime facts for `/api/v1/status` (and, later, `/ws/tau-status/`).

use std::sync::{
    atomic::{AtomicI64, Ordering},
    Mutex,
};

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use crate::store::Revocation;

/// What the relay knows about itself right now; shared by all tasks.
#[derive(Debug)]
pub struct StatusBoard {
    started_at: DateTime<Utc>,
    last_event_us: AtomicI64,
    last_revocation: Mutex<Option<Revocation>>,
    /// Bumped on every change, so status sockets can push updates.
    changes: watch::Sender<u64>,
}

impl Default for StatusBoard {
    fn default() -> StatusBoard {
        StatusBoard {
            started_at: Utc::now(),
            last_event_us: AtomicI64::new(0),
            last_revocation: Mutex::new(None),
            changes: watch::Sender::new(0),
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
}
