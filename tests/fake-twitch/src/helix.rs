//! Helix (`https://api.twitch.tv/helix` on Twitch), mounted at `/helix`:
//! routing, caller authentication, the rate-limit headers and `GET /users`.
//!
//! Every Helix answer carries `Ratelimit-Limit`, `Ratelimit-Remaining` and
//! `Ratelimit-Reset`; each request costs one point of an 800-point bucket
//! refilled every minute, and an empty bucket answers 429. Unknown paths
//! answer a JSON 404.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::error::HelixError;
use crate::recorder::{bearer, header_str};
use crate::state::AuthKind;
use crate::{conduits, subscriptions, FakeTwitch};

/// Helix points per minute (Twitch's default bucket for an app).
pub(crate) const RATELIMIT_POINTS: u32 = 800;

/// Routes served under `/helix`.
pub(crate) fn router(fake: FakeTwitch) -> Router<FakeTwitch> {
    Router::new()
        .route("/users", get(users))
        .route("/chat/messages", post(crate::chat::send))
        .route("/streams", get(crate::streams::list))
        .route(
            "/eventsub/subscriptions",
            post(subscriptions::create)
                .get(subscriptions::list)
                .delete(subscriptions::delete),
        )
        .route(
            "/eventsub/conduits",
            post(conduits::create)
                .get(conduits::list)
                .patch(conduits::update)
                .delete(conduits::delete),
        )
        .route(
            "/eventsub/conduits/shards",
            get(conduits::list_shards).patch(conduits::update_shards),
        )
        .fallback(|| async { HelixError::not_found("Not Found") })
        .layer(from_fn_with_state(fake, ratelimit))
}

/// Who is calling Helix.
#[derive(Clone, Debug)]
pub(crate) enum Caller {
    /// App access token.
    App,
    /// A user access token (the broadcaster's unless authorized as
    /// another user) with these scopes.
    User {
        user_id: String,
        login: String,
        scopes: Vec<String>,
    },
}

impl Caller {
    /// The user id behind a user token.
    pub(crate) fn user_id(&self) -> Option<&str> {
        match self {
            Caller::App => None,
            Caller::User { user_id, .. } => Some(user_id),
        }
    }
}

impl FakeTwitch {
    /// Checks `Authorization: Bearer` and `Client-Id` the way Helix does.
    pub(crate) fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, HelixError> {
        let Some(token) = bearer(headers) else {
            return Err(HelixError::unauthorized("OAuth token is missing"));
        };
        let Some(client_id) = header_str(headers, "client-id") else {
            return Err(HelixError::unauthorized("Client-Id header required"));
        };
        let st = self.state();
        let token = st
            .valid_token(token)
            .ok_or_else(|| HelixError::unauthorized("Invalid OAuth token"))?;
        if client_id != FakeTwitch::CLIENT_ID {
            return Err(HelixError::unauthorized(
                "Client ID and OAuth token do not match",
            ));
        }
        Ok(match token.kind {
            AuthKind::User => {
                let (user_id, login) = token.user.clone().unwrap_or_else(|| {
                    (
                        FakeTwitch::BROADCASTER_ID.to_string(),
                        FakeTwitch::BROADCASTER_LOGIN.to_string(),
                    )
                });
                Caller::User {
                    user_id,
                    login,
                    scopes: token.scopes.clone(),
                }
            }
            _ => Caller::App,
        })
    }

    /// Sets the points left in the current Helix rate-limit window
    /// (0 makes the next Helix request answer 429 until the window resets).
    pub fn set_ratelimit_remaining(&self, remaining: u32) {
        self.state().ratelimit_remaining = remaining;
    }
}

/// Spends one point and stamps the `Ratelimit-*` headers on the answer.
async fn ratelimit(State(fake): State<FakeTwitch>, req: Request, next: Next) -> Response {
    let (remaining, reset_in, limited) = {
        let mut st = fake.state();
        let now = Instant::now();
        if now >= st.ratelimit_reset {
            st.ratelimit_remaining = RATELIMIT_POINTS;
            st.ratelimit_reset = now + Duration::from_secs(60);
        }
        let limited = st.ratelimit_remaining == 0;
        st.ratelimit_remaining = st.ratelimit_remaining.saturating_sub(1);
        (st.ratelimit_remaining, st.ratelimit_reset - now, limited)
    };
    let mut response = if limited {
        HelixError::new(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests").into_response()
    } else {
        next.run(req).await
    };
    let reset = (SystemTime::now() + reset_in)
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let headers = response.headers_mut();
    headers.insert("ratelimit-limit", HeaderValue::from(RATELIMIT_POINTS));
    headers.insert("ratelimit-remaining", HeaderValue::from(remaining));
    headers.insert("ratelimit-reset", HeaderValue::from(reset));
    response
}

/// The one user the fake knows.
fn broadcaster() -> Value {
    json!({
        "id": FakeTwitch::BROADCASTER_ID,
        "login": FakeTwitch::BROADCASTER_LOGIN,
        "display_name": FakeTwitch::BROADCASTER_NAME,
        "type": "",
        "broadcaster_type": "affiliate",
        "description": "The fake broadcaster.",
        "profile_image_url": "https://static-cdn.jtvnw.net/jtv_user_pictures/cooler_user-profile_image.png",
        "offline_image_url": "",
        "view_count": 0,
        "created_at": "2016-12-14T20:32:28Z",
    })
}

/// `GET /users?id=..&login=..` (repeatable; no parameter = the token's user).
async fn users(
    State(fake): State<FakeTwitch>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, HelixError> {
    let caller = fake.authenticate(&headers)?;
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let wanted: Vec<_> = pairs
        .iter()
        .filter(|(k, _)| k == "id" || k == "login")
        .collect();
    if wanted.len() > 100 {
        return Err(HelixError::bad_request(
            "The request exceeded the maximum of 100 id and login parameters",
        ));
    }
    let matches = |(k, v): &&(String, String)| {
        (k == "id" && v == FakeTwitch::BROADCASTER_ID)
            || (k == "login" && v.eq_ignore_ascii_case(FakeTwitch::BROADCASTER_LOGIN))
    };
    let data = match (wanted.is_empty(), caller) {
        (true, Caller::User { user_id, login, .. }) => {
            if user_id == FakeTwitch::BROADCASTER_ID {
                vec![broadcaster()]
            } else {
                let pair = ("id".to_string(), user_id.clone());
                let known = fake.state().channels.users(&[&pair]);
                if known.is_empty() {
                    vec![json!({
                        "id": user_id, "login": login, "display_name": login,
                        "type": "", "broadcaster_type": "", "description": "",
                        "profile_image_url": "", "offline_image_url": "", "view_count": 0,
                        "created_at": "2020-01-01T00:00:00Z",
                    })]
                } else {
                    known
                }
            }
        }
        (true, Caller::App) => {
            return Err(HelixError::bad_request(
                "The id or login query parameter is required unless the request uses a user access token",
            ))
        }
        (false, _) => {
            let mut data = Vec::new();
            if wanted.iter().any(matches) {
                data.push(broadcaster());
            }
            data.extend(fake.state().channels.users(&wanted));
            data
        }
    };
    Ok(Json(json!({ "data": data })))
}
