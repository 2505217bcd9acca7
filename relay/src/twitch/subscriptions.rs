//! Which EventSub subscriptions the relay wants: shared with the operator,
//! so this module re-exports [`tau_eventsub::subscriptions`].

pub use tau_eventsub::subscriptions::*;
