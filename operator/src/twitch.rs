//! The Twitch side of a channel: make the EventSub subscriptions at Twitch
//! match the spec, and remove them when the channel goes away.
//!
//! [`plan`] is pure: given what is wanted and what Twitch listed, it says
//! which to create and which to delete. A listed subscription is *ours*
//! when it delivers to this channel's callback or its id is in our status
//! (so a changed host does not strand the old ones); only ours are ever
//! deleted. Failed or revoked ones are deleted and made again.

use std::collections::HashSet;

use serde_json::{json, Value};

use crate::catalog::Wanted;
use crate::crd::SubscriptionStatus;
use crate::helix::{Created, Credentials, Helix};
use crate::status::TwitchState;
use crate::Result;

/// Twitch statuses of a subscription that is (or will soon be) delivering.
const HEALTHY: [&str; 2] = ["enabled", "webhook_callback_verification_pending"];

/// What to change at Twitch.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    /// Wanted subscriptions that exist, as status entries.
    pub present: Vec<SubscriptionStatus>,
    /// Wanted subscriptions to create.
    pub create: Vec<Wanted>,
    /// Ids of our subscriptions to delete (unwanted, duplicate or failed).
    pub delete: Vec<String>,
}

fn entry(sub: &Value) -> SubscriptionStatus {
    let text = |k: &str| sub[k].as_str().unwrap_or_default().to_string();
    SubscriptionStatus {
        kind: text("type"),
        version: text("version"),
        id: text("id"),
        status: text("status"),
    }
}

/// Whether `sub` belongs to this channel.
pub fn is_ours(sub: &Value, callback: &str, known_ids: &HashSet<String>) -> bool {
    let by_callback =
        sub["transport"]["method"] == "webhook" && sub["transport"]["callback"] == callback;
    by_callback || sub["id"].as_str().is_some_and(|id| known_ids.contains(id))
}

/// Compares what is wanted with what Twitch listed.
pub fn plan(
    wanted: &[Wanted],
    listed: &[Value],
    callback: &str,
    known_ids: &HashSet<String>,
) -> Plan {
    let mut out = Plan::default();
    let mut matched = vec![false; wanted.len()];
    for sub in listed.iter().filter(|s| is_ours(s, callback, known_ids)) {
        let healthy = sub["status"].as_str().is_some_and(|s| HEALTHY.contains(&s));
        let on_callback = sub["transport"]["callback"] == callback;
        let slot = wanted
            .iter()
            .enumerate()
            .position(|(i, w)| !matched[i] && w.matches(sub));
        match slot {
            Some(i) if healthy && on_callback => {
                matched[i] = true;
                out.present.push(entry(sub));
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

/// The Helix body creating `wanted` as a webhook to `callback`.
pub fn webhook_request(wanted: &Wanted, callback: &str, secret: &str) -> Value {
    json!({
        "type": wanted.kind,
        "version": wanted.version,
        "condition": wanted.condition,
        "transport": {"method": "webhook", "callback": callback, "secret": secret},
    })
}

/// What a sync changed, for Events.
#[derive(Debug, Default, PartialEq)]
pub struct Changes {
    /// Subscriptions created.
    pub created: usize,
    /// Subscriptions deleted.
    pub deleted: usize,
}

/// Makes Twitch match `wanted` for a webhook channel. A 403 stops the
/// creates at the first refusal (one refusal means the broadcaster has not
/// authorized; asking again per type would only spend rate limit).
pub async fn sync_webhooks(
    helix: &Helix,
    creds: &Credentials,
    broadcaster_id: &str,
    wanted: &[Wanted],
    callback: &str,
    secret: &str,
    known_ids: &HashSet<String>,
) -> Result<(TwitchState, Changes)> {
    let listed = helix.subscriptions(creds, broadcaster_id).await?;
    let plan = plan(wanted, &listed, callback, known_ids);
    let mut changes = Changes::default();
    for id in &plan.delete {
        helix.delete(creds, id).await?;
        changes.deleted += 1;
    }
    let mut present = plan.present;
    for want in &plan.create {
        match helix
            .create(creds, &webhook_request(want, callback, secret))
            .await?
        {
            Created::Created(sub) => {
                present.push(entry(&sub));
                changes.created += 1;
            }
            // Made by a concurrent reconcile; the next list shows it.
            Created::Exists => {}
            Created::Forbidden(message) => {
                let state = TwitchState::NotAuthorized {
                    present,
                    wanted: wanted.len(),
                    message,
                };
                return Ok((state, changes));
            }
        }
    }
    present.sort_by(|a, b| (&a.kind, &a.version, &a.id).cmp(&(&b.kind, &b.version, &b.id)));
    let state = TwitchState::Synced {
        present,
        wanted: wanted.len(),
    };
    Ok((state, changes))
}

/// Deletes every subscription of ours; returns how many.
pub async fn delete_all(
    helix: &Helix,
    creds: &Credentials,
    broadcaster_id: &str,
    callback: &str,
    known_ids: &HashSet<String>,
) -> Result<usize> {
    let listed = helix.subscriptions(creds, broadcaster_id).await?;
    let ours: Vec<&Value> = listed
        .iter()
        .filter(|s| is_ours(s, callback, known_ids))
        .collect();
    for sub in &ours {
        helix
            .delete(creds, sub["id"].as_str().unwrap_or_default())
            .await?;
    }
    Ok(ours.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog;

    const CB: &str = "https://a.example.com/twitch/eventsub";

    fn listed(id: &str, kind: &str, version: &str, status: &str, callback: &str) -> Value {
        json!({"id": id, "type": kind, "version": version, "status": status,
               "condition": {"broadcaster_user_id": "1337"},
               "transport": {"method": "webhook", "callback": callback}})
    }

    fn wanted(types: &[(&str, &str)]) -> Vec<Wanted> {
        let types: Vec<_> = types
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        catalog::wanted(&types, "1337", "cid")
    }

    #[test]
    fn creates_missing_deletes_stale_and_keeps_the_rest() {
        let want = wanted(&[("stream.online", "1"), ("stream.offline", "1")]);
        let have = [
            listed("1", "stream.online", "1", "enabled", CB),
            listed("2", "channel.update", "2", "enabled", CB),
            listed(
                "3",
                "stream.online",
                "1",
                "enabled",
                "https://other.example.com/twitch/eventsub",
            ),
        ];
        let p = plan(&want, &have, CB, &HashSet::new());
        assert_eq!(p.present.len(), 1);
        assert_eq!(p.present[0].id, "1");
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
        let known = HashSet::from(["4".to_string()]);
        let p = plan(&want, &have, CB, &known);
        assert_eq!(p.present.len(), 1);
        assert_eq!(p.present[0].id, "2");
        assert!(p.create.is_empty());
        assert_eq!(p.delete, ["1", "3", "4"]);
    }

    #[test]
    fn the_request_carries_the_callback_and_secret() {
        let want = wanted(&[("stream.online", "1")]);
        let body = webhook_request(&want[0], CB, "s3cret-s3cret");
        assert_eq!(body["transport"]["callback"], CB);
        assert_eq!(body["transport"]["secret"], "s3cret-s3cret");
        assert_eq!(body["condition"]["broadcaster_user_id"], "1337");
    }
}
