//! TAU as an EventSub WebSocket server: bots written for Twitch's protocol
//! (twitchAPI, twurple, TwitchLib, ...) connect to TAU by changing their
//! base URLs, and share TAU's one Twitch connection instead of each
//! holding its own (Twitch allows 3 sessions per user token and kills a
//! session that subscribes too slowly).
//!
//! - [`session`]: `GET /eventsub/ws`, Twitch's socket protocol: welcome,
//!   keepalives, notifications, revocations, close codes, and the
//!   `session_reconnect` handover when this relay drains.
//! - [`subscriptions`]: the Helix-compatible `/helix/eventsub/subscriptions`
//!   and `/oauth2/validate`; a TAU API token stands in for a user token.
//! - [`frames`]: the messages, serialized with the event object verbatim.
//! - [`ratelimit`]: Twitch's `Ratelimit-*` headers, which libraries pace
//!   their Helix calls by.
//! - [`parsed`]: each event parsed once for all sessions, not per session.
//!
//! Sessions live on the replica that accepted them (as on Twitch, where a
//! session lives on one server): [`Sessions`] is this replica's registry.
//! A session is bound to the TAU token that first subscribes on it; its
//! socket closes when that token is revoked or its grant changes.

pub mod frames;
pub mod parsed;
pub mod ratelimit;
pub mod session;
pub mod subscriptions;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::watch;

use crate::store::ApiToken;

/// Twitch's limit of subscriptions per session.
pub const MAX_SUBSCRIPTIONS: usize = 300;

/// `transport` of a session's subscription.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Transport {
    /// Always `websocket`.
    #[schema(example = "websocket")]
    pub method: String,
    /// The session the subscription delivers to.
    pub session_id: String,
    /// When that session connected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connected_at: Option<String>,
}

/// A subscription, in Helix's shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Subscription {
    /// The subscription's id (kept across a reconnect handover).
    pub id: String,
    /// `enabled` (or the reason in a revocation).
    #[schema(example = "enabled")]
    pub status: String,
    /// EventSub type.
    #[serde(rename = "type")]
    #[schema(example = "channel.follow")]
    pub kind: String,
    /// Its version.
    #[schema(example = "2")]
    pub version: String,
    /// Condition fields, as subscribed.
    #[schema(value_type = Object)]
    pub condition: Map<String, Value>,
    /// Where it delivers.
    pub transport: Transport,
    /// When it was created.
    pub created_at: String,
    /// Always 0: the events come over TAU's existing Twitch connection.
    pub cost: u32,
}

impl Subscription {
    /// True if an event of `kind` whose `event` object is given belongs to
    /// this subscription: same type, and every condition field that the
    /// event carries (or `reward.id` for `reward_id`) equals the condition.
    /// Fields the event does not carry (e.g. `moderator_user_id`) were
    /// TAU's own subscription's business.
    pub fn wants(&self, kind: &str, event: Option<&Map<String, Value>>) -> bool {
        if self.kind != kind {
            return false;
        }
        condition_matches(&self.condition, event)
    }
}

/// True if every condition field that `event` carries (or `reward.id` for
/// `reward_id`) equals the condition's value; `None` (an event that is
/// not an object) matches. Fields the event does not carry (e.g.
/// `moderator_user_id`) were TAU's own subscription's business. Shared
/// by sessions and webhook targets ([`crate::forwarding`]).
pub fn condition_matches(
    condition: &Map<String, Value>,
    event: Option<&Map<String, Value>>,
) -> bool {
    let Some(event) = event else { return true };
    condition.iter().all(|(field, want)| {
        let have = if field == "reward_id" {
            event.get("reward").and_then(|r| r.get("id"))
        } else {
            event.get(field)
        };
        have.is_none_or(|have| have == want)
    })
}

/// What a session holds: its owner token and subscriptions.
#[derive(Debug, Clone, Default)]
pub struct SessionState {
    /// The token that subscribed first (`None` until then).
    pub owner: Option<ApiToken>,
    /// Its subscriptions.
    pub subscriptions: Vec<Subscription>,
}

/// This replica's live sessions; cheap to clone.
#[derive(Clone, Default)]
pub struct Sessions {
    inner: Arc<Mutex<HashMap<String, watch::Sender<SessionState>>>>,
    /// Recent events, parsed once for every session.
    parsed: Arc<parsed::ParsedEvents>,
}

