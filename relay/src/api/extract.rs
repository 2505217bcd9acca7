//! Axum's extractors, answering a malformed request in TAU's error shape.
//!
//! Axum's own rejections are plain text (and 422 for a JSON body of the
//! wrong shape); the API promises `{"detail": ...}` with 400 (415 for a
//! body that is not JSON) on every route, and its OpenAPI document says so.
//! These wrappers are axum's extractors with [`ApiError`] as the rejection
//! (a body past the size limit: 413, also in that shape).

use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Request},
};

use crate::error::ApiError;

/// A JSON request body (`Content-Type: application/json`).
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct JsonBody<T>(pub T);

/// The raw request body (routes that read JSON themselves, or forward it).
#[derive(Debug)]
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Ok(RawBody(Bytes::from_request(req, state).await?))
    }
}

/// The query string, parsed into `T`.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct QueryParams<T>(pub T);

/// The route's path parameters, parsed into `T`.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct PathParam<T>(pub T);

#[cfg(test)]
mod tests {
    use axum::{
        body::Body,
        http::{Request, StatusCode},
        routing::post,
        Router,
    };
    use serde::Deserialize;
    use tower::ServiceExt;

    use super::*;

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Shape {
        name: String,
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Page {
        size: Option<u8>,
    }

    fn app() -> Router {
        Router::new().route(
            "/{n}",
            post(|_: PathParam<u8>, _: QueryParams<Page>, _: JsonBody<Shape>| async { "ok" }),
        )
    }

    async fn call(uri: &str, content_type: Option<&str>, body: &str) -> (StatusCode, String) {
        let mut req = Request::post(uri);
        if let Some(content_type) = content_type {
            req = req.header("content-type", content_type);
        }
        let response = app()
            .oneshot(req.body(Body::from(body.to_string())).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn malformed_requests_are_answered_in_taus_error_shape() {
        let json = Some("application/json");
        assert_eq!(call("/1", json, r#"{"name":"x"}"#).await.0, StatusCode::OK);
        for (uri, content_type, body, status) in [
            (
                "/1",
                None,
                r#"{"name":"x"}"#,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ),
            ("/1", json, "{", StatusCode::BAD_REQUEST),
            ("/1", json, r#"{"name":1}"#, StatusCode::BAD_REQUEST),
            (
                "/1?size=x",
                json,
                r#"{"name":"x"}"#,
                StatusCode::BAD_REQUEST,
            ),
            ("/300", json, r#"{"name":"x"}"#, StatusCode::BAD_REQUEST),
        ] {
            let (got, text) = call(uri, content_type, body).await;
            assert_eq!(got, status, "{uri} {body}: {text}");
            let detail: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert!(detail["detail"].is_string(), "{text}");
        }
    }
}
