//! The EventSub catalog: every type TAU knows, its scopes and condition,
//! and Twitch's own example payload for it.
//!
//! `data/catalog.json` and `data/examples.json` are generated from Twitch's
//! docs by `data/gen_catalog.py` (see `data/README.md`) and compiled in.

use std::{collections::BTreeSet, sync::LazyLock};

use serde::{Deserialize, Serialize};

use crate::names::tau_event_type;

/// One EventSub subscription type at one version.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CatalogEntry {
    /// EventSub type, e.g. `channel.follow`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Version, e.g. `2` (or `beta`).
    pub version: String,
    /// Twitch's name for it.
    pub name: String,
    /// Twitch's one-line description.
    pub description: String,
    /// OAuth scopes TAU requests to subscribe with a user token.
    pub scopes: Vec<String>,
    /// Condition field names.
    pub condition: Vec<String>,
    /// Part of the default "streamer bot" set.
    pub default: bool,
}

impl CatalogEntry {
    /// TAU's name for this type (`channel-follow`).
    pub fn tau_type(&self) -> String {
        tau_event_type(&self.kind)
    }
}

/// All known types, with example payloads.
#[derive(Debug)]
pub struct Catalog {
    entries: Vec<CatalogEntry>,
    examples: serde_json::Map<String, serde_json::Value>,
}

static CATALOG: LazyLock<Catalog> = LazyLock::new(|| Catalog {
    entries: serde_json::from_str(include_str!("data/catalog.json"))
        .expect("catalog.json is valid"),
    examples: serde_json::from_str(include_str!("data/examples.json"))
        .expect("examples.json is valid"),
});

/// Orders versions numerically; non-numeric ones (`beta`) sort first.
fn version_rank(version: &str) -> i64 {
    version.parse().unwrap_or(-1)
}

impl Catalog {
    /// The compiled-in catalog.
    pub fn get() -> &'static Catalog {
        &CATALOG
    }

    /// Every entry, sorted by type then version.
    pub fn entries(&self) -> &[CatalogEntry] {
        &self.entries
    }

    /// The newest version of an EventSub type, accepting TAU or dotted names.
    pub fn latest(&self, name: &str) -> Option<&CatalogEntry> {
        let tau = tau_event_type(name);
        self.entries
            .iter()
            .filter(|e| e.tau_type() == tau)
            .max_by_key(|e| version_rank(&e.version))
    }

    /// A specific type and version.
    pub fn find(&self, kind: &str, version: &str) -> Option<&CatalogEntry> {
        self.entries
            .iter()
            .find(|e| e.kind == kind && e.version == version)
    }

    /// True if `tau_type` names a known type.
    pub fn has_tau_type(&self, tau_type: &str) -> bool {
        self.entries.iter().any(|e| e.tau_type() == tau_type)
    }

    /// Every TAU type name, sorted, once each.
    pub fn tau_types(&self) -> Vec<String> {
        self.entries
            .iter()
            .map(CatalogEntry::tau_type)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    /// The default "streamer bot" set.
    pub fn defaults(&self) -> impl Iterator<Item = &CatalogEntry> {
        self.entries.iter().filter(|e| e.default)
    }

    /// Twitch's example notifications (`{subscription, event}`) for a type.
    pub fn examples(&self, kind: &str, version: &str) -> &[serde_json::Value] {
        self.examples
            .get(&format!("{kind}@{version}"))
            .and_then(|v| v.as_array())
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// Every example notification with its `type@version` key.
    pub fn all_examples(&self) -> impl Iterator<Item = (&str, &serde_json::Value)> {
        self.examples.iter().flat_map(|(key, list)| {
            list.as_array()
                .into_iter()
                .flatten()
                .map(move |example| (key.as_str(), example))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_has_an_example_and_names_are_unique() {
        let catalog = Catalog::get();
        assert_eq!(catalog.entries().len(), 80);
        for entry in catalog.entries() {
            assert!(
                !catalog.examples(&entry.kind, &entry.version).is_empty(),
                "{}",
                entry.kind
            );
        }
        let mut keys: Vec<_> = catalog
            .entries()
            .iter()
            .map(|e| (&e.kind, &e.version))
            .collect();
        keys.dedup();
        assert_eq!(keys.len(), 80);
    }

    #[test]
    fn latest_picks_the_newest_version() {
        let catalog = Catalog::get();
        assert_eq!(catalog.latest("channel.moderate").unwrap().version, "2");
        assert_eq!(
            catalog.latest("channel-hype_train-begin").unwrap().version,
            "2"
        );
        assert_eq!(
            catalog.latest("channel.follow").unwrap().scopes,
            ["moderator:read:followers"]
        );
        assert!(catalog.latest("channel.nope").is_none());
    }

    #[test]
    fn defaults_cover_the_streamer_bot_set() {
        let defaults: Vec<_> = Catalog::get().defaults().map(|e| e.kind.as_str()).collect();
        for kind in [
            "channel.follow",
            "channel.raid",
            "channel.hype_train.begin",
            "stream.online",
            "channel.update",
        ] {
            assert!(defaults.contains(&kind), "{kind}");
        }
    }
}
