//! Which EventSub subscriptions a channel wants: resolve a list of type
//! names (`default`, `channel.follow`, `channel-follow@2`) against the
//! catalog, then fill each type's condition fields. Pure: unit-tested
//! without Twitch. The relay and the operator both build from here.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::catalog::Catalog;
use crate::names::eventsub_type;

/// Condition fields TAU leaves out (optional filters).
const OPTIONAL_FIELDS: [&str; 2] = ["reward_id", "conduit_id"];

/// One subscription TAU wants.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Desired {
    /// EventSub type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Version.
    pub version: String,
    /// Condition object.
    pub condition: Map<String, Value>,
}

impl Desired {
    /// The Helix request body for this subscription with `transport`.
    pub fn request(&self, transport: Value) -> Value {
        serde_json::json!({
            "type": self.kind,
            "version": self.version,
            "condition": self.condition,
            "transport": transport,
        })
    }

    /// True if `existing` (a Helix subscription object) is this subscription.
    pub fn matches(&self, existing: &Value) -> bool {
        existing["type"] == self.kind.as_str()
            && existing["version"] == self.version.as_str()
            && self
                .condition
                .iter()
                .all(|(k, v)| existing["condition"][k] == *v)
    }
}

/// The ids a condition can name.
#[derive(Debug, Clone)]
pub struct Ids {
    /// The channel.
    pub broadcaster_id: String,
    /// The user whose token subscribes (moderator/user conditions).
    pub user_id: String,
    /// The application's client id.
    pub client_id: String,
}

/// Builds the wanted subscriptions; types whose conditions TAU cannot fill
/// are returned separately with the reason.
pub fn desired(types: &[(String, String)], ids: &Ids) -> (Vec<Desired>, Vec<(String, String)>) {
    let catalog = Catalog::get();
    let mut wanted = Vec::new();
    let mut skipped = Vec::new();
    for (kind, version) in types {
        let Some(entry) = catalog.find(kind, version) else {
            skipped.push((kind.clone(), "not in the catalog".into()));
            continue;
        };
        if entry
            .condition
            .iter()
            .any(|f| f == "to_broadcaster_user_id")
        {
            // Raids: one subscription for raids in, one for raids out.
            for field in ["to_broadcaster_user_id", "from_broadcaster_user_id"] {
                let mut condition = Map::new();
                condition.insert(field.into(), ids.broadcaster_id.clone().into());
                wanted.push(Desired {
                    kind: kind.clone(),
                    version: version.clone(),
                    condition,
                });
            }
            continue;
        }
        let mut condition = Map::new();
        let mut unfillable = None;
        for field in &entry.condition {
            let value = match field.as_str() {
                "broadcaster_user_id" | "broadcaster_id" => &ids.broadcaster_id,
                "moderator_user_id" | "user_id" => &ids.user_id,
                "client_id" => &ids.client_id,
                f if OPTIONAL_FIELDS.contains(&f) => continue,
                other => {
                    unfillable = Some(other.to_string());
                    break;
                }
            };
            condition.insert(field.clone(), value.clone().into());
        }
        match unfillable {
            Some(field) => skipped.push((
                kind.clone(),
                format!("condition field {field} cannot be filled"),
            )),
            None => wanted.push(Desired {
                kind: kind.clone(),
                version: version.clone(),
                condition,
            }),
        }
    }
    (wanted, skipped)
}

/// Resolves type names to sorted, unique `(type, version)` pairs. Accepts
/// `default` (the streamer-bot set), dotted or dashed names, and an
/// optional `@version` (else the newest). Unknown names come back
/// separately so callers can report them.
pub fn resolve<S: AsRef<str>>(names: &[S]) -> (Vec<(String, String)>, Vec<String>) {
    let catalog = Catalog::get();
    let mut types = Vec::new();
    let mut unknown = Vec::new();
    for item in names
        .iter()
        .map(|s| s.as_ref().trim())
        .filter(|s| !s.is_empty())
    {
        if item == "default" {
            types.extend(
                catalog
                    .defaults()
                    .map(|e| (e.kind.clone(), e.version.clone())),
            );
            continue;
        }
        let (name, version) = match item.split_once('@') {
            Some((name, version)) => (eventsub_type(name), Some(version)),
            None => (eventsub_type(item), None),
        };
        let found = match version {
            Some(v) => catalog.find(&name, v),
            None => catalog.latest(&name),
        };
        match found {
            Some(e) => types.push((e.kind.clone(), e.version.clone())),
            None => unknown.push(item.to_string()),
        }
    }
    types.sort();
    types.dedup();
    (types, unknown)
}

/// The scope TAU's chat sending needs (Helix `POST /chat/messages`).
pub const CHAT_WRITE_SCOPE: &str = "user:write:chat";

/// The broadcaster's consent to chat bots in its channel: with it, a bot
/// sending with the app token gets Twitch's Chat Bot badge there, and a
/// bot's app-token chat subscriptions (webhook, conduit) need no
/// moderator status.
pub const CHAT_BOT_SCOPE: &str = "channel:bot";

