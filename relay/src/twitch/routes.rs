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
    extract::{rejection::QueryRejection, Query, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Redirect, Response},
    Json,
};
use cookie::{Cookie, SameSite};
use rand::RngCore;
use serde::Deserialize;

use super::{
    outcome::{html, Page, Tone, BACK},
    subscriptions::{missing_scopes, scopes_for},
    tokens::Authorization,
    TwitchError,
};
use crate::{api::Authenticated, app::AppState, error::ApiError, store::now_us};

/// How long an OAuth `state` stays valid.
const STATE_TTL: Duration = Duration::from_secs(600);
/// Cookie carrying the state back to the callback.
const STATE_COOKIE: &str = "tau_oauth_state";

/// The OAuth callback URL: what the Twitch application must register as
/// its redirect URL (`TAU_PUBLIC_URL/twitch-callback/`).
pub fn redirect_uri(app: &AppState) -> String {
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

/// Marks a stored state as a chat bot's authorization (see
/// [`crate::chat_bots::authorize`]); a broadcaster's holds only its time.
const BOT_STATE: &str = "bot:";

/// A fresh one-time `state`, stored with its time and purpose.
pub(crate) async fn new_state(app: &AppState, for_bot: bool) -> Result<String, ApiError> {
    let mut bytes = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let state = hex::encode(bytes);
    let purpose = if for_bot { BOT_STATE } else { "" };
    app.store
        .set_setting(&state_key(&state), &format!("{purpose}{}", now_us()))
        .await?;
    Ok(state)
}

/// The URL to send the broadcaster to, and its `state`.
async fn authorize_url(app: &AppState) -> Result<(String, String), ApiError> {
    let client_id = app
        .twitch
        .credentials
        .load()
        .await
        .ok_or(TwitchError::NotConfigured)?
        .client_id;
    let state = new_state(app, false).await?;
    let types = app.twitch.event_types.current().await;
    let mut url = url::Url::parse(&format!(
        "{}/authorize",
        app.config.twitch.auth_url.as_str().trim_end_matches('/')
    ))
    .map_err(|e| ApiError::Internal(e.into()))?;
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &client_id)
        .append_pair("redirect_uri", &redirect_uri(app))
        .append_pair("scope", &scopes_for(&types).join(" "))
        .append_pair("state", &state);
    Ok((url.to_string(), state))
}

/// The state cookie for the callback at `/twitch-callback/`; a chat bot's
/// (`for_bot`) is also sent to the original's `/api/v1/chat-bots/twitch-callback/`.
pub(crate) fn state_cookie(app: &AppState, state: &str, for_bot: bool) -> HeaderValue {
    let cookie = Cookie::build((STATE_COOKIE, state.to_string()))
        .http_only(true)
        .same_site(SameSite::Lax)
        .path(if for_bot { "/" } else { "/twitch-callback/" })
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
        .insert(header::SET_COOKIE, state_cookie(&app, &state, false));
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
        .insert(header::SET_COOKIE, state_cookie(&app, &state, false));
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

/// Every state cookie (a bot's and a broadcaster's may both be set, on
/// different paths), parsed by the `cookie` crate from every `Cookie` header.
fn cookie_states(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| Cookie::split_parse(v.to_string()).filter_map(Result::ok))
        .filter(|c| c.name() == STATE_COOKIE)
        .map(|c| c.value().to_string())
        .collect()
}

/// The event types of `configured` that need one of `missing`.
fn types_needing(configured: &[(String, String)], missing: &[String]) -> Vec<String> {
    let catalog = crate::catalog::Catalog::get();
    let mut types: Vec<String> = Vec::new();
    for (kind, version) in configured {
        let Some(entry) = catalog.find(kind, version) else {
            continue;
        };
        let tau = entry.tau_type();
        if entry.scopes.iter().any(|s| missing.contains(s)) && !types.contains(&tau) {
            types.push(tau);
        }
    }
    types
}

