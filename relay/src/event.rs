//! TAU's event: what is stored, and the exact frame clients receive.
//!
//! The wire shape is the original TAU's, field for field:
//! `{id, event_id, event_type, event_source, event_data, created, origin}`.
//! An event is serialized once into an [`EncodedEvent`]; its bytes are shared
//! (reference-counted) by every client socket that sends it.

use std::sync::Arc;

use axum::extract::ws::Utf8Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use uuid::Uuid;

/// Where a delivered event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// A real Twitch notification.
    Twitch,
    /// A generated test event (never stored).
    Test,
    /// A stored event sent again on request.
    Replay,
}

/// `event_source` of events that came from Twitch EventSub.
pub const SOURCE_EVENTSUB: &str = "EventSub";
/// `event_source` of test events (the original TAU's value).
pub const SOURCE_TEST: &str = "TestCall";

pub use tau_eventsub::names::{eventsub_type, tau_event_type};

/// Formats a timestamp the way TAU clients parse it (RFC 3339, whole seconds).
pub fn format_created(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, false)
}

/// Fields pulled out of `event_data` at ingest so REST filters need no JSON
/// functions in SQL (which differ between SQLite and Postgres).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventIndex {
    /// `user_id`, else `from_broadcaster_user_id`.
    pub user_id: Option<String>,
    /// Lowercased `user_login`, else `from_broadcaster_user_login`.
    pub user_login: Option<String>,
    /// Lowercased `user_name`, else `from_broadcaster_user_name`.
    pub user_name: Option<String>,
    /// `reward.id` of channel point redemptions.
    pub reward_id: Option<String>,
    /// Raider's id and lowercased login.
    pub raid_from: (Option<String>, Option<String>),
    /// Raided channel's id and lowercased login.
    pub raid_to: (Option<String>, Option<String>),
    /// The channel the event belongs to.
    pub broadcaster_id: Option<String>,
}

#[derive(Deserialize, Default)]
struct IndexFields {
    user_id: Option<String>,
    user_login: Option<String>,
    user_name: Option<String>,
    broadcaster_user_id: Option<String>,
    from_broadcaster_user_id: Option<String>,
    from_broadcaster_user_login: Option<String>,
    from_broadcaster_user_name: Option<String>,
    to_broadcaster_user_id: Option<String>,
    to_broadcaster_user_login: Option<String>,
    reward: Option<Reward>,
}

#[derive(Deserialize)]
struct Reward {
    id: Option<String>,
}

impl EventIndex {
    /// Extracts the filter fields; fields of unexpected types are ignored.
    pub fn from_event_data(event_data: &RawValue) -> EventIndex {
        let f: IndexFields = serde_json::from_str(event_data.get()).unwrap_or_default();
        let lower = |s: Option<String>| s.map(|s| s.to_lowercase());
        let is_raid = f.to_broadcaster_user_id.is_some() && f.from_broadcaster_user_id.is_some();
        EventIndex {
            broadcaster_id: f
                .broadcaster_user_id
                .clone()
                .or_else(|| f.to_broadcaster_user_id.clone()),
            user_id: f.user_id.or_else(|| f.from_broadcaster_user_id.clone()),
            user_login: lower(
                f.user_login
                    .or_else(|| f.from_broadcaster_user_login.clone()),
            ),
            user_name: lower(f.user_name.or(f.from_broadcaster_user_name)),
            reward_id: f.reward.and_then(|r| r.id),
            raid_from: if is_raid {
                (
                    f.from_broadcaster_user_id,
                    lower(f.from_broadcaster_user_login),
                )
            } else {
                (None, None)
            },
            raid_to: if is_raid {
                (f.to_broadcaster_user_id, lower(f.to_broadcaster_user_login))
            } else {
                (None, None)
            },
        }
    }
}

/// An event as TAU knows it (stored or about to be delivered).
#[derive(Debug, Clone)]
pub struct TauEvent {
    /// TAU's id; `None` for test events, which are never stored.
    pub id: Option<Uuid>,
    /// Twitch's message id (the dedupe key), or a fresh id for test events.
    pub event_id: String,
    /// TAU type name (`channel-follow`).
    pub event_type: String,
    /// EventSub subscription version (`2` for channel.follow).
    pub version: String,
    /// `EventSub` or `TestCall`.
    pub event_source: String,
    /// Twitch's `event` object, byte for byte.
    pub event_data: Box<RawValue>,
    /// When TAU received it.
    pub created: DateTime<Utc>,
    /// Why it is being delivered.
    pub origin: Origin,
}

/// A TAU event as clients receive it, on the socket and from the REST API.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Event)]
struct WireEvent<'a> {
    /// TAU's id; `null` for test events, which are never stored.
    id: Option<Uuid>,
    /// Twitch's message id, or a fresh id for test events.
    event_id: &'a str,
    /// TAU type name (`channel-follow`).
    #[schema(example = "channel-follow")]
    event_type: &'a str,
    /// `EventSub`, or `TestCall` for test events.
    event_source: &'a str,
    /// Twitch's `event` object, byte for byte.
    #[schema(value_type = Object)]
    event_data: &'a RawValue,
    /// When TAU received it (RFC 3339, whole seconds).
    #[schema(format = DateTime)]
    created: String,
    /// Why it is being delivered.
    origin: Origin,
}

/// REST answers serialize an event as its client frame.
impl Serialize for TauEvent {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.wire().serialize(serializer)
    }
}

