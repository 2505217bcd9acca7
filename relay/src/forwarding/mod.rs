//! Signed webhook forwarding: every stored event a target wants is POSTed
//! to it exactly as Twitch would send it (headers, `sha256=` HMAC
//! signature, `{"subscription", "event"}` body), so an existing EventSub
//! webhook handler receives TAU's events unchanged (the original TAU's
//! open request, Team-TAU/tau#113).
//!
//! Why it is built this way:
//! - **From the store, not from memory.** Each target has a cursor (an
//!   event position) in the database; a worker reads
//!   [`crate::store::Store::events_after`] from there. The hub only wakes
//!   it early. A restart, a crash or a takeover by another replica
//!   continues at the cursor: delivery is at-least-once, and a resent
//!   event carries the same message id ([`wire::message_id`]).
//! - **In order per target.** The next event goes only after the previous
//!   one got a 2xx; a failure retries the same event with exponential
//!   backoff and jitter (`forward_backoff_min`/`max` in `TAU_TIMINGS`).
//!   A target failing continuously for `forward_pause_after` (6 h) is
//!   paused (`failing`) and shown, not retried forever; resuming it
//!   retries at once.
//! - **One sender per target in a fleet.** A worker holds the lease
//!   `webhook-target:<id>` and proves it (fencing) right before each
//!   attempt, so two replicas never deliver for one target at once; the
//!   holder shows in the status document's replica `holds`.
//! - **Proof of ownership first.** Adding a target, or changing its URL or
//!   secret, sends Twitch's `webhook_callback_verification` challenge;
//!   nothing is stored unless the target echoes it ([`target::verify`]).
//!
//! - [`wire`]: the message, its ids, headers and signature.
//! - [`send`]: one HTTP attempt (time limit, no redirects, capped reads).
//! - [`target`]: input rules, event matching, backlog, the challenge.
//! - [`worker`]: the supervisor and the per-target delivery loop.
//! - [`rest`]: `/api/v1/webhook-targets` (admin).

pub mod rest;
pub mod send;
pub mod target;
pub mod wire;
mod worker;

use std::{collections::HashMap, sync::Arc};

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::{
    error::ApiError,
    hub::Hub,
    metrics::Metrics,
    secret::SecretKey,
    store::{Store, StoreError, TargetConfig, WebhookTarget},
    timings::Timings,
};

/// Lease name prefix of a target's sender.
pub const LEASE_PREFIX: &str = "webhook-target:";

/// Errors of webhook forwarding.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// A field of the request is invalid.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// No such target.
    #[error("no such webhook target")]
    NotFound,
    /// The challenge was not answered as Twitch requires.
    #[error("{0}")]
    Unverified(String),
    /// The store failed (a taken name is `Duplicate`).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stored secret cannot be opened (the relay's key changed).
    #[error(transparent)]
    Secret(#[from] crate::secret::SecretError),
}

/// 422's body: `error` (and `detail`, TAU's usual field) say why.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct UnverifiedBody {
    /// Why the challenge failed (status code, body mismatch, timeout,
    /// connection refused).
    pub error: String,
    /// The same.
    pub detail: String,
}

impl IntoResponse for ForwardError {
    fn into_response(self) -> Response {
        match self {
            ForwardError::Invalid { .. } => ApiError::BadRequest(self.to_string()).into_response(),
            ForwardError::NotFound => ApiError::NotFound(self.to_string()).into_response(),
            ForwardError::Unverified(why) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(UnverifiedBody {
                    error: why.clone(),
                    detail: why,
                }),
            )
                .into_response(),
            ForwardError::Store(err) => ApiError::from(err).into_response(),
            ForwardError::Secret(err) => ApiError::Internal(err.into()).into_response(),
        }
    }
}

/// This replica's forwarding: the handle REST uses and the workers share;
/// cheap to clone.
#[derive(Clone)]
pub struct Forwarder {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    key: SecretKey,
    timings: Timings,
    replica_id: String,
    sender: send::Sender,
    metrics: Arc<Metrics>,
    hub: Hub,
    /// Bumped on every change made here, so workers re-read at once.
    changes: watch::Sender<u64>,
    workers: std::sync::Mutex<HashMap<String, CancellationToken>>,
}

impl Forwarder {
    /// A forwarder; nothing runs until [`Forwarder::spawn`].
    pub fn new(
        store: Store,
        key: SecretKey,
        timings: Timings,
        replica_id: String,
        metrics: Arc<Metrics>,
        hub: Hub,
    ) -> Forwarder {
        Forwarder {
            inner: Arc::new(Inner {
                sender: send::Sender::new(timings.forward_timeout),
                store,
                key,
                timings,
                replica_id,
                metrics,
                hub,
                changes: watch::channel(0).0,
                workers: Default::default(),
            }),
        }
    }

    /// Starts the supervisor: it keeps one worker per live target on the
    /// replica holding the target's lease, until `shutdown`.
    pub fn spawn(&self, shutdown: CancellationToken) {
        tokio::spawn(worker::supervise(self.clone(), shutdown));
    }

    /// The HTTP sender (challenges, deliveries).
    pub fn sender(&self) -> &send::Sender {
        &self.inner.sender
    }

    /// Validates a new target, challenges its URL, and stores it (sealed
    /// secret) to receive the events stored from now on.
    pub async fn add(
        &self,
        name: String,
        url: String,
        secret: String,
        event_types: &[String],
        conditions: serde_json::Map<String, serde_json::Value>,
    ) -> Result<WebhookTarget, ForwardError> {
        target::check_name(&name)?;
        target::check_url(&url)?;
        target::check_secret(&secret)?;
        let event_types = target::check_event_types(event_types)?;
        target::check_conditions(&conditions)?;
        let config = TargetConfig {
            name,
            url,
            sealed_secret: self.inner.key.seal(&secret),
            event_types,
            conditions,
        };
        let provisional = WebhookTarget {
            id: uuid::Uuid::new_v4().to_string(),
            name: config.name.clone(),
            url: config.url.clone(),
            sealed_secret: config.sealed_secret.clone(),
            event_types: config.event_types.clone(),
            conditions: config.conditions.clone(),
            cursor: 0,
            paused_reason: None,
            pending: false,
            delivered: 0,
            failed_attempts: 0,
            last_error: None,
            failing_since_us: None,
            next_attempt_us: None,
            last_success_us: None,
            last_attempt_us: None,
            created_us: crate::store::now_us(),
        };
        if self
            .inner
            .store
            .webhook_targets()
            .await?
            .iter()
            .any(|t| t.name == config.name)
        {
            return Err(StoreError::Duplicate(config.name).into());
        }
        target::verify(&self.inner.sender, &provisional, &secret).await?;
        let cursor = self.inner.store.max_seq().await?;
        let added = self
            .inner
            .store
            .insert_webhook_target(&provisional.id, &config, cursor, false)
            .await?;
        self.changed();
        Ok(added)
    }

    /// Tells workers here that targets changed (re-read now).
    pub fn changed(&self) {
        self.inner.changes.send_modify(|n| *n += 1);
    }
}
