//! Asking a channel's relay what it really has.
//!
//! With the websocket and conduit transports the relay, not the operator,
//! talks to Twitch: it holds the broadcaster's authorization, the app
//! token, the EventSub session or conduit and its subscriptions. The
//! operator reads that from the relay's `GET /api/v1/status` through the
//! channel's Service (`http://tau-<name>.<ns>.svc:80`), authenticated with
//! the admin API token it generated for the relay (the Secret's
//! `api-token`, the relay's `TAU_API_TOKEN`), and parses only the fields
//! the status needs. The token is never logged.
//!
//! The Service picks a replica per connection. What is read is the same
//! from every replica (the user token and the conduit report live in the
//! relay fleet's shared store) except the websocket transport's EventSub
//! socket: one replica holds it and the others answer `standby`, so a
//! standby's answer is asked again, on a new connection, a few times.

use std::time::Duration;

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use kube::ResourceExt;
use serde::Deserialize;

use crate::build::{self, KEY_API_TOKEN, SERVICE_PORT};
use crate::crd::{SubscriptionStatus, TwitchChannel};

/// Longest a status request may take: a reconcile waits for it, and a
/// relay that cannot answer its status in this time is not well anyway.
const TIMEOUT: Duration = Duration::from_secs(3);
/// Longest to wait for the connection (an unready Service drops packets).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How often a `standby` answer is asked again, hoping to reach the holder.
const STANDBY_TRIES: usize = 3;
/// The relay's EventSub state of a replica that does not hold the socket.
pub const STANDBY: &str = "standby";

/// The parts of the relay's status document the operator reads.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RelayStatus {
    /// The Twitch side.
    pub twitch: TwitchStatus,
}

/// The relay's Twitch side.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TwitchStatus {
    /// The broadcaster's user token (websocket transport).
    pub user_token: UserToken,
    /// The app token (conduit and webhook transports); absent from older relays.
    #[serde(default)]
    pub app_token: Option<AppToken>,
    /// This replica's EventSub connection.
    pub eventsub: EventSub,
    /// The fleet's conduit (conduit transport); absent otherwise.
    #[serde(default)]
    pub conduit: Option<Conduit>,
}

/// What the relay says about the broadcaster's user token.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct UserToken {
    /// `missing`, `valid` or `authorization_needed`.
    pub state: String,
    /// The login that authorized, if any.
    #[serde(default)]
    pub login: Option<String>,
}

/// What the relay says about its app token.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AppToken {
    /// `missing`, `unknown`, `valid` or `rejected`.
    pub state: String,
    /// Twitch's reason when it rejected the client credentials.
    #[serde(default)]
    pub error: Option<String>,
}

/// One replica's EventSub connection (the relay's `ConnectionStatus`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct EventSub {
    /// `websocket`, `webhook` or `conduit`.
    pub transport: String,
    /// `connected`, `waiting_for_authorization`, `standby`, `connecting`, ...
    pub state: String,
    /// The EventSub WebSocket session (or conduit shard session).
    #[serde(default)]
    pub session_id: Option<String>,
    /// The session's subscriptions and Twitch's status of each.
    #[serde(default)]
    pub subscriptions: Vec<SubscriptionStatus>,
    /// The last problem, in words.
    #[serde(default)]
    pub last_error: Option<String>,
}

/// The fleet's conduit, as its manager replica last found it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Conduit {
    /// The conduit's id, once created.
    #[serde(default)]
    pub id: Option<String>,
    /// The conduit's subscriptions and Twitch's status of each.
    #[serde(default)]
    pub subscriptions: Vec<SubscriptionStatus>,
    /// Why the manager's last pass failed, if it did.
    #[serde(default)]
    pub last_error: Option<String>,
}

/// What a reconcile learned from the relay.
#[derive(Debug, Clone, PartialEq)]
pub enum RelayView {
    /// No relay pod is ready: there is nobody to ask yet.
    NotReady,
    /// The relay did not answer usefully.
    Unreachable {
        /// The status URL asked.
        url: String,
        /// Why, in words.
        reason: String,
    },
    /// The relay's answer.
    Reported(Box<RelayStatus>),
}

