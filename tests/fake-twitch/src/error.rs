//! Errors: [`FakeError`] for the test-facing control API, and the two JSON
//! error shapes Twitch answers with over HTTP.
//!
//! Helix says `{"error":"Unauthorized","status":401,"message":"..."}`;
//! the OAuth server (`id.twitch.tv`) says `{"status":400,"message":"..."}`.

use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// Why a control call on [`crate::FakeTwitch`] could not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum FakeError {
    /// No WebSocket session has this id.
    #[error("no websocket session with id {0}")]
    UnknownSession(String),
    /// The session exists but its socket is closed.
    #[error("websocket session {0} is not connected")]
    SessionClosed(String),
    /// The target has no enabled subscription of that type and version.
    #[error("no enabled {sub_type} v{version} subscription for {target}")]
    NoMatchingSubscription {
        /// Requested subscription type.
        sub_type: String,
        /// Requested version.
        version: String,
        /// Session or conduit id that was searched.
        target: String,
    },
    /// No subscription has this id.
    #[error("no subscription with id {0}")]
    UnknownSubscription(String),
    /// The subscription (or shard) does not use the webhook transport.
    #[error("{0} does not use the webhook transport")]
    NotWebhook(String),
    /// The subscription is not enabled.
    #[error("subscription {0} is not enabled (status {1})")]
    NotEnabled(String, String),
    /// No conduit has this id.
    #[error("no conduit with id {0}")]
    UnknownConduit(String),
    /// The conduit has no shard with this id.
    #[error("conduit {0} has no shard {1}")]
    UnknownShard(String, String),
    /// Every shard of the conduit is disabled or unassigned.
    #[error("conduit {0} has no enabled shard")]
    NoEnabledShard(String),
    /// A wait ran out of time.
    #[error("timed out after {0:?} waiting for {1}")]
    Timeout(Duration, &'static str),
    /// The fake is hermetic: it only delivers webhooks to loopback hosts
    /// and to hosts routed by [`crate::FakeTwitch::route_webhooks`].
    #[error("refusing to deliver to non-loopback callback {0} (no route for its host)")]
    NotLoopback(String),
    /// Posting to a webhook callback failed at the HTTP level.
    #[error("webhook delivery to {url} failed")]
    Webhook {
        /// Callback URL.
        url: String,
        /// Transport error.
        #[source]
        source: reqwest::Error,
    },
}

/// A Helix error answer: `{"error", "status", "message"}`.
#[derive(Debug)]
pub(crate) struct HelixError {
    pub status: StatusCode,
    pub message: String,
}

impl HelixError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        HelixError {
            status,
            message: message.into(),
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub(crate) fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
}

impl IntoResponse for HelixError {
    fn into_response(self) -> Response {
        let body = json!({
            "error": self.status.canonical_reason().unwrap_or("Error"),
            "status": self.status.as_u16(),
            "message": self.message,
        });
        (self.status, Json(body)).into_response()
    }
}

/// An OAuth server error answer: `{"status", "message"}`.
#[derive(Debug)]
pub(crate) struct OAuthError {
    pub status: StatusCode,
    pub message: String,
}

impl OAuthError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        OAuthError {
            status,
            message: message.into(),
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = json!({"status": self.status.as_u16(), "message": self.message});
        (self.status, Json(body)).into_response()
    }
}
