//! Status: from what a reconcile observed to conditions a person can act on.
//!
//! Pure: [`status`] takes the observation, the previous status and the
//! time, and returns the new status. Conditions keep their
//! `lastTransitionTime` while their status does not change, so an
//! unchanged world yields an identical status and the reconcile skips the
//! write (a quiet cluster stays quiet).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

use crate::crd::{SubscriptionStatus, TransportMode, TwitchChannel, TwitchChannelStatus};

/// What happened at Twitch in this reconcile.
#[derive(Debug, Clone, PartialEq)]
pub enum TwitchState {
    /// WebSocket transport: the relay pod subscribes with the user token.
    RelayManaged,
    /// Every step went through; `present` of `wanted` subscriptions exist.
    Synced {
        /// Subscriptions at Twitch that are ours and wanted.
        present: Vec<SubscriptionStatus>,
        /// How many are wanted.
        wanted: usize,
    },
    /// Twitch answered 403: the broadcaster has not authorized the app.
    NotAuthorized {
        /// Subscriptions that do exist.
        present: Vec<SubscriptionStatus>,
        /// How many are wanted.
        wanted: usize,
        /// Twitch's message.
        message: String,
    },
    /// Something the user must fix (credentials, login, spec).
    Failed {
        /// CamelCase reason.
        reason: String,
        /// What to do.
        message: String,
    },
}

/// Everything a reconcile observed.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    /// The broadcaster's Twitch id, once known.
    pub broadcaster_id: Option<String>,
    /// The relay's URL.
    pub relay_url: String,
    /// `(ready, desired)` relay pods; `None` if the Deployment is not there yet.
    pub relay: Option<(i32, i32)>,
    /// The Twitch side.
    pub twitch: TwitchState,
    /// Entries of `spec.events` that are not EventSub types.
    pub unknown_events: Vec<String>,
    /// Fingerprint of the generated secret key in use (`None`: unchanged).
    pub secret_key_id: Option<String>,
}

fn condition(
    type_: &str,
    ok: Option<bool>,
    reason: &str,
    message: String,
    generation: Option<i64>,
) -> Condition {
    let status = match ok {
        Some(true) => "True",
        Some(false) => "False",
        None => "Unknown",
    };
    Condition {
        type_: type_.into(),
        status: status.into(),
        reason: reason.into(),
        message,
        observed_generation: generation,
        last_transition_time: Time(Timestamp::UNIX_EPOCH),
    }
}

fn summary(present: &[SubscriptionStatus], wanted: usize) -> String {
    let pending = present
        .iter()
        .filter(|s| s.status == "webhook_callback_verification_pending")
        .count();
    let mut text = format!("{}/{wanted} subscriptions exist at Twitch", present.len());
    if pending > 0 {
        text.push_str(&format!(
            " ({pending} awaiting webhook verification by Twitch)"
        ));
    }
    text
}

/// The four conditions, in a fixed order: Ready, Authorized, SubscriptionsReady, RelayReady.
fn conditions(tc: &TwitchChannel, o: &Observed) -> Vec<Condition> {
    let generation = tc.metadata.generation;
    let login = &tc.spec.broadcaster;
    let (auth_ok, auth_reason, auth_msg) = match &o.twitch {
        TwitchState::RelayManaged => (None, "RelayManaged", "the relay manages its Twitch authorization (websocket or conduit transport); see its dashboard".to_string()),
        TwitchState::Synced { .. } => (Some(true), "Authorized", format!("Twitch accepts subscriptions for {login}")),
        TwitchState::NotAuthorized { message, .. } => (
            Some(false),
            "NotAuthorized",
            format!("broadcaster {login} has not authorized this Twitch app: open {}/ to connect (Twitch said: {message})", o.relay_url),
        ),
        TwitchState::Failed { reason, message } => (None, reason.as_str(), message.clone()),
    };
    let (subs_ok, subs_reason, subs_msg) = match &o.twitch {
        _ if !o.unknown_events.is_empty() => (
            Some(false),
            "UnknownEventTypes",
            format!(
                "spec.events names unknown EventSub types: {}",
                o.unknown_events.join(", ")
            ),
        ),
        TwitchState::RelayManaged => (
            Some(true),
            "RelayManaged",
            "the relay subscribes itself (EventSub WebSocket session or conduit)".into(),
        ),
        TwitchState::Synced { present, wanted } if present.len() >= *wanted => {
            (Some(true), "Subscribed", summary(present, *wanted))
        }
        TwitchState::Synced { present, wanted } => {
            (Some(false), "Subscribing", summary(present, *wanted))
        }
        TwitchState::NotAuthorized {
            present, wanted, ..
        } => (Some(false), "NotAuthorized", summary(present, *wanted)),
        TwitchState::Failed { reason, message } => (Some(false), reason.as_str(), message.clone()),
    };
    let (relay_ok, relay_reason, relay_msg) = match o.relay {
        Some((ready, desired)) if ready >= desired => (
            Some(true),
            "Available",
            format!("{ready}/{desired} relay pods ready"),
        ),
        Some((ready, desired)) => (
            Some(false),
            "Progressing",
            format!("{ready}/{desired} relay pods ready"),
        ),
        None => (
            Some(false),
            "Creating",
            "the relay Deployment is being created".into(),
        ),
    };
    let parts = [
        (auth_ok != Some(false), auth_reason, &auth_msg),
        (subs_ok == Some(true), subs_reason, &subs_msg),
        (relay_ok == Some(true), relay_reason, &relay_msg),
    ];
    let ready = match parts.iter().find(|(ok, _, _)| !ok) {
        None => condition(
            "Ready",
            Some(true),
            "Ready",
            format!("relay at {} is serving {login}", o.relay_url),
            generation,
        ),
        Some((_, reason, message)) => {
            condition("Ready", Some(false), reason, (*message).clone(), generation)
        }
    };
    vec![
        ready,
        condition(
            "Authorized",
            auth_ok,
            auth_reason,
            auth_msg.clone(),
            generation,
        ),
        condition(
            "SubscriptionsReady",
            subs_ok,
            subs_reason,
            subs_msg.clone(),
            generation,
        ),
        condition(
            "RelayReady",
            relay_ok,
            relay_reason,
            relay_msg.clone(),
            generation,
        ),
    ]
}