/// ... and document it as the frame's schema, `Event`.
impl utoipa::PartialSchema for TauEvent {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        <WireEvent<'static> as utoipa::PartialSchema>::schema()
    }
}

impl utoipa::ToSchema for TauEvent {
    fn name() -> std::borrow::Cow<'static, str> {
        <WireEvent<'static> as utoipa::ToSchema>::name()
    }

    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        <WireEvent<'static> as utoipa::ToSchema>::schemas(schemas)
    }
}

impl TauEvent {
    /// The client frame, borrowing this event.
    fn wire(&self) -> WireEvent<'_> {
        WireEvent {
            id: self.id,
            event_id: &self.event_id,
            event_type: &self.event_type,
            event_source: &self.event_source,
            event_data: &self.event_data,
            created: format_created(self.created),
            origin: self.origin,
        }
    }

    /// Serializes the exact client frame.
    pub fn to_wire(&self) -> String {
        serde_json::to_string(&self.wire()).expect("event serialization cannot fail")
    }

    /// Encodes once for delivery; `seq` is the store position for stored events.
    pub fn encode(&self, seq: Option<i64>) -> Arc<EncodedEvent> {
        Arc::new(EncodedEvent {
            seq,
            id: self.id,
            event_type: self.event_type.clone(),
            payload: Utf8Bytes::from(self.to_wire()),
        })
    }
}

/// An event serialized once, shared by every receiver.
#[derive(Debug)]
pub struct EncodedEvent {
    /// Position in the store, for Twitch events delivered live; `None` for test
    /// events and replays, which are always delivered.
    pub seq: Option<i64>,
    /// TAU's id, if stored.
    pub id: Option<Uuid>,
    /// TAU type name, for per-client type filters.
    pub event_type: String,
    /// The client frame.
    pub payload: Utf8Bytes,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(json: &str) -> Box<RawValue> {
        RawValue::from_string(json.to_string()).unwrap()
    }

    /// Caught by the webhook fuzz target: Twitch's JSON may hold a lone
    /// surrogate escape, which the store keeps verbatim but
    /// `serde_json::Value` refuses; rendering such an event for REST by
    /// re-parsing it panicked.
    #[test]
    fn events_with_lone_surrogates_render_for_rest() {
        let data = r#"{"message":"cut \ud83d","user_id":"1"}"#;
        assert!(serde_json::from_str::<serde_json::Value>(data).is_err());
        let event = TauEvent {
            id: Some(Uuid::nil()),
            event_id: "msg-1".into(),
            event_type: "channel-chat-message".into(),
            version: "1".into(),
            event_source: SOURCE_EVENTSUB.into(),
            event_data: raw(data),
            created: Utc::now(),
            origin: Origin::Twitch,
        };
        assert_eq!(serde_json::to_string(&event).unwrap(), event.to_wire());
        assert!(event.to_wire().contains(data));
    }

    #[test]
    fn wire_frame_has_exactly_tau_fields_and_verbatim_data() {
        let data = r#"{"user_id":"1234","nested":{"a":[1,2.50,"x"]}}"#;
        let event = TauEvent {
            id: Some(Uuid::nil()),
            event_id: "msg-1".into(),
            event_type: "channel-follow".into(),
            version: "2".into(),
            event_source: SOURCE_EVENTSUB.into(),
            event_data: raw(data),
            created: DateTime::parse_from_rfc3339("2021-06-26T05:42:29.5Z")
                .unwrap()
                .into(),
            origin: Origin::Twitch,
        };
        let wire = event.to_wire();
        assert!(
            wire.contains(data),
            "event_data must be byte-identical: {wire}"
        );
        let value: serde_json::Value = serde_json::from_str(&wire).unwrap();
        let mut keys: Vec<_> = value.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "created",
                "event_data",
                "event_id",
                "event_source",
                "event_type",
                "id",
                "origin"
            ]
        );
        assert_eq!(value["created"], "2021-06-26T05:42:29+00:00");
        assert_eq!(value["origin"], "twitch");
    }

    #[test]
    fn index_extracts_filter_fields() {
        let follow = EventIndex::from_event_data(&raw(
            r#"{"user_id":"1","user_login":"Cool_User","user_name":"Cool_User","broadcaster_user_id":"9"}"#,
        ));
        assert_eq!(follow.user_id.as_deref(), Some("1"));
        assert_eq!(follow.user_login.as_deref(), Some("cool_user"));
        assert_eq!(follow.broadcaster_id.as_deref(), Some("9"));
        let raid = EventIndex::from_event_data(&raw(
            r#"{"from_broadcaster_user_id":"1","from_broadcaster_user_login":"Raider","from_broadcaster_user_name":"Raider","to_broadcaster_user_id":"2","to_broadcaster_user_login":"target","viewers":9}"#,
        ));
        assert_eq!(raid.user_id.as_deref(), Some("1"));
        assert_eq!(raid.raid_from, (Some("1".into()), Some("raider".into())));
        assert_eq!(raid.raid_to, (Some("2".into()), Some("target".into())));
        assert_eq!(raid.broadcaster_id.as_deref(), Some("2"));
        let redemption = EventIndex::from_event_data(&raw(r#"{"reward":{"id":"r-1"}}"#));
        assert_eq!(redemption.reward_id.as_deref(), Some("r-1"));
    }
}
