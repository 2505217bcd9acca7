//! Conduits: `POST / GET / PATCH / DELETE /helix/eventsub/conduits` and
//! `GET / PATCH /helix/eventsub/conduits/shards`. App access tokens only.
//!
//! A shard is unassigned until `PATCH .../shards` points it at a live
//! WebSocket session (→ `enabled`) or a webhook callback (→ verification
//! pending, then `enabled` once the challenge is answered). When a shard's
//! session closes the shard turns `websocket_disconnected`; a reconnect
//! hand-over moves it to the new session.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::HelixError;
use crate::helix::Caller;
use crate::state::{new_id, Conduit, Shard, State as World, Transport};
use crate::subscriptions::{callback_ok, secret_ok};
use crate::FakeTwitch;

/// Conduits per client id.
const MAX_CONDUITS: usize = 5;
/// Shards per conduit.
const MAX_SHARDS: usize = 20_000;
/// Page size of `GET .../shards`.
const PAGE_SIZE: usize = 100;

fn app_only(fake: &FakeTwitch, headers: &HeaderMap) -> Result<(), HelixError> {
    match fake.authenticate(headers)? {
        Caller::App => Ok(()),
        Caller::User { .. } => Err(HelixError::unauthorized(
            "Authorization header required with an app access token.",
        )),
    }
}

