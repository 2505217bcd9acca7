//! EventSub WebSocket messages: `{"metadata": {...}, "payload": {...}}`.
//!
//! Parsing is kept apart from the socket so the read loop only decides what
//! to do with a message, and so parsing is tested without a socket.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::pipeline::Item;
use crate::ingest::{IncomingNotification, SubscriptionInfo};

/// Longest keepalive window taken from a welcome: Twitch announces 10 to
/// 600 s. A larger (or absurd, `u64::MAX`) announcement is capped, so the
/// session's deadline arithmetic (`now + keepalive + slack`) cannot
/// overflow and panic the session task.
pub const MAX_KEEPALIVE: Duration = Duration::from_secs(600);

#[derive(Deserialize)]
struct Envelope {
    metadata: Metadata,
    #[serde(default)]
    payload: Value,
}

#[derive(Deserialize)]
struct Metadata {
    message_id: String,
    message_type: String,
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

fn interpret(envelope: Envelope) -> Result<Incoming, String> {
    let message_id = envelope.metadata.message_id;
    match envelope.metadata.message_type.as_str() {
        "session_welcome" => {
            let session = &envelope.payload["session"];
            Ok(Incoming::Welcome {
                session_id: session["id"].as_str().unwrap_or_default().to_string(),
                keepalive: Duration::from_secs(
                    session["keepalive_timeout_seconds"].as_u64().unwrap_or(10),
                )
                .min(MAX_KEEPALIVE),
            })
        }
        "notification" => {
            let events = serde_json::from_value::<IncomingNotification>(envelope.payload)
                .map_err(|e| e.to_string())
                .and_then(|n| n.split(&message_id).map_err(str::to_string))
                .map_err(|e| format!("malformed notification {message_id}: {e}"))?;
            Ok(Incoming::Items(
                events
                    .into_iter()
                    .map(|(id, body)| Item::Event { id, body })
                    .collect(),
            ))
        }
        "revocation" => {
            let subscription: SubscriptionInfo =
                serde_json::from_value(envelope.payload["subscription"].clone())
                    .map_err(|e| format!("malformed revocation {message_id}: {e}"))?;
            Ok(Incoming::Revoked {
                id: message_id,
                subscription: Box::new(subscription),
            })
        }
        "session_reconnect" => envelope.payload["session"]["reconnect_url"]
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
        assert!(
            parse(r#"{"hello":1}"#).is_err(),
            "no metadata: not EventSub"
        );
    }
}
