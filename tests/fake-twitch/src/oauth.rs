//! The OAuth server (`https://id.twitch.tv/oauth2` on Twitch), mounted at
//! `/oauth2`, and the control methods that steer tokens.
//!
//! - `POST /token`: `client_credentials` → app token; `authorization_code`
//!   → user token + refresh token; `refresh_token` → a NEW access token and
//!   a NEW refresh token (the old refresh token stops working).
//! - `GET /validate` with `Authorization: OAuth <token>`.
//! - `GET /authorize`: auto-approves as the broadcaster (or as the user
//!   set with [`FakeTwitch::set_authorize_as`]) and redirects (302) to
//!   `redirect_uri?code=..&scope=..&state=..`.
//! - `POST /revoke`: invalidates an access token.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Query, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use crate::error::OAuthError;
use crate::recorder::bearer;
use crate::state::{random_token, AuthCode, AuthKind, Token};
use crate::FakeTwitch;

/// Routes served under `/oauth2`.
pub(crate) fn router() -> Router<FakeTwitch> {
    Router::new()
        .route("/token", post(token))
        .route("/validate", get(validate))
        .route("/authorize", get(authorize))
        .route("/revoke", post(revoke))
}

type Params = HashMap<String, String>;

/// Query parameters merged with a form body (Twitch accepts both).
fn params(query: Option<String>, body: &[u8]) -> Params {
    let mut out: Params = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .into_owned()
        .collect();
    out.extend(url::form_urlencoded::parse(body).into_owned());
    out
}

fn bad_request(message: &str) -> OAuthError {
    OAuthError::new(StatusCode::BAD_REQUEST, message)
}

