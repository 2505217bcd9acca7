//! `POST / GET / DELETE /helix/eventsub/subscriptions`.
//!
//! Checks run in Twitch's order: credentials (401), body, type/version and
//! condition (400), transport vs token type (400), authorization (403),
//! duplicates (409), limits (429). WebSocket subscriptions need a user token
//! and a live session; webhook and conduit ones need an app token.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::catalog;
use crate::error::HelixError;
use crate::helix::Caller;
use crate::state::{new_id, now_rfc3339, State as World, Subscription, Transport};
use crate::FakeTwitch;

/// Enabled subscriptions one WebSocket session may hold.
const MAX_SUBS_PER_SESSION: usize = 300;
/// WebSocket connections with enabled subscriptions per user.
const MAX_SESSIONS_PER_USER: usize = 3;
/// `max_total_cost` for WebSocket (per user) and for app-token subscriptions.
const MAX_COST_WEBSOCKET: u32 = 10;
const MAX_COST_APP: u32 = 10_000;
/// Page size of `GET /eventsub/subscriptions`.
const PAGE_SIZE: usize = 100;

#[derive(Deserialize)]
struct CreateBody {
    #[serde(rename = "type")]
    sub_type: String,
    version: String,
    condition: Option<Value>,
    transport: TransportBody,
}

#[derive(Deserialize)]
struct TransportBody {
    method: String,
    callback: Option<String>,
    secret: Option<String>,
    session_id: Option<String>,
    conduit_id: Option<String>,
}

/// Whether any condition value equals `id`.
pub(crate) fn mentions(condition: &Value, id: &str) -> bool {
    condition
        .as_object()
        .is_some_and(|o| o.values().any(|v| v.as_str() == Some(id)))
}

/// Whether a subscription counts against limits and blocks duplicates.
fn counts(sub: &Subscription) -> bool {
    sub.is_enabled() || sub.status == "webhook_callback_verification_pending"
}

/// Whether `caller` may see (list, delete) `sub`.
fn visible_to(caller: &Caller, sub: &Subscription) -> bool {
    match (caller, &sub.transport) {
        (Caller::User { user_id, .. }, Transport::WebSocket { .. }) => {
            sub.created_by_user.as_deref() == Some(user_id)
        }
        (Caller::App, Transport::WebSocket { .. }) | (Caller::User { .. }, _) => false,
        (Caller::App, _) => true,
    }
}

/// `(method, target)` of a transport, for duplicate detection.
fn target(t: &Transport) -> (&'static str, &str) {
    match t {
        Transport::Webhook { callback, .. } => ("webhook", callback),
        Transport::WebSocket { session_id, .. } => ("websocket", session_id),
        Transport::Conduit { conduit_id } => ("conduit", conduit_id),
    }
}

/// Whether a webhook callback is acceptable: HTTPS on 443, or plain HTTP to loopback
/// (a test concession; Twitch wants HTTPS on 443).
pub(crate) fn callback_ok(callback: &str) -> bool {
    let Ok(url) = url::Url::parse(callback) else {
        return false;
    };
    let loopback = crate::webhook::is_loopback(callback);
    let https_443 = url.scheme() == "https" && url.port_or_known_default() == Some(443);
    https_443 || (url.scheme() == "http" && loopback)
}

/// Whether a webhook secret is acceptable (ASCII, 10-100 chars).
pub(crate) fn secret_ok(secret: &str) -> bool {
    secret.is_ascii() && (10..=100).contains(&secret.len())
}

fn bad(message: &str) -> HelixError {
    HelixError::bad_request(message)
}

/// Validates the transport against the caller and the world.
fn build_transport(caller: &Caller, t: TransportBody, st: &World) -> Result<Transport, HelixError> {
    match (t.method.as_str(), caller) {
        ("websocket", Caller::User { .. }) => {
            let id = t.session_id.ok_or_else(|| bad("The session_id field is required if you specify the WebSocket transport method."))?;
            let session = st
                .session(&id)
                .filter(|s| s.connected && s.welcomed && !s.handed_over)
                .ok_or_else(|| {
                    bad("websocket transport session does not exist or has already disconnected")
                })?;
            let connected_at = session.connected_at.clone();
            Ok(Transport::WebSocket {
                session_id: id,
                connected_at,
                disconnected_at: None,
            })
        }
        ("websocket", Caller::App) => Err(bad("invalid transport and auth combination")),
        ("webhook", Caller::App) => {
            let callback = t.callback.ok_or_else(|| {
                bad("The callback field is required if you specify the webhook transport method.")
            })?;
            if !callback_ok(&callback) {
                return Err(bad("The URL in the transport's callback field is not valid. The URL must use the HTTPS protocol and the 443 port number."));
            }
            let secret = t
                .secret
                .filter(|s| secret_ok(s))
                .ok_or_else(|| bad("The length of the string in the secret field is not valid."))?;
            Ok(Transport::Webhook { callback, secret })
        }
        ("webhook", Caller::User { .. }) => Err(bad(
            "auth must use app access token to create webhook subscription",
        )),
        ("conduit", Caller::App) => {
            let id = t.conduit_id.ok_or_else(|| {
                bad("The conduit_id field is required if you specify the conduit transport method.")
            })?;
            if !st.conduits.iter().any(|c| c.id == id) {
                return Err(bad("conduit not found"));
            }
            Ok(Transport::Conduit { conduit_id: id })
        }
        ("conduit", Caller::User { .. }) => Err(bad("invalid transport and auth combination")),
        _ => Err(bad("The value specified in the method field is not valid.")),
    }
}

