//! TAU's one client for Twitch's API, used by the relay and the operator.
//!
//! Both talk to Twitch with the same few calls (an app token, a user lookup,
//! listing, creating and deleting EventSub subscriptions, conduits). Two
//! copies of that code had already begun to disagree (which subscription
//! statuses count as healthy, how a 429 is read), so it lives here once.
//! Each side keeps its own error type and maps [`Error`] into it.
//!
//! Layout:
//! - [`error`]: [`Error`], what can go wrong talking to Twitch.
//! - [`client`]: [`Client`], the HTTP side: URLs with percent-encoded path
//!   segments, `Client-Id` and bearer token, one renew-and-retry on 401,
//!   429 read as [`Error::RateLimited`] with Twitch's `Ratelimit-Reset`,
//!   and an optional [`Observer`] (metrics) told of every request.
//! - [`auth`]: the [`Auth`] seam (which token a request carries and how to
//!   renew it), app tokens by client credentials cached per client id
//!   ([`AppTokens`], [`AppAuth`]).
//! - [`oauth`]: the calls to Twitch's OAuth server (client credentials,
//!   refresh, code exchange, validate, revoke). Storing user tokens is the
//!   relay's business.
//! - [`helix`]: the typed Helix calls (users, EventSub subscriptions with
//!   pagination, conduits and shards).
//! - [`chat`]: sending a chat message (`POST /chat/messages`).
//! - [`plan`]: pure: which listed subscriptions are ours, which to keep,
//!   create and delete, with the one definition of a healthy status.

pub mod auth;
pub mod chat;
pub mod client;
pub mod error;
pub mod helix;
pub mod oauth;
pub mod plan;

pub use auth::{AppAuth, AppTokens, Auth, Credentials};
pub use chat::{ChatSent, DropReason};
pub use client::{Client, Observer};
pub use error::{Error, Result};
pub use helix::{Created, User};
