//! Webhook verify + parse: `POST /twitch/eventsub`'s headers and body
//! through `ingest::webhook::verify_and_parse`, exactly as the handler
//! calls it.
//!
//! Input: header lines (`name: value`), a blank line, then the body. A
//! request without a signature header is signed correctly by the target
//! (so the body parsers are reached); one with a signature header keeps it.
//! `x-fuzz-skew: <seconds>` sets the clock relative to the timestamp.
//!
//! Asserts: a verified request's signature really is the HMAC of id +
//! timestamp + body under the secret, and its timestamp is within ten
//! minutes of the clock; a correctly signed, fresh request is never
//! refused as forbidden; flipping one body bit or changing the secret
//! makes it forbidden; notifications are never empty, get distinct event
//! ids (`<id>` or `<id>:<n>`), and each event renders for clients and for
//! REST with its data verbatim; a challenge is the body's.
#![no_main]

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use chrono::{DateTime, TimeDelta, Utc};
use libfuzzer_sys::fuzz_target;
use tau_relay::{
    event::{tau_event_type, EventIndex, Origin, TauEvent, SOURCE_EVENTSUB},
    ingest::{
        signature::{self, MAX_MESSAGE_AGE},
        webhook::{self, Message, Refusal, MESSAGE_ID, MESSAGE_SIGNATURE, MESSAGE_TIMESTAMP},
        NotificationBody,
    },
};

const SECRET: &[u8] = b"fuzz-webhook-secret";
const SKEW: &str = "x-fuzz-skew";

fn split(data: &[u8]) -> (&[u8], &[u8]) {
    match data.windows(2).position(|w| w == b"\n\n") {
        Some(at) => (&data[..at], &data[at + 2..]),
        None => (data, &[]),
    }
}

fn headers(block: &[u8]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for line in block.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = HeaderName::from_bytes(line[..colon].trim_ascii());
        let value = HeaderValue::from_bytes(line[colon + 1..].trim_ascii());
        if let (Ok(name), Ok(value)) = (name, value) {
            map.append(name, value);
        }
    }
    map
}

fn text<'a>(map: &'a HeaderMap, name: &str) -> Option<&'a str> {
    map.get(name).and_then(|v| v.to_str().ok())
}

/// What ingest then does with an event: index it, store it verbatim, and
/// render it for clients (the wire frame) and for REST.
fn assert_renders(event_id: &str, body: &NotificationBody, now: DateTime<Utc>) {
    let _ = EventIndex::from_event_data(&body.event);
    let event = TauEvent {
        id: None,
        event_id: event_id.to_string(),
        event_type: tau_event_type(&body.subscription.kind),
        version: body.subscription.version.clone(),
        event_source: SOURCE_EVENTSUB.to_string(),
        event_data: body.event.clone(),
        created: now,
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

fn is_forbidden(result: &Result<webhook::Verified, Refusal>) -> bool {
    matches!(result, Err(Refusal::Forbidden(..)))
}

fuzz_target!(|data: &[u8]| {
    let (block, body) = split(data);
    let mut map = headers(block);
    let skew = text(&map, SKEW)
        .and_then(|s| s.parse::<i32>().ok())
        .unwrap_or(0);
    let sent = text(&map, MESSAGE_TIMESTAMP)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc));
    let now = sent
        .and_then(|t| t.checked_add_signed(TimeDelta::seconds(skew.into())))
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
    let mut signed_here = false;
    if !map.contains_key(MESSAGE_SIGNATURE) {
        if let (Some(id), Some(ts)) = (text(&map, MESSAGE_ID), text(&map, MESSAGE_TIMESTAMP)) {
            let sig = signature::sign(SECRET, id, ts, body);
            map.insert(MESSAGE_SIGNATURE, HeaderValue::from_str(&sig).unwrap());
            signed_here = true;
        }
    }

    let result = webhook::verify_and_parse(SECRET, &map, body, now);

    // Only one value per header counts: `HeaderMap::get` reads the first.
    let fresh = sent.is_some_and(|t| (now - t).abs() <= MAX_MESSAGE_AGE);
    if signed_here && fresh && text(&map, webhook::MESSAGE_TYPE).is_some() {
        assert!(!is_forbidden(&result), "signed, fresh, refused: {result:?}");
    }
    let Ok(verified) = result else { return };
    let id = text(&map, MESSAGE_ID).unwrap();
    let ts = text(&map, MESSAGE_TIMESTAMP).unwrap();
    let sig = text(&map, MESSAGE_SIGNATURE).unwrap();
    assert_eq!(verified.id, id);
    assert_eq!(
        sig.to_ascii_lowercase(),
        signature::sign(SECRET, id, ts, body),
        "verified, yet the signature is not the HMAC"
    );
    assert!(fresh, "verified a message {ts} at {now}");

    // Tampering: one flipped body bit, or another secret, is refused.
    if let Some(last) = body.len().checked_sub(1) {
        let mut tampered = body.to_vec();
        tampered[last] ^= 1;
        let again = webhook::verify_and_parse(SECRET, &map, &tampered, now);
        assert!(is_forbidden(&again), "tampered body accepted: {again:?}");
    }
    let other = webhook::verify_and_parse(b"another-secret", &map, body, now);
    assert!(is_forbidden(&other), "another secret accepted: {other:?}");

    match verified.message {
        Message::Challenge(challenge) => {
            // (`serde_json::Value` is stricter than the parse of the
            // fields used: it refuses lone surrogates anywhere.)
            if let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) {
                assert_eq!(value["challenge"].as_str(), Some(challenge.as_str()));
            }
        }
        Message::Notification(events) => {
            assert!(!events.is_empty());
            let single = matches!(events.as_slice(), [(only, _)] if only == id);
            for (n, (event_id, body)) in events.iter().enumerate() {
                if !single {
                    assert_eq!(*event_id, format!("{id}:{n}"));
                }
                assert_renders(event_id, body, now);
            }
        }
        Message::Revocation(_) => {}
    }
});