fn query_param(query: &Option<String>, key: &str) -> Option<String> {
    let raw = query.as_deref().unwrap_or_default().as_bytes();
    url::form_urlencoded::parse(raw)
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

fn unassigned(index: usize) -> Shard {
    Shard {
        id: index.to_string(),
        status: "websocket_disconnected".into(),
        transport: None,
    }
}

fn summary(c: &Conduit) -> Value {
    json!({"id": c.id, "shard_count": c.shards.len()})
}

fn shard_count(value: Option<u64>) -> Result<usize, HelixError> {
    value
        .map(|n| n as usize)
        .filter(|n| (1..=MAX_SHARDS).contains(n))
        .ok_or_else(|| HelixError::bad_request("Invalid shard count"))
}

#[derive(Deserialize)]
struct ConduitBody {
    id: Option<String>,
    shard_count: Option<u64>,
}

/// `POST /eventsub/conduits {shard_count}`.
pub(crate) async fn create(
    State(fake): State<FakeTwitch>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, HelixError> {
    app_only(&fake, &headers)?;
    let body: ConduitBody = serde_json::from_slice(&body)
        .map_err(|_| HelixError::bad_request("Invalid shard count"))?;
    let count = shard_count(body.shard_count)?;
    let conduit = {
        let mut st = fake.state();
        if st.conduits.len() >= MAX_CONDUITS {
            return Err(HelixError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "Conduit limit reached.",
            ));
        }
        let conduit = Conduit {
            id: new_id(),
            shards: (0..count).map(unassigned).collect(),
        };
        st.conduits.push(conduit.clone());
        conduit
    };
    fake.notify();
    Ok(Json(json!({"data": [summary(&conduit)]})))
}

/// `GET /eventsub/conduits`.
pub(crate) async fn list(
    State(fake): State<FakeTwitch>,
    headers: HeaderMap,
) -> Result<Json<Value>, HelixError> {
    app_only(&fake, &headers)?;
    let data: Vec<Value> = fake.state().conduits.iter().map(summary).collect();
    Ok(Json(json!({ "data": data })))
}

/// `PATCH /eventsub/conduits {id, shard_count}`.
pub(crate) async fn update(
    State(fake): State<FakeTwitch>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, HelixError> {
    app_only(&fake, &headers)?;
    let body: ConduitBody = serde_json::from_slice(&body)
        .map_err(|_| HelixError::bad_request("The id query parameter is required."))?;
    let id = body
        .id
        .ok_or_else(|| HelixError::bad_request("The id query parameter is required."))?;
    let count = shard_count(body.shard_count)?;
    let answer = {
        let mut st = fake.state();
        let conduit = st
            .conduit_mut(&id)
            .ok_or_else(|| HelixError::not_found("Conduit not found."))?;
        conduit.shards.truncate(count);
        let have = conduit.shards.len();
        conduit.shards.extend((have..count).map(unassigned));
        summary(conduit)
    };
    fake.notify();
    Ok(Json(json!({"data": [answer]})))
}

/// `DELETE /eventsub/conduits?id=` (also drops the conduit's subscriptions).
pub(crate) async fn delete(
    State(fake): State<FakeTwitch>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<StatusCode, HelixError> {
    app_only(&fake, &headers)?;
    let id = query_param(&query, "id")
        .ok_or_else(|| HelixError::bad_request("The id query parameter is required."))?;
    {
        let mut st = fake.state();
        let before = st.conduits.len();
        st.conduits.retain(|c| c.id != id);
        if st.conduits.len() == before {
            return Err(HelixError::not_found("Conduit not found."));
        }
        st.subscriptions.retain(
            |s| !matches!(&s.transport, Transport::Conduit { conduit_id } if *conduit_id == id),
        );
    }
    fake.notify();
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /eventsub/conduits/shards?conduit_id=&status=&after=`.
pub(crate) async fn list_shards(
    State(fake): State<FakeTwitch>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, HelixError> {
    app_only(&fake, &headers)?;
    let id = query_param(&query, "conduit_id")
        .ok_or_else(|| HelixError::bad_request("The id query parameter is required."))?;
    let status = query_param(&query, "status");
    let start = match query_param(&query, "after") {
        None => 0,
        Some(c) => c
            .strip_prefix("cursor-")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| HelixError::bad_request("The cursor is not valid."))?,
    };
    let st = fake.state();
    let conduit = st
        .conduits
        .iter()
        .find(|c| c.id == id)
        .ok_or_else(|| HelixError::not_found("Conduit not found."))?;
    let matching: Vec<&Shard> = conduit
        .shards
        .iter()
        .filter(|s| status.as_deref().is_none_or(|w| s.status == w))
        .collect();
    let page: Vec<Value> = matching
        .iter()
        .skip(start)
        .take(PAGE_SIZE)
        .map(|s| s.to_json())
        .collect();
    let next = start + page.len();
    let pagination = if next < matching.len() {
        json!({"cursor": format!("cursor-{next}")})
    } else {
        json!({})
    };
    Ok(Json(json!({"data": page, "pagination": pagination})))
}

#[derive(Deserialize)]
struct ShardsBody {
    conduit_id: String,
    shards: Vec<ShardUpdate>,
}

#[derive(Deserialize)]
struct ShardUpdate {
    id: String,
    transport: ShardTransport,
}

#[derive(Deserialize)]
struct ShardTransport {
    method: String,
    session_id: Option<String>,
    callback: Option<String>,
    secret: Option<String>,
}

/// Validates one shard update into (transport, status) or (message, code).
fn shard_transport(
    t: ShardTransport,
    st: &World,
) -> Result<(Transport, &'static str), (&'static str, &'static str)> {
    match t.method.as_str() {
        "websocket" => {
            let id = t.session_id.ok_or((
                "The session_id field is required if you specify the WebSocket transport method.",
                "missing_session_id",
            ))?;
            let session = st
                .session(&id)
                .filter(|s| s.connected && s.welcomed && !s.handed_over);
            let session = session.ok_or((
                "The websocket session is not connected.",
                "websocket_session_not_connected",
            ))?;
            let connected_at = session.connected_at.clone();
            Ok((
                Transport::WebSocket {
                    session_id: id,
                    connected_at,
                    disconnected_at: None,
                },
                "enabled",
            ))
        }
        "webhook" => {
            let callback = t.callback.ok_or((
                "The callback field is required if you specify the webhook transport method.",
                "missing_callback",
            ))?;
            if !callback_ok(&callback) {
                return Err(("The URL in the transport's callback field is not valid. The URL must use the HTTPS protocol and the 443 port number.", "invalid_callback"));
            }
            let secret = t.secret.filter(|s| secret_ok(s)).ok_or((
                "The length of the string in the secret field is not valid.",
                "invalid_secret",
            ))?;
            Ok((
                Transport::Webhook { callback, secret },
                "webhook_callback_verification_pending",
            ))
        }
        _ => Err((
            "The value specified in the method field is not valid.",
            "invalid_method",
        )),
    }
}

/// `PATCH /eventsub/conduits/shards` → 202 `{data, errors}`.
pub(crate) async fn update_shards(
    State(fake): State<FakeTwitch>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, HelixError> {
    app_only(&fake, &headers)?;
    let body: ShardsBody = serde_json::from_slice(&body)
        .map_err(|e| HelixError::bad_request(format!("malformed request body: {e}")))?;
    let (mut data, mut errors, mut to_verify) = (Vec::new(), Vec::new(), Vec::new());
    {
        let mut st = fake.state();
        let count = st
            .conduits
            .iter()
            .find(|c| c.id == body.conduit_id)
            .map(|c| c.shards.len());
        let count = count.ok_or_else(|| HelixError::not_found("Conduit not found."))?;
        for update in body.shards {
            let index = update.id.parse::<usize>().ok().filter(|i| *i < count);
            let result = match index {
                None => Err((
                    "The shard id is outside of the conduit's range.",
                    "invalid_shard_id",
                )),
                Some(i) => shard_transport(update.transport, &st).map(|ok| (i, ok)),
            };
            match result {
                Ok((i, (transport, status))) => {
                    let shard = &mut st
                        .conduit_mut(&body.conduit_id)
                        .expect("checked above")
                        .shards[i];
                    shard.transport = Some(transport);
                    shard.status = status.to_string();
                    data.push(shard.to_json());
                    if status != "enabled" {
                        to_verify.push(shard.id.clone());
                    }
                }
                Err((message, code)) => {
                    errors.push(json!({"id": update.id, "message": message, "code": code}))
                }
            }
        }
    }
    fake.notify();
    if fake.options().auto_verify_webhooks {
        for shard_id in to_verify {
            let (fake, conduit_id) = (fake.clone(), body.conduit_id.clone());
            tokio::spawn(async move { fake.verify_shard(&conduit_id, &shard_id).await });
        }
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"data": data, "errors": errors})),
    )
        .into_response())
}