/// The new status; transition times carry over from `old` when a condition's status is unchanged.
pub fn status(tc: &TwitchChannel, o: &Observed, now: Timestamp) -> TwitchChannelStatus {
    let old = tc.status.clone().unwrap_or_default();
    let mut conditions = conditions(tc, o);
    for c in &mut conditions {
        c.last_transition_time = old
            .conditions
            .iter()
            .find(|p| p.type_ == c.type_ && p.status == c.status)
            .map_or(Time(now), |p| p.last_transition_time.clone());
    }
    let (subscriptions, ready) = match &o.twitch {
        TwitchState::Synced { present, wanted }
        | TwitchState::NotAuthorized {
            present, wanted, ..
        } => (present.clone(), Some(format!("{}/{wanted}", present.len()))),
        _ => (Vec::new(), None),
    };
    let transport = tc.effective_transport();
    TwitchChannelStatus {
        observed_generation: tc.metadata.generation,
        broadcaster_id: o.broadcaster_id.clone().or(old.broadcaster_id),
        relay_url: Some(o.relay_url.clone()),
        transport: Some(transport.as_str().into()),
        conduit_id: old
            .conduit_id
            .filter(|_| transport == TransportMode::Conduit),
        secret_key_id: o.secret_key_id.clone().or(old.secret_key_id),
        subscriptions_ready: ready,
        subscriptions,
        conditions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::channel;

    fn sub(status: &str) -> SubscriptionStatus {
        SubscriptionStatus {
            kind: "stream.online".into(),
            version: "1".into(),
            id: "id".into(),
            status: status.into(),
        }
    }

    fn observed(twitch: TwitchState, relay: Option<(i32, i32)>) -> Observed {
        Observed {
            broadcaster_id: Some("1337".into()),
            relay_url: "https://a.tau.example.com".into(),
            relay,
            twitch,
            unknown_events: vec![],
            secret_key_id: None,
        }
    }

    fn get<'a>(s: &'a TwitchChannelStatus, t: &str) -> &'a Condition {
        s.conditions.iter().find(|c| c.type_ == t).unwrap()
    }

    #[test]
    fn all_good_is_ready() {
        let o = observed(
            TwitchState::Synced {
                present: vec![sub("enabled")],
                wanted: 1,
            },
            Some((1, 1)),
        );
        let s = status(&channel("a"), &o, Timestamp::UNIX_EPOCH);
        assert_eq!(get(&s, "Ready").status, "True");
        assert_eq!(get(&s, "RelayReady").status, "True");
        assert_eq!(s.subscriptions_ready.as_deref(), Some("1/1"));
        assert_eq!(s.observed_generation, Some(1));
        assert_eq!(get(&s, "Ready").observed_generation, Some(1));
    }

    #[test]
    fn not_authorized_names_the_url_to_fix_it() {
        let o = observed(
            TwitchState::NotAuthorized {
                present: vec![],
                wanted: 2,
                message: "subscription missing proper authorization".into(),
            },
            Some((1, 1)),
        );
        let s = status(&channel("a"), &o, Timestamp::UNIX_EPOCH);
        let auth = get(&s, "Authorized");
        assert_eq!(
            (auth.status.as_str(), auth.reason.as_str()),
            ("False", "NotAuthorized")
        );
        assert!(
            auth.message
                .contains("open https://a.tau.example.com/ to connect"),
            "{}",
            auth.message
        );
        assert_eq!(get(&s, "Ready").reason, "NotAuthorized");
        assert_eq!(get(&s, "SubscriptionsReady").status, "False");
    }

    #[test]
    fn relay_not_ready_and_unknown_events_block_ready() {
        let o = observed(TwitchState::RelayManaged, Some((0, 1)));
        let s = status(&channel("a"), &o, Timestamp::UNIX_EPOCH);
        assert_eq!(get(&s, "Authorized").status, "Unknown");
        assert_eq!(get(&s, "Ready").reason, "Progressing");
        let mut o = observed(TwitchState::RelayManaged, Some((1, 1)));
        o.unknown_events = vec!["nope".into()];
        let s = status(&channel("a"), &o, Timestamp::UNIX_EPOCH);
        assert_eq!(get(&s, "Ready").reason, "UnknownEventTypes");
    }

    #[test]
    fn transition_times_survive_an_unchanged_world() {
        let o = observed(
            TwitchState::Synced {
                present: vec![sub("enabled")],
                wanted: 1,
            },
            Some((0, 1)),
        );
        let mut tc = channel("a");
        let first = status(&tc, &o, Timestamp::from_second(100).unwrap());
        tc.status = Some(first.clone());
        let again = status(&tc, &o, Timestamp::from_second(200).unwrap());
        assert_eq!(first, again);
        let o = observed(
            TwitchState::Synced {
                present: vec![sub("enabled")],
                wanted: 1,
            },
            Some((1, 1)),
        );
        let changed = status(&tc, &o, Timestamp::from_second(300).unwrap());
        assert_eq!(
            get(&changed, "RelayReady").last_transition_time.0,
            Timestamp::from_second(300).unwrap()
        );
        assert_eq!(
            get(&changed, "Authorized").last_transition_time.0,
            Timestamp::from_second(100).unwrap()
        );
    }
}
