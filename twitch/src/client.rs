//! The HTTP side of talking to Twitch: where requests go, what they carry,
//! and how answers are classified.
//!
//! - URLs: Helix paths are built from segments, each percent-encoded by the
//!   `url` crate, so a caller-supplied segment can never leave the Helix
//!   base; queries are built with `query_pairs`.
//! - Every Helix request carries `Client-Id` and a bearer token from an
//!   [`Auth`]; a 401 renews the token once and retries.
//! - A 429 becomes [`Error::RateLimited`] with the wait Twitch's
//!   `Ratelimit-Reset` header names, so callers wait exactly that long.
//! - An [`Observer`] (the operator's metrics) hears of every request,
//!   Helix and OAuth, with its method and status.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::Value;
use url::Url;

use crate::auth::Auth;
use crate::error::{message_of, Error, Result};

/// How long one Twitch request may take (when the caller brings no client).
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// Wait used for a 429 without a usable `Ratelimit-Reset` header.
const DEFAULT_RATE_WAIT: Duration = Duration::from_secs(30);

/// Told of every request sent: its method and the status Twitch answered
/// (`None` when no answer came).
pub type Observer = Arc<dyn Fn(&Method, Option<u16>) + Send + Sync>;

/// Twitch's Helix and OAuth servers, with one HTTP client; cheap to clone.
#[derive(Clone)]
pub struct Client {
    /// The HTTP client (timeouts, user agent).
    http: reqwest::Client,
    /// Helix base, e.g. `https://api.twitch.tv/helix`.
    api: Url,
    /// OAuth base, e.g. `https://id.twitch.tv/oauth2`.
    auth: Url,
    /// Hears of every request, if set.
    observer: Option<Observer>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("api", &self.api.as_str())
            .field("auth", &self.auth.as_str())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for the Helix base `api` and the OAuth base `auth`, with a
    /// [`TIMEOUT`] per request.
    pub fn new(api: Url, auth: Url) -> Client {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .build()
            .expect("reqwest client builds");
        Client::with_http(http, api, auth)
    }

    /// The same with the caller's HTTP client (its own timeout and user agent).
    pub fn with_http(http: reqwest::Client, api: Url, auth: Url) -> Client {
        Client {
            http,
            api,
            auth,
            observer: None,
        }
    }

    /// Tells `observer` of every request from now on.
    pub fn observed(mut self, observer: Observer) -> Client {
        self.observer = Some(observer);
        self
    }

    /// The Helix base URL.
    pub fn api_url(&self) -> &Url {
        &self.api
    }

    /// The OAuth base URL.
    pub fn auth_url(&self) -> &Url {
        &self.auth
    }

    /// The Helix URL of `segments` (each one path segment, percent-encoded)
    /// with `query` as given.
    pub fn helix_url<S: AsRef<str>>(&self, segments: &[S], query: Option<&str>) -> Result<Url> {
        join(&self.api, segments, query)
    }

    /// The OAuth server URL of `segment` (`token`, `validate`, ...).
    pub fn auth_endpoint(&self, segment: &str) -> Result<Url> {
        join(&self.auth, &[segment], None)
    }

    /// Sends `request`, telling the observer.
    pub(crate) async fn send(&self, method: &Method, request: RequestBuilder) -> Result<Response> {
        let response = request.send().await;
        if let Some(observe) = &self.observer {
            observe(method, response.as_ref().ok().map(|r| r.status().as_u16()));
        }
        Ok(response?)
    }

    /// The underlying HTTP client (for the OAuth calls).
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// One Helix request with `auth`'s token; a 401 renews the token once
    /// and retries. The answer is returned as is, whatever its status (the
    /// relay's Helix passthrough forwards it).
    pub async fn send_helix<A: Auth>(
        &self,
        auth: &A,
        method: Method,
        url: &Url,
        body: Option<Bytes>,
    ) -> Result<Response, A::Error> {
        let client_id = auth.client_id()?;
        let mut token = auth.token(self).await?;
        for attempt in 0..2 {
            let mut request = self
                .http
                .request(method.clone(), url.clone())
                .header("Client-Id", client_id.as_str())
                .bearer_auth(&token);
            if let Some(body) = &body {
                request = request
                    .header("Content-Type", "application/json")
                    .body(body.clone());
            }
            let response = self.send(&method, request).await?;
            if response.status() != StatusCode::UNAUTHORIZED || attempt == 1 {
                return Ok(response);
            }
            token = auth.renew(self, &token).await?;
        }
        unreachable!("the loop returns on its second attempt")
    }

