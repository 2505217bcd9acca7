//! `POST /twitch/eventsub`: the EventSub webhook callback.
//!
//! Every message is verified (signature, then age) before its body is even
//! parsed. A notification is acknowledged only after it is stored; if the
//! database is down Twitch gets a 503 and retries.

use axum::{
    body::Bytes,
    extract::State,
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use serde::Deserialize;

use super::{signature, IncomingNotification, SubscriptionInfo};
use crate::{app::AppState, error::ApiError, metrics::ReasonLabel};

/// Largest body accepted (Twitch's notifications are a few KiB).
pub const MAX_BODY: usize = 1024 * 1024;

const MESSAGE_ID: &str = "twitch-eventsub-message-id";
const MESSAGE_TIMESTAMP: &str = "twitch-eventsub-message-timestamp";
const MESSAGE_SIGNATURE: &str = "twitch-eventsub-message-signature";
const MESSAGE_TYPE: &str = "twitch-eventsub-message-type";

#[derive(Deserialize)]
struct Challenge {
    challenge: String,
}

#[derive(Deserialize)]
struct RevocationBody {
    subscription: SubscriptionInfo,
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn reject(app: &AppState, reason: &'static str, message: &str) -> ApiError {
    app.metrics
        .webhook_verification_failures
        .get_or_create(&ReasonLabel { reason })
        .inc();
    tracing::warn!(reason, "webhook rejected: {message}");
    ApiError::Forbidden(message.to_string())
}

fn malformed(message_id: &str, what: &str, err: serde_json::Error) -> ApiError {
    tracing::warn!(message_id, error = %err, "webhook body malformed: {what}");
    ApiError::BadRequest(format!("malformed {what}: {err}"))
}

/// The webhook handler.
pub async fn eventsub_webhook(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let Some(secret) = app.config.twitch.webhook_secret.as_deref() else {
        return Err(reject(
            &app,
            "no_secret",
            "webhooks are disabled: TWITCH_WEBHOOK_SECRET is not set",
        ));
    };
    let (Some(id), Some(timestamp), Some(sig), Some(kind)) = (
        header(&headers, MESSAGE_ID),
        header(&headers, MESSAGE_TIMESTAMP),
        header(&headers, MESSAGE_SIGNATURE),
        header(&headers, MESSAGE_TYPE),
    ) else {
        return Err(reject(
            &app,
            "missing_headers",
            "missing Twitch-Eventsub-Message-* headers",
        ));
    };
    if let Err(rejection) = signature::verify(
        secret.as_bytes(),
        id,
        timestamp,
        &body,
        sig,
        chrono::Utc::now(),
    ) {
        return Err(reject(&app, rejection.label(), &rejection.to_string()));
    }
    match kind {
        "webhook_callback_verification" => {
            let challenge: Challenge = serde_json::from_slice(&body)
                .map_err(|e| malformed(id, "verification challenge", e))?;
            tracing::info!(message_id = id, "answered webhook verification challenge");
            Ok(([(header::CONTENT_TYPE, "text/plain")], challenge.challenge).into_response())
        }
        "notification" => {
            let notification: IncomingNotification =
                serde_json::from_slice(&body).map_err(|e| malformed(id, "notification", e))?;
            let events = notification.split(id).map_err(|why| {
                tracing::warn!(message_id = id, "webhook body malformed: {why}");
                ApiError::BadRequest(format!("malformed notification: {why}"))
            })?;
            let ingest = app.ingest();
            let store_all = async {
                for (event_id, event) in events {
                    ingest.notification(&event_id, event, "webhook").await?;
                }
                Ok::<_, crate::store::StoreError>(())
            };
            // Answer within Twitch's patience either way: a hung database
            // gets a 503 (Twitch retries), never a late answer it ignores.
            let deadline = app.config.timings.webhook_ack_deadline;
            match tokio::time::timeout(deadline, store_all).await {
                Ok(Ok(())) => Ok(StatusCode::NO_CONTENT.into_response()),
                Ok(Err(err)) => {
                    tracing::error!(message_id = id, error = %err, "notification not stored; answering 503 so Twitch retries");
                    Err(ApiError::Unavailable(
                        "event could not be stored; retry later".into(),
                    ))
                }
                Err(_) => {
                    tracing::error!(
                        message_id = id,
                        ?deadline,
                        "notification not stored in time; answering 503 so Twitch retries"
                    );
                    Err(ApiError::Unavailable(
                        "event could not be stored in time; retry later".into(),
                    ))
                }
            }
        }
        "revocation" => {
            let revocation: RevocationBody =
                serde_json::from_slice(&body).map_err(|e| malformed(id, "revocation", e))?;
            app.ingest().revocation(id, &revocation.subscription).await.map_err(|err| {
                tracing::error!(message_id = id, error = %err, "revocation not recorded; answering 503");
                ApiError::Unavailable("revocation could not be recorded; retry later".into())
            })?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        other => {
            tracing::warn!(
                message_id = id,
                message_type = other,
                "unknown webhook message type"
            );
            Err(ApiError::BadRequest(format!(
                "unknown message type {other:?}"
            )))
        }
    }
}
