//! TAU operator (skeleton).
//!
//! Will reconcile `TwitchChannel` resources into a per-channel Secret, relay
//! Deployment, Service, Ingress and EventSub subscriptions at Twitch (see
//! the operator issue and `../shared/ARCHITECTURE.md`). Nothing is
//! implemented yet: the crate exists so the workspace has its final shape.
