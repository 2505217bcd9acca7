//! Calls to Twitch's OAuth server (`id.twitch.tv/oauth2`): tokens by client
//! credentials, refresh and authorization code, validation, revocation.
//!
//! Only the HTTP calls live here; where user tokens are kept (the relay's
//! encrypted store) and when they are refreshed is the caller's business.
//! Every non-2xx answer is [`Error::Status`] (a 4xx is Twitch's verdict on
//! the credentials or token; callers tell it from a network failure).

use reqwest::{Method, StatusCode};
use serde::Deserialize;

use crate::auth::Credentials;
use crate::client::Client;
use crate::error::{message_of, Error, Result};

/// Twitch's answer to a token request.
#[derive(Debug, Clone, Deserialize)]
pub struct TokenResponse {
    /// The access token.
    pub access_token: String,
    /// The refresh token (user tokens only; Twitch may rotate it).
    pub refresh_token: Option<String>,
    /// Seconds until the access token expires.
    pub expires_in: Option<i64>,
    /// Granted scopes (user tokens).
    #[serde(default)]
    pub scope: Vec<String>,
}

/// Twitch's answer to `GET /oauth2/validate`.
#[derive(Debug, Clone, Deserialize)]
pub struct Validation {
    /// The token's user id (absent for app tokens).
    pub user_id: Option<String>,
    /// The token's user login.
    pub login: Option<String>,
    /// Granted scopes.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Seconds until the token expires.
    pub expires_in: Option<i64>,
}

impl Client {
    /// `POST /token` with `form`; `what` names the grant in errors.
    async fn token_request(&self, what: &str, form: &[(&str, &str)]) -> Result<TokenResponse> {
        let url = self.auth_endpoint("token")?;
        let request = self.http().post(url).form(form);
        let response = self.send(&Method::POST, request).await?;
        read(what, response).await
    }

    /// An app access token by client credentials.
    pub async fn client_credentials(&self, creds: &Credentials) -> Result<TokenResponse> {
        self.token_request(
            "POST /oauth2/token (client credentials)",
            &[
                ("client_id", &creds.client_id),
                ("client_secret", &creds.client_secret),
                ("grant_type", "client_credentials"),
            ],
        )
        .await
    }

    /// New user tokens for `refresh_token`.
    pub async fn refresh(&self, creds: &Credentials, refresh_token: &str) -> Result<TokenResponse> {
        self.token_request(
            "POST /oauth2/token (refresh)",
            &[
                ("client_id", &creds.client_id),
                ("client_secret", &creds.client_secret),
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
        )
        .await
    }

    /// User tokens for an authorization `code` given to `redirect_uri`.
    pub async fn exchange_code(
        &self,
        creds: &Credentials,
        code: &str,
        redirect_uri: &str,
    ) -> Result<TokenResponse> {
        self.token_request(
            "POST /oauth2/token (authorization code)",
            &[
                ("client_id", &creds.client_id),
                ("client_secret", &creds.client_secret),
                ("code", code),
                ("grant_type", "authorization_code"),
                ("redirect_uri", redirect_uri),
            ],
        )
        .await
    }

    /// What Twitch knows of `access_token` (a 401 means it is no longer valid).
    pub async fn validate(&self, access_token: &str) -> Result<Validation> {
        let url = self.auth_endpoint("validate")?;
        let request = self
            .http()
            .get(url)
            .header("Authorization", format!("OAuth {access_token}"));
        let response = self.send(&Method::GET, request).await?;
        read("GET /oauth2/validate", response).await
    }

    /// Revokes `access_token` of `client_id`.
    pub async fn revoke(&self, client_id: &str, access_token: &str) -> Result<()> {
        let url = self.auth_endpoint("revoke")?;
        let request = self
            .http()
            .post(url)
            .form(&[("client_id", client_id), ("token", access_token)]);
        let response = self.send(&Method::POST, request).await?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let text = response.text().await.unwrap_or_default();
        Err(status_error("POST /oauth2/revoke", status, &text))
    }
}

fn status_error(what: &str, status: StatusCode, text: &str) -> Error {
    Error::Status {
        what: what.into(),
        status: status.as_u16(),
        message: message_of(text),
    }
}

/// A 2xx answer's JSON, or the error for the status.
async fn read<T: serde::de::DeserializeOwned>(
    what: &str,
    response: reqwest::Response,
) -> Result<T> {
    let status = response.status();
    let text = response.text().await?;
    if !status.is_success() {
        return Err(status_error(what, status, &text));
    }
    serde_json::from_str(&text).map_err(|e| Error::BadResponse {
        what: what.into(),
        reason: e.to_string(),
    })
}
