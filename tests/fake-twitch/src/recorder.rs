//! Middleware that logs every request the fake serves, so tests can assert on
//! what the code under test sent (token kinds, paths, bodies, retries).

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::Response;

use crate::state::{AuthKind, RecordedRequest};
use crate::FakeTwitch;

/// Largest request body the fake accepts (Twitch bodies are tiny).
const MAX_BODY: usize = 1 << 20;

/// Records method, path, query, credential kind, body and answer status.
pub(crate) async fn record(State(fake): State<FakeTwitch>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_BODY)
        .await
        .unwrap_or_default();
    let mut entry = RecordedRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().map(str::to_string),
        auth: fake.classify_auth(&parts.headers),
        client_id: header_str(&parts.headers, "client-id").map(str::to_string),
        body: String::from_utf8_lossy(&bytes).into_owned(),
        status: 0,
    };
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    entry.status = response.status().as_u16();
    fake.state().requests.push(entry);
    fake.notify();
    response
}

/// A header as `&str`, if present and valid UTF-8.
pub(crate) fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The token in `Authorization: Bearer <t>` or `Authorization: OAuth <t>`.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = header_str(headers, header::AUTHORIZATION.as_str())?;
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("oauth"))
        .then_some(token.trim())
}

impl FakeTwitch {
    /// What kind of credential these headers carry.
    fn classify_auth(&self, headers: &HeaderMap) -> AuthKind {
        if headers.get(header::AUTHORIZATION).is_none() {
            return AuthKind::None;
        }
        let state = self.state();
        match bearer(headers).and_then(|t| state.valid_token(t)) {
            Some(token) => token.kind,
            None => AuthKind::Invalid,
        }
    }
}
