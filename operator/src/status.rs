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
use crate::relay_probe::RelayView;

mod relay;

/// What happened at Twitch in this reconcile.
#[derive(Debug, Clone, PartialEq)]
pub enum TwitchState {
    /// WebSocket or conduit transport: the relay talks to Twitch; this is
    /// what it reported (or why it could not be asked).
    Relay(RelayView),
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

/// One condition's verdict: status (`None` = Unknown), reason, message.
type Verdict = (Option<bool>, String, String);

fn verdict(ok: Option<bool>, reason: &str, message: impl Into<String>) -> Verdict {
    (ok, reason.into(), message.into())
}

fn condition(type_: &str, (ok, reason, message): Verdict, generation: Option<i64>) -> Condition {
    let status = match ok {
        Some(true) => "True",
        Some(false) => "False",
        None => "Unknown",
    };
    Condition {
        type_: type_.into(),
        status: status.into(),
        reason,
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
    let auth = match &o.twitch {
        TwitchState::Relay(view) => relay::authorized(tc, o, view),
        TwitchState::Synced { .. } => verdict(Some(true), "Authorized", format!("Twitch accepts subscriptions for {login}")),
        TwitchState::NotAuthorized { message, .. } => verdict(
            Some(false),
            "NotAuthorized",
            format!("broadcaster {login} has not authorized this Twitch app: open {}/ to connect (Twitch said: {message})", o.relay_url),
        ),
        TwitchState::Failed { reason, message } => verdict(None, reason, message.clone()),
    };
    let subs = match &o.twitch {
        _ if !o.unknown_events.is_empty() => verdict(
            Some(false),
            "UnknownEventTypes",
            format!(
                "spec.events names unknown EventSub types: {}",
                o.unknown_events.join(", ")
            ),
        ),
        TwitchState::Relay(view) => relay::subscribed(tc, view),
        TwitchState::Synced { present, wanted } if present.len() >= *wanted => {
            verdict(Some(true), "Subscribed", summary(present, *wanted))
        }
        TwitchState::Synced { present, wanted } => {
            verdict(Some(false), "Subscribing", summary(present, *wanted))
        }
        TwitchState::NotAuthorized {
            present, wanted, ..
        } => verdict(Some(false), "NotAuthorized", summary(present, *wanted)),
        TwitchState::Failed { reason, message } => verdict(Some(false), reason, message.clone()),
    };
    let relay = match o.relay {
        Some((ready, desired)) if ready >= desired => verdict(
            Some(true),
            "Available",
            format!("{ready}/{desired} relay pods ready"),
        ),
        Some((ready, desired)) => verdict(
            Some(false),
            "Progressing",
            format!("{ready}/{desired} relay pods ready"),
        ),
        None => verdict(
            Some(false),
            "Creating",
            "the relay Deployment is being created",
        ),
    };
    // Ready when all three are True; else the first that is not says why.
    let ready = match [&auth, &subs, &relay]
        .into_iter()
        .find(|(ok, _, _)| *ok != Some(true))
    {
        None => verdict(
            Some(true),
            "Ready",
            format!("relay at {} is serving {login}", o.relay_url),
        ),
        Some((_, reason, message)) => verdict(Some(false), reason, message.clone()),
    };
    vec![
        condition("Ready", ready, generation),
        condition("Authorized", auth, generation),
        condition("SubscriptionsReady", subs, generation),
        condition("RelayReady", relay, generation),
    ]
}

/// True when the status's Ready condition is True.
pub fn is_ready(status: &TwitchChannelStatus) -> bool {
    status
        .conditions
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True")
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
    let transport = tc.effective_transport();
    let (subscriptions, ready) = match &o.twitch {
        TwitchState::Synced { present, wanted }
        | TwitchState::NotAuthorized {
            present, wanted, ..
        } => (present.clone(), Some(format!("{}/{wanted}", present.len()))),
        // What the relay last reported stands until it reports again.
        TwitchState::Relay(view) => relay::listed(tc, view)
            .unwrap_or_else(|| (old.subscriptions.clone(), old.subscriptions_ready.clone())),
        _ => (Vec::new(), None),
    };
    let reported_conduit = match &o.twitch {
        TwitchState::Relay(view) => relay::conduit_id(view),
        _ => None,
    };
    TwitchChannelStatus {
        observed_generation: tc.metadata.generation,
        broadcaster_id: o.broadcaster_id.clone().or(old.broadcaster_id),
        relay_url: Some(o.relay_url.clone()),
        transport: Some(transport.as_str().into()),
        conduit_id: reported_conduit
            .or(old.conduit_id)
            .filter(|_| transport == TransportMode::Conduit),
        secret_key_id: o.secret_key_id.clone().or(old.secret_key_id),
        subscriptions_ready: ready,
        subscriptions,
        conditions,
    }
}

#[cfg(test)]
pub(super) mod tests {
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

    pub(super) fn observed(twitch: TwitchState, relay: Option<(i32, i32)>) -> Observed {
        Observed {
            broadcaster_id: Some("1337".into()),
            relay_url: "https://a.tau.example.com".into(),
            relay,
            twitch,
            unknown_events: vec![],
            secret_key_id: None,
        }
    }

    pub(super) fn get<'a>(s: &'a TwitchChannelStatus, t: &str) -> &'a Condition {
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
