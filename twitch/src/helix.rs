//! The Helix calls TAU makes, typed: users, EventSub subscriptions and
//! conduits. Each names itself in errors (`GET /users`, ...) and decides
//! which statuses are outcomes rather than errors: 409 on create means the
//! subscription exists, 403 on create means the broadcaster has not
//! authorized the app (a normal state, shown in status, not retried as an
//! error), 404 on delete means already gone.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use url::form_urlencoded;

use crate::auth::Auth;
use crate::client::{status_error, Client};
use crate::error::Error;

/// A Twitch user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// User id.
    pub id: String,
    /// Login name.
    pub login: String,
    /// Display name.
    pub display_name: String,
}

/// Outcome of creating a subscription.
#[derive(Debug, Clone, PartialEq)]
pub enum Created {
    /// Twitch accepted it; the subscription object.
    Created(Value),
    /// It already exists (409): nothing to do.
    Exists,
    /// 403: the broadcaster has not authorized the app for this type;
    /// Twitch's message.
    Forbidden(String),
}

/// `key=value&...`, percent-encoded.
fn query(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

impl Client {
    /// A JSON call whose only good answer is 2xx.
    pub(crate) async fn ok<A: Auth>(
        &self,
        auth: &A,
        what: &str,
        method: Method,
        segments: &[&str],
        pairs: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Value, A::Error> {
        let url = self.helix_url(segments, Some(&query(pairs)))?;
        let (status, value) = self.call(auth, what, method, &url, body).await?;
        if !status.is_success() {
            return Err(status_error(what, status, &value).into());
        }
        Ok(value)
    }

    /// The user with `login`, if Twitch has one.
    pub async fn user_by_login<A: Auth>(
        &self,
        auth: &A,
        login: &str,
    ) -> Result<Option<User>, A::Error> {
        let body = self
            .ok(
                auth,
                "GET /users",
                Method::GET,
                &["users"],
                &[("login", login)],
                None,
            )
            .await?;
        Ok(body["data"].as_array().and_then(|d| d.first()).map(|u| {
            let s = |k: &str| u[k].as_str().unwrap_or_default().to_string();
            User {
                id: s("id"),
                login: s("login"),
                display_name: s("display_name"),
            }
        }))
    }

    /// The users with these logins that Twitch has (up to 100 per call;
    /// longer lists take several). Unknown logins are simply absent.
    pub async fn users_by_logins<A: Auth>(
        &self,
        auth: &A,
        logins: &[String],
    ) -> Result<Vec<User>, A::Error> {
        let mut users = Vec::new();
        for chunk in logins.chunks(100) {
            let pairs: Vec<(&str, &str)> = chunk.iter().map(|l| ("login", l.as_str())).collect();
            let body = self
                .ok(auth, "GET /users", Method::GET, &["users"], &pairs, None)
                .await?;
            users.extend(body["data"].as_array().into_iter().flatten().map(|u| {
                let s = |k: &str| u[k].as_str().unwrap_or_default().to_string();
                User {
                    id: s("id"),
                    login: s("login"),
                    display_name: s("display_name"),
                }
            }));
        }
        Ok(users)
    }

    /// Every EventSub subscription visible to `auth`'s token, all pages;
    /// only those whose condition names `user_id`, if given.
    pub async fn subscriptions<A: Auth>(
        &self,
        auth: &A,
        user_id: Option<&str>,
    ) -> Result<Vec<Value>, A::Error> {
        let mut all = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut pairs = Vec::new();
            if let Some(user_id) = user_id {
                pairs.push(("user_id", user_id));
            }
            if let Some(cursor) = &after {
                pairs.push(("after", cursor.as_str()));
            }
            let what = "GET /eventsub/subscriptions";
            let body = self
                .ok(
                    auth,
                    what,
                    Method::GET,
                    &["eventsub", "subscriptions"],
                    &pairs,
                    None,
                )
                .await?;
            all.extend(body["data"].as_array().cloned().unwrap_or_default());
            after = body["pagination"]["cursor"]
                .as_str()
                .filter(|c| !c.is_empty())
                .map(str::to_string);
            if after.is_none() {
                return Ok(all);
            }
        }
    }

    /// Creates one subscription from a full Helix request body.
    pub async fn create_subscription<A: Auth>(
        &self,
        auth: &A,
        request: &Value,
    ) -> Result<Created, A::Error> {
        let what = "POST /eventsub/subscriptions";
        let url = self.helix_url(&["eventsub", "subscriptions"], None)?;
        let (status, body) = self
            .call(auth, what, Method::POST, &url, Some(request))
            .await?;
        match status {
            s if s.is_success() => Ok(Created::Created(body["data"][0].clone())),
            StatusCode::CONFLICT => Ok(Created::Exists),
            StatusCode::FORBIDDEN => {
                let Error::Status { message, .. } = status_error(what, status, &body) else {
                    unreachable!("status_error makes a Status")
                };
                Ok(Created::Forbidden(message))
            }
            _ => Err(status_error(what, status, &body).into()),
        }
    }

    /// Deletes one subscription; one already gone counts as deleted.
    pub async fn delete_subscription<A: Auth>(&self, auth: &A, id: &str) -> Result<(), A::Error> {
        self.delete(auth, "DELETE /eventsub/subscriptions", "subscriptions", id)
            .await
    }

    /// Deletes a conduit (Twitch drops its subscriptions with it); one
    /// already gone counts as deleted.
    pub async fn delete_conduit<A: Auth>(&self, auth: &A, id: &str) -> Result<(), A::Error> {
        self.delete(auth, "DELETE /eventsub/conduits", "conduits", id)
            .await
    }

    async fn delete<A: Auth>(
        &self,
        auth: &A,
        what: &str,
        collection: &str,
        id: &str,
    ) -> Result<(), A::Error> {
        let url = self.helix_url(&["eventsub", collection], Some(&query(&[("id", id)])))?;
        let (status, body) = self.call(auth, what, Method::DELETE, &url, None).await?;
        if status.is_success() || status == StatusCode::NOT_FOUND {
            Ok(())
        } else {
            Err(status_error(what, status, &body).into())
        }
    }

    /// The application's conduits (objects with `id` and `shard_count`).
    pub async fn conduits<A: Auth>(&self, auth: &A) -> Result<Vec<Value>, A::Error> {
        let what = "GET /eventsub/conduits";
        let body = self
            .ok(
                auth,
                what,
                Method::GET,
                &["eventsub", "conduits"],
                &[],
                None,
            )
            .await?;
        Ok(body["data"].as_array().cloned().unwrap_or_default())
    }

    /// Creates a conduit with `shard_count` shards; returns its id.
    pub async fn create_conduit<A: Auth>(
        &self,
        auth: &A,
        shard_count: usize,
    ) -> Result<String, A::Error> {
        let what = "POST /eventsub/conduits";
        let request = json!({"shard_count": shard_count});
        let body = self
            .ok(
                auth,
                what,
                Method::POST,
                &["eventsub", "conduits"],
                &[],
                Some(&request),
            )
            .await?;
        body["data"][0]["id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| {
                Error::BadResponse {
                    what: what.into(),
                    reason: "no conduit id".into(),
                }
                .into()
            })
    }

    /// Sets a conduit's shard count.
    pub async fn resize_conduit<A: Auth>(
        &self,
        auth: &A,
        id: &str,
        shard_count: usize,
    ) -> Result<(), A::Error> {
        let what = "PATCH /eventsub/conduits";
        let request = json!({"id": id, "shard_count": shard_count});
        self.ok(
            auth,
            what,
            Method::PATCH,
            &["eventsub", "conduits"],
            &[],
            Some(&request),
        )
        .await?;
        Ok(())
    }

    /// Points shard `shard` of conduit `conduit_id` at `transport`; the
    /// errors Twitch lists per shard (empty when it took).
    pub async fn assign_shard<A: Auth>(
        &self,
        auth: &A,
        conduit_id: &str,
        shard: usize,
        transport: Value,
    ) -> Result<Vec<Value>, A::Error> {
        let what = "PATCH /eventsub/conduits/shards";
        let request = json!({
            "conduit_id": conduit_id,
            "shards": [{"id": shard.to_string(), "transport": transport}],
        });
        let segments = ["eventsub", "conduits", "shards"];
        let body = self
            .ok(auth, what, Method::PATCH, &segments, &[], Some(&request))
            .await?;
        Ok(body["errors"].as_array().cloned().unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{AppAuth, AppTokens, Credentials};
    use tau_fake_twitch::FakeTwitch;

    /// A fake that never POSTs verification challenges (callbacks here are not real hosts).
    async fn fake() -> FakeTwitch {
        FakeTwitch::start_with(tau_fake_twitch::Options {
            auto_verify_webhooks: false,
            ..Default::default()
        })
        .await
    }

    fn client(twitch: &FakeTwitch) -> Client {
        Client::new(
            twitch.api_url().parse().unwrap(),
            twitch.auth_url().parse().unwrap(),
        )
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
        let client = client(&twitch);
        let (tokens, creds) = (AppTokens::default(), creds());
        let auth = AppAuth::new(&tokens, &creds);
        let user = client
            .user_by_login(&auth, FakeTwitch::BROADCASTER_LOGIN)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(user.id, FakeTwitch::BROADCASTER_ID);
        let id = user.id;
        let request = json!({"type": "stream.online", "version": "1",
            "condition": {"broadcaster_user_id": id},
            "transport": {"method": "webhook", "callback": "https://a.example.com/twitch/eventsub",
                          "secret": "0123456789abcdef"}});
        let Created::Created(sub) = client.create_subscription(&auth, &request).await.unwrap()
        else {
            panic!("not created");
        };
        assert_eq!(
            client.create_subscription(&auth, &request).await.unwrap(),
            Created::Exists
        );
        let listed = client.subscriptions(&auth, Some(&id)).await.unwrap();
        assert_eq!(listed.len(), 1);
        let sub_id = sub["id"].as_str().unwrap();
        client.delete_subscription(&auth, sub_id).await.unwrap();
        client.delete_subscription(&auth, sub_id).await.unwrap();
        assert!(client
            .subscriptions(&auth, Some(&id))
            .await
            .unwrap()
            .is_empty());
        twitch.set_authorized(false);
        let request = json!({"type": "channel.follow", "version": "2",
            "condition": {"broadcaster_user_id": id, "moderator_user_id": id},
            "transport": {"method": "webhook", "callback": "https://a.example.com/twitch/eventsub",
                          "secret": "0123456789abcdef"}});
        assert!(matches!(
            client.create_subscription(&auth, &request).await.unwrap(),
            Created::Forbidden(_)
        ));
    }

    #[tokio::test]
    async fn bad_credentials_and_rate_limits_are_errors() {
        let twitch = fake().await;
        let client = client(&twitch);
        let tokens = AppTokens::default();
        let wrong = Credentials {
            client_id: FakeTwitch::CLIENT_ID.into(),
            client_secret: "wrong".into(),
        };
        assert!(matches!(
            client
                .user_by_login(&AppAuth::new(&tokens, &wrong), "x")
                .await,
            Err(Error::Status { status: 403, .. })
        ));
        twitch.set_ratelimit_remaining(0);
        let creds = creds();
        assert!(matches!(
            client
                .user_by_login(&AppAuth::new(&tokens, &creds), "x")
                .await,
            Err(Error::RateLimited { .. })
        ));
    }

    #[tokio::test]
    async fn requests_are_observed_and_a_401_renews_the_app_token_once() {
        let twitch = fake().await;
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        let client = client(&twitch).observed(std::sync::Arc::new(move |m, s| {
            log.lock().unwrap().push((m.to_string(), s));
        }));
        let (tokens, creds) = (AppTokens::default(), creds());
        let auth = AppAuth::new(&tokens, &creds);
        client.conduits(&auth).await.unwrap();
        // A token Twitch no longer accepts: the client fetches a new one.
        tokens
            .slot(&creds.client_id)
            .lock()
            .await
            .as_mut()
            .unwrap()
            .token = "stale".into();
        client.conduits(&auth).await.unwrap();
        let seen = seen.lock().unwrap().clone();
        let statuses: Vec<_> = seen.iter().map(|(m, s)| format!("{m} {s:?}")).collect();
        assert_eq!(
            statuses,
            [
                "POST Some(200)",
                "GET Some(200)",
                "GET Some(401)",
                "POST Some(200)",
                "GET Some(200)"
            ]
        );
    }
}
