//! The Twitch side of a webhook channel: make the EventSub subscriptions at
//! Twitch match the spec, and remove them when they are no longer wanted.
//!
//! The rules (which listed subscriptions are ours, which are healthy, what
//! to create and delete) are the shared [`tau_twitch::plan`], the same the
//! relay follows for its own app-token subscriptions. Here a subscription
//! is ours when it delivers to this channel's callback or its id is in our
//! status (so a changed host does not strand the old ones); the operator
//! never claims others, since channels may share a Twitch application.

use std::collections::HashSet;

use serde_json::{json, Value};
use tau_twitch::plan::{self, Destination, Ours};
use tau_twitch::{Created, Credentials};

use crate::catalog::Wanted;
use crate::context::Context;
use crate::crd::SubscriptionStatus;
use crate::status::TwitchState;
use crate::Result;

/// A listed subscription as a status entry.
fn entry(sub: &Value) -> SubscriptionStatus {
    let text = |k: &str| sub[k].as_str().unwrap_or_default().to_string();
    SubscriptionStatus {
        kind: text("type"),
        version: text("version"),
        id: text("id"),
        status: text("status"),
    }
}

/// The Helix body creating `wanted` as a webhook to `callback`.
pub fn webhook_request(wanted: &Wanted, callback: &str, secret: &str) -> Value {
    wanted.request(json!({"method": "webhook", "callback": callback, "secret": secret}))
}

/// What a sync changed, for Events.
#[derive(Debug, Default, PartialEq)]
pub struct Changes {
    /// Subscriptions created.
    pub created: usize,
    /// Subscriptions deleted.
    pub deleted: usize,
}

/// One channel's webhook subscriptions at Twitch.
pub struct Webhooks<'a> {
    /// The channel's callback URL.
    pub callback: &'a str,
    /// The broadcaster whose subscriptions are listed.
    pub broadcaster_id: &'a str,
    /// Subscription ids the channel's status lists.
    pub known_ids: &'a HashSet<String>,
    /// The watched streamers' user ids (their subscriptions are listed
    /// under their own ids).
    pub watched_ids: &'a [String],
}

impl Webhooks<'_> {
    fn destination(&self) -> Destination {
        Destination::Webhook {
            callback: self.callback.to_string(),
        }
    }

    /// Our candidates at Twitch: the subscriptions naming the broadcaster
    /// or a watched streamer (each listed under its own user id, since
    /// Helix filters by one user), once each.
    async fn listed(&self, ctx: &Context, creds: &Credentials) -> Result<Vec<Value>> {
        let auth = ctx.app(creds);
        let mut listed = ctx
            .twitch
            .subscriptions(&auth, Some(self.broadcaster_id))
            .await?;
        for id in self
            .watched_ids
            .iter()
            .filter(|id| *id != self.broadcaster_id)
        {
            listed.extend(ctx.twitch.subscriptions(&auth, Some(id)).await?);
        }
        let mut seen = HashSet::new();
        listed.retain(|s| seen.insert(s["id"].as_str().unwrap_or_default().to_string()));
        Ok(listed)
    }

    /// Ids we made (the status lists them) that no listing shows: a
    /// streamer no longer watched is no longer listed, so its
    /// subscriptions are deleted by id (one already gone counts as deleted).
    fn unlisted_known<'s>(&'s self, listed: &[Value]) -> Vec<&'s String> {
        let present: HashSet<&str> = listed.iter().filter_map(|s| s["id"].as_str()).collect();
        let mut ids: Vec<&String> = self
            .known_ids
            .iter()
            .filter(|id| !id.is_empty() && !present.contains(id.as_str()))
            .collect();
        ids.sort();
        ids
    }

    /// Makes Twitch match `wanted`. A 403 stops the creates at the first
    /// refusal (one refusal means the broadcaster has not authorized;
    /// asking again per type would only spend rate limit).
    pub async fn sync(
        &self,
        ctx: &Context,
        creds: &Credentials,
        wanted: &[Wanted],
        secret: &str,
    ) -> Result<(TwitchState, Changes)> {
        let auth = ctx.app(creds);
        let listed = self.listed(ctx, creds).await?;
        let destination = self.destination();
        let ours = Ours {
            destination: &destination,
            known_ids: self.known_ids,
            claim_wanted: false,
        };
        let plan = plan::plan(wanted, &listed, ours);
        let mut changes = Changes::default();
        for id in plan.delete.iter().chain(self.unlisted_known(&listed)) {
            ctx.twitch.delete_subscription(&auth, id).await?;
            changes.deleted += 1;
        }
        let mut present: Vec<SubscriptionStatus> = plan.keep.iter().map(entry).collect();
        for want in &plan.create {
            let request = webhook_request(want, self.callback, secret);
            match ctx.twitch.create_subscription(&auth, &request).await? {
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
    pub async fn delete_all(&self, ctx: &Context, creds: &Credentials) -> Result<usize> {
        let auth = ctx.app(creds);
        let listed = self.listed(ctx, creds).await?;
        let destination = self.destination();
        let mut ours = plan::owned(
            &listed,
            Ours {
                destination: &destination,
                known_ids: self.known_ids,
                claim_wanted: false,
            },
        );
        ours.extend(self.unlisted_known(&listed).into_iter().cloned());
        for id in &ours {
            ctx.twitch.delete_subscription(&auth, id).await?;
        }
        Ok(ours.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog;

    const CB: &str = "https://a.example.com/twitch/eventsub";

    #[test]
    fn the_request_carries_the_callback_and_secret() {
        let want = catalog::wanted(&[("stream.online".into(), "1".into())], "1337", "cid");
        let body = webhook_request(&want[0], CB, "s3cret-s3cret");
        assert_eq!(body["transport"]["method"], "webhook");
        assert_eq!(body["transport"]["callback"], CB);
        assert_eq!(body["transport"]["secret"], "s3cret-s3cret");
        assert_eq!(body["condition"]["broadcaster_user_id"], "1337");
    }

    #[test]
    fn status_entries_carry_twitchs_fields() {
        let sub = json!({"id": "1", "type": "stream.online", "version": "1", "status": "enabled"});
        let e = entry(&sub);
        assert_eq!(
            (e.id.as_str(), e.kind.as_str(), e.status.as_str()),
            ("1", "stream.online", "enabled")
        );
    }
}
