//! The hub: local fan-out of encoded events to authenticated client sockets.
//!
//! One `tokio::sync::broadcast` ring holds the last `TAU_CLIENT_QUEUE`
//! events as shared `Arc`s; each client task reads it at its own pace. A
//! client that falls a whole ring behind is disconnected (it would otherwise
//! slow nobody, but silently miss events), told where to resume from.
//! Nothing a client does can block `dispatch`.

mod client;
pub mod handshake;

use std::sync::Arc;

use tokio::sync::broadcast;

pub use client::websocket_route;
pub use handshake::HANDSHAKE_TIMEOUT;

use crate::event::EncodedEvent;

/// Shared fan-out point; cheap to clone.
#[derive(Clone, Debug)]
pub struct Hub {
    tx: broadcast::Sender<Arc<EncodedEvent>>,
}

impl Hub {
    /// A hub whose clients may lag `queue` events before being dropped.
    pub fn new(queue: usize) -> Hub {
        let (tx, _) = broadcast::channel(queue);
        Hub { tx }
    }

    /// Hands an event to every connected client (never blocks).
    pub fn dispatch(&self, event: Arc<EncodedEvent>) {
        // No receivers simply means no clients: nothing to do.
        let _ = self.tx.send(event);
    }

    /// A new receiver positioned at the next dispatched event.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<EncodedEvent>> {
        self.tx.subscribe()
    }
}
