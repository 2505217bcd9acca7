//! The OAuth authorization-code flow (the Helix passthrough is `api::helix`).
//!
//! `/twitch/authorize` needs an admin TAU token (so a stranger cannot
//! connect their own account), sets a one-time `state` in an HttpOnly
//! cookie and in the shared store, and redirects to Twitch with the scopes
//! the configured types need. The callback consumes that state atomically
//! (`DELETE … RETURNING`: a replayed callback finds nothing), requires the
//! cookie to match it, and (if `TWITCH_BROADCASTER` is set) accepts only
//! that broadcaster's account: another account's token is revoked, nothing
//! is stored, and the page says which account was used and how to retry.

use std::time::Duration;

use axum::{
    extract::{Query, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{Html, IntoResponse, Redirect, Response},
    Json,
};
use cookie::{Cookie, SameSite};
use rand::RngCore;
use serde::Deserialize;

use super::{subscriptions::scopes_for, tokens::Authorization, TwitchError};
use crate::{api::Authenticated, app::AppState, error::ApiError, store::now_us};

/// How long an OAuth `state` stays valid.
const STATE_TTL: Duration = Duration::from_secs(600);
/// Cookie carrying the state back to the callback.
const STATE_COOKIE: &str = "tau_oauth_state";

fn redirect_uri(app: &AppState) -> String {
    app.config
        .public_url
        .join("/twitch-callback/")
        .expect("valid path")
        .to_string()
}

impl From<TwitchError> for ApiError {
    fn from(err: TwitchError) -> ApiError {
        match err {
            TwitchError::NotConfigured | TwitchError::AuthorizationNeeded => {
                ApiError::Unavailable(err.to_string())
            }
            other => ApiError::Internal(other.into()),
        }
    }
}

/// Settings key of an outstanding OAuth state. States live in the shared
/// store because the callback may reach another replica than the start.
fn state_key(state: &str) -> String {
    format!("oauth_state:{state}")
}

/// The URL to send the broadcaster to, and its `state`.
async fn authorize_url(app: &AppState) -> Result<(String, String), ApiError> {
    let client_id = app
        .config
        .twitch
        .client_id
        .as_deref()
        .ok_or(TwitchError::NotConfigured)?;
    let mut bytes = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let state = hex::encode(bytes);
    app.store
        .set_setting(&state_key(&state), &now_us().to_string())
        .await?;
    let mut url = url::Url::parse(&format!(
        "{}/authorize",
        app.config.twitch.auth_url.as_str().trim_end_matches('/')
    ))
    .map_err(|e| ApiError::Internal(e.into()))?;
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", &redirect_uri(app))
        .append_pair("scope", &scopes_for(&app.config.eventsub_types).join(" "))
        .append_pair("state", &state);
    Ok((url.to_string(), state))
}

fn state_cookie(app: &AppState, state: &str) -> HeaderValue {
    let cookie = Cookie::build((STATE_COOKIE, state.to_string()))
        .http_only(true)
        .same_site(SameSite::Lax)
        .path("/twitch-callback/")
        .max_age(cookie::time::Duration::seconds(STATE_TTL.as_secs() as i64))
        .secure(app.config.public_url.scheme() == "https")
        .build();
    HeaderValue::from_str(&cookie.to_string()).expect("cookie is ASCII")
}

/// `GET /twitch/authorize`: redirect to Twitch's consent page.
pub async fn authorize(
    _: Authenticated,
    State(app): State<AppState>,
) -> Result<Response, ApiError> {
    let (url, state) = authorize_url(&app).await?;
    let mut response = Redirect::to(&url).into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, state_cookie(&app, &state));
    Ok(response)
}

/// Where to send the broadcaster to connect Twitch.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct AuthorizeUrl {
    /// Twitch's consent page, with this request's one-time `state`.
    url: String,
}

