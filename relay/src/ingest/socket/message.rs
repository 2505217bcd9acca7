//! EventSub WebSocket messages: `{"metadata": {...}, "payload": {...}}`.
//!
//! Parsing is kept apart from the socket so the read loop only decides what
//! to do with a message, and so parsing is tested without a socket.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{value::RawValue, Value};

use super::pipeline::Item;
use crate::ingest::{IncomingNotification, SubscriptionInfo};

/// Longest keepalive window taken from a welcome: Twitch announces 10 to
/// 600 s. A larger (or absurd, `u64::MAX`) announcement is capped, so the
/// session's deadline arithmetic (`now + keepalive + slack`) cannot
/// overflow and panic the session task.
pub const MAX_KEEPALIVE: Duration = Duration::from_secs(600);

/// The envelope; `payload` stays raw until the message type says what it
/// holds, so a notification is parsed once, straight into its typed form,
/// and its `event` keeps Twitch's bytes (a `Value` detour would re-encode
/// every event, with its keys re-sorted).
#[derive(Deserialize)]
struct Envelope<'a> {
    metadata: Metadata,
    #[serde(borrow, default)]
    payload: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Metadata {
    message_id: String,
    message_type: String,
}

/// A `revocation` payload.
#[derive(Deserialize)]
struct RevocationPayload {
    subscription: SubscriptionInfo,
}

/// One EventSub message, as the session acts on it.
#[derive(Debug)]
pub enum Incoming {
    /// `session_welcome`: the session id and its keepalive window.
    Welcome {
        /// Session id (for subscriptions and shard assignment).
        session_id: String,
        /// Announced `keepalive_timeout_seconds` (at most [`MAX_KEEPALIVE`]).
        keepalive: Duration,
    },
    /// Events (and revocations) to store, in order.
    Items(Vec<Item>),
    /// A revocation: recorded through the pipeline, shown at once.
    Revoked {
        /// Twitch's message id.
        id: String,
        /// The revoked subscription and its reason.
        subscription: Box<SubscriptionInfo>,
    },
    /// `session_reconnect` with the URL to move to.
    Reconnect(String),
    /// `session_keepalive` or a type this relay does not act on.
    Quiet,
    /// An EventSub message whose payload is unusable (logged, ignored; it
    /// still shows the session is alive).
    Malformed(String),
}

/// Parses one text frame; `Err` for anything that is not an EventSub
/// message (which must not count as a sign of life).
pub fn parse(text: &str) -> Result<Incoming, String> {
    let envelope: Envelope =
        serde_json::from_str(text).map_err(|e| format!("not an EventSub message: {e}"))?;
    Ok(interpret(envelope).unwrap_or_else(Incoming::Malformed))
}

/// The payload parsed as `T` (a missing payload reads as `null`).
fn payload<'a, T: Deserialize<'a>>(envelope: &Envelope<'a>) -> serde_json::Result<T> {
    serde_json::from_str(envelope.payload.map_or("null", RawValue::get))
}

