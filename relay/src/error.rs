//! The HTTP layer's one error type.
//!
//! Bodies are `{"detail": "..."}`, the shape the original TAU (Django REST
//! framework) used, so existing clients read our errors too. Internal errors
//! are logged with their cause and answered with a generic message.

use axum::{
    extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection},
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use serde::Serialize;
use utoipa::ToSchema;

use crate::store::StoreError;

/// The body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong, in words (generic for internal errors).
    #[schema(example = "Invalid token.")]
    pub detail: String,
}

/// Errors a route can answer with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is wrong; the message says how.
    #[error("{0}")]
    BadRequest(String),
    /// 401: missing or invalid TAU token.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: authenticated but refused (role too weak, bad webhook signature).
    #[error("{0}")]
    Forbidden(String),
    /// 404: no such thing.
    #[error("{0}")]
    NotFound(String),
    /// 409: the request conflicts with what exists (e.g. a taken name).
    #[error("{0}")]
    Conflict(String),
    /// 405: the method is not offered here.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// 413: the body is larger than the route accepts.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 415: the body is not of a media type the route reads.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 503: a dependency is down; retrying later will work.
    #[error("{0}")]
    Unavailable(String),
    /// 500: a bug or an unexpected failure (details only in the log).
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> ApiError {
        match err {
            StoreError::Duplicate(_) => ApiError::Conflict(err.to_string()),
            err => ApiError::Internal(err.into()),
        }
    }
}

/// A body that is not JSON (or not the route's shape) is the caller's
/// mistake: 415 without a JSON content type, else 400 with serde's reason.
impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> ApiError {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedMediaType(
                "send the body as JSON with `Content-Type: application/json`".into(),
            ),
            JsonRejection::BytesRejection(body) => body.into(),
            other => ApiError::BadRequest(other.body_text()),
        }
    }
}

/// A body that could not be read: 413 past the size limit, else 400.
impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> ApiError {
        match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge(rejection.body_text()),
            _ => ApiError::BadRequest(rejection.body_text()),
        }
    }
}

/// A query string that does not parse is answered in TAU's error shape.
impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> ApiError {
        ApiError::BadRequest(rejection.body_text())
    }
}

/// So is a path segment that does not decode.
impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> ApiError {
        ApiError::BadRequest(rejection.body_text())
    }
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(cause) = &self {
            tracing::error!(error = format!("{cause:#}"), "request failed");
        }
        let status = self.status();
        let mut response = (
            status,
            Json(ErrorBody {
                detail: self.to_string(),
            }),
        )
            .into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert("retry-after", axum::http::HeaderValue::from_static("5"));
        }
        response
    }
}