/// Checks authorization; returns the subscription's cost.
fn authorize(
    caller: &Caller,
    sub_type: &str,
    condition: &Value,
    st: &World,
) -> Result<u32, HelixError> {
    let authorized_user = match caller {
        Caller::User { user_id, .. } => Some(user_id.as_str()),
        Caller::App => st.authorized.then_some(FakeTwitch::BROADCASTER_ID),
    };
    let covered = authorized_user.is_some_and(|u| mentions(condition, u));
    // A channel that refuses bots refuses their chat subscriptions too.
    let channel = condition["broadcaster_user_id"]
        .as_str()
        .unwrap_or_default();
    if sub_type.starts_with("channel.chat.")
        && st.bot_chat_refused.contains(channel)
        && caller.user_id().is_some_and(|u| u != channel)
    {
        return Err(HelixError::new(
            StatusCode::FORBIDDEN,
            "subscription missing proper authorization",
        ));
    }
    if let Some(needed) = catalog::required_scopes(sub_type) {
        let has_scope = match caller {
            Caller::User { scopes, .. } => scopes.iter().any(|s| needed.contains(&s.as_str())),
            Caller::App => true,
        };
        if !(covered && has_scope) {
            return Err(HelixError::new(
                StatusCode::FORBIDDEN,
                "subscription missing proper authorization",
            ));
        }
    }
    Ok(if covered || mentions(condition, FakeTwitch::CLIENT_ID) {
        0
    } else {
        1
    })
}

/// Checks the 429 limits for a new subscription of `cost` on `transport`.
fn check_limits(
    caller: &Caller,
    transport: &Transport,
    cost: u32,
    st: &World,
) -> Result<(), HelixError> {
    let too_many = |m: &str| HelixError::new(StatusCode::TOO_MANY_REQUESTS, m);
    let live = |s: &&Subscription| visible_to(caller, s) && counts(s);
    let spent: u32 = st.subscriptions.iter().filter(live).map(|s| s.cost).sum();
    let max = if caller.user_id().is_some() {
        MAX_COST_WEBSOCKET
    } else {
        MAX_COST_APP
    };
    if spent + cost > max {
        return Err(too_many("subscription cost exceeds max_total_cost"));
    }
    if let Transport::WebSocket { session_id, .. } = transport {
        let on = |sid: &str| {
            st.subscriptions
                .iter()
                .filter(|s| live(s) && s.transport.session_id() == Some(sid))
                .count()
        };
        if on(session_id) >= MAX_SUBS_PER_SESSION {
            return Err(too_many(
                "number of subscriptions for this websocket session exceeds the limit",
            ));
        }
        let busy = st
            .sessions
            .iter()
            .filter(|s| s.id != *session_id && s.connected && on(&s.id) > 0)
            .count();
        if on(session_id) == 0 && busy >= MAX_SESSIONS_PER_USER {
            return Err(too_many("number of websocket transports limit exceeded"));
        }
    }
    Ok(())
}

