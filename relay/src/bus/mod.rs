//! The bus carries encoded events to every relay replica's hub.
//!
//! Embedded mode has one process, so the bus is a direct hand-off to the
//! local [`Hub`]. With `TAU_REDIS_URL`, [`redis::RedisBus`] publishes the
//! encoded bytes once per event and each replica's single subscriber feeds
//! its local hub through a [`sequencer::Sequencer`], which delivers stored
//! events strictly in store order and fills any gap from the database.

pub mod redis;
pub mod sequencer;

use std::sync::Arc;

use crate::{event::EncodedEvent, hub::Hub};

/// Carries events to every hub.
pub trait Bus: Send + Sync + 'static {
    /// Sends one encoded event to every replica (never blocks).
    fn publish(&self, event: Arc<EncodedEvent>);
}

/// The in-process bus: this process is the only replica.
#[derive(Clone)]
pub struct LocalBus {
    hub: Hub,
}

impl LocalBus {
    /// A bus delivering straight into `hub`.
    pub fn new(hub: Hub) -> LocalBus {
        LocalBus { hub }
    }
}

impl Bus for LocalBus {
    fn publish(&self, event: Arc<EncodedEvent>) {
        self.hub.dispatch(event);
    }
}
