//! What TAU knows about Twitch EventSub, shared by the relay and the
//! operator so the two can never disagree.
//!
//! - [`catalog`]: every type and version, its scopes and condition fields,
//!   the default "streamer bot" set, and Twitch's example payloads
//!   (generated from Twitch's docs into `src/data/`).
//! - [`names`]: TAU's event type names (`channel.follow` → `channel-follow`).
//! - [`subscriptions`]: resolving a list of type names, and the
//!   subscriptions (type, version, condition) a channel wants.
//!
//! Pure data and functions: no I/O, no async, two dependencies.

pub mod catalog;
pub mod names;
pub mod subscriptions;

pub use catalog::{Catalog, CatalogEntry};
pub use names::{eventsub_type, tau_event_type};
