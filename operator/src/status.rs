//! Status: from what a reconcile observed to conditions a person can act on.
//!
//! Pure: [`status`] takes the observation, the previous status and the
//! time, and returns the new status. Conditions keep their
//! `lastTransitionTime` while their status does not change, so an
//! unchanged world yields an identical status and the reconcile skips the
//! write (a quiet cluster stays quiet).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

use crate::crd::{SubscriptionStatus, TransportMode, TwitchChannel, TwitchChannelStatus};
use crate::relay_probe::{RelayView, STANDBY};

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

/// A relay subscription that works (`already_exists`: Twitch had it).
fn working(s: &SubscriptionStatus) -> bool {
    s.status == "enabled" || s.status == "already_exists"
}

/// `waiting_for_authorization` → `WaitingForAuthorization`.
fn camel(state: &str) -> String {
    let mut out = String::new();
    for word in state.split(|c: char| !c.is_ascii_alphanumeric()) {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            out.push(first.to_ascii_uppercase());
            out.extend(chars);
        }
    }
    if out.is_empty() {
        "Unknown".into()
    } else {
        out
    }
}

/// `: <error>` when there is one.
fn because(error: &Option<String>) -> String {
    error
        .as_deref()
        .map(|e| format!(": {e}"))
        .unwrap_or_default()
}

fn is_conduit(tc: &TwitchChannel) -> bool {
    tc.effective_transport() == TransportMode::Conduit
}

/// Authorized, for the transports where the relay talks to Twitch: the
/// broadcaster's user token (websocket), the app credentials (conduit).
fn relay_authorized(tc: &TwitchChannel, o: &Observed, view: &RelayView) -> Verdict {
    let login = &tc.spec.broadcaster;
    let url = &o.relay_url;
    let status = match view {
        RelayView::NotReady => {
            return verdict(
                None,
                "RelayNotReady",
                "no relay pod is ready yet to report the Twitch authorization",
            )
        }
        RelayView::Unreachable { url, reason } => {
            return verdict(
                None,
                "RelayUnreachable",
                format!("could not read the relay's status ({url}): {reason}"),
            )
        }
        RelayView::Reported(status) => &status.twitch,
    };
    if is_conduit(tc) {
        let secret = format!(
            "{}/{}",
            tc.namespace().unwrap_or_default(),
            tc.spec.credentials.secret_name
        );
        let (state, error) = status
            .app_token
            .as_ref()
            .map_or(("unknown", &None), |t| (t.state.as_str(), &t.error));
        let conduit_id = status.conduit.as_ref().and_then(|c| c.id.as_ref());
        return match (state, conduit_id) {
            ("valid", _) => verdict(
                Some(true),
                "Authorized",
                format!("Twitch accepts the app credentials from Secret {secret}"),
            ),
            ("rejected", _) => verdict(
                Some(false),
                "CredentialsRejected",
                format!(
                    "Twitch refused the app credentials from Secret {secret}{}; check the client id and secret",
                    because(error)
                ),
            ),
            ("missing", _) => verdict(
                Some(false),
                "CredentialsMissing",
                format!("the relay has no app credentials: check Secret {secret}"),
            ),
            (_, Some(id)) => verdict(
                Some(true),
                "Authorized",
                format!("conduit {id} exists, created with the app credentials"),
            ),
            (state, None) => verdict(
                None,
                "Checking",
                format!("the relay has not had an answer from Twitch about the app credentials yet (app token {state})"),
            ),
        };
    }
    let connect = format!("open the relay's dashboard at {url}/ and connect Twitch ({url}/twitch/authorize) as {login}");
    match status.user_token.state.as_str() {
        "valid" => {
            let who = status.user_token.login.as_deref().unwrap_or(login);
            verdict(
                Some(true),
                "Authorized",
                format!("the relay holds {who}'s Twitch authorization"),
            )
        }
        "missing" => verdict(
            Some(false),
            "NotAuthorized",
            format!("{login} has not authorized the relay yet: {connect}"),
        ),
        "authorization_needed" => verdict(
            Some(false),
            "NotAuthorized",
            format!(
                "the relay lost {login}'s Twitch authorization (refused or revoked): {connect}"
            ),
        ),
        other => verdict(
            None,
            "UnknownTokenState",
            format!("the relay reports its user token as {other:?}"),
        ),
    }
}

