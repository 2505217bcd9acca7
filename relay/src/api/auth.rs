//! `Authorization: Token <token>` (DRF style, as the original TAU) or
//! `Bearer <token>`, checked against the hashed token table.

use axum::{extract::FromRequestParts, http::request::Parts};

use crate::{app::AppState, error::ApiError, store::ApiToken};

/// Proof that the request carried a valid TAU token.
#[derive(Debug)]
pub struct Authenticated {
    /// The token's record.
    pub record: ApiToken,
    /// The token as presented (needed to rotate it).
    pub token: String,
}

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                ApiError::Unauthorized("Authentication credentials were not provided.".into())
            })?;
        let token = header
            .strip_prefix("Token ")
            .or_else(|| header.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::Unauthorized("use the header `Authorization: Token <token>`".into())
            })?;
        match app.store.authenticate(token).await? {
            Some(record) => Ok(Authenticated {
                record,
                token: token.to_string(),
            }),
            None => Err(ApiError::Unauthorized("Invalid token.".into())),
        }
    }
}
