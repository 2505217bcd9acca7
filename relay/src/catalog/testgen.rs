//! Realistic test events, built from Twitch's own example payloads.
//!
//! The example for the type is copied with fresh ids and current timestamps,
//! and the broadcaster fields pointed at the configured channel, so field
//! names and types are exactly Twitch's (hype train v2 and chat included).

use chrono::{Duration, SecondsFormat, Utc};
use serde_json::{Map, Value};

use super::CatalogEntry;

/// The channel test events are about.
#[derive(Debug, Clone)]
pub struct TestBroadcaster {
    /// Twitch user id.
    pub id: String,
    /// Login.
    pub login: String,
    /// Display name.
    pub name: String,
}

/// A fresh `event` object for `entry`, or `None` if Twitch gave no example.
pub fn generate_test_event(
    entry: &CatalogEntry,
    broadcaster: Option<&TestBroadcaster>,
) -> Option<Value> {
    let example = super::Catalog::get()
        .examples(&entry.kind, &entry.version)
        .first()?;
    let mut event = example.get("event")?.clone();
    if let Value::Object(map) = &mut event {
        refresh(map, broadcaster, true);
    }
    Some(event)
}

fn refresh(map: &mut Map<String, Value>, broadcaster: Option<&TestBroadcaster>, top: bool) {
    let now = Utc::now();
    for (key, value) in map.iter_mut() {
        match value {
            Value::Object(inner) => refresh(inner, broadcaster, false),
            Value::Array(items) => {
                for item in items {
                    if let Value::Object(inner) = item {
                        refresh(inner, broadcaster, false);
                    }
                }
            }
            Value::String(text) => {
                if key.ends_with("_at") && chrono::DateTime::parse_from_rfc3339(text).is_ok() {
                    // Deadlines lie ahead of now; everything else just happened.
                    let future = ["ends_at", "expires_at", "locks_at", "cooldown_ends_at"];
                    let at = if future.contains(&key.as_str()) {
                        now + Duration::minutes(5)
                    } else {
                        now
                    };
                    *text = at.to_rfc3339_opts(SecondsFormat::Micros, true);
                } else if top && (key == "id" || key == "message_id") {
                    *text = uuid::Uuid::new_v4().to_string();
                } else if let Some(b) = broadcaster {
                    match key.as_str() {
                        "broadcaster_user_id" => *text = b.id.clone(),
                        "broadcaster_user_login" => *text = b.login.clone(),
                        "broadcaster_user_name" => *text = b.name.clone(),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;

    #[test]
    fn every_type_generates_an_object_with_twitchs_field_names() {
        let catalog = Catalog::get();
        for entry in catalog.entries() {
            let event =
                generate_test_event(entry, None).unwrap_or_else(|| panic!("{}", entry.kind));
            let example = &catalog.examples(&entry.kind, &entry.version)[0]["event"];
            let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
            assert_eq!(keys(&event), keys(example), "{}", entry.kind);
        }
    }

    #[test]
    fn hype_train_v2_gets_fresh_times_and_the_broadcaster() {
        let entry = Catalog::get()
            .find("channel.hype_train.begin", "2")
            .unwrap();
        let b = TestBroadcaster {
            id: "42".into(),
            login: "me".into(),
            name: "Me".into(),
        };
        let event = generate_test_event(entry, Some(&b)).unwrap();
        assert_eq!(event["broadcaster_user_id"], "42");
        assert_eq!(event["broadcaster_user_login"], "me");
        let started =
            chrono::DateTime::parse_from_rfc3339(event["started_at"].as_str().unwrap()).unwrap();
        assert!(
            (Utc::now() - started.with_timezone(&Utc))
                .num_seconds()
                .abs()
                < 5
        );
        let example_id =
            &Catalog::get().examples("channel.hype_train.begin", "2")[0]["event"]["id"];
        assert_ne!(&event["id"], example_id, "ids are fresh");
    }
}