/// `ok/total` subscriptions, and the first few that are not working.
fn relay_subscriptions_verdict(
    subs: &[SubscriptionStatus],
    on: &str,
    error: &Option<String>,
) -> Verdict {
    let ok = subs.iter().filter(|s| working(s)).count();
    if subs.is_empty() {
        return verdict(
            Some(false),
            "NoSubscriptions",
            format!("no EventSub subscriptions on {on}{}", because(error)),
        );
    }
    if ok == subs.len() {
        return verdict(
            Some(true),
            "Subscribed",
            format!("{ok} EventSub subscriptions on {on}"),
        );
    }
    let failing: Vec<String> = subs
        .iter()
        .filter(|s| !working(s))
        .take(3)
        .map(|s| format!("{}: {}", s.kind, s.status))
        .collect();
    verdict(
        Some(false),
        "PartiallySubscribed",
        format!(
            "{ok}/{} EventSub subscriptions enabled on {on}; {}{}",
            subs.len(),
            failing.join("; "),
            if subs.len() - ok > failing.len() {
                "; ..."
            } else {
                ""
            }
        ),
    )
}

/// SubscriptionsReady, for the transports where the relay subscribes.
fn relay_subscribed(tc: &TwitchChannel, view: &RelayView) -> Verdict {
    let conduit = is_conduit(tc);
    let status = match view {
        RelayView::NotReady if conduit => {
            return verdict(
                None,
                "RelayNotReady",
                "no relay pod is ready yet to report the conduit's subscriptions",
            )
        }
        RelayView::NotReady => {
            return verdict(
                Some(false),
                "RelayNotReady",
                "no relay pod is ready, so there is no EventSub session",
            )
        }
        RelayView::Unreachable { url, reason } => {
            return verdict(
                None,
                "RelayUnreachable",
                format!("could not read the relay's status ({url}): {reason}"),
            )
        }
        RelayView::Reported(status) => &status.twitch,
    };
    let eventsub = &status.eventsub;
    if conduit {
        let Some(report) = &status.conduit else {
            return verdict(
                None,
                "ConduitNotReported",
                "the relay does not report its conduit (a relay image older than the operator?)",
            );
        };
        let Some(id) = &report.id else {
            return verdict(
                Some(false),
                "NoConduit",
                format!(
                    "the relay fleet has not created its conduit yet{}",
                    because(&report.last_error)
                ),
            );
        };
        if eventsub.state != "connected" {
            return verdict(
                Some(false),
                &camel(&eventsub.state),
                format!(
                    "a relay replica's conduit shard is {}{}",
                    eventsub.state,
                    because(&eventsub.last_error)
                ),
            );
        }
        return relay_subscriptions_verdict(
            &report.subscriptions,
            &format!("conduit {id}"),
            &report.last_error,
        );
    }
    match eventsub.state.as_str() {
        "connected" => {
            let session = eventsub.session_id.as_deref().unwrap_or("(unknown)");
            relay_subscriptions_verdict(
                &eventsub.subscriptions,
                &format!("session {session}"),
                &eventsub.last_error,
            )
        }
        STANDBY => verdict(
            None,
            "Standby",
            "only standby relay replicas answered; the one holding the EventSub session was not reached",
        ),
        state => verdict(
            Some(false),
            &camel(state),
            format!(
                "the relay's EventSub connection is {state}{}",
                because(&eventsub.last_error)
            ),
        ),
    }
}