/// Why a status request failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// No HTTP answer (DNS, connection, timeout).
    #[error("no answer: {}", chain(.0))]
    Request(#[source] reqwest::Error),
    /// The relay does not accept the token from the generated Secret.
    #[error("the relay refused the operator's API token (401): the relay pods do not run with the Secret's current api-token")]
    Unauthorized,
    /// Any other HTTP error.
    #[error("answered HTTP {0}")]
    Status(u16),
    /// The answer is not a status document this operator understands.
    #[error("unreadable status document: {0}")]
    Body(#[source] serde_json::Error),
}

/// `err` and its sources, `: `-separated (reqwest's own text omits the cause).
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Reads relays' status documents.
#[derive(Debug, Clone)]
pub struct RelayProbe {
    http: reqwest::Client,
    /// Every relay's base URL, instead of its Service (tests).
    base: Option<String>,
}

impl Default for RelayProbe {
    fn default() -> Self {
        RelayProbe::new()
    }
}

impl RelayProbe {
    /// A probe that reaches each relay through its Service.
    pub fn new() -> RelayProbe {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            // A new connection per request: the Service picks a replica
            // per connection, and a standby's answer is asked again.
            .pool_max_idle_per_host(0)
            .build()
            .expect("reqwest client builds");
        RelayProbe { http, base: None }
    }

    /// A probe that finds every relay at `base` (tests).
    pub fn at(base: impl Into<String>) -> RelayProbe {
        RelayProbe {
            base: Some(base.into().trim_end_matches('/').to_string()),
            ..RelayProbe::new()
        }
    }

    /// The relay's base URL: its Service's cluster DNS name and port.
    pub fn base_url(&self, tc: &TwitchChannel) -> String {
        match &self.base {
            Some(base) => base.clone(),
            None => format!(
                "http://{}.{}.svc:{SERVICE_PORT}",
                build::child_name(&tc.name_any()),
                tc.namespace().unwrap_or_else(|| "default".into())
            ),
        }
    }

    /// One `GET /api/v1/status` with the admin `token`.
    pub async fn status(&self, url: &str, token: &str) -> Result<RelayStatus, ProbeError> {
        let response = self
            .http
            .get(url)
            .header(http::header::AUTHORIZATION, format!("Token {token}"))
            .send()
            .await
            .map_err(ProbeError::Request)?;
        match response.status().as_u16() {
            200 => {}
            401 => return Err(ProbeError::Unauthorized),
            code => return Err(ProbeError::Status(code)),
        }
        let body = response.bytes().await.map_err(ProbeError::Request)?;
        serde_json::from_slice(&body).map_err(ProbeError::Body)
    }

    /// What the relay of `tc` reports, given its generated Secret's data
    /// and `(ready, desired)` pods; asks nothing while no pod is ready.
    pub async fn observe(
        &self,
        tc: &TwitchChannel,
        secret: Option<&BTreeMap<String, ByteString>>,
        relay: Option<(i32, i32)>,
    ) -> RelayView {
        if relay.is_none_or(|(ready, _)| ready < 1) {
            return RelayView::NotReady;
        }
        let url = format!("{}/api/v1/status", self.base_url(tc));
        let token = secret
            .and_then(|d| d.get(KEY_API_TOKEN))
            .map(|v| String::from_utf8_lossy(&v.0).trim().to_string())
            .filter(|t| !t.is_empty());
        let Some(token) = token else {
            return RelayView::Unreachable {
                url,
                reason: format!("the generated Secret has no {KEY_API_TOKEN}"),
            };
        };
        let mut answer = None;
        for _ in 0..STANDBY_TRIES {
            match self.status(&url, &token).await {
                Ok(status) if status.twitch.eventsub.state == STANDBY => answer = Some(status),
                Ok(status) => return RelayView::Reported(Box::new(status)),
                Err(err) => {
                    tracing::debug!(%url, error = %err, "relay status unavailable");
                    return RelayView::Unreachable {
                        url,
                        reason: err.to_string(),
                    };
                }
            }
        }
        RelayView::Reported(Box::new(answer.expect("at least one try")))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;
    use crate::fixtures::{
        channel, RELAY_CONDUIT as CONDUIT, RELAY_UNAUTHORIZED as UNAUTHORIZED,
        RELAY_WEBSOCKET as WEBSOCKET,
    };
    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::get;
    use axum::Router;

    fn secret(token: &str) -> BTreeMap<String, ByteString> {
        BTreeMap::from([(
            KEY_API_TOKEN.to_string(),
            ByteString(token.as_bytes().to_vec()),
        )])
    }

    /// A relay stand-in answering the `answers` in turn (the last one
    /// repeatedly) to the token `t0k3n`; returns its URL and a request counter.
    async fn relay(answers: Vec<String>) -> (String, Arc<AtomicUsize>) {
        let asked = Arc::new(AtomicUsize::new(0));
        let state = (Arc::new(answers), asked.clone());
        type S = (Arc<Vec<String>>, Arc<AtomicUsize>);
        async fn status(
            State((answers, asked)): State<S>,
            headers: HeaderMap,
        ) -> Result<String, StatusCode> {
            if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Token t0k3n") {
                return Err(StatusCode::UNAUTHORIZED);
            }
            let n = asked.fetch_add(1, Ordering::SeqCst);
            Ok(answers[n.min(answers.len() - 1)].clone())
        }
        let app = Router::new()
            .route("/api/v1/status", get(status))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (url, asked)
    }

    fn standby() -> String {
        let mut doc: serde_json::Value = serde_json::from_str(WEBSOCKET).unwrap();
        doc["twitch"]["eventsub"]["state"] = STANDBY.into();
        doc["twitch"]["eventsub"]["subscriptions"] = serde_json::json!([]);
        doc.to_string()
    }

    #[test]
    fn the_real_documents_parse_into_what_status_needs() {
        let ws: RelayStatus = serde_json::from_str(WEBSOCKET).unwrap();
        assert_eq!(ws.twitch.user_token.state, "valid");
        assert_eq!(ws.twitch.eventsub.state, "connected");
        assert!(ws.twitch.eventsub.session_id.is_some());
        assert_eq!(ws.twitch.eventsub.subscriptions[0].status, "enabled");
        assert_eq!(ws.twitch.conduit, None);
        let waiting: RelayStatus = serde_json::from_str(UNAUTHORIZED).unwrap();
        assert_eq!(waiting.twitch.user_token.state, "missing");
        assert_eq!(waiting.twitch.eventsub.state, "waiting_for_authorization");
        let conduit: RelayStatus = serde_json::from_str(CONDUIT).unwrap();
        let report = conduit.twitch.conduit.unwrap();
        assert!(report.id.is_some());
        assert_eq!(report.subscriptions.len(), 2);
        assert_eq!(conduit.twitch.app_token.unwrap().state, "valid");
    }

    #[test]
    fn the_service_address_is_the_default() {
        let tc = channel("demo");
        assert_eq!(RelayProbe::new().base_url(&tc), "http://tau-demo.ns.svc:80");
        assert_eq!(
            RelayProbe::at("http://127.0.0.1:9/").base_url(&tc),
            "http://127.0.0.1:9"
        );
    }

    #[tokio::test]
    async fn reads_the_relay_with_the_generated_token() {
        let (url, asked) = relay(vec![WEBSOCKET.into()]).await;
        let probe = RelayProbe::at(&url);
        let tc = channel("a");
        match probe
            .observe(&tc, Some(&secret("t0k3n")), Some((1, 1)))
            .await
        {
            RelayView::Reported(status) => assert_eq!(status.twitch.eventsub.state, "connected"),
            other => panic!("{other:?}"),
        }
        assert_eq!(asked.load(Ordering::SeqCst), 1);
        // Nothing is asked while no pod is ready.
        assert_eq!(
            probe
                .observe(&tc, Some(&secret("t0k3n")), Some((0, 1)))
                .await,
            RelayView::NotReady
        );
        assert_eq!(
            probe.observe(&tc, Some(&secret("t0k3n")), None).await,
            RelayView::NotReady
        );
        assert_eq!(asked.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_refused_token_or_no_relay_is_unreachable_and_says_why() {
        let (url, _) = relay(vec![WEBSOCKET.into()]).await;
        let tc = channel("a");
        let RelayView::Unreachable { reason, .. } = RelayProbe::at(&url)
            .observe(&tc, Some(&secret("wrong")), Some((1, 1)))
            .await
        else {
            panic!("a refused token is not a report");
        };
        assert!(reason.contains("401"), "{reason}");
        assert!(!reason.contains("wrong"), "the token is never shown");
        // A port nobody listens on.
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", closed.local_addr().unwrap());
        drop(closed);
        let RelayView::Unreachable { url: asked, reason } = RelayProbe::at(&url)
            .observe(&tc, Some(&secret("t0k3n")), Some((1, 1)))
            .await
        else {
            panic!("nobody answered");
        };
        assert_eq!(asked, format!("{url}/api/v1/status"));
        assert!(reason.starts_with("no answer"), "{reason}");
        let (url, _) = relay(vec!["{\"not\": \"status\"}".into()]).await;
        let view = RelayProbe::at(&url)
            .observe(&tc, Some(&secret("t0k3n")), Some((1, 1)))
            .await;
        assert!(
            matches!(&view, RelayView::Unreachable { reason, .. } if reason.contains("unreadable")),
            "{view:?}"
        );
    }

    #[tokio::test]
    async fn a_standby_replica_is_asked_again() {
        let (url, asked) = relay(vec![standby(), WEBSOCKET.into()]).await;
        let view = RelayProbe::at(&url)
            .observe(&channel("a"), Some(&secret("t0k3n")), Some((2, 2)))
            .await;
        let RelayView::Reported(status) = view else {
            panic!("{view:?}")
        };
        assert_eq!(status.twitch.eventsub.state, "connected");
        assert_eq!(asked.load(Ordering::SeqCst), 2);
        // Only standbys answer: the last answer stands, after a few tries.
        let (url, asked) = relay(vec![standby()]).await;
        let view = RelayProbe::at(&url)
            .observe(&channel("a"), Some(&secret("t0k3n")), Some((2, 2)))
            .await;
        assert!(
            matches!(&view, RelayView::Reported(s) if s.twitch.eventsub.state == STANDBY),
            "{view:?}"
        );
        assert_eq!(asked.load(Ordering::SeqCst), STANDBY_TRIES);
    }
}
