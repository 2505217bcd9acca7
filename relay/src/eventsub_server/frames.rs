//! Twitch's EventSub WebSocket messages, field for field (Twitch's
//! "EventSub WebSocket" reference): every message is
//! `{"metadata": {...}, "payload": {...}}`; notifications carry the
//! event object byte for byte (a borrowed [`RawValue`]).

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::value::RawValue;

use super::Subscription;

/// Twitch's timestamps: RFC 3339 with nanoseconds, `Z`.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

#[derive(Serialize)]
struct Metadata<'a> {
    message_id: &'a str,
    message_type: &'a str,
    message_timestamp: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    subscription_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    subscription_version: Option<&'a str>,
}

#[derive(Serialize)]
struct Message<'a, P: Serialize> {
    metadata: Metadata<'a>,
    payload: P,
}

/// `payload.session` of welcome and reconnect messages.
#[derive(Serialize)]
struct SessionInfo<'a> {
    id: &'a str,
    status: &'a str,
    connected_at: &'a str,
    keepalive_timeout_seconds: Option<u64>,
    reconnect_url: Option<&'a str>,
}

#[derive(Serialize)]
struct SessionPayload<'a> {
    session: SessionInfo<'a>,
}

fn session_message(kind: &str, session: SessionInfo<'_>) -> String {
    let id = uuid::Uuid::new_v4().to_string();
    let message = Message {
        metadata: Metadata {
            message_id: &id,
            message_type: kind,
            message_timestamp: timestamp(Utc::now()),
            subscription_type: None,
            subscription_version: None,
        },
        payload: SessionPayload { session },
    };
    serde_json::to_string(&message).expect("frames serialize")
}

/// `session_welcome`: the session id to subscribe with.
pub fn welcome(session_id: &str, connected_at: &str, keepalive_secs: u64) -> String {
    session_message(
        "session_welcome",
        SessionInfo {
            id: session_id,
            status: "connected",
            connected_at,
            keepalive_timeout_seconds: Some(keepalive_secs),
            reconnect_url: None,
        },
    )
}

/// `session_reconnect`: connect to `url`; the subscriptions move along.
pub fn reconnect(session_id: &str, connected_at: &str, url: &str) -> String {
    session_message(
        "session_reconnect",
        SessionInfo {
            id: session_id,
            status: "reconnecting",
            connected_at,
            keepalive_timeout_seconds: None,
            reconnect_url: Some(url),
        },
    )
}

/// `session_keepalive`: an empty payload.
pub fn keepalive() -> String {
    let id = uuid::Uuid::new_v4().to_string();
    let message = Message {
        metadata: Metadata {
            message_id: &id,
            message_type: "session_keepalive",
            message_timestamp: timestamp(Utc::now()),
            subscription_type: None,
            subscription_version: None,
        },
        payload: serde_json::Map::new(),
    };
    serde_json::to_string(&message).expect("frames serialize")
}

/// `{"subscription", "event"}`: a notification's payload on the socket,
/// and the whole body of a webhook notification.
#[derive(Serialize)]
struct NotificationPayload<'a, S: Serialize> {
    subscription: &'a S,
    event: &'a RawValue,
}

/// A webhook notification's body, Twitch's `{"subscription", "event"}`
/// with the event verbatim; `subscription` carries the webhook transport
/// (see [`crate::forwarding`]).
pub fn notification_body<S: Serialize>(subscription: &S, event: &RawValue) -> String {
    serde_json::to_string(&NotificationPayload {
        subscription,
        event,
    })
    .expect("frames serialize")
}

/// `notification`: `message_id` is the event's stable id (Twitch's own
/// message id for Twitch events), so a redelivery is recognisable.
pub fn notification(message_id: &str, subscription: &Subscription, event: &RawValue) -> String {
    let message = Message {
        metadata: Metadata {
            message_id,
            message_type: "notification",
            message_timestamp: timestamp(Utc::now()),
            subscription_type: Some(&subscription.kind),
            subscription_version: Some(&subscription.version),
        },
        payload: NotificationPayload {
            subscription,
            event,
        },
    };
    serde_json::to_string(&message).expect("frames serialize")
}

#[derive(Serialize)]
struct RevocationPayload<'a> {
    subscription: &'a Subscription,
}

/// `revocation`: the subscription with its new status
/// (`authorization_revoked` when the TAU token lost its power).
pub fn revocation(subscription: &Subscription) -> String {
    let id = uuid::Uuid::new_v4().to_string();
    let message = Message {
        metadata: Metadata {
            message_id: &id,
            message_type: "revocation",
            message_timestamp: timestamp(Utc::now()),
            subscription_type: Some(&subscription.kind),
            subscription_version: Some(&subscription.version),
        },
        payload: RevocationPayload { subscription },
    };
    serde_json::to_string(&message).expect("frames serialize")
}