/// Scopes to request for `types` (sorted, unique). Choosing any
/// `channel.chat.*` type also asks for [`CHAT_WRITE_SCOPE`] (whoever reads
/// chat through TAU can send through it after the same one authorization)
/// and [`CHAT_BOT_SCOPE`] (TAU's chat bots then work in the broadcaster's
/// channel with the badge, without a second authorization when the first
/// bot is added).
pub fn scopes_for(types: &[(String, String)]) -> Vec<String> {
    let catalog = Catalog::get();
    let mut scopes: Vec<String> = types
        .iter()
        .filter_map(|(k, v)| catalog.find(k, v))
        .flat_map(|e| e.scopes.iter().cloned())
        .collect();
    if types.iter().any(|(k, _)| k.starts_with("channel.chat.")) {
        scopes.push(CHAT_WRITE_SCOPE.into());
        scopes.push(CHAT_BOT_SCOPE.into());
    }
    scopes.sort();
    scopes.dedup();
    scopes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> Ids {
        Ids {
            broadcaster_id: "1337".into(),
            user_id: "1337".into(),
            client_id: "cid".into(),
        }
    }

    #[test]
    fn conditions_are_filled_and_raids_go_both_ways() {
        let types = vec![
            ("channel.follow".to_string(), "2".to_string()),
            ("channel.raid".into(), "1".into()),
            (
                "channel.channel_points_custom_reward_redemption.add".into(),
                "1".into(),
            ),
            ("channel.chat.message".into(), "1".into()),
        ];
        let (wanted, skipped) = desired(&types, &ids());
        assert!(skipped.is_empty(), "{skipped:?}");
        assert_eq!(wanted.len(), 5);
        assert_eq!(wanted[0].condition["moderator_user_id"], "1337");
        assert_eq!(
            wanted[1].condition.keys().collect::<Vec<_>>(),
            ["to_broadcaster_user_id"]
        );
        assert_eq!(
            wanted[2].condition.keys().collect::<Vec<_>>(),
            ["from_broadcaster_user_id"]
        );
        assert!(
            !wanted[3].condition.contains_key("reward_id"),
            "optional filter left out"
        );
        assert_eq!(wanted[4].condition["user_id"], "1337");
    }

    #[test]
    fn the_default_set_is_fully_subscribable_and_scoped() {
        let types: Vec<_> = Catalog::get()
            .defaults()
            .map(|e| (e.kind.clone(), e.version.clone()))
            .collect();
        let (wanted, skipped) = desired(&types, &ids());
        assert!(skipped.is_empty(), "{skipped:?}");
        assert_eq!(wanted.len(), types.len() + 1, "raid counted twice");
        let scopes = scopes_for(&types);
        for scope in [
            "moderator:read:followers",
            "channel:read:subscriptions",
            "bits:read",
            "channel:read:hype_train",
        ] {
            assert!(scopes.contains(&scope.to_string()), "{scope}");
        }
    }

    #[test]
    fn chat_types_also_ask_to_send_chat() {
        let chat = vec![("channel.chat.message".to_string(), "1".to_string())];
        assert_eq!(
            scopes_for(&chat),
            [CHAT_BOT_SCOPE, "user:read:chat", CHAT_WRITE_SCOPE]
        );
        let defaults: Vec<_> = Catalog::get()
            .defaults()
            .map(|e| (e.kind.clone(), e.version.clone()))
            .collect();
        assert!(!scopes_for(&defaults).contains(&CHAT_WRITE_SCOPE.to_string()));
        assert!(!scopes_for(&defaults).contains(&CHAT_BOT_SCOPE.to_string()));
        let settings = vec![("channel.chat_settings.update".to_string(), "1".to_string())];
        assert!(!scopes_for(&settings).contains(&CHAT_WRITE_SCOPE.to_string()));
    }

    #[test]
    fn names_versions_defaults_and_unknowns_resolve() {
        let (types, unknown) = resolve(&[
            "channel-follow",
            "stream.online@1",
            "stream.online",
            "no.such.type",
            "stream.online@9",
        ]);
        assert_eq!(
            types,
            [
                ("channel.follow".to_string(), "2".to_string()),
                ("stream.online".into(), "1".into())
            ]
        );
        assert_eq!(unknown, ["no.such.type", "stream.online@9"]);
        let (defaults, none) = resolve(&["default"]);
        assert!(none.is_empty() && defaults.len() > 20);
    }

    #[test]
    fn matches_compares_type_version_and_condition() {
        let (wanted, _) = desired(&[("channel.follow".into(), "2".into())], &ids());
        let existing = serde_json::json!({"type": "channel.follow", "version": "2",
            "condition": {"broadcaster_user_id": "1337", "moderator_user_id": "1337"}});
        assert!(wanted[0].matches(&existing));
        let other = serde_json::json!({"type": "channel.follow", "version": "2",
            "condition": {"broadcaster_user_id": "1", "moderator_user_id": "1337"}});
        assert!(!wanted[0].matches(&other));
    }
}
