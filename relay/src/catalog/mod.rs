//! The EventSub catalog (shared with the operator: [`tau_eventsub::catalog`])
//! and the test events TAU builds from Twitch's example payloads.

mod testgen;

pub use tau_eventsub::catalog::{Catalog, CatalogEntry};
pub use testgen::{generate_test_event, TestBroadcaster};
