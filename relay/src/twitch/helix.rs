//! Helix requests with the right token, `Client-Id`, and one
//! refresh-and-retry on 401.

use std::sync::Arc;

use reqwest::Method;
use serde_json::Value;

use super::{tokens::TokenManager, Result, TwitchError};
use crate::config::TwitchConfig;

/// Which token a request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// The broadcaster's user token.
    User,
    /// The application's token.
    App,
}

/// `base` (the Helix base URL) extended by `segments`, each added as one
/// path segment (the `url` crate percent-encodes what a segment may not
/// hold), with `query` as is.
pub fn helix_url(base: &url::Url, segments: &[String], query: Option<&str>) -> Result<url::Url> {
    let mut url = base.clone();
    url.path_segments_mut()
        .map_err(|()| TwitchError::Socket("TWITCH_API_URL cannot have a path".into()))?
        .pop_if_empty()
        .extend(segments);
    url.set_query(query.filter(|q| !q.is_empty()));
    Ok(url)
}

/// Helix client; cheap to clone.
#[derive(Clone)]
pub struct Helix {
    http: reqwest::Client,
    config: TwitchConfig,
    tokens: Arc<TokenManager>,
}

impl Helix {
    /// A client for `config.api_url`.
    pub fn new(http: reqwest::Client, config: TwitchConfig, tokens: Arc<TokenManager>) -> Helix {
        Helix {
            http,
            config,
            tokens,
        }
    }

    async fn token(&self, kind: TokenKind) -> Result<String> {
        match kind {
            TokenKind::User => self.tokens.user_token().await,
            TokenKind::App => self.tokens.app_token().await,
        }
    }

    /// Sends a request (`path_and_query` relative to the Helix base); on 401
    /// refreshes the token once and retries.
    pub async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<bytes::Bytes>,
        kind: TokenKind,
    ) -> Result<reqwest::Response> {
        let url = format!(
            "{}/{}",
            self.config.api_url.as_str().trim_end_matches('/'),
            path_and_query.trim_start_matches('/')
        );
        self.send_to(method, &url, body, kind).await
    }

    /// Sends a request to the Helix path made of `segments` (each already
    /// checked to be a plain name) with `query` as is: the URL cannot leave
    /// the Helix base, whatever the segments hold.
    pub async fn send_segments(
        &self,
        method: Method,
        segments: &[String],
        query: Option<&str>,
        body: Option<bytes::Bytes>,
        kind: TokenKind,
    ) -> Result<reqwest::Response> {
        let url = helix_url(&self.config.api_url, segments, query)?;
        self.send_to(method, url.as_str(), body, kind).await
    }

    async fn send_to(
        &self,
        method: Method,
        url: &str,
        body: Option<bytes::Bytes>,
        kind: TokenKind,
    ) -> Result<reqwest::Response> {
        let client_id = self
            .config
            .client_id
            .as_deref()
            .ok_or(TwitchError::NotConfigured)?;
        let mut token = self.token(kind).await?;
        for attempt in 0..2 {
            let mut request = self
                .http
                .request(method.clone(), url)
                .header("Client-Id", client_id)
                .bearer_auth(&token);
            if let Some(body) = &body {
                request = request
                    .header("Content-Type", "application/json")
                    .body(body.clone());
            }
            let response = request.send().await?;
            if response.status() != reqwest::StatusCode::UNAUTHORIZED || attempt == 1 {
                return Ok(response);
            }
            token = match kind {
                TokenKind::User => self.tokens.refresh_user(&token).await?,
                TokenKind::App => {
                    self.tokens.invalidate_app_token(&token).await;
                    self.tokens.app_token().await?
                }
            };
        }
        unreachable!("the loop returns on its second attempt")
    }

    /// Sends JSON and parses the JSON answer; non-2xx becomes an error.
    pub async fn json(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        kind: TokenKind,
    ) -> Result<(u16, Value)> {
        let bytes = body.map(|b| bytes::Bytes::from(b.to_string()));
        let response = self.send(method, path, bytes, kind).await?;
        let status = response.status().as_u16();
        let text = response.text().await?;
        let value: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if !(200..300).contains(&status) {
            let message = value["message"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| value.to_string());
            return Err(TwitchError::Status { status, message });
        }
        Ok((status, value))
    }

    /// Looks a user up by login: `(id, login, display name)`.
    pub async fn user_by_login(
        &self,
        login: &str,
        kind: TokenKind,
    ) -> Result<Option<(String, String, String)>> {
        let (_, value) = self
            .json(Method::GET, &format!("users?login={login}"), None, kind)
            .await?;
        Ok(value["data"].as_array().and_then(|d| d.first()).map(|u| {
            let s = |k: &str| u[k].as_str().unwrap_or_default().to_string();
            (s("id"), s("login"), s("display_name"))
        }))
    }

    /// Every EventSub subscription visible to `kind`'s token (all pages).
    pub async fn list_subscriptions(&self, kind: TokenKind) -> Result<Vec<Value>> {
        let mut all = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let path = match &after {
                Some(cursor) => format!("eventsub/subscriptions?after={cursor}"),
                None => "eventsub/subscriptions".to_string(),
            };
            let (_, value) = self.json(Method::GET, &path, None, kind).await?;
            all.extend(value["data"].as_array().cloned().unwrap_or_default());
            after = value["pagination"]["cursor"]
                .as_str()
                .filter(|c| !c.is_empty())
                .map(str::to_string);
            if after.is_none() {
                return Ok(all);
            }
        }
    }

    /// Creates a subscription; `Ok(None)` when Twitch says it already exists (409).
    pub async fn create_subscription(
        &self,
        body: &Value,
        kind: TokenKind,
    ) -> Result<Option<Value>> {
        match self
            .json(Method::POST, "eventsub/subscriptions", Some(body), kind)
            .await
        {
            Ok((_, value)) => Ok(value["data"].as_array().and_then(|d| d.first()).cloned()),
            Err(TwitchError::Status { status: 409, .. }) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Deletes a subscription; a 404 counts as done.
    pub async fn delete_subscription(&self, id: &str, kind: TokenKind) -> Result<()> {
        match self
            .json(
                Method::DELETE,
                &format!("eventsub/subscriptions?id={id}"),
                None,
                kind,
            )
            .await
        {
            Ok(_) | Err(TwitchError::Status { status: 404, .. }) => Ok(()),
            Err(err) => Err(err),
        }
    }
}