async fn token(
    State(fake): State<FakeTwitch>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Json<serde_json::Value>, OAuthError> {
    let p = params(query, &body);
    let get = |k: &str| p.get(k).map(String::as_str).unwrap_or("");
    if get("client_id") != FakeTwitch::CLIENT_ID {
        return Err(bad_request("invalid client"));
    }
    if get("client_secret") != fake.state().client_secret {
        return Err(OAuthError::new(
            StatusCode::FORBIDDEN,
            "invalid client secret",
        ));
    }
    let user_ttl = fake.options().user_token_expires_in;
    let mut st = fake.state();
    let (scopes, user) = match get("grant_type") {
        "client_credentials" => {
            let ttl = fake.options().app_token_expires_in;
            let access = st.mint_access(AuthKind::App, Vec::new(), ttl);
            return Ok(Json(
                json!({"access_token": access, "expires_in": ttl, "token_type": "bearer"}),
            ));
        }
        "authorization_code" => {
            let code = st
                .auth_codes
                .remove(get("code"))
                .ok_or_else(|| bad_request("Invalid authorization code"))?;
            if code.redirect_uri != get("redirect_uri") {
                return Err(bad_request(
                    "Parameter redirect_uri does not match registered URI",
                ));
            }
            (code.scopes, code.user)
        }
        "refresh_token" => {
            let (scopes, owner) = st
                .refresh_tokens
                .remove(get("refresh_token"))
                .ok_or_else(|| bad_request("Invalid refresh token"))?;
            (scopes, owner)
        }
        _ => return Err(bad_request("unsupported grant_type")),
    };
    let access = st.mint_access(AuthKind::User, scopes.clone(), user_ttl);
    if let Some(token) = st.tokens.get_mut(&access) {
        token.user = user.clone();
    }
    let refresh = st.mint_refresh(scopes.clone());
    if let Some(entry) = st.refresh_tokens.get_mut(&refresh) {
        entry.1 = user;
    }
    Ok(Json(json!({
        "access_token": access,
        "refresh_token": refresh,
        "expires_in": user_ttl,
        "scope": scopes,
        "token_type": "bearer",
    })))
}

async fn validate(State(fake): State<FakeTwitch>, headers: HeaderMap) -> Response {
    let st = fake.state();
    let Some(token) = bearer(&headers).and_then(|t| st.valid_token(t)) else {
        return OAuthError::new(StatusCode::UNAUTHORIZED, "invalid access token").into_response();
    };
    let expires_in = token
        .expires_at
        .saturating_duration_since(Instant::now())
        .as_secs();
    let (user_id, login) = token.user.clone().unwrap_or_else(|| {
        (
            FakeTwitch::BROADCASTER_ID.to_string(),
            FakeTwitch::BROADCASTER_LOGIN.to_string(),
        )
    });
    let body = match token.kind {
        AuthKind::User => json!({
            "client_id": FakeTwitch::CLIENT_ID,
            "login": login,
            "scopes": token.scopes,
            "user_id": user_id,
            "expires_in": expires_in,
        }),
        _ => json!({"client_id": FakeTwitch::CLIENT_ID, "scopes": [], "expires_in": expires_in}),
    };
    Json(body).into_response()
}

async fn authorize(State(fake): State<FakeTwitch>, Query(p): Query<Params>) -> Response {
    let get = |k: &str| p.get(k).map(String::as_str).unwrap_or("");
    if get("client_id") != FakeTwitch::CLIENT_ID {
        return bad_request("invalid client").into_response();
    }
    if get("response_type") != "code" {
        return bad_request("unsupported response_type").into_response();
    }
    let Ok(mut target) = url::Url::parse(get("redirect_uri")) else {
        return bad_request("Parameter redirect_uri does not match registered URI").into_response();
    };
    let scopes: Vec<String> = get("scope")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let mut st = fake.state();
    {
        let mut q = target.query_pairs_mut();
        if st.deny_authorization {
            q.append_pair("error", "access_denied");
            q.append_pair("error_description", "The user denied you access");
        } else {
            let code = random_token(30);
            q.append_pair("code", &code);
            q.append_pair("scope", &scopes.join(" "));
            let redirect_uri = get("redirect_uri").to_string();
            let user = st.authorize_as.clone();
            st.auth_codes.insert(
                code,
                AuthCode {
                    scopes,
                    redirect_uri,
                    user,
                },
            );
        }
        if let Some(state) = p.get("state") {
            q.append_pair("state", state);
        }
    }
    (StatusCode::FOUND, [(header::LOCATION, target.to_string())]).into_response()
}

async fn revoke(
    State(fake): State<FakeTwitch>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<StatusCode, OAuthError> {
    let p = params(query, &body);
    if p.get("client_id").map(String::as_str) != Some(FakeTwitch::CLIENT_ID) {
        return Err(bad_request("invalid client"));
    }
    let mut st = fake.state();
    let token = p.get("token").and_then(|t| st.tokens.get_mut(t));
    let token = token.ok_or_else(|| bad_request("Invalid token"))?;
    token.expired = true;
    Ok(StatusCode::OK)
}

impl crate::state::State {
    /// Stores and returns a new access token.
    pub(crate) fn mint_access(
        &mut self,
        kind: AuthKind,
        scopes: Vec<String>,
        expires_in: u64,
    ) -> String {
        let token = random_token(30);
        let expires_at = Instant::now() + Duration::from_secs(expires_in);
        self.tokens.insert(
            token.clone(),
            Token {
                kind,
                scopes,
                expires_at,
                expired: false,
                user: None,
            },
        );
        token
    }

    /// Stores and returns a new refresh token.
    pub(crate) fn mint_refresh(&mut self, scopes: Vec<String>) -> String {
        let token = random_token(50);
        self.refresh_tokens.insert(token.clone(), (scopes, None));
        token
    }
}

/// Token control for tests.
impl FakeTwitch {
    /// Mints a user access token for the broadcaster with `scopes`, valid for
    /// `expires_in` seconds, plus a refresh token; returns `(access, refresh)`.
    pub fn issue_user_token(&self, scopes: &[&str], expires_in: u64) -> (String, String) {
        let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
        let mut st = self.state();
        let access = st.mint_access(AuthKind::User, scopes.clone(), expires_in);
        (access, st.mint_refresh(scopes))
    }

    /// Mints an app access token (what `client_credentials` returns).
    pub fn issue_app_token(&self) -> String {
        let ttl = self.options().app_token_expires_in;
        self.state().mint_access(AuthKind::App, Vec::new(), ttl)
    }

    /// Makes `token` invalid: Helix answers 401 and `/validate` answers 401.
    pub fn expire_access_token(&self, token: &str) {
        if let Some(t) = self.state().tokens.get_mut(token) {
            t.expired = true;
        }
    }

    /// Replaces the client secret, as Twitch's console does: from now on
    /// the token endpoint accepts only `secret` (403 for the old one).
    pub fn rotate_client_secret(&self, secret: &str) {
        self.state().client_secret = secret.into();
    }

    /// Expires every user access token (Helix and `/validate` answer 401), so
    /// the next use needs a refresh, which needs the client secret.
    pub fn expire_user_tokens(&self) {
        for token in self.state().tokens.values_mut() {
            if token.kind == AuthKind::User {
                token.expired = true;
            }
        }
    }

    /// Invalidates every refresh token: refreshing answers
    /// 400 `{"status":400,"message":"Invalid refresh token"}`.
    pub fn revoke_refresh_tokens(&self) {
        self.state().refresh_tokens.clear();
    }

    /// Withdraws user `user_id`'s authorization, as when they disconnect
    /// the app at twitch.tv: its access tokens answer 401 and its refresh
    /// tokens are refused (400 "Invalid refresh token").
    pub fn revoke_user(&self, user_id: &str) {
        let mut st = self.state();
        let owned_by = |user: &Option<(String, String)>| match user {
            Some((id, _)) => id == user_id,
            None => user_id == FakeTwitch::BROADCASTER_ID,
        };
        for token in st.tokens.values_mut() {
            if token.kind == AuthKind::User && owned_by(&token.user) {
                token.expired = true;
            }
        }
        st.refresh_tokens.retain(|_, (_, user)| !owned_by(user));
    }

    /// Whether the broadcaster has authorized the client id. When `false`,
    /// creating webhook/conduit subscriptions that need the broadcaster's
    /// authorization answers 403. Defaults to `true`.
    pub fn set_authorized(&self, yes: bool) {
        self.state().authorized = yes;
    }

    /// When `true`, `/oauth2/authorize` redirects with `error=access_denied`
    /// instead of a code (the user clicked "Cancel").
    pub fn set_deny_authorization(&self, yes: bool) {
        self.state().deny_authorization = yes;
    }

    /// Makes `/oauth2/authorize` approve as another Twitch account
    /// (`Some((user_id, login))`), as when the person authorizing is logged
    /// into Twitch with the wrong account; `None` restores the broadcaster.
    pub fn set_authorize_as(&self, user: Option<(&str, &str)>) {
        self.state().authorize_as = user.map(|(id, login)| (id.to_string(), login.to_string()));
    }

    /// Scopes granted to a valid access token (`None` if unknown or expired).
    pub fn token_scopes(&self, token: &str) -> Option<Vec<String>> {
        self.state()
            .valid_token(token)
            .map(|t: &Token| t.scopes.clone())
    }
}
