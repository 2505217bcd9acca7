//! `ANY /api/twitch/helix/<path>`: the Helix passthrough.
//!
//! The policy (which role may call what, with which Twitch token, and what
//! a path may look like) is [`crate::access::helix`]; this handler applies
//! it to the *raw* request path, builds the upstream URL from the checked
//! segments under the configured Helix base, forwards the query and JSON
//! body, and returns Twitch's status, body and rate-limit headers. Every
//! call is logged with method, path, status and role, never a token.

use axum::{
    extract::State,
    http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri},
    response::{IntoResponse, Response},
};

use super::{extract::RawBody, Authenticated};
use crate::{
    access::helix::{plan, Refusal},
    app::AppState,
    error::ApiError,
    twitch::TwitchError,
};

/// Where the passthrough's paths start.
const PREFIX: &str = "/api/twitch/helix/";
/// Rate-limit headers Twitch sends and the passthrough returns.
const PASSED_HEADERS: [&str; 3] = ["ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"];

/// Forwards one allowed call to Helix.
pub async fn passthrough(
    auth: Authenticated,
    State(app): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let raw = uri.path().strip_prefix(PREFIX).unwrap_or_default();
    let token_type = headers
        .get("x-tau-token-type")
        .map(|v| v.to_str().unwrap_or("<not text>"));
    let role = auth.record.role;
    let call = plan(role, &method, raw, token_type).map_err(|refusal| {
        tracing::info!(%method, path = %raw, %role, token = %auth.record.name, ?refusal, "helix passthrough refused");
        match refusal {
            Refusal::BadRequest(why) => ApiError::BadRequest(why),
            Refusal::Forbidden(why) => ApiError::Forbidden(why),
            Refusal::Method(why) => ApiError::MethodNotAllowed(why),
        }
    })?;
    let body = (!body.is_empty()).then_some(body);
    let upstream = app
        .twitch
        .helix
        .send_segments(
            method.clone(),
            &call.segments,
            uri.query(),
            body,
            call.token,
        )
        .await?;
    let status =
        StatusCode::from_u16(upstream.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    tracing::info!(%method, path = %call.path(), status = status.as_u16(), %role, token = %auth.record.name, twitch_token = ?call.token, "helix passthrough");
    let mut passed = Vec::new();
    for name in PASSED_HEADERS {
        if let Some(value) = upstream
            .headers()
            .get(name)
            .and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok())
        {
            passed.push((name, value));
        }
    }
    let bytes = upstream.bytes().await.map_err(TwitchError::from)?;
    let mut response = if status == StatusCode::NO_CONTENT {
        status.into_response()
    } else {
        (status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response()
    };
    for (name, value) in passed {
        response.headers_mut().insert(name, value);
    }
    Ok(response)
}
