//! The one middleware that enforces the route table.
//!
//! It runs on every matched route: finds the route's [`Need`], and for
//! `Token(role)` authenticates `Authorization: Token <token>` (or `Bearer`)
//! and checks the role, handing the caller to the handler as
//! [`Authenticated`]. A route without a rule is refused (fail closed): a
//! forgotten rule shows up as a 403 in tests, never as an open route. A
//! method without a rule on a path that has rules for others is answered
//! 405 with `Allow`, as any HTTP client expects (its handler never runs).

use std::sync::Arc;

use axum::{
    extract::{MatchedPath, Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::{
    needs,
    routes::{Need, Rules},
    Role,
};
use crate::{api::Authenticated, app::AppState, error::ApiError};

/// What the guard needs: the store (through the app) and the rules.
#[derive(Clone)]
pub struct GuardState {
    /// The application.
    pub app: AppState,
    /// The route table's rules.
    pub rules: Arc<Rules>,
}

/// The role a socket's first frame must prove (set by the guard for
/// [`Need::Socket`] routes, read by the socket handlers).
#[derive(Debug, Clone, Copy)]
pub struct SocketNeed(pub Role);

/// Checks the matched route's rule before its handler runs.
pub async fn guard(State(guard): State<GuardState>, mut req: Request, next: Next) -> Response {
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let need = guard.rules.need(req.method(), &path);
    match need {
        None if !guard.rules.methods(&path).is_empty() => {
            method_not_allowed(req.method(), &guard.rules.methods(&path))
        }
        None => {
            tracing::error!(method = %req.method(), %path, "route has no access rule: refused");
            ApiError::Forbidden("this route has no access rule".into()).into_response()
        }
        Some(Need::Public) => next.run(req).await,
        Some(Need::Socket(role)) => {
            req.extensions_mut().insert(SocketNeed(role));
            next.run(req).await
        }
        Some(Need::Token(role)) => {
            // Copied out: the request body is not `Sync`, so no reference
            // to the request may live across the store query.
            let header = req
                .headers()
                .get(axum::http::header::AUTHORIZATION)
                .map(|v| v.to_str().map(str::to_string).unwrap_or_default());
            match authenticate(&guard.app, header, role, path).await {
                Ok(caller) => {
                    req.extensions_mut().insert(caller);
                    next.run(req).await
                }
                Err(err) => err.into_response(),
            }
        }
    }
}

/// 405 in TAU's error shape, with the methods the path does take.
fn method_not_allowed(method: &axum::http::Method, allowed: &[axum::http::Method]) -> Response {
    let allow = allowed
        .iter()
        .map(|m| m.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let mut response =
        ApiError::MethodNotAllowed(format!("{method} is not allowed here; use {allow}"))
            .into_response();
    if let Ok(value) = axum::http::HeaderValue::from_str(&allow) {
        response
            .headers_mut()
            .insert(axum::http::header::ALLOW, value);
    }
    response
}

/// Checks the `Authorization` header's token and the token's role.
async fn authenticate(
    app: &AppState,
    header: Option<String>,
    need: Role,
    path: String,
) -> Result<Authenticated, ApiError> {
    let header = header.ok_or_else(|| {
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
    let record = app
        .store
        .authenticate(token)
        .await?
        .ok_or_else(|| ApiError::Unauthorized("Invalid token.".into()))?;
    if !record.role.covers(need) {
        tracing::info!(token = %record.name, role = %record.role, need = %need, %path, "request refused: role too weak");
        return Err(ApiError::Forbidden(needs(need, record.role)));
    }
    Ok(Authenticated {
        record,
        token: token.to_string(),
    })
}
