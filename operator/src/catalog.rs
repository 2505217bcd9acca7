//! Which EventSub subscriptions a channel wants, built from `spec.events`.
//!
//! The list of types, their versions, condition fields and the default
//! "streamer bot" set come from the relay's generated catalog
//! (`relay/src/catalog/catalog.json`), compiled in so that the operator and
//! the relay can never disagree on what `default` means. Pure: no client.

use std::sync::LazyLock;

use serde::Deserialize;
use serde_json::{Map, Value};

/// One catalog entry; the relay's file carries more fields, ignored here.
#[derive(Debug, Deserialize)]
struct Entry {
    #[serde(rename = "type")]
    kind: String,
    version: String,
    condition: Vec<String>,
    default: bool,
}

static CATALOG: LazyLock<Vec<Entry>> = LazyLock::new(|| {
    serde_json::from_str(include_str!("../../relay/src/catalog/catalog.json"))
        .expect("the relay's catalog.json is valid")
});

/// Condition fields TAU leaves empty: optional filters.
const OPTIONAL_FIELDS: [&str; 2] = ["reward_id", "conduit_id"];

/// One subscription a channel wants at Twitch.
#[derive(Debug, Clone, PartialEq)]
pub struct Wanted {
    /// EventSub type, e.g. `channel.follow`.
    pub kind: String,
    /// Version, e.g. `2`.
    pub version: String,
    /// Condition object.
    pub condition: Map<String, Value>,
}

impl Wanted {
    /// True if a Helix subscription object is this subscription.
    pub fn matches(&self, sub: &Value) -> bool {
        sub["type"] == self.kind.as_str()
            && sub["version"] == self.version.as_str()
            && sub["condition"]
                .as_object()
                .is_some_and(|c| self.condition.iter().all(|(k, v)| c.get(k) == Some(v)))
    }
}

fn rank(version: &str) -> i64 {
    version.parse().unwrap_or(-1)
}

/// Resolves `spec.events` to sorted, unique `(type, version)` pairs.
/// Unknown names are returned separately so status can name them.
pub fn resolve(events: &[String]) -> (Vec<(String, String)>, Vec<String>) {
    let mut types = Vec::new();
    let mut unknown = Vec::new();
    for item in events.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        if item == "default" {
            types.extend(
                CATALOG
                    .iter()
                    .filter(|e| e.default)
                    .map(|e| (e.kind.clone(), e.version.clone())),
            );
            continue;
        }
        // Accept the relay's dashed names too: `channel-follow` = `channel.follow`.
        let (name, version) = match item.split_once('@') {
            Some((n, v)) => (n, Some(v)),
            None => (item, None),
        };
        let dotted = name.replace('-', ".");
        let found = CATALOG
            .iter()
            .filter(|e| e.kind == name || e.kind == dotted)
            .filter(|e| version.is_none_or(|v| e.version == v))
            .max_by_key(|e| rank(&e.version));
        match found {
            Some(e) => types.push((e.kind.clone(), e.version.clone())),
            None => unknown.push(item.to_string()),
        }
    }
    types.sort();
    types.dedup();
    (types, unknown)
}

/// The subscriptions for `types` on broadcaster `broadcaster_id`, as the
/// operator's app token can make them (the broadcaster is also the
/// moderator). Raids become two subscriptions: raids in and raids out.
pub fn wanted(types: &[(String, String)], broadcaster_id: &str, client_id: &str) -> Vec<Wanted> {
    let mut out = Vec::new();
    for (kind, version) in types {
        let Some(entry) = CATALOG
            .iter()
            .find(|e| &e.kind == kind && &e.version == version)
        else {
            continue;
        };
        if entry
            .condition
            .iter()
            .any(|f| f == "to_broadcaster_user_id")
        {
            for field in ["to_broadcaster_user_id", "from_broadcaster_user_id"] {
                let mut condition = Map::new();
                condition.insert(field.into(), broadcaster_id.into());
                out.push(Wanted {
                    kind: kind.clone(),
                    version: version.clone(),
                    condition,
                });
            }
            continue;
        }
        let mut condition = Map::new();
        for field in &entry.condition {
            let value = match field.as_str() {
                "client_id" => client_id,
                f if OPTIONAL_FIELDS.contains(&f) => continue,
                // broadcaster_user_id, moderator_user_id, user_id, broadcaster_id
                _ => broadcaster_id,
            };
            condition.insert(field.clone(), value.into());
        }
        out.push(Wanted {
            kind: kind.clone(),
            version: version.clone(),
            condition,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_the_streamer_bot_set() {
        let (types, unknown) = resolve(&["default".into()]);
        assert!(unknown.is_empty());
        assert!(types.contains(&("channel.follow".into(), "2".into())));
        assert!(types.contains(&("stream.online".into(), "1".into())));
        assert!(types.len() > 20, "{types:?}");
    }

    #[test]
    fn names_versions_and_unknowns() {
        let (types, unknown) = resolve(&[
            "channel-follow".into(),
            "stream.online@1".into(),
            "stream.online".into(),
            "no.such.type".into(),
            "stream.online@9".into(),
        ]);
        assert_eq!(
            types,
            [
                ("channel.follow".to_string(), "2".to_string()),
                ("stream.online".into(), "1".into())
            ]
        );
        assert_eq!(unknown, ["no.such.type", "stream.online@9"]);
    }

    #[test]
    fn conditions_are_filled_and_raids_go_both_ways() {
        let types = vec![
            ("channel.follow".to_string(), "2".to_string()),
            ("channel.raid".into(), "1".into()),
        ];
        let wanted = wanted(&types, "1337", "cid");
        assert_eq!(wanted.len(), 3);
        assert_eq!(wanted[0].condition["moderator_user_id"], "1337");
        assert!(wanted[1].condition.contains_key("to_broadcaster_user_id"));
        assert!(wanted[2].condition.contains_key("from_broadcaster_user_id"));
        let sub = serde_json::json!({"type": "channel.follow", "version": "2",
            "condition": {"broadcaster_user_id": "1337", "moderator_user_id": "1337"}});
        assert!(wanted[0].matches(&sub));
        assert!(!wanted[1].matches(&sub));
    }
}
