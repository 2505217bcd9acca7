//! Headers every response carries, whatever route or error produced it.
//!
//! Why: some responses hold a secret exactly once (a new or rotated API
//! token, the OAuth redirect), so nothing may keep a copy (`Cache-Control:
//! no-store`); and no response should be sniffed into another content type,
//! framed by another site, or leak the page's URL in a `Referer`.
//! A handler that sets one of these itself keeps its own value.

use axum::{
    extract::Request,
    http::{header, HeaderValue},
    middleware::Next,
    response::Response,
};

/// The headers and their values.
const HEADERS: [(header::HeaderName, &str); 4] = [
    (header::CACHE_CONTROL, "no-store"),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::REFERRER_POLICY, "no-referrer"),
];

/// Adds the headers above to a response that lacks them.
pub async fn headers(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    for (name, value) in HEADERS {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    response
}