    /// One Helix JSON call: the status and the parsed body (`Null` when
    /// empty). A 429 of an empty bucket is [`Error::RateLimited`]; other
    /// statuses are the caller's to judge. `what` names the call in errors.
    pub(crate) async fn call<A: Auth>(
        &self,
        auth: &A,
        what: &str,
        method: Method,
        url: &Url,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value), A::Error> {
        let bytes = body.map(|b| Bytes::from(b.to_string()));
        let response = self.send_helix(auth, method, url, bytes).await?;
        let status = response.status();
        // A 429 with points left in the bucket is not the rate limit but a
        // limit of what was asked (a subscription past `max_total_cost`):
        // the caller judges it, with Twitch's message.
        let points_left = response
            .headers()
            .get("ratelimit-remaining")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|n| n > 0);
        if status == StatusCode::TOO_MANY_REQUESTS && !points_left {
            let wait = rate_limit_wait(response.headers().get("ratelimit-reset"));
            return Err(Error::RateLimited {
                what: what.into(),
                wait,
            }
            .into());
        }
        let text = response.text().await.map_err(Error::from)?;
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok((status, value))
    }
}

/// The error for an unexpected status `status` with body `body`.
pub(crate) fn status_error(what: &str, status: StatusCode, body: &Value) -> Error {
    let message = match body {
        Value::String(text) => message_of(text),
        other => message_of(&other.to_string()),
    };
    Error::Status {
        what: what.into(),
        status: status.as_u16(),
        message,
    }
}

/// Bytes a path segment keeps as they are: RFC 3986's unreserved
/// characters. Everything else is percent-encoded by [`join`], `%` too.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `base` extended by `segments`, each one literal path segment, with
/// `query` as given: the URL cannot leave `base`, whatever the segments
/// hold. Segments are percent-encoded here (the `url` crate's own segment
/// setter silently drops tabs and newlines, and skips `..`), so each
/// decodes back to exactly itself; `.` and `..` are refused, as no URL can
/// carry them as names.
pub fn join<S: AsRef<str>>(base: &Url, segments: &[S], query: Option<&str>) -> Result<Url> {
    if base.cannot_be_a_base() {
        return Err(Error::BadBaseUrl(base.to_string()));
    }
    let mut path = base.path().to_string();
    if path.ends_with('/') {
        path.pop();
    }
    for segment in segments {
        let segment = segment.as_ref();
        if segment == "." || segment == ".." {
            return Err(Error::BadSegment(segment.to_string()));
        }
        path.push('/');
        path.extend(utf8_percent_encode(segment, SEGMENT));
    }
    let mut url = base.clone();
    url.set_path(&path);
    url.set_query(query.filter(|q| !q.is_empty()));
    Ok(url)
}

/// How long until `Ratelimit-Reset` (a Unix time), at least a second.
fn rate_limit_wait(reset: Option<&reqwest::header::HeaderValue>) -> Duration {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    reset
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .map(|r| Duration::from_secs(r.saturating_sub(now).max(1)))
        .unwrap_or(DEFAULT_RATE_WAIT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> Client {
        Client::new(
            Url::parse("https://api.twitch.tv/helix").unwrap(),
            Url::parse("https://id.twitch.tv/oauth2/").unwrap(),
        )
    }

    #[test]
    fn segments_are_encoded_and_never_leave_the_base() {
        let c = client();
        let url = c.helix_url(&["users"], Some("login=a")).unwrap();
        assert_eq!(url.as_str(), "https://api.twitch.tv/helix/users?login=a");
        let url = c
            .helix_url(&["a/b", "c?d", "%2e%2e", "x\ny", ""], None)
            .unwrap();
        assert_eq!(url.path(), "/helix/a%2Fb/c%3Fd/%252e%252e/x%0Ay/", "{url}");
        assert_eq!(url.query(), None);
        assert_eq!(
            Url::parse(url.as_str()).unwrap(),
            url,
            "reads back as built"
        );
        // Caught by the helix_path fuzz target: `url`'s segment setter
        // dropped the newline of `x\ny` and skipped `..` without a word.
        for dots in [".", ".."] {
            assert!(matches!(
                c.helix_url(&["users", dots], None),
                Err(Error::BadSegment(_))
            ));
        }
        assert_eq!(
            c.auth_endpoint("token").unwrap().as_str(),
            "https://id.twitch.tv/oauth2/token"
        );
    }

    #[test]
    fn rate_limit_waits_follow_the_reset_header() {
        assert_eq!(rate_limit_wait(None), DEFAULT_RATE_WAIT);
        let past = reqwest::header::HeaderValue::from_static("1");
        assert_eq!(rate_limit_wait(Some(&past)), Duration::from_secs(1));
        let soon = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 20;
        let soon = reqwest::header::HeaderValue::from_str(&soon.to_string()).unwrap();
        let wait = rate_limit_wait(Some(&soon));
        assert!((19..=20).contains(&wait.as_secs()), "{wait:?}");
    }
}
