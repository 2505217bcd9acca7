//! The subscription plan: given the subscriptions TAU wants and the ones
//! Twitch listed, which are ours, which to keep, which to create and which
//! to delete. Pure, so the rules are unit-tested without Twitch, and shared
//! so the operator's webhook sync and the relay's app-token reconcile can
//! never disagree on them again.
//!
//! - A listed subscription is *ours* when it delivers to our
//!   [`Destination`], when its id is one we made before (a changed host
//!   must not strand the old ones), or, for an owner that has the whole
//!   application to itself ([`Ours::claim_wanted`]), when it is a wanted
//!   subscription of our transport method aimed elsewhere.
//! - Ours and wanted, [`healthy`] and delivering to the destination: kept
//!   (one per wanted subscription; duplicates go).
//! - Any other of ours is deleted: unwanted, duplicate, aimed at an old
//!   destination, or failed/revoked (then made again).
//! - Not ours: never touched.

use std::collections::HashSet;

use serde_json::Value;
use tau_eventsub::subscriptions::Desired;

/// Twitch statuses of a subscription that delivers, or will once Twitch's
/// verification challenge is answered. Every other status (verification
/// failed, notification failures, authorization revoked, user removed,
/// version removed, ...) will never deliver again.
pub const HEALTHY: [&str; 2] = ["enabled", "webhook_callback_verification_pending"];

/// True when `sub` (a Helix subscription object) delivers or soon will.
pub fn healthy(sub: &Value) -> bool {
    sub["status"].as_str().is_some_and(|s| HEALTHY.contains(&s))
}

/// Where our subscriptions deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// Signed POSTs to this callback URL.
    Webhook {
        /// The callback URL.
        callback: String,
    },
    /// This conduit's shards.
    Conduit {
        /// The conduit's id.
        conduit_id: String,
    },
}

impl Destination {
    /// The transport method (`webhook` or `conduit`).
    pub fn method(&self) -> &'static str {
        match self {
            Destination::Webhook { .. } => "webhook",
            Destination::Conduit { .. } => "conduit",
        }
    }

    /// True if `sub` delivers here.
    pub fn delivers(&self, sub: &Value) -> bool {
        let transport = &sub["transport"];
        transport["method"] == self.method()
            && match self {
                Destination::Webhook { callback } => transport["callback"] == callback.as_str(),
                Destination::Conduit { conduit_id } => {
                    transport["conduit_id"] == conduit_id.as_str()
                }
            }
    }
}

/// What makes a listed subscription ours.
#[derive(Debug, Clone, Copy)]
pub struct Ours<'a> {
    /// Where ours deliver.
    pub destination: &'a Destination,
    /// Ids we made before (from status), wherever they deliver now.
    pub known_ids: &'a HashSet<String>,
    /// Whether wanted subscriptions of our method aimed elsewhere are ours
    /// too (the relay owns its application's subscriptions of its
    /// transport; the operator shares client ids between channels and
    /// does not).
    pub claim_wanted: bool,
}

impl Ours<'_> {
    /// True if `sub` is ours, given what is `wanted`.
    pub fn contains(&self, sub: &Value, wanted: &[Desired]) -> bool {
        let known = sub["id"]
            .as_str()
            .is_some_and(|id| self.known_ids.contains(id));
        let claimed = self.claim_wanted
            && sub["transport"]["method"] == self.destination.method()
            && wanted.iter().any(|w| w.matches(sub));
        self.destination.delivers(sub) || known || claimed
    }
}

/// What to change at Twitch.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    /// Listed subscriptions that are wanted and fine, as Twitch listed them.
    pub keep: Vec<Value>,
    /// Wanted subscriptions to create.
    pub create: Vec<Desired>,
    /// Ids of our subscriptions to delete.
    pub delete: Vec<String>,
}

/// Compares what is `wanted` with what Twitch `listed`.
pub fn plan(wanted: &[Desired], listed: &[Value], ours: Ours<'_>) -> Plan {
    let mut out = Plan::default();
    let mut matched = vec![false; wanted.len()];
    for sub in listed.iter().filter(|s| ours.contains(s, wanted)) {
        let slot = wanted
            .iter()
            .enumerate()
            .position(|(i, w)| !matched[i] && w.matches(sub));
        match slot {
            Some(i) if healthy(sub) && ours.destination.delivers(sub) => {
                matched[i] = true;
                out.keep.push(sub.clone());
            }
            _ => out
                .delete
                .push(sub["id"].as_str().unwrap_or_default().to_string()),
        }
    }
    out.create = wanted
        .iter()
        .zip(&matched)
        .filter(|(_, m)| !**m)
        .map(|(w, _)| w.clone())
        .collect();
    out
}

