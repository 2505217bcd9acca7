//! Twitch's rate-limit headers on the Helix-compatible routes.
//!
//! Twitch answers every Helix request with `Ratelimit-Limit`,
//! `Ratelimit-Remaining` and `Ratelimit-Reset` (its 800-point-per-minute
//! bucket), and client libraries schedule their next call from them:
//! twurple's rate limiter reads a missing `Ratelimit-Remaining` as 0 and
//! then never sends another request (its second concurrent subscription
//! hangs). TAU does not charge these routes against a Twitch bucket (the
//! events come over its one connection), so it reports the bucket full,
//! refilling a minute from now.

use axum::{
    http::{HeaderName, HeaderValue},
    response::Response,
};

/// Twitch's points per minute for a user token.
pub const POINTS_PER_MINUTE: u32 = 800;

const LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
const REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
const RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

/// Adds the three headers to a Helix answer (errors included, as Twitch does).
pub async fn add_headers(mut response: Response) -> Response {
    let reset = chrono::Utc::now().timestamp() + 60;
    let headers = response.headers_mut();
    headers.insert(LIMIT, HeaderValue::from(POINTS_PER_MINUTE));
    headers.insert(REMAINING, HeaderValue::from(POINTS_PER_MINUTE));
    headers.insert(RESET, HeaderValue::from(reset));
    response
}
