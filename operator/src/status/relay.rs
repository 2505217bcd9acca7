//! Status of the transports where the relay, not the operator, talks to
//! Twitch (websocket and conduit): what the relay reported, as verdicts on
//! Authorized and SubscriptionsReady, and the subscriptions it listed.
//!
//! - websocket: Authorized is the broadcaster's user token at the relay;
//!   SubscriptionsReady its EventSub session, connected with every
//!   subscription working.
//! - conduit: Authorized is the app credentials (Twitch issued an app
//!   token, or the conduit exists); SubscriptionsReady the fleet's conduit
//!   with every subscription working, and the answering replica's shard
//!   connected.
//! - A relay that is not ready or did not answer gives Unknown, saying why
//!   (a websocket channel with no relay pod has no session: False).

use kube::ResourceExt;

use super::{verdict, Observed, Verdict};
use crate::crd::{SubscriptionStatus, TransportMode, TwitchChannel};
use crate::relay_probe::{RelayView, STANDBY};

/// A relay subscription that works (`already_exists`: Twitch had it).
pub(super) fn working(s: &SubscriptionStatus) -> bool {
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

/// Unknown: the relay's status could not be read.
fn unreachable(url: &str, reason: &str) -> Verdict {
    verdict(
        None,
        "RelayUnreachable",
        format!("could not read the relay's status ({url}): {reason}"),
    )
}

/// Authorized, for the transports where the relay talks to Twitch: the
/// broadcaster's user token (websocket), the app credentials (conduit).
pub(super) fn authorized(tc: &TwitchChannel, o: &Observed, view: &RelayView) -> Verdict {
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
        RelayView::Unreachable { url, reason } => return unreachable(url, reason),
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
fn subscriptions_verdict(subs: &[SubscriptionStatus], on: &str, error: &Option<String>) -> Verdict {
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
pub(super) fn subscribed(tc: &TwitchChannel, view: &RelayView) -> Verdict {
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
        RelayView::Unreachable { url, reason } => return unreachable(url, reason),
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
        return subscriptions_verdict(
            &report.subscriptions,
            &format!("conduit {id}"),
            &report.last_error,
        );
    }
    match eventsub.state.as_str() {
        "connected" => {
            let session = eventsub.session_id.as_deref().unwrap_or("(unknown)");
            subscriptions_verdict(
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

/// The subscriptions the relay reported, sorted, with `working/listed`
/// (`None` when empty); `None` when it reported none this time (not ready,
/// unreachable, a standby answered): the last list then stands.
pub(super) fn listed(
    tc: &TwitchChannel,
    view: &RelayView,
) -> Option<(Vec<SubscriptionStatus>, Option<String>)> {
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
    let ok = subs.iter().filter(|s| working(s)).count();
    let ready = (!subs.is_empty()).then(|| format!("{ok}/{}", subs.len()));
    Some((subs, ready))
}

/// The conduit id the relay reported, if any.
pub(super) fn conduit_id(view: &RelayView) -> Option<String> {
    match view {
        RelayView::Reported(status) => status.twitch.conduit.as_ref()?.id.clone(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::jiff::Timestamp;
    use serde_json::{json, Value};

    use super::super::tests::{get, observed};
    use super::super::{is_ready, status, TwitchState};
    use super::*;
    use crate::crd::TwitchChannelStatus;
    use crate::fixtures::{channel, RELAY_CONDUIT, RELAY_UNAUTHORIZED, RELAY_WEBSOCKET};
    use crate::relay_probe::RelayStatus;

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