/// The four conditions, in a fixed order: Ready, Authorized, SubscriptionsReady, RelayReady.
fn conditions(tc: &TwitchChannel, o: &Observed) -> Vec<Condition> {
    let generation = tc.metadata.generation;
    let login = &tc.spec.broadcaster;
    let auth = match &o.twitch {
        TwitchState::Relay(view) => relay_authorized(tc, o, view),
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
        TwitchState::Relay(view) => relay_subscribed(tc, view),
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

/// The subscriptions the relay reported, sorted; `None` when it reported
/// none this time (not ready, unreachable, a standby answered).
fn relay_subscriptions(tc: &TwitchChannel, view: &RelayView) -> Option<Vec<SubscriptionStatus>> {
    let RelayView::Reported(status) = view else {
        return None;
    };
    let twitch = &status.twitch;
    let mut subs = if is_conduit(tc) {
        twitch.conduit.as_ref()?.subscriptions.clone()
    } else if twitch.eventsub.state == STANDBY {
        return None;
    } else {
        twitch.eventsub.subscriptions.clone()
    };
    subs.sort_by(|a, b| (&a.kind, &a.version, &a.id).cmp(&(&b.kind, &b.version, &b.id)));
    Some(subs)
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
        TwitchState::Relay(view) => match relay_subscriptions(tc, view) {
            Some(subs) if subs.is_empty() => (subs, None),
            Some(subs) => {
                let ok = subs.iter().filter(|s| working(s)).count();
                let ready = format!("{ok}/{}", subs.len());
                (subs, Some(ready))
            }
            None => (old.subscriptions.clone(), old.subscriptions_ready.clone()),
        },
        _ => (Vec::new(), None),
    };
    let reported_conduit = match &o.twitch {
        TwitchState::Relay(RelayView::Reported(s)) => {
            s.twitch.conduit.as_ref().and_then(|c| c.id.clone())
        }
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
mod tests {
    use super::*;
    use crate::fixtures::{channel, RELAY_CONDUIT, RELAY_UNAUTHORIZED, RELAY_WEBSOCKET};
    use crate::relay_probe::RelayStatus;
    use serde_json::{json, Value};

    fn websocket() -> TwitchChannel {
        let mut tc = channel("a");
        tc.spec.transport = TransportMode::Websocket;
        tc.spec.ingress = None;
        tc.spec.public_url = Some("http://localhost:8000".into());
        tc
    }

    fn conduit() -> TwitchChannel {
        let mut tc = websocket();
        tc.spec.transport = TransportMode::Conduit;
        tc
    }

    fn doc(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    fn ws_doc() -> Value {
        doc(RELAY_WEBSOCKET)
    }

    fn relay(doc: Value) -> TwitchState {
        let parsed: RelayStatus = serde_json::from_value(doc).unwrap();
        TwitchState::Relay(RelayView::Reported(Box::new(parsed)))
    }

    /// `(status, reason)` of condition `t`.
    fn cond<'a>(s: &'a TwitchChannelStatus, t: &str) -> (&'a str, &'a str) {
        let c = get(s, t);
        (c.status.as_str(), c.reason.as_str())
    }

    /// The status of `tc` with one ready relay pod reporting `twitch`.
    fn with(tc: &TwitchChannel, twitch: TwitchState) -> TwitchChannelStatus {
        let mut o = observed(twitch, Some((1, 1)));
        o.relay_url = crate::build::relay_url(tc);
        status(tc, &o, Timestamp::UNIX_EPOCH)
    }

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
        let o = observed(TwitchState::Relay(RelayView::NotReady), Some((0, 1)));
        let s = status(&websocket(), &o, Timestamp::UNIX_EPOCH);
        assert_eq!(get(&s, "Authorized").status, "Unknown");
        assert_eq!(get(&s, "Ready").reason, "RelayNotReady");
        assert_eq!(get(&s, "RelayReady").reason, "Progressing");
        let mut o = observed(relay(ws_doc()), Some((1, 1)));
        o.unknown_events = vec!["nope".into()];
        let s = status(&websocket(), &o, Timestamp::UNIX_EPOCH);
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

    #[test]
    fn websocket_authorized_and_subscribed_is_ready() {
        let tc = websocket();
        let s = with(&tc, relay(ws_doc()));
        assert_eq!(cond(&s, "Authorized"), ("True", "Authorized"));
        assert!(get(&s, "Authorized").message.contains("cooler_user"));
        assert_eq!(cond(&s, "SubscriptionsReady"), ("True", "Subscribed"));
        let session = ws_doc()["twitch"]["eventsub"]["session_id"].clone();
        assert_eq!(
            get(&s, "SubscriptionsReady").message,
            format!(
                "1 EventSub subscriptions on session {}",
                session.as_str().unwrap()
            )
        );
        assert_eq!(cond(&s, "Ready"), ("True", "Ready"));
        assert!(is_ready(&s));
        assert_eq!(s.subscriptions.len(), 1);
        assert_eq!(s.subscriptions[0].kind, "channel.follow");
        assert_eq!(s.subscriptions_ready.as_deref(), Some("1/1"));
        assert_eq!(s.conduit_id, None);
    }

    #[test]
    fn websocket_not_authorized_says_how_to_connect() {
        let tc = websocket();
        let s = with(&tc, relay(doc(RELAY_UNAUTHORIZED)));
        let auth = get(&s, "Authorized");
        assert_eq!(cond(&s, "Authorized"), ("False", "NotAuthorized"));
        assert!(
            auth.message.contains("http://localhost:8000/")
                && auth.message.contains("/twitch/authorize"),
            "{}",
            auth.message
        );
        assert_eq!(
            cond(&s, "SubscriptionsReady"),
            ("False", "WaitingForAuthorization")
        );
        assert!(get(&s, "SubscriptionsReady")
            .message
            .contains("waiting_for_authorization: authorization needed"));
        assert_eq!(cond(&s, "Ready"), ("False", "NotAuthorized"));
        assert!(!is_ready(&s));
        assert!(s.subscriptions.is_empty());
        assert_eq!(s.subscriptions_ready, None);
        // A lost authorization says so.
        let mut lost = ws_doc();
        lost["twitch"]["user_token"]["state"] = "authorization_needed".into();
        let s = with(&tc, relay(lost));
        assert_eq!(cond(&s, "Authorized"), ("False", "NotAuthorized"));
        assert!(get(&s, "Authorized").message.contains("lost"));
    }

    #[test]
    fn websocket_subscriptions_must_all_work() {
        let tc = websocket();
        let mut partial = ws_doc();
        partial["twitch"]["eventsub"]["subscriptions"]
            .as_array_mut()
            .unwrap()
            .push(json!({"id": "", "type": "channel.cheer", "version": "1",
                "status": "failed: Twitch answered 403: missing scope"}));
        let s = with(&tc, relay(partial));
        assert_eq!(
            cond(&s, "SubscriptionsReady"),
            ("False", "PartiallySubscribed")
        );
        let message = &get(&s, "SubscriptionsReady").message;
        assert!(
            message.starts_with("1/2 EventSub subscriptions enabled"),
            "{message}"
        );
        assert!(
            message.contains("channel.cheer: failed: Twitch answered 403"),
            "{message}"
        );
        assert_eq!(s.subscriptions_ready.as_deref(), Some("1/2"));
        assert_eq!(
            s.subscriptions
                .iter()
                .map(|s| s.kind.as_str())
                .collect::<Vec<_>>(),
            ["channel.cheer", "channel.follow"],
            "sorted, so a new session's order does not rewrite the status"
        );
        let mut none = ws_doc();
        none["twitch"]["eventsub"]["subscriptions"] = json!([]);
        let s = with(&tc, relay(none));
        assert_eq!(cond(&s, "SubscriptionsReady"), ("False", "NoSubscriptions"));
        let mut backoff = ws_doc();
        backoff["twitch"]["eventsub"]["state"] = "backoff".into();
        backoff["twitch"]["eventsub"]["last_error"] = "connection reset".into();
        let s = with(&tc, relay(backoff));
        assert_eq!(cond(&s, "SubscriptionsReady"), ("False", "Backoff"));
        assert!(get(&s, "SubscriptionsReady")
            .message
            .ends_with("backoff: connection reset"));
    }

    #[test]
    fn an_unanswering_relay_or_a_standby_is_unknown_and_keeps_the_last_list() {
        let mut tc = websocket();
        tc.status = Some(with(&tc, relay(ws_doc())));
        let unreachable = TwitchState::Relay(RelayView::Unreachable {
            url: "http://tau-a.ns.svc:80/api/v1/status".into(),
            reason: "no answer: dns error".into(),
        });
        let s = with(&tc, unreachable);
        for t in ["Authorized", "SubscriptionsReady"] {
            assert_eq!(cond(&s, t), ("Unknown", "RelayUnreachable"));
            let message = &get(&s, t).message;
            assert!(
                message.contains("http://tau-a.ns.svc:80/api/v1/status"),
                "{message}"
            );
            assert!(message.contains("dns error"), "{message}");
        }
        assert_eq!(cond(&s, "Ready"), ("False", "RelayUnreachable"));
        assert_eq!(s.subscriptions.len(), 1, "the last reported list stands");
        assert_eq!(s.subscriptions_ready.as_deref(), Some("1/1"));
        let mut standby = ws_doc();
        standby["twitch"]["eventsub"]["state"] = STANDBY.into();
        standby["twitch"]["eventsub"]["subscriptions"] = json!([]);
        let s = with(&tc, relay(standby));
        assert_eq!(cond(&s, "Authorized"), ("True", "Authorized"));
        assert_eq!(cond(&s, "SubscriptionsReady"), ("Unknown", "Standby"));
        assert_eq!(s.subscriptions.len(), 1);
    }

    #[test]
    fn conduit_reports_the_app_credentials_and_the_conduit() {
        let tc = conduit();
        let conduit_doc = doc(RELAY_CONDUIT);
        let id = conduit_doc["twitch"]["conduit"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let s = with(&tc, relay(conduit_doc.clone()));
        assert_eq!(cond(&s, "Authorized"), ("True", "Authorized"));
        assert_eq!(cond(&s, "SubscriptionsReady"), ("True", "Subscribed"));
        assert_eq!(
            get(&s, "SubscriptionsReady").message,
            format!("2 EventSub subscriptions on conduit {id}")
        );
        assert_eq!(cond(&s, "Ready"), ("True", "Ready"));
        assert_eq!(s.conduit_id.as_deref(), Some(id.as_str()));
        assert_eq!(s.subscriptions_ready.as_deref(), Some("2/2"));
        assert_eq!(s.transport.as_deref(), Some("conduit"));

        // Twitch refused the client secret: no conduit, and why.
        let mut rejected = conduit_doc.clone();
        rejected["twitch"]["app_token"] =
            json!({"state": "rejected", "error": "invalid client secret"});
        rejected["twitch"]["conduit"] = json!({"id": null, "subscriptions": [],
            "last_error": "Twitch answered 403: invalid client secret"});
        let s = with(&tc, relay(rejected));
        assert_eq!(cond(&s, "Authorized"), ("False", "CredentialsRejected"));
        let message = &get(&s, "Authorized").message;
        assert!(
            message.contains("Secret ns/twitch-app: invalid client secret"),
            "{message}"
        );
        assert_eq!(cond(&s, "SubscriptionsReady"), ("False", "NoConduit"));
        assert!(get(&s, "SubscriptionsReady")
            .message
            .contains("invalid client secret"));
        assert_eq!(cond(&s, "Ready"), ("False", "CredentialsRejected"));
        assert_eq!(s.conduit_id, None);

        // A replica that has not fetched an app token yet: the conduit vouches.
        let mut fresh = conduit_doc.clone();
        fresh["twitch"]["app_token"]["state"] = "unknown".into();
        assert_eq!(
            cond(&with(&tc, relay(fresh.clone())), "Authorized"),
            ("True", "Authorized")
        );
        fresh["twitch"]["conduit"]["id"] = Value::Null;
        assert_eq!(
            cond(&with(&tc, relay(fresh)), "Authorized"),
            ("Unknown", "Checking")
        );

        // The answering replica's shard is not connected.
        let mut shard = conduit_doc;
        shard["twitch"]["eventsub"]["state"] = "connecting".into();
        assert_eq!(
            cond(&with(&tc, relay(shard)), "SubscriptionsReady"),
            ("False", "Connecting")
        );
    }

    #[test]
    fn conduit_not_ready_keeps_what_was_known() {
        let mut tc = conduit();
        tc.status = Some(with(&tc, relay(doc(RELAY_CONDUIT))));
        let o = observed(TwitchState::Relay(RelayView::NotReady), Some((0, 1)));
        let s = status(&tc, &o, Timestamp::UNIX_EPOCH);
        assert_eq!(cond(&s, "SubscriptionsReady"), ("Unknown", "RelayNotReady"));
        assert_eq!(cond(&s, "Authorized"), ("Unknown", "RelayNotReady"));
        assert!(s.conduit_id.is_some(), "the conduit outlives its pods");
        assert_eq!(s.subscriptions.len(), 2);
        // A websocket channel without a relay has no session.
        let o = observed(TwitchState::Relay(RelayView::NotReady), Some((0, 1)));
        let s = status(&websocket(), &o, Timestamp::UNIX_EPOCH);
        assert_eq!(cond(&s, "SubscriptionsReady"), ("False", "RelayNotReady"));
    }

    #[test]
    fn an_unchanged_relay_report_yields_an_identical_status() {
        let mut tc = websocket();
        let first = with(&tc, relay(ws_doc()));
        tc.status = Some(first.clone());
        assert_eq!(with(&tc, relay(ws_doc())), first);
    }

    #[test]
    fn relay_states_become_camel_case_reasons() {
        assert_eq!(
            camel("waiting_for_authorization"),
            "WaitingForAuthorization"
        );
        assert_eq!(camel("connected"), "Connected");
        assert_eq!(camel(""), "Unknown");
    }
}