/// `POST /api/v1/twitch/authorize`: the same, as JSON for the dashboard.
#[utoipa::path(
    post,
    path = "/api/v1/twitch/authorize",
    tag = "twitch",
    security(("token" = [])),
    responses(
        (status = 200, description = "Twitch's consent page; the one-time state also travels in an HttpOnly cookie for `/twitch-callback`", body = AuthorizeUrl,
            headers(("set-cookie" = String, description = "The one-time OAuth state"))),
        (status = 503, description = "The relay has no Twitch credentials (`TWITCH_CLIENT_ID`)", body = crate::error::ErrorBody),
        crate::api::openapi::AuthErrors,
    )
)]
pub async fn authorize_json(
    _: Authenticated,
    State(app): State<AppState>,
) -> Result<Response, ApiError> {
    let (url, state) = authorize_url(&app).await?;
    let mut response = Json(AuthorizeUrl { url }).into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, state_cookie(&app, &state));
    Ok(response)
}

/// Query of the OAuth callback.
#[derive(Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// The state cookie, parsed by the `cookie` crate from every `Cookie` header.
fn cookie_state(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| Cookie::split_parse(v.to_string()).filter_map(Result::ok))
        .find(|c| c.name() == STATE_COOKIE)
        .map(|c| c.value().to_string())
}

/// Escapes text for an HTML page.
fn html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// A small page for the person in the browser.
fn page(status: StatusCode, body: &str) -> Response {
    let document = format!(
        "<!doctype html><meta charset=utf-8><title>TAU</title><p>{body}</p><p><a href=\"/\">Back to the dashboard</a></p>"
    );
    (status, Html(document)).into_response()
}

/// `GET /twitch-callback/`: checks `state`, exchanges the code, stores tokens.
pub async fn callback(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<Callback>,
) -> Result<Response, ApiError> {
    if let Some(error) = query.error {
        let why = query.error_description.unwrap_or_default();
        tracing::warn!(%error, %why, "Twitch authorization was not granted");
        return Err(ApiError::BadRequest(format!(
            "Twitch authorization was not granted: {error} {why}"
        )));
    }
    let state = query
        .state
        .ok_or_else(|| ApiError::BadRequest("missing state".into()))?;
    let cookie = cookie_state(&headers).ok_or_else(|| {
        ApiError::Forbidden("OAuth state cookie missing: start again from the dashboard".into())
    })?;
    // One use only, atomically: of two callbacks racing with one state
    // (a replay), only one finds it, on any replica.
    let created_us = app.store.take_setting(&state_key(&state)).await?;
    let known = created_us
        .and_then(|us| us.parse::<i64>().ok())
        .is_some_and(|us| now_us() - us < STATE_TTL.as_micros() as i64);
    if !known
        || !bool::from(subtle::ConstantTimeEq::ct_eq(
            cookie.as_bytes(),
            state.as_bytes(),
        ))
    {
        tracing::warn!("OAuth callback with an unknown, used or mismatched state rejected");
        return Err(ApiError::Forbidden(
            "invalid OAuth state: start again from the dashboard".into(),
        ));
    }
    let code = query
        .code
        .ok_or_else(|| ApiError::BadRequest("missing code".into()))?;
    let expected = app.config.twitch.broadcaster.as_deref();
    let outcome = app
        .twitch
        .tokens
        .exchange_code(&code, &redirect_uri(&app), expected)
        .await
        .map_err(|err| {
            tracing::error!(error = %err, "code exchange failed");
            ApiError::BadRequest(format!("Twitch refused the authorization code: {err}"))
        })?;
    match outcome {
        Authorization::Accepted(token) => {
            app.twitch.authorized.notify_waiters();
            let login = token.login.unwrap_or_default();
            Ok(page(
                StatusCode::OK,
                &format!("Connected to Twitch as <b>{}</b>.", html(&login)),
            ))
        }
        Authorization::WrongAccount { login } => Ok(page(
            StatusCode::FORBIDDEN,
            &format!(
                "You authorized TAU as the Twitch account <b>{}</b>, but this relay serves \
                 <b>{}</b> (<code>TWITCH_BROADCASTER</code>). Nothing was stored, and that \
                 authorization was revoked. To retry: log out of Twitch (or switch to \
                 <b>{}</b>) at twitch.tv, then press Connect in the dashboard again.",
                html(&login),
                html(expected.unwrap_or_default()),
                html(expected.unwrap_or_default()),
            ),
        )),
    }
}
