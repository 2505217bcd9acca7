//! TAU operator: turns `TwitchChannel` resources into running, subscribed relays.
//!
//! The operator never holds Twitch sockets (relay pods do); it builds the
//! Kubernetes objects a channel needs and keeps its EventSub subscriptions
//! at Twitch in line with the spec.
//!
//! # Layout
//!
//! - [`crd`]: the `TwitchChannel` resource (spec, status, CEL rules);
//!   `crdgen` writes it to `crds/`.
//! - [`catalog`]: `spec.events` → wanted subscriptions (the relay's catalog).
//! - [`build`]: pure builders of the children: Secret, Deployment, Service, Ingress.
//! - [`apply`]: server-side apply when drifted, orphan removal.
//! - [`twitch`]: webhook subscriptions at Twitch, through the shared
//!   `tau-twitch` client and plan.
//! - [`relay_probe`]: what a channel's relay reports (authorization,
//!   EventSub session or conduit), read from its status API.
//! - [`status`]: observation → conditions a person can act on.
//! - [`validate`]: spec checks the API server cannot make (shared database, https).
//! - [`reconcile`]: one reconcile (apply or delete), the error policy.
//! - [`guard`]: the finalizer, only while the channel owns something at Twitch.
//! - [`cleanup`]: deletion: the conduit and webhook subscriptions at Twitch.
//! - [`user_secrets`]: the user's Secrets a relay reads (credentials, URLs).
//! - [`context`]: shared client, recorder, metrics, per-object backoff.
//! - [`controller`]: watches, predicates, the kube-runtime Controller.
//! - [`run`]: admin server, CRD wait, leader Lease, graceful shutdown.
//! - [`scope`]: the namespaces served; one watcher per namespace, merged.
//! - [`admin`] / [`metrics`]: `/metrics`, `/healthz`, `/readyz`; request counters.
//! - [`config`]: flags and environment; [`error`]: the one error type.
#![forbid(unsafe_code)]

pub mod admin;
pub mod apply;
pub mod build;
pub mod catalog;
pub mod cleanup;
pub mod config;
pub mod context;
pub mod controller;
pub mod crd;
pub mod error;
pub mod guard;
pub mod metrics;
pub mod reconcile;
pub mod relay_probe;
pub mod run;
pub mod scope;
pub mod status;
pub mod twitch;
pub mod user_secrets;
pub mod validate;

pub use error::{Error, Result};

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod mock_tests;