/// Ids of every listed subscription that is ours (to delete them all).
pub fn owned(listed: &[Value], ours: Ours<'_>) -> Vec<String> {
    listed
        .iter()
        .filter(|s| ours.contains(s, &[]))
        .filter_map(|s| s["id"].as_str().map(str::to_string))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tau_eventsub::subscriptions::{desired, Ids};

    const CB: &str = "https://a.example.com/twitch/eventsub";
    const OTHER: &str = "https://other.example.com/twitch/eventsub";

    fn listed(id: &str, kind: &str, version: &str, status: &str, callback: &str) -> Value {
        json!({"id": id, "type": kind, "version": version, "status": status,
               "condition": {"broadcaster_user_id": "1337"},
               "transport": {"method": "webhook", "callback": callback}})
    }

    fn wanted(types: &[(&str, &str)]) -> Vec<Desired> {
        let types: Vec<_> = types
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let ids = Ids {
            broadcaster_id: "1337".into(),
            user_id: "1337".into(),
            client_id: "cid".into(),
        };
        desired(&types, &ids).0
    }

    fn webhook() -> Destination {
        Destination::Webhook {
            callback: CB.into(),
        }
    }

    fn ids(p: &Plan) -> Vec<&str> {
        p.keep.iter().map(|s| s["id"].as_str().unwrap()).collect()
    }

    #[test]
    fn creates_missing_deletes_stale_and_keeps_the_rest() {
        let want = wanted(&[("stream.online", "1"), ("stream.offline", "1")]);
        let have = [
            listed("1", "stream.online", "1", "enabled", CB),
            listed("2", "channel.update", "2", "enabled", CB),
            listed("3", "stream.online", "1", "enabled", OTHER),
        ];
        let (dest, known) = (webhook(), HashSet::new());
        let ours = Ours {
            destination: &dest,
            known_ids: &known,
            claim_wanted: false,
        };
        let p = plan(&want, &have, ours);
        assert_eq!(ids(&p), ["1"]);
        assert_eq!(p.create.len(), 1);
        assert_eq!(p.create[0].kind, "stream.offline");
        assert_eq!(
            p.delete,
            ["2"],
            "another channel's subscription is never touched"
        );
    }

    #[test]
    fn failed_duplicates_and_old_callbacks_are_replaced() {
        let want = wanted(&[("stream.online", "1")]);
        let have = [
            listed(
                "1",
                "stream.online",
                "1",
                "webhook_callback_verification_failed",
                CB,
            ),
            listed(
                "2",
                "stream.online",
                "1",
                "webhook_callback_verification_pending",
                CB,
            ),
            listed("3", "stream.online", "1", "enabled", CB),
            listed(
                "4",
                "stream.online",
                "1",
                "enabled",
                "https://old-host.example.com/twitch/eventsub",
            ),
        ];
        let (dest, known) = (webhook(), HashSet::from(["4".to_string()]));
        let ours = Ours {
            destination: &dest,
            known_ids: &known,
            claim_wanted: false,
        };
        let p = plan(&want, &have, ours);
        assert_eq!(ids(&p), ["2"]);
        assert!(p.create.is_empty());
        assert_eq!(p.delete, ["1", "3", "4"]);
    }

    #[test]
    fn only_the_healthy_statuses_are_kept() {
        let want = wanted(&[("stream.online", "1")]);
        let (dest, known) = (webhook(), HashSet::new());
        let ours = Ours {
            destination: &dest,
            known_ids: &known,
            claim_wanted: false,
        };
        for status in [
            "authorization_revoked",
            "notification_failures_exceeded",
            "user_removed",
            "version_removed",
            "beta_maintenance",
        ] {
            let p = plan(
                &want,
                &[listed("1", "stream.online", "1", status, CB)],
                ours,
            );
            assert_eq!(p.delete, ["1"], "{status}");
            assert_eq!(p.create.len(), 1, "{status}");
        }
    }

    #[test]
    fn an_owner_of_the_whole_app_claims_wanted_ones_aimed_elsewhere() {
        let want = wanted(&[("stream.online", "1")]);
        let have = [
            listed("1", "stream.online", "1", "enabled", OTHER),
            listed("2", "stream.offline", "1", "enabled", OTHER),
        ];
        let (dest, known) = (webhook(), HashSet::new());
        let ours = Ours {
            destination: &dest,
            known_ids: &known,
            claim_wanted: true,
        };
        let p = plan(&want, &have, ours);
        assert!(p.keep.is_empty());
        assert_eq!(p.delete, ["1"], "wanted but aimed elsewhere: replaced");
        assert_eq!(p.create.len(), 1);
        let conduit = Destination::Conduit {
            conduit_id: "c".into(),
        };
        let ours = Ours {
            destination: &conduit,
            ..ours
        };
        let p = plan(&want, &have, ours);
        assert!(
            p.delete.is_empty(),
            "another method's subscriptions are not claimed"
        );
    }

    #[test]
    fn owned_lists_ours_only() {
        let have = [
            listed("1", "stream.online", "1", "enabled", CB),
            listed("2", "stream.online", "1", "enabled", OTHER),
            listed("3", "stream.online", "1", "enabled", OTHER),
        ];
        let (dest, known) = (webhook(), HashSet::from(["3".to_string()]));
        let ours = Ours {
            destination: &dest,
            known_ids: &known,
            claim_wanted: false,
        };
        assert_eq!(owned(&have, ours), ["1", "3"]);
    }
}
