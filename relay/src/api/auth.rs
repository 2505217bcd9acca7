//! The authenticated caller, as the route guard left it for the handler.
//!
//! Authentication (`Authorization: Token <token>`, DRF style as the
//! original TAU, or `Bearer <token>`) and the role check happen once, in
//! [`crate::access::guard`], driven by the route table; handlers only read
//! the result.

use axum::{extract::FromRequestParts, http::request::Parts};

use crate::{app::AppState, error::ApiError, store::ApiToken};

/// Proof that the request carried a valid TAU token of the route's role.
#[derive(Clone)]
pub struct Authenticated {
    /// The token's record.
    pub record: ApiToken,
    /// The token as presented (the caller's own; needed to rotate it).
    pub token: String,
}

impl std::fmt::Debug for Authenticated {
    // Hand-written so the token value never reaches a log through `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticated")
            .field("record", &self.record)
            .finish_non_exhaustive()
    }
}

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        // Absent only if a route needing a token was registered as public:
        // a bug, refused rather than served.
        parts
            .extensions
            .get::<Authenticated>()
            .cloned()
            .ok_or_else(|| {
                ApiError::Unauthorized("Authentication credentials were not provided.".into())
            })
    }
}