/// Why a subscription was not added to a session.
#[derive(Debug, PartialEq, Eq)]
pub enum AddError {
    /// No such session here.
    NoSession,
    /// Another token owns the session.
    OtherOwner,
    /// Same type, version, condition already.
    Duplicate,
    /// [`MAX_SUBSCRIPTIONS`] reached.
    Full,
}

impl Sessions {
    /// Registers a session; the receiver tells the socket what it holds.
    pub fn open(&self, id: &str, state: SessionState) -> watch::Receiver<SessionState> {
        let (tx, rx) = watch::channel(state);
        self.lock().insert(id.to_string(), tx);
        rx
    }

    /// Forgets a session (its socket ended).
    pub fn close(&self, id: &str) {
        self.lock().remove(id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, watch::Sender<SessionState>>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `event` parsed for notifications, once for all sessions (`None`:
    /// not a TAU frame).
    pub fn parsed(
        &self,
        event: &Arc<crate::event::EncodedEvent>,
    ) -> Option<Arc<parsed::ParsedEvent>> {
        self.parsed.get(event)
    }

    /// True if `id` is a live session here.
    pub fn exists(&self, id: &str) -> bool {
        self.lock().contains_key(id)
    }

    /// Adds `sub` to its session for `owner`.
    pub fn add(&self, owner: &ApiToken, sub: Subscription) -> Result<Subscription, AddError> {
        let sessions = self.lock();
        let tx = sessions
            .get(&sub.transport.session_id)
            .ok_or(AddError::NoSession)?;
        let mut result = Ok(sub.clone());
        tx.send_if_modified(|state| {
            if state.owner.as_ref().is_some_and(|o| o.id != owner.id) {
                result = Err(AddError::OtherOwner);
                return false;
            }
            if state.subscriptions.iter().any(|s| {
                s.kind == sub.kind && s.version == sub.version && s.condition == sub.condition
            }) {
                result = Err(AddError::Duplicate);
                return false;
            }
            if state.subscriptions.len() >= MAX_SUBSCRIPTIONS {
                result = Err(AddError::Full);
                return false;
            }
            state.owner.get_or_insert_with(|| owner.clone());
            state.subscriptions.push(sub.clone());
            true
        });
        result
    }

    /// Every subscription of sessions owned by token `owner_id`.
    pub fn owned_by(&self, owner_id: &str) -> Vec<Subscription> {
        self.lock()
            .values()
            .filter_map(|tx| {
                let state = tx.borrow();
                (state.owner.as_ref().map(|o| o.id.as_str()) == Some(owner_id))
                    .then(|| state.subscriptions.clone())
            })
            .flatten()
            .collect()
    }

    /// Removes subscription `id` from the owner's sessions; true if found.
    pub fn remove(&self, owner_id: &str, id: &str) -> bool {
        let sessions = self.lock();
        sessions.values().any(|tx| {
            tx.send_if_modified(|state| {
                if state.owner.as_ref().map(|o| o.id.as_str()) != Some(owner_id) {
                    return false;
                }
                let before = state.subscriptions.len();
                state.subscriptions.retain(|s| s.id != id);
                state.subscriptions.len() != before
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(kind: &str, condition: Value) -> Subscription {
        Subscription {
            id: "s".into(),
            status: "enabled".into(),
            kind: kind.into(),
            version: "1".into(),
            condition: condition.as_object().unwrap().clone(),
            transport: Transport {
                method: "websocket".into(),
                session_id: "x".into(),
                connected_at: None,
            },
            created_at: String::new(),
            cost: 0,
        }
    }

    #[test]
    fn conditions_match_the_fields_the_event_carries() {
        let follow = sub(
            "channel.follow",
            serde_json::json!({"broadcaster_user_id": "1", "moderator_user_id": "1"}),
        );
        let event = |json: Value| json.as_object().unwrap().clone();
        assert!(follow.wants(
            "channel.follow",
            Some(&event(serde_json::json!({"broadcaster_user_id": "1"})))
        ));
        assert!(!follow.wants(
            "channel.follow",
            Some(&event(serde_json::json!({"broadcaster_user_id": "2"})))
        ));
        assert!(!follow.wants("channel.cheer", None));
        let reward = sub(
            "channel.channel_points_custom_reward_redemption.add",
            serde_json::json!({"broadcaster_user_id": "1", "reward_id": "r"}),
        );
        let redeemed =
            |id: &str| event(serde_json::json!({"broadcaster_user_id": "1", "reward": {"id": id}}));
        assert!(reward.wants(&reward.kind.clone(), Some(&redeemed("r"))));
        assert!(!reward.wants(&reward.kind.clone(), Some(&redeemed("other"))));
    }
}
