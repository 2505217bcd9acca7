//! The EventSub WebSocket message parser (`ingest::socket::message::parse`),
//! which every text frame of a session, conduit shard or reconnect goes
//! through.
//!
//! Asserts: only JSON is accepted, and every EventSub envelope (an object
//! whose `metadata` has string `message_id` and `message_type`) is; a welcome's keepalive window fits the session's
//! deadline arithmetic (`Instant::now() + keepalive + slack`, Twitch
//! announces 10 to 600 s); a notification yields at least one event, with
//! distinct ids (`<message id>` or `<message id>:<n>`), each rendering
//! for clients and for REST with its data verbatim; a
//! reconnect carries the payload's `reconnect_url`; a revocation keeps the
//! message id.
#![no_main]

use std::collections::HashSet;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tau_relay::{
    event::{tau_event_type, EventIndex, Origin, TauEvent, SOURCE_EVENTSUB},
    ingest::socket::{
        message::{self, Incoming, MAX_KEEPALIVE},
        pipeline::Item,
    },
};

/// The largest `keepalive_slack` the session adds (`TAU_TIMINGS`, an hour).
const SLACK: Duration = Duration::from_secs(3600);

fuzz_target!(|data: &[u8]| {
    // A WebSocket text frame is UTF-8 by definition.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = message::parse(text);
    let value: Option<Value> = serde_json::from_str(text).ok();
    if parsed.is_ok() {
        // (Syntax only: `Value` also refuses lone surrogates, which JSON's
        // grammar allows and the relay keeps verbatim.)
        let json = serde_json::from_str::<serde::de::IgnoredAny>(text);
        assert!(json.is_ok(), "accepted a frame that is not JSON");
    }
    let metadata = value.as_ref().map(|v| &v["metadata"]);
    let message_id = metadata.and_then(|m| m["message_id"].as_str());
    if message_id.is_some() && metadata.is_some_and(|m| m["message_type"].is_string()) {
        // Re-serialized (no duplicate keys), every envelope is accepted.
        let canonical = value.as_ref().unwrap().to_string();
        assert!(message::parse(&canonical).is_ok(), "refused {canonical}");
    }
    let Ok(incoming) = parsed else { return };
    let payload = value.as_ref().map(|v| &v["payload"]);
    match incoming {
        Incoming::Welcome { keepalive, .. } => {
            assert!(keepalive <= MAX_KEEPALIVE);
            let window = keepalive.checked_add(SLACK);
            assert!(
                window.is_some_and(|w| Instant::now().checked_add(w).is_some()),
                "the session cannot wait {keepalive:?}"
            );
        }
        Incoming::Items(items) => {
            assert!(!items.is_empty());
            let mut ids = HashSet::new();
            for item in &items {
                let Item::Event { id, body } = item else {
                    panic!("a notification yields events only");
                };
                if let Some(message_id) = message_id {
                    assert!(
                        id == message_id || id.starts_with(&format!("{message_id}:")),
                        "{id} from {message_id}"
                    );
                }
                assert!(ids.insert(id.clone()), "duplicate id {id}");
                let _ = EventIndex::from_event_data(&body.event);
                let event = TauEvent {
                    id: None,
                    event_id: id.clone(),
                    event_type: tau_event_type(&body.subscription.kind),
                    version: body.subscription.version.clone(),
                    event_source: SOURCE_EVENTSUB.to_string(),
                    event_data: body.event.clone(),
                    created: chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
                    origin: Origin::Twitch,
                };
                let wire = event.to_wire();
                assert!(wire.contains(body.event.get()), "event_data not verbatim");
                // REST answers serialize the event: the same bytes, never re-parsed.
                assert_eq!(
                    serde_json::to_string(&event).expect("REST renders every event"),
                    wire
                );
            }
        }
        Incoming::Revoked { id, .. } => {
            if let Some(message_id) = message_id {
                assert_eq!(id, message_id);
            }
        }
        Incoming::Reconnect(url) => {
            if let Some(payload) = payload {
                assert_eq!(
                    payload["session"]["reconnect_url"].as_str(),
                    Some(url.as_str())
                );
            }
        }
        Incoming::Quiet | Incoming::Malformed(_) => {}
    }
});
