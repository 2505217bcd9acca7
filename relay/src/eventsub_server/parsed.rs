//! Events parsed once for all of this replica's EventSub sessions.
//!
//! Every session receives each event from the hub as the shared TAU frame
//! ([`EncodedEvent`]). A notification needs three things from it: the event
//! id, the event object verbatim, and the object's fields (to match each
//! subscription's condition). Parsed by each session, that was one parse of
//! the frame and one `Map` of the event per event *per session*; here the
//! first session to see an event parses it and the others reuse the result.
//! Sessions read the same ring within moments of each other, so a short
//! window of recent events is enough.
//!
//! An entry is keyed by the frame's identity (its `Arc`), held weakly: the
//! cache keeps no frame's bytes alive, and while it holds the `Weak` the
//! allocation cannot be reused by another frame, so an address never
//! matches the wrong event.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, Weak},
};

use serde::Deserialize;
use serde_json::{value::RawValue, Map, Value};

use crate::event::{eventsub_type, EncodedEvent};

/// Recent events remembered: far more than sessions spread over while
/// they drain the same ring (a session further behind parses for itself).
const RECENT: usize = 64;

/// What a notification needs from a TAU frame.
#[derive(Debug)]
pub struct ParsedEvent {
    /// The EventSub type (`channel.follow`).
    pub kind: String,
    /// The stable message id (Twitch's for Twitch events).
    pub event_id: String,
    /// The event object, byte for byte.
    pub event_data: Box<RawValue>,
    /// Its fields, for subscription conditions (`None`: not an object
    /// `serde_json` can hold, which every condition matches).
    pub fields: Option<Map<String, Value>>,
}

/// The TAU frame's fields a notification needs.
#[derive(Deserialize)]
struct Wire {
    event_id: String,
    event_data: Box<RawValue>,
}

impl ParsedEvent {
    /// Parses a TAU frame; `None` if it is not one.
    fn parse(event: &EncodedEvent) -> Option<ParsedEvent> {
        let wire: Wire = serde_json::from_str(event.payload.as_str()).ok()?;
        let fields = serde_json::from_str(wire.event_data.get()).ok();
        Some(ParsedEvent {
            kind: eventsub_type(&event.event_type),
            event_id: wire.event_id,
            event_data: wire.event_data,
            fields,
        })
    }
}

/// One remembered frame and its parse (`None`: it did not parse).
type Entry = (Weak<EncodedEvent>, Option<Arc<ParsedEvent>>);

/// The replica's recently parsed events; shared by its sessions.
#[derive(Debug, Default)]
pub struct ParsedEvents {
    /// Oldest first.
    recent: Mutex<VecDeque<Entry>>,
}

impl ParsedEvents {
    /// `event` parsed, by whichever session asked first; `None` if the
    /// frame does not parse (logged once).
    pub fn get(&self, event: &Arc<EncodedEvent>) -> Option<Arc<ParsedEvent>> {
        if let Some(hit) = self.find(event) {
            return hit;
        }
        // Parsed outside the lock: two sessions racing for a new event may
        // both parse it, but none waits for another's parse.
        let parsed = ParsedEvent::parse(event).map(Arc::new);
        let mut recent = self.lock();
        if let Some(hit) = find_in(&recent, event) {
            return hit;
        }
        if parsed.is_none() {
            tracing::warn!("an event frame did not parse; not delivered over EventSub");
        }
        if recent.len() == RECENT {
            recent.pop_front();
        }
        recent.push_back((Arc::downgrade(event), parsed.clone()));
        parsed
    }

    fn find(&self, event: &Arc<EncodedEvent>) -> Option<Option<Arc<ParsedEvent>>> {
        find_in(&self.lock(), event)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Entry>> {
        self.recent.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The entry of `event`, newest first (sessions mostly ask for the latest).
fn find_in(
    recent: &VecDeque<Entry>,
    event: &Arc<EncodedEvent>,
) -> Option<Option<Arc<ParsedEvent>>> {
    recent
        .iter()
        .rev()
        .find(|(frame, _)| std::ptr::eq(frame.as_ptr(), Arc::as_ptr(event)))
        .map(|(_, parsed)| parsed.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(event_id: &str, data: &str) -> Arc<EncodedEvent> {
        let payload = format!(
            r#"{{"event_id":"{event_id}","event_type":"channel-follow","event_data":{data}}}"#
        );
        Arc::new(EncodedEvent {
            seq: None,
            id: None,
            event_type: "channel-follow".into(),
            payload: payload.into(),
        })
    }

    #[test]
    fn every_session_gets_the_same_parse() {
        let cache = ParsedEvents::default();
        let event = frame("m1", r#"{"broadcaster_user_id":"7"}"#);
        let first = cache.get(&event).unwrap();
        assert_eq!(first.kind, "channel.follow");
        assert_eq!(first.event_id, "m1");
        assert_eq!(first.event_data.get(), r#"{"broadcaster_user_id":"7"}"#);
        assert_eq!(first.fields.as_ref().unwrap()["broadcaster_user_id"], "7");
        for _ in 0..10 {
            assert!(Arc::ptr_eq(&first, &cache.get(&event).unwrap()));
        }
        // Another frame with the same content is another event.
        let twin = frame("m1", r#"{"broadcaster_user_id":"7"}"#);
        assert!(!Arc::ptr_eq(&first, &cache.get(&twin).unwrap()));
    }

    #[test]
    fn old_events_are_forgotten_and_parse_again() {
        let cache = ParsedEvents::default();
        let first = frame("m0", "{}");
        let parsed = cache.get(&first).unwrap();
        let later: Vec<_> = (1..=RECENT)
            .map(|i| frame(&format!("m{i}"), "{}"))
            .collect();
        for event in &later {
            cache.get(event);
        }
        assert_eq!(cache.lock().len(), RECENT);
        let again = cache.get(&first).unwrap();
        assert!(!Arc::ptr_eq(&parsed, &again));
        assert_eq!(again.event_id, "m0");
    }

    #[test]
    fn a_frame_that_does_not_parse_is_remembered_as_such() {
        let cache = ParsedEvents::default();
        let broken = Arc::new(EncodedEvent {
            seq: None,
            id: None,
            event_type: "channel-follow".into(),
            payload: "not json".into(),
        });
        assert!(cache.get(&broken).is_none());
        assert!(cache.get(&broken).is_none());
        assert_eq!(cache.lock().len(), 1);
        // A lone surrogate: kept verbatim, no fields (matches every condition).
        let odd = cache
            .get(&frame("m2", r#"{"message":"cut \ud83d"}"#))
            .unwrap();
        assert!(odd.fields.is_none());
        assert_eq!(odd.event_data.get(), r#"{"message":"cut \ud83d"}"#);
    }
}