fn interpret(envelope: Envelope) -> Result<Incoming, String> {
    let message_id = envelope.metadata.message_id.as_str();
    match envelope.metadata.message_type.as_str() {
        "session_welcome" => {
            // Rare: read leniently through a `Value`, as before.
            let session = &payload::<Value>(&envelope).unwrap_or_default()["session"];
            Ok(Incoming::Welcome {
                session_id: session["id"].as_str().unwrap_or_default().to_string(),
                keepalive: Duration::from_secs(
                    session["keepalive_timeout_seconds"].as_u64().unwrap_or(10),
                )
                .min(MAX_KEEPALIVE),
            })
        }
        "notification" => {
            let events = payload::<IncomingNotification>(&envelope)
                .map_err(|e| e.to_string())
                .and_then(|n| n.split(message_id).map_err(str::to_string))
                .map_err(|e| format!("malformed notification {message_id}: {e}"))?;
            Ok(Incoming::Items(
                events
                    .into_iter()
                    .map(|(id, body)| Item::Event { id, body })
                    .collect(),
            ))
        }
        "revocation" => {
            let revoked = payload::<RevocationPayload>(&envelope)
                .map_err(|e| format!("malformed revocation {message_id}: {e}"))?;
            Ok(Incoming::Revoked {
                id: message_id.to_string(),
                subscription: Box::new(revoked.subscription),
            })
        }
        "session_reconnect" => payload::<Value>(&envelope).unwrap_or_default()["session"]
            ["reconnect_url"]
            .as_str()
            .map(|url| Incoming::Reconnect(url.to_string()))
            .ok_or_else(|| "session_reconnect without a reconnect_url".to_string()),
        _ => Ok(Incoming::Quiet),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_parse_into_what_the_session_does() {
        let welcome = r#"{"metadata":{"message_id":"w","message_type":"session_welcome"},
            "payload":{"session":{"id":"S1","keepalive_timeout_seconds":12}}}"#;
        assert!(matches!(parse(welcome).unwrap(),
            Incoming::Welcome { session_id, keepalive } if session_id == "S1" && keepalive.as_secs() == 12));
        let batch = r#"{"metadata":{"message_id":"m","message_type":"notification"},
            "payload":{"subscription":{"type":"drop.entitlement.grant","version":"1"},"events":[{},{}]}}"#;
        match parse(batch).unwrap() {
            Incoming::Items(items) => {
                let ids: Vec<_> = items
                    .iter()
                    .map(|i| match i {
                        Item::Event { id, .. } => id.clone(),
                        Item::Revocation { .. } => panic!("not a revocation"),
                    })
                    .collect();
                assert_eq!(ids, ["m:0", "m:1"]);
            }
            other => panic!("{other:?}"),
        }
        let reconnect = r#"{"metadata":{"message_id":"r","message_type":"session_reconnect"},
            "payload":{"session":{"reconnect_url":"wss://x/ws"}}}"#;
        assert!(matches!(parse(reconnect).unwrap(), Incoming::Reconnect(u) if u == "wss://x/ws"));
        // Caught by the eventsub_message fuzz target: `u64::MAX` seconds
        // overflowed `keepalive + slack` in the session loop.
        let absurd = r#"{"metadata":{"message_id":"w","message_type":"session_welcome"},
            "payload":{"session":{"id":"S1","keepalive_timeout_seconds":18446744073709551615}}}"#;
        assert!(matches!(parse(absurd).unwrap(),
            Incoming::Welcome { keepalive, .. } if keepalive == MAX_KEEPALIVE));
        let keepalive =
            r#"{"metadata":{"message_id":"k","message_type":"session_keepalive"},"payload":{}}"#;
        assert!(matches!(parse(keepalive).unwrap(), Incoming::Quiet));
        let broken =
            r#"{"metadata":{"message_id":"b","message_type":"notification"},"payload":{}}"#;
        assert!(matches!(parse(broken).unwrap(), Incoming::Malformed(_)));
        assert!(parse("not json").is_err());
        assert!(matches!(
            parse(r#"{"metadata":{"message_id":"w","message_type":"session_welcome"}}"#).unwrap(),
            Incoming::Welcome { keepalive, .. } if keepalive.as_secs() == 10
        ));
        assert!(
            parse(r#"{"hello":1}"#).is_err(),
            "no metadata: not EventSub"
        );
    }

    /// The event is stored as Twitch sent it: same bytes, same key order
    /// (not re-encoded through a sorted map), escapes untouched.
    #[test]
    fn a_notification_event_keeps_twitchs_bytes() {
        let event = r#"{"zeta":1,"alpha":"caf\u00e9","nested":{"b":[1,2.50],"a":null}}"#;
        let text = format!(
            r#"{{"metadata":{{"message_id":"m1","message_type":"notification"}},
            "payload":{{"subscription":{{"id":"s","type":"channel.cheer","version":"1"}},"event":{event}}}}}"#
        );
        let Incoming::Items(items) = parse(&text).unwrap() else {
            panic!("not a notification")
        };
        match &items[..] {
            [Item::Event { id, body }] => {
                assert_eq!(id, "m1");
                assert_eq!(body.event.get(), event);
                assert_eq!(body.subscription.kind, "channel.cheer");
            }
            other => panic!("{other:?}"),
        }
        let revocation = r#"{"metadata":{"message_id":"r1","message_type":"revocation"},
            "payload":{"subscription":{"id":"s","type":"channel.cheer","version":"1","status":"authorization_revoked"}}}"#;
        assert!(matches!(parse(revocation).unwrap(),
            Incoming::Revoked { id, subscription } if id == "r1" && subscription.status == "authorization_revoked"));
    }
}