/// `items` as escaped `<code>` elements, comma-separated.
fn code_list(items: &[String]) -> String {
    items
        .iter()
        .map(|i| format!("<code>{}</code>", html(i)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The page for a link that cannot be used (any more).
fn expired() -> Page {
    Page::text(
        StatusCode::FORBIDDEN,
        Tone::Bad,
        "This link has expired",
        "This Twitch sign-in link was already used, is older than ten minutes, or was \
         started in another browser. Nothing was changed. Start again with Connect Twitch \
         in the dashboard.",
    )
}

/// The page for a callback without what Twitch always sends.
fn incomplete(what: &str) -> Page {
    Page::text(
        StatusCode::BAD_REQUEST,
        Tone::Bad,
        "This link is incomplete",
        &format!(
            "Twitch sends you back here with a {what}, and this link has none. Nothing \
             was changed. Start again with Connect Twitch in the dashboard."
        ),
    )
}

/// `GET /twitch-callback/`: checks `state`, exchanges the code, stores
/// tokens; every outcome is a page (see [`super::outcome`]).
pub async fn callback(
    State(app): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<Callback>, QueryRejection>,
) -> Page {
    let Ok(Query(query)) = query else {
        return incomplete("valid query");
    };
    match complete(&app, &headers, query).await {
        Ok(page) | Err(page) => page,
    }
}

async fn complete(app: &AppState, headers: &HeaderMap, query: Callback) -> Result<Page, Page> {
    if let Some(error) = query.error {
        let why = query.error_description.unwrap_or_default();
        tracing::warn!(%error, %why, "Twitch authorization was not granted");
        let message = if error == "access_denied" {
            "<p>Twitch says the authorization was declined, so TAU is not connected and \
             nothing was stored. To connect, press Connect Twitch in the dashboard again \
             and choose <b>Authorize</b> on Twitch's page.</p>"
                .to_string()
        } else {
            format!(
                "<p>Twitch answered <code>{}</code>{}. TAU is not connected and nothing was \
                 stored. Press Connect Twitch in the dashboard to try again.</p>",
                html(&error),
                if why.is_empty() {
                    String::new()
                } else {
                    format!(": {}", html(&why))
                },
            )
        };
        return Err(Page {
            status: StatusCode::BAD_REQUEST,
            tone: Tone::Bad,
            heading: "Twitch authorization was not granted",
            message,
            back: BACK,
        });
    }
    let state = query.state.ok_or_else(|| incomplete("one-time state"))?;
    let cookies = cookie_states(headers);
    if cookies.is_empty() {
        return Err(expired());
    }
    // One use only, atomically: of two callbacks racing with one state
    // (a replay), only one finds it, on any replica.
    let created_us = app
        .store
        .take_setting(&state_key(&state))
        .await
        .map_err(|err| failed(&err))?;
    let for_bot = created_us
        .as_deref()
        .is_some_and(|v| v.starts_with(BOT_STATE));
    let known = created_us
        .and_then(|us| us.trim_start_matches(BOT_STATE).parse::<i64>().ok())
        .is_some_and(|us| now_us() - us < STATE_TTL.as_micros() as i64);
    let matches = cookies.iter().fold(subtle::Choice::from(0), |any, cookie| {
        any | subtle::ConstantTimeEq::ct_eq(cookie.as_bytes(), state.as_bytes())
    });
    if !known || !bool::from(matches) {
        tracing::warn!("OAuth callback with an unknown, used or mismatched state rejected");
        return Err(expired());
    }
    let code = query.code.ok_or_else(|| incomplete("code"))?;
    if for_bot {
        return Ok(crate::chat_bots::authorize::complete(app, &code).await);
    }
    let expected = app.config.twitch.broadcaster.as_deref();
    let outcome = app
        .twitch
        .tokens
        .exchange_code(&code, &redirect_uri(app), expected)
        .await
        .map_err(|err| {
            tracing::error!(error = %err, "code exchange failed");
            Page::text(
                StatusCode::BAD_REQUEST,
                Tone::Bad,
                "Twitch refused the authorization",
                &format!(
                    "Twitch did not accept the authorization code ({err}). Nothing was \
                     stored. Press Connect Twitch in the dashboard to try again."
                ),
            )
        })?;
    match outcome {
        Authorization::Accepted(token) => {
            app.twitch.authorized.notify_waiters();
            let login = token.login.unwrap_or_default();
            let configured = &*app.twitch.event_types.current().await;
            let missing = missing_scopes(&scopes_for(configured), &token.scopes);
            let mut message = format!(
                "<p>TAU is connected to Twitch as <b>{}</b>. Events start arriving within \
                 a few seconds.</p>",
                html(&login)
            );
            if !missing.is_empty() {
                message.push_str(&format!(
                    "<p class=\"note\">Twitch granted fewer permissions than TAU asked for. \
                     Missing: {}. These event types will not arrive until the broadcaster \
                     connects again and grants them: {}.</p>",
                    code_list(&missing),
                    code_list(&types_needing(configured, &missing)),
                ));
            }
            Ok(Page {
                status: StatusCode::OK,
                tone: if missing.is_empty() {
                    Tone::Ok
                } else {
                    Tone::Warn
                },
                heading: "Connected to Twitch",
                message,
                back: BACK,
            })
        }
        Authorization::WrongAccount { login } => Ok(Page {
            status: StatusCode::FORBIDDEN,
            tone: Tone::Bad,
            heading: "Wrong Twitch account",
            message: format!(
                "<p>You authorized TAU as the Twitch account <b>{}</b>, but this relay serves \
                 <b>{}</b> (<code>TWITCH_BROADCASTER</code>). Nothing was stored, and that \
                 authorization was revoked.</p><p>To retry: log out of Twitch (or switch to \
                 <b>{}</b>) at twitch.tv, then press Connect Twitch in the dashboard again.</p>",
                html(&login),
                html(expected.unwrap_or_default()),
                html(expected.unwrap_or_default()),
            ),
            back: BACK,
        }),
    }
}

/// The page for an internal failure (the cause goes to the log only).
fn failed(err: &dyn std::fmt::Display) -> Page {
    tracing::error!(error = %err, "OAuth callback failed");
    Page::text(
        StatusCode::INTERNAL_SERVER_ERROR,
        Tone::Bad,
        "Something went wrong",
        "TAU could not finish connecting to Twitch. Nothing was changed. Try again in a \
         moment with Connect Twitch in the dashboard; if it keeps failing, the relay's log \
         says why.",
    )
}