/// `POST /eventsub/subscriptions`.
pub(crate) async fn create(
    State(fake): State<FakeTwitch>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, HelixError> {
    let caller = fake.authenticate(&headers)?;
    let body: CreateBody =
        serde_json::from_slice(&body).map_err(|e| bad(&format!("malformed request body: {e}")))?;
    if !catalog::is_known(&body.sub_type, &body.version) {
        return Err(bad(
            "The combination of values in the version and type fields is not valid.",
        ));
    }
    let condition = body
        .condition
        .filter(|c| c.as_object().is_some_and(|o| !o.is_empty()));
    let condition = condition.ok_or_else(|| bad("The condition field is required."))?;
    let sub = {
        let mut st = fake.state();
        let transport = build_transport(&caller, body.transport, &st)?;
        let cost = authorize(&caller, &body.sub_type, &condition, &st)?;
        let duplicate = st.subscriptions.iter().any(|s| {
            s.sub_type == body.sub_type
                && s.version == body.version
                && s.condition == condition
                && target(&s.transport) == target(&transport)
                && counts(s)
        });
        if duplicate {
            return Err(HelixError::new(
                StatusCode::CONFLICT,
                "subscription already exists",
            ));
        }
        check_limits(&caller, &transport, cost, &st)?;
        let status = match transport {
            Transport::Webhook { .. } => "webhook_callback_verification_pending",
            _ => "enabled",
        };
        let sub = Subscription {
            id: new_id(),
            status: status.to_string(),
            sub_type: body.sub_type,
            version: body.version,
            condition,
            created_at: now_rfc3339(),
            transport,
            cost,
            created_by_user: caller.user_id().map(str::to_string),
        };
        st.subscriptions.push(sub.clone());
        sub
    };
    fake.notify();
    if matches!(sub.transport, Transport::Webhook { .. }) && fake.options().auto_verify_webhooks {
        let (fake, id) = (fake.clone(), sub.id.clone());
        tokio::spawn(async move { fake.verify_webhook(&id).await });
    }
    let mut answer = totals(&fake, &caller);
    answer["data"] = json!([sub.to_json()]);
    Ok((StatusCode::ACCEPTED, Json(answer)).into_response())
}

/// `{total, total_cost, max_total_cost}` for what `caller` can see.
fn totals(fake: &FakeTwitch, caller: &Caller) -> Value {
    let st = fake.state();
    let mine: Vec<_> = st
        .subscriptions
        .iter()
        .filter(|s| visible_to(caller, s))
        .collect();
    let cost: u32 = mine.iter().filter(|s| counts(s)).map(|s| s.cost).sum();
    let max = if caller.user_id().is_some() {
        MAX_COST_WEBSOCKET
    } else {
        MAX_COST_APP
    };
    json!({"total": mine.len(), "total_cost": cost, "max_total_cost": max})
}

/// `GET /eventsub/subscriptions?[status|type|user_id|subscription_id]&after=`.
pub(crate) async fn list(
    State(fake): State<FakeTwitch>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, HelixError> {
    let caller = fake.authenticate(&headers)?;
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let filters: Vec<_> = pairs
        .iter()
        .filter(|(k, _)| {
            matches!(
                k.as_str(),
                "status" | "type" | "user_id" | "subscription_id"
            )
        })
        .collect();
    if filters.len() > 1 {
        return Err(bad(
            "The request may specify only one filter query parameter.",
        ));
    }
    let start = match pairs.iter().find(|(k, _)| k == "after") {
        None => 0,
        Some((_, c)) => c
            .strip_prefix("cursor-")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| {
                bad("The cursor specified in the after query parameter is not valid.")
            })?,
    };
    let keep = |s: &Subscription| match filters.first().map(|(k, v)| (k.as_str(), v.as_str())) {
        Some(("status", v)) => s.status == v,
        Some(("type", v)) => s.sub_type == v,
        Some(("user_id", v)) => mentions(&s.condition, v),
        Some((_, v)) => s.id == v,
        None => true,
    };
    let matching: Vec<Value> = fake
        .state()
        .subscriptions
        .iter()
        .filter(|s| visible_to(&caller, s) && keep(s))
        .map(Subscription::to_json)
        .collect();
    let page: Vec<Value> = matching
        .iter()
        .skip(start)
        .take(PAGE_SIZE)
        .cloned()
        .collect();
    let next = start + page.len();
    let mut answer = totals(&fake, &caller);
    answer["data"] = json!(page);
    answer["pagination"] = if next < matching.len() {
        json!({"cursor": format!("cursor-{next}")})
    } else {
        json!({})
    };
    Ok(Json(answer))
}

/// `DELETE /eventsub/subscriptions?id=`.
pub(crate) async fn delete(
    State(fake): State<FakeTwitch>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<StatusCode, HelixError> {
    let caller = fake.authenticate(&headers)?;
    let id = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "id")
        .map(|(_, v)| v.into_owned());
    let id = id.ok_or_else(|| bad("The id query parameter is required."))?;
    {
        let mut st = fake.state();
        let index = st
            .subscriptions
            .iter()
            .position(|s| s.id == id && visible_to(&caller, s));
        let index = index.ok_or_else(|| HelixError::not_found("subscription not found"))?;
        st.subscriptions.remove(index);
    }
    fake.notify();
    Ok(StatusCode::NO_CONTENT)
}
