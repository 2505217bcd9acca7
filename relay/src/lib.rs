//! TAU relay: Twitch EventSub in, one authenticated websocket out.
//!
//! # Layout
//! Data flows one way:
//! ```text
//! Twitch webhook / EventSub WebSocket / conduit shard
//!     ─► ingest ─► store ─► bus ─► hub ─► /ws/twitch-events/ clients
//! REST test events / replays ──────────► bus
//! ```
//! - [`access`]: least privilege: token roles, the route table every route
//!   is registered in with its rule, the guard that enforces it, the Helix
//!   passthrough policy, and the live token view that closes sockets of
//!   revoked tokens.
//! - [`config`]: the one typed configuration (`TAU_*`, `TWITCH_*`).
//! - [`ingest`]: every Twitch transport (webhook, EventSub WebSocket
//!   sessions, conduit shards); verifies and parses Twitch messages; the
//!   only module that speaks Twitch's wire format. Dedupe key: Twitch's
//!   message id.
//! - [`store`]: events, tokens, revocations (SQLite embedded; portable SQL);
//!   [`store::writer`] batches commits and publishes after each commit.
//! - [`bus`]: carries encoded events to every replica ([`bus::LocalBus`]
//!   in embedded mode).
//! - [`hub`]: client sockets: token handshake, filters, resume, ping/pong,
//!   per-client bounded queues.
//! - [`event`]: TAU's event and its exact wire frame, encoded once.
//! - [`eventsub_server`]: TAU as an EventSub WebSocket server
//!   (`/eventsub/ws`, `/helix/eventsub/subscriptions`, `/oauth2/validate`)
//!   for bots written against Twitch's protocol.
//! - [`forwarding`]: signed webhook forwarding: stored events POSTed to
//!   webhook targets with Twitch's headers and HMAC signature, in order,
//!   retried, from a per-target cursor (`/api/v1/webhook-targets`).
//! - [`chat`]: the original's chat sockets (`/ws/irc-messages/`,
//!   `/ws/chat-bots/<login>/`) over EventSub chat, and sending chat
//!   through Helix with each sender's rate limit.
//! - [`catalog`]: EventSub types, scopes, Twitch's example payloads, test events.
//! - [`api`]: REST under `/api/v1` (TAU's paths and shapes) and its OpenAPI
//!   document (`/api/v1/openapi.json`, generated from the handlers' types).
//! - [`dashboard`]: the embedded web page.
//! - [`ops`], [`metrics`], [`status`]: health, Prometheus, runtime status.
//! - [`http_stack`]: what every request passes through: trailing-slash
//!   normalization, tracing without secrets, [`hygiene`] headers on every
//!   response (`no-store`, `nosniff`, ...), the panic backstop, a request
//!   timeout, CORS (closed unless origins are listed).
//! - [`secret`]: the key that encrypts stored Twitch tokens.
//! - [`twitch`]: Twitch API knowledge: OAuth tokens, Helix, subscriptions,
//!   leases, conduit management, the OAuth code flow and the Helix
//!   passthrough.
//! - [`streamers`]: watched streamers: other channels whose going live and
//!   offline TAU subscribes to and records (`/api/v1/streamers`,
//!   `TAU_STREAMERS`).
//! - [`poll`]: how a change made on one replica reaches the others within
//!   seconds (each re-reads one stored value).
//! - [`timings`]: every fault-handling timing (`TAU_TIMINGS`).
//! - [`app`]: state, router, server loop; [`startup`]: waiting, unready,
//!   for a database that is not reachable yet.

pub mod access;
pub mod api;
pub mod app;
pub mod bus;
pub mod catalog;
pub mod chat;
pub mod chat_bots;
pub mod config;
pub mod dashboard;
pub mod error;
pub mod event;
pub mod eventsub_server;
pub mod forwarding;
pub mod http_stack;
pub mod hub;
pub mod hygiene;
pub mod ingest;
pub mod metrics;
pub mod ops;
pub mod poll;
pub mod replicas;
pub mod secret;
pub mod startup;
pub mod status;
pub mod store;
pub mod streamers;
pub mod timings;
pub mod twitch;
