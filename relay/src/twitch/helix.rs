//! Helix requests with the right token: the shared [`tau_twitch::Client`]
//! with the relay's tokens behind [`tau_twitch::Auth`] (the broadcaster's
//! user token, refreshed on 401, or the app token, fetched again on 401).

use std::sync::Arc;

use reqwest::Method;
use serde_json::Value;
use tau_twitch::Created;

use super::{tokens::TokenManager, Result, TwitchError};

/// Which token a request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// The broadcaster's user token.
    User,
    /// The application's token.
    App,
}

/// `base` (the Helix base URL) extended by `segments`, each added as one
/// path segment (percent-encoded), with `query` as is.
pub fn helix_url(base: &url::Url, segments: &[String], query: Option<&str>) -> Result<url::Url> {
    Ok(tau_twitch::client::join(base, segments, query)?)
}

/// The relay's tokens of one kind, as the shared client asks for them.
struct Token<'a> {
    /// Where tokens come from.
    tokens: &'a TokenManager,
    /// Which one.
    kind: TokenKind,
}

impl tau_twitch::Auth for Token<'_> {
    type Error = TwitchError;

    fn client_id(&self) -> Result<String> {
        self.tokens.client_id()
    }

    async fn token(&self, _: &tau_twitch::Client) -> Result<String> {
        match self.kind {
            TokenKind::User => self.tokens.user_token().await,
            TokenKind::App => self.tokens.app_token().await,
        }
    }

    async fn renew(&self, _: &tau_twitch::Client, rejected: &str) -> Result<String> {
        match self.kind {
            TokenKind::User => self.tokens.refresh_user(rejected).await,
            TokenKind::App => {
                self.tokens.invalidate_app_token(rejected).await;
                self.tokens.app_token().await
            }
        }
    }
}

/// The app token for one chat message sent for the Chat Bot badge: a 401
/// is Twitch's verdict on the sender's or the channel's grants (the app
/// token is renewed ahead of its expiry), so it is not fetched anew; the
/// caller falls back to the sender's user token.
struct BadgeToken<'a> {
    /// Where the app token comes from.
    tokens: &'a TokenManager,
}

impl tau_twitch::Auth for BadgeToken<'_> {
    type Error = TwitchError;

    fn client_id(&self) -> Result<String> {
        self.tokens.client_id()
    }

    async fn token(&self, _: &tau_twitch::Client) -> Result<String> {
        self.tokens.app_token().await
    }

    async fn renew(&self, _: &tau_twitch::Client, _rejected: &str) -> Result<String> {
        Err(TwitchError::Status {
            status: 401,
            message: "Twitch refused the app token for this chat message".into(),
        })
    }
}

/// Helix client; cheap to clone.
#[derive(Clone)]
pub struct Helix {
    /// The shared Twitch client.
    client: tau_twitch::Client,
    /// The relay's tokens.
    tokens: Arc<TokenManager>,
}

impl Helix {
    /// A client over `client` with `tokens`.
    pub fn new(client: tau_twitch::Client, tokens: Arc<TokenManager>) -> Helix {
        Helix { client, tokens }
    }

    fn auth(&self, kind: TokenKind) -> Token<'_> {
        Token {
            tokens: &self.tokens,
            kind,
        }
    }

    /// Sends a request to the Helix path made of `segments` (each already
    /// checked to be a plain name) with `query` as is: the URL cannot leave
    /// the Helix base, whatever the segments hold. The answer comes back as
    /// Twitch gave it (a 401 is retried once with a renewed token).
    pub async fn send_segments(
        &self,
        method: Method,
        segments: &[String],
        query: Option<&str>,
        body: Option<bytes::Bytes>,
        kind: TokenKind,
    ) -> Result<reqwest::Response> {
        let url = self.client.helix_url(segments, query)?;
        self.client
            .send_helix(&self.auth(kind), method, &url, body)
            .await
    }

    /// Looks a user up by login.
    pub async fn user_by_login(
        &self,
        login: &str,
        kind: TokenKind,
    ) -> Result<Option<tau_twitch::User>> {
        self.client.user_by_login(&self.auth(kind), login).await
    }

    /// Sends a chat message with the broadcaster's user token (a 401 is
    /// retried once with a refreshed token, like every user-token call).
    pub async fn send_chat_message(
        &self,
        broadcaster_id: &str,
        sender_id: &str,
        message: &str,
        reply_parent_message_id: Option<&str>,
    ) -> Result<tau_twitch::ChatSent> {
        self.client
            .send_chat_message(
                &self.auth(TokenKind::User),
                broadcaster_id,
                sender_id,
                message,
                reply_parent_message_id,
            )
            .await
    }

    /// Sends a chat message with the app token (Twitch then shows the Chat
    /// Bot badge); a 401 is returned, not retried with a new app token.
    pub async fn send_chat_message_with_badge(
        &self,
        broadcaster_id: &str,
        sender_id: &str,
        message: &str,
        reply_parent_message_id: Option<&str>,
    ) -> Result<tau_twitch::ChatSent> {
        let auth = BadgeToken {
            tokens: &self.tokens,
        };
        self.client
            .send_chat_message(
                &auth,
                broadcaster_id,
                sender_id,
                message,
                reply_parent_message_id,
            )
            .await
    }

    /// Every EventSub subscription visible to `kind`'s token (all pages).
    pub async fn list_subscriptions(&self, kind: TokenKind) -> Result<Vec<Value>> {
        self.client.subscriptions(&self.auth(kind), None).await
    }

    /// Creates a subscription; `Ok(None)` when Twitch says it already
    /// exists (409). A 403 (not authorized) is an error here: the relay
    /// shows it per subscription.
    pub async fn create_subscription(
        &self,
        body: &Value,
        kind: TokenKind,
    ) -> Result<Option<Value>> {
        match self
            .client
            .create_subscription(&self.auth(kind), body)
            .await?
        {
            Created::Created(sub) => Ok(Some(sub)),
            Created::Exists => Ok(None),
            Created::Forbidden(message) => Err(TwitchError::Status {
                status: 403,
                message,
            }),
        }
    }

    /// Deletes a subscription; a 404 counts as done.
    pub async fn delete_subscription(&self, id: &str, kind: TokenKind) -> Result<()> {
        self.client.delete_subscription(&self.auth(kind), id).await
    }

    /// The application's conduits.
    pub async fn conduits(&self) -> Result<Vec<Value>> {
        self.client.conduits(&self.auth(TokenKind::App)).await
    }

    /// Creates a conduit with `shard_count` shards; its id.
    pub async fn create_conduit(&self, shard_count: usize) -> Result<String> {
        self.client
            .create_conduit(&self.auth(TokenKind::App), shard_count)
            .await
    }

    /// Sets a conduit's shard count.
    pub async fn resize_conduit(&self, id: &str, shard_count: usize) -> Result<()> {
        self.client
            .resize_conduit(&self.auth(TokenKind::App), id, shard_count)
            .await
    }

    /// Points a conduit shard at `transport`; Twitch's per-shard errors.
    pub async fn assign_shard(
        &self,
        conduit_id: &str,
        shard: usize,
        transport: Value,
    ) -> Result<Vec<Value>> {
        self.client
            .assign_shard(&self.auth(TokenKind::App), conduit_id, shard, transport)
            .await
    }
}
