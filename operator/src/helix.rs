//! A small Helix client for what the operator does at Twitch: an app token
//! (client credentials), looking up the broadcaster's id, and listing,
//! creating and deleting EventSub subscriptions.
//!
//! App tokens are cached per client id and fetched again on a 401. A 429
//! becomes [`Error::RateLimited`] with Twitch's own reset time, so the
//! error policy waits exactly as long as needed. A 403 on create is not an
//! error: it is the normal state "broadcaster has not authorized", reported
//! as [`Created::Forbidden`] for the status conditions.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::metrics::Metrics;
use crate::{Error, Result};

/// How long one Twitch request may take.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Renew a cached app token this long before Twitch says it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(300);
/// Wait used for a 429 without a usable `Ratelimit-Reset` header.
const DEFAULT_RATE_WAIT: Duration = Duration::from_secs(30);

/// A Twitch application's credentials (from the user's Secret).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Client id.
    pub client_id: String,
    /// Client secret.
    pub client_secret: String,
}

impl std::fmt::Debug for Credentials {
    // Hand-written so the secret never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// Outcome of creating a subscription.
#[derive(Debug, Clone, PartialEq)]
pub enum Created {
    /// Twitch accepted it; the subscription object.
    Created(Value),
    /// It already exists (409): nothing to do.
    Exists,
    /// 403: the broadcaster has not authorized the app for this type.
    Forbidden(String),
}

/// Helix client shared by all reconciles.
#[derive(Clone)]
pub struct Helix {
    http: reqwest::Client,
    api: String,
    oauth: String,
    tokens: Arc<Mutex<HashMap<String, (String, Instant)>>>,
    metrics: Arc<Metrics>,
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Helix {
    /// A client for the Helix base `api` and OAuth base `oauth` (no trailing slashes).
    pub fn new(api: String, oauth: String, metrics: Arc<Metrics>) -> Helix {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .build()
            .expect("reqwest client builds");
        Helix {
            http,
            api,
            oauth,
            tokens: Arc::default(),
            metrics,
        }
    }

    /// An app access token, cached until shortly before it expires.
    async fn app_token(&self, creds: &Credentials) -> Result<String> {
        if let Some((token, until)) = self.tokens.lock().expect("lock").get(&creds.client_id) {
            if *until > Instant::now() {
                return Ok(token.clone());
            }
        }
        let response = self
            .http
            .post(format!("{}/token", self.oauth))
            .form(&[
                ("client_id", creds.client_id.as_str()),
                ("client_secret", creds.client_secret.as_str()),
                ("grant_type", "client_credentials"),
            ])
            .send()
            .await;
        self.metrics
            .helix_request("POST", response.as_ref().ok().map(|r| r.status().as_u16()));
        let response = response.map_err(Error::TwitchHttp)?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or_default();
        if !status.is_success() {
            return Err(Error::Twitch {
                what: "POST /oauth2/token (client credentials)".into(),
                status: status.as_u16(),
                message: message_of(&body),
            });
        }
        let token = body["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let ttl = Duration::from_secs(body["expires_in"].as_u64().unwrap_or(3600));
        let until = Instant::now() + ttl.saturating_sub(TOKEN_MARGIN);
        self.tokens
            .lock()
            .expect("lock")
            .insert(creds.client_id.clone(), (token.clone(), until));
        Ok(token)
    }

    /// One Helix request with the app token; a 401 refreshes the token once.
    async fn call(
        &self,
        creds: &Credentials,
        method: Method,
        path_and_query: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value)> {
        for attempt in 0..2 {
            let token = self.app_token(creds).await?;
            let mut request = self
                .http
                .request(method.clone(), format!("{}{}", self.api, path_and_query))
                .bearer_auth(&token)
                .header("Client-Id", &creds.client_id);
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = request.send().await;
            self.metrics.helix_request(
                method.as_str(),
                response.as_ref().ok().map(|r| r.status().as_u16()),
            );
            let response = response.map_err(Error::TwitchHttp)?;
            let status = response.status();
            if status == StatusCode::UNAUTHORIZED && attempt == 0 {
                self.tokens.lock().expect("lock").remove(&creds.client_id);
                continue;
            }
            if status == StatusCode::TOO_MANY_REQUESTS {
                let reset = response
                    .headers()
                    .get("ratelimit-reset")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok());
                let wait = reset
                    .map(|r| Duration::from_secs(r.saturating_sub(now_unix()).max(1)))
                    .unwrap_or(DEFAULT_RATE_WAIT);
                return Err(Error::RateLimited(wait));
            }
            let body: Value = response.json().await.unwrap_or_default();
            return Ok((status, body));
        }
        unreachable!("the loop returns on its second attempt")
    }

    fn fail(what: &str, status: StatusCode, body: &Value) -> Error {
        Error::Twitch {
            what: what.into(),
            status: status.as_u16(),
            message: message_of(body),
        }
    }

    /// The user id of `login`.
    pub async fn user_id(&self, creds: &Credentials, login: &str) -> Result<String> {
        let (status, body) = self
            .call(creds, Method::GET, &format!("/users?login={login}"), None)
            .await?;
        if !status.is_success() {
            return Err(Self::fail("GET /users", status, &body));
        }
        body["data"][0]["id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| Error::UnknownBroadcaster(login.into()))
    }

    /// Every subscription whose condition mentions `user_id`, all pages.
    pub async fn subscriptions(&self, creds: &Credentials, user_id: &str) -> Result<Vec<Value>> {
        let mut all = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut path = format!("/eventsub/subscriptions?user_id={user_id}");
            if let Some(cursor) = &after {
                path.push_str(&format!("&after={cursor}"));
            }
            let (status, body) = self.call(creds, Method::GET, &path, None).await?;
            if !status.is_success() {
                return Err(Self::fail("GET /eventsub/subscriptions", status, &body));
            }
            all.extend(body["data"].as_array().cloned().unwrap_or_default());
            match body["pagination"]["cursor"].as_str() {
                Some(cursor) if !cursor.is_empty() => after = Some(cursor.to_string()),
                _ => return Ok(all),
            }
        }
    }

    /// Creates one subscription from a full Helix request body.
    pub async fn create(&self, creds: &Credentials, request: &Value) -> Result<Created> {
        let (status, body) = self
            .call(
                creds,
                Method::POST,
                "/eventsub/subscriptions",
                Some(request),
            )
            .await?;
        match status {
            s if s.is_success() => Ok(Created::Created(body["data"][0].clone())),
            StatusCode::CONFLICT => Ok(Created::Exists),
            StatusCode::FORBIDDEN => Ok(Created::Forbidden(message_of(&body))),
            _ => Err(Self::fail("POST /eventsub/subscriptions", status, &body)),
        }
    }

    /// Deletes one subscription; one that is already gone counts as deleted.
    pub async fn delete(&self, creds: &Credentials, id: &str) -> Result<()> {
        let (status, body) = self
            .call(
                creds,
                Method::DELETE,
                &format!("/eventsub/subscriptions?id={id}"),
                None,
            )
            .await?;
        if status.is_success() || status == StatusCode::NOT_FOUND {
            Ok(())
        } else {
            Err(Self::fail("DELETE /eventsub/subscriptions", status, &body))
        }
    }

    /// Deletes a conduit (Twitch drops its subscriptions with it); one that
    /// is already gone counts as deleted.
    pub async fn delete_conduit(&self, creds: &Credentials, id: &str) -> Result<()> {
        let (status, body) = self
            .call(
                creds,
                Method::DELETE,
                &format!("/eventsub/conduits?id={id}"),
                None,
            )
            .await?;
        if status.is_success() || status == StatusCode::NOT_FOUND {
            Ok(())
        } else {
            Err(Self::fail("DELETE /eventsub/conduits", status, &body))
        }
    }
}

/// Twitch's error message from a JSON error body.
fn message_of(body: &Value) -> String {
    body["message"]
        .as_str()
        .or_else(|| body["error"].as_str())
        .unwrap_or("no message")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tau_fake_twitch::FakeTwitch;

    /// A fake that never POSTs verification challenges (callbacks here are not real hosts).
    async fn fake() -> FakeTwitch {
        FakeTwitch::start_with(tau_fake_twitch::Options {
            auto_verify_webhooks: false,
            ..Default::default()
        })
        .await
    }

    fn creds() -> Credentials {
        Credentials {
            client_id: FakeTwitch::CLIENT_ID.into(),
            client_secret: FakeTwitch::CLIENT_SECRET.into(),
        }
    }

    #[tokio::test]
    async fn token_lookup_create_list_delete_against_the_fake() {
        let twitch = fake().await;
        let helix = Helix::new(twitch.api_url(), twitch.auth_url(), Arc::default());
        let id = helix
            .user_id(&creds(), FakeTwitch::BROADCASTER_LOGIN)
            .await
            .unwrap();
        assert_eq!(id, FakeTwitch::BROADCASTER_ID);
        let request = serde_json::json!({"type": "stream.online", "version": "1",
            "condition": {"broadcaster_user_id": id},
            "transport": {"method": "webhook", "callback": "https://a.example.com/twitch/eventsub",
                          "secret": "0123456789abcdef"}});
        let Created::Created(sub) = helix.create(&creds(), &request).await.unwrap() else {
            panic!("not created");
        };
        assert_eq!(
            helix.create(&creds(), &request).await.unwrap(),
            Created::Exists
        );
        let listed = helix.subscriptions(&creds(), &id).await.unwrap();
        assert_eq!(listed.len(), 1);
        helix
            .delete(&creds(), sub["id"].as_str().unwrap())
            .await
            .unwrap();
        helix
            .delete(&creds(), sub["id"].as_str().unwrap())
            .await
            .unwrap();
        assert!(helix.subscriptions(&creds(), &id).await.unwrap().is_empty());
        twitch.set_authorized(false);
        let request = serde_json::json!({"type": "channel.follow", "version": "2",
            "condition": {"broadcaster_user_id": id, "moderator_user_id": id},
            "transport": {"method": "webhook", "callback": "https://a.example.com/twitch/eventsub",
                          "secret": "0123456789abcdef"}});
        assert!(matches!(
            helix.create(&creds(), &request).await.unwrap(),
            Created::Forbidden(_)
        ));
    }

    #[tokio::test]
    async fn bad_credentials_and_rate_limits_are_errors() {
        let twitch = fake().await;
        let helix = Helix::new(twitch.api_url(), twitch.auth_url(), Arc::default());
        let wrong = Credentials {
            client_id: FakeTwitch::CLIENT_ID.into(),
            client_secret: "wrong".into(),
        };
        assert!(matches!(
            helix.user_id(&wrong, "x").await,
            Err(Error::Twitch { status: 403, .. })
        ));
        twitch.set_ratelimit_remaining(0);
        assert!(matches!(
            helix.user_id(&creds(), "x").await,
            Err(Error::RateLimited(_))
        ));
    }
}
