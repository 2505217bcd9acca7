//! `POST /twitch/eventsub`: the EventSub webhook callback.
//!
//! Every message is verified (signature, then age) before its body is even
//! parsed ([`verify_and_parse`]: pure, so it is tested and fuzzed without
//! a server). A notification is acknowledged only after it is stored; if
//! the database is down Twitch gets a 503 and retries.

use axum::{
    body::Bytes,
    extract::State,
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use serde::Deserialize;

use super::{signature, IncomingNotification, NotificationBody, SubscriptionInfo};
use crate::{app::AppState, error::ApiError, metrics::ReasonLabel};

/// Largest body accepted (Twitch's notifications are a few KiB).
pub const MAX_BODY: usize = 1024 * 1024;

/// Header: Twitch's message id (the dedupe key).
pub const MESSAGE_ID: &str = "twitch-eventsub-message-id";
/// Header: when Twitch sent the message (RFC 3339), signed.
pub const MESSAGE_TIMESTAMP: &str = "twitch-eventsub-message-timestamp";
/// Header: `sha256=<hex HMAC>`.
pub const MESSAGE_SIGNATURE: &str = "twitch-eventsub-message-signature";
/// Header: `notification`, `webhook_callback_verification` or `revocation`.
pub const MESSAGE_TYPE: &str = "twitch-eventsub-message-type";

#[derive(Deserialize)]
struct Challenge {
    challenge: String,
}

#[derive(Deserialize)]
struct RevocationBody {
    subscription: SubscriptionInfo,
}

/// A verified webhook message, parsed: what the handler acts on.
#[derive(Debug)]
pub struct Verified {
    /// Twitch's message id (the dedupe key).
    pub id: String,
    /// What the message asks for.
    pub message: Message,
}

/// The three webhook message types.
#[derive(Debug)]
pub enum Message {
    /// `webhook_callback_verification`: answer with this challenge.
    Challenge(String),
    /// `notification`: one `(event id, body)` per TAU event, never empty.
    Notification(Vec<(String, NotificationBody)>),
    /// `revocation`: the subscription Twitch ended.
    Revocation(SubscriptionInfo),
}

/// Why a webhook request was refused before anything was stored.
#[derive(Debug)]
pub enum Refusal {
    /// 403: missing headers or failed verification (metric label, message).
    Forbidden(&'static str, String),
    /// 400: verified, but the body or the message type is unusable.
    BadRequest(String),
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn malformed(message_id: &str, what: &str, err: serde_json::Error) -> Refusal {
    tracing::warn!(message_id, error = %err, "webhook body malformed: {what}");
    Refusal::BadRequest(format!("malformed {what}: {err}"))
}

/// Verifies a webhook request signed with `secret` (signature, then age
/// at `now`) and only then parses its body. Pure: no store, no clock.
pub fn verify_and_parse(
    secret: &[u8],
    headers: &HeaderMap,
    body: &[u8],
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Verified, Refusal> {
    let (Some(id), Some(timestamp), Some(sig), Some(kind)) = (
        header(headers, MESSAGE_ID),
        header(headers, MESSAGE_TIMESTAMP),
        header(headers, MESSAGE_SIGNATURE),
        header(headers, MESSAGE_TYPE),
    ) else {
        return Err(Refusal::Forbidden(
            "missing_headers",
            "missing Twitch-Eventsub-Message-* headers".into(),
        ));
    };
    signature::verify(secret, id, timestamp, body, sig, now)
        .map_err(|rejection| Refusal::Forbidden(rejection.label(), rejection.to_string()))?;
    let message = match kind {
        "webhook_callback_verification" => {
            let challenge: Challenge = serde_json::from_slice(body)
                .map_err(|e| malformed(id, "verification challenge", e))?;
            Message::Challenge(challenge.challenge)
        }
        "notification" => {
            let notification: IncomingNotification =
                serde_json::from_slice(body).map_err(|e| malformed(id, "notification", e))?;
            let events = notification.split(id).map_err(|why| {
                tracing::warn!(message_id = id, "webhook body malformed: {why}");
                Refusal::BadRequest(format!("malformed notification: {why}"))
            })?;
            Message::Notification(events)
        }
        "revocation" => {
            let revocation: RevocationBody =
                serde_json::from_slice(body).map_err(|e| malformed(id, "revocation", e))?;
            Message::Revocation(revocation.subscription)
        }
        other => {
            tracing::warn!(
                message_id = id,
                message_type = other,
                "unknown webhook message type"
            );
            return Err(Refusal::BadRequest(format!(
                "unknown message type {other:?}"
            )));
        }
    };
    Ok(Verified {
        id: id.to_string(),
        message,
    })
}

fn reject(app: &AppState, reason: &'static str, message: &str) -> ApiError {
    app.metrics
        .webhook_verification_failures
        .get_or_create(&ReasonLabel { reason })
        .inc();
    tracing::warn!(reason, "webhook rejected: {message}");
    ApiError::Forbidden(message.to_string())
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
    let Verified { id, message } =
        verify_and_parse(secret.as_bytes(), &headers, &body, chrono::Utc::now()).map_err(
            |refusal| match refusal {
                Refusal::Forbidden(reason, message) => reject(&app, reason, &message),
                Refusal::BadRequest(message) => ApiError::BadRequest(message),
            },
        )?;
    let id = id.as_str();
    match message {
        Message::Challenge(challenge) => {
            tracing::info!(message_id = id, "answered webhook verification challenge");
            Ok(([(header::CONTENT_TYPE, "text/plain")], challenge).into_response())
        }
        Message::Notification(events) => {
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
        Message::Revocation(subscription) => {
            app.ingest().revocation(id, &subscription).await.map_err(|err| {
                tracing::error!(message_id = id, error = %err, "revocation not recorded; answering 503");
                ApiError::Unavailable("revocation could not be recorded; retry later".into())
            })?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};

    const SECRET: &[u8] = b"0123456789abcdef";
    const TS: &str = "2024-01-01T00:00:00Z";

    fn request(kind: &str, body: &str, sign_with: &[u8]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let sig = signature::sign(sign_with, "m1", TS, body.as_bytes());
        for (name, value) in [
            (MESSAGE_ID, "m1"),
            (MESSAGE_TIMESTAMP, TS),
            (MESSAGE_SIGNATURE, sig.as_str()),
            (MESSAGE_TYPE, kind),
        ] {
            headers.insert(name, value.parse().unwrap());
        }
        headers
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(TS)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn verified_messages_are_parsed_by_type() {
        let body = r#"{"challenge":"pogchamp","subscription":{"type":"x","version":"1"}}"#;
        let headers = request("webhook_callback_verification", body, SECRET);
        let verified = verify_and_parse(SECRET, &headers, body.as_bytes(), now()).unwrap();
        assert_eq!(verified.id, "m1");
        assert!(matches!(verified.message, Message::Challenge(c) if c == "pogchamp"));

        let body =
            r#"{"subscription":{"type":"drop.entitlement.grant","version":"1"},"events":[{},{}]}"#;
        let headers = request("notification", body, SECRET);
        match verify_and_parse(SECRET, &headers, body.as_bytes(), now())
            .unwrap()
            .message
        {
            Message::Notification(events) => {
                let ids: Vec<_> = events.iter().map(|(id, _)| id.as_str()).collect();
                assert_eq!(ids, ["m1:0", "m1:1"]);
            }
            other => panic!("{other:?}"),
        }

        let body =
            r#"{"subscription":{"id":"s","type":"x","version":"1","status":"user_removed"}}"#;
        let headers = request("revocation", body, SECRET);
        assert!(matches!(
            verify_and_parse(SECRET, &headers, body.as_bytes(), now()).unwrap().message,
            Message::Revocation(sub) if sub.status == "user_removed"
        ));
    }

    #[test]
    fn unverified_requests_are_forbidden_before_parsing() {
        let body = "not even JSON";
        let forged = request("notification", body, b"wrong-secret");
        assert!(matches!(
            verify_and_parse(SECRET, &forged, body.as_bytes(), now()),
            Err(Refusal::Forbidden("bad_signature", _))
        ));
        let mut missing = request("notification", body, SECRET);
        missing.remove(MESSAGE_TYPE);
        assert!(matches!(
            verify_and_parse(SECRET, &missing, body.as_bytes(), now()),
            Err(Refusal::Forbidden("missing_headers", _))
        ));
        let signed = request("notification", body, SECRET);
        assert!(matches!(
            verify_and_parse(SECRET, &signed, body.as_bytes(), now()),
            Err(Refusal::BadRequest(_))
        ));
        let odd = request("no_such_type", "{}", SECRET);
        assert!(matches!(
            verify_and_parse(SECRET, &odd, b"{}", now()),
            Err(Refusal::BadRequest(_))
        ));
    }
}
