//! Token endpoints: the original TAU's `tau-user-token` pair, plus token
//! management for the dashboard. Tokens are shown only when created.

use axum::{
    extract::{Path, State},
    http::StatusCode,
    Json,
};
use serde::Deserialize;
use serde_json::{json, Value};

use super::Authenticated;
use crate::{app::AppState, error::ApiError};

/// `GET /api/v1/tau-user-token/`: the caller's own token (it already has it).
pub async fn current(auth: Authenticated) -> Json<Value> {
    Json(json!({ "token": auth.token }))
}

/// `POST /api/v1/tau-user-token/refresh/`: replaces the caller's token.
pub async fn refresh(
    auth: Authenticated,
    State(app): State<AppState>,
) -> Result<Json<Value>, ApiError> {
    let new = app.store.create_token(&auth.record.name).await?;
    app.store.revoke_token_value(&auth.token).await?;
    tracing::info!(token = %new.record.hint, "API token rotated");
    Ok(Json(json!({ "token": new.token })))
}

/// `GET /api/v1/tokens`: every token's record (no values).
pub async fn list(_: Authenticated, State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!(app.store.list_tokens().await?)))
}

/// Body of `POST /api/v1/tokens`.
#[derive(Deserialize)]
pub struct CreateToken {
    name: String,
}

/// `POST /api/v1/tokens {"name"}`: a new token, shown once.
pub async fn create(
    _: Authenticated,
    State(app): State<AppState>,
    Json(body): Json<CreateToken>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let name = body.name.trim();
    if name.is_empty() || name.len() > 100 {
        return Err(ApiError::BadRequest(
            "name must be 1 to 100 characters".into(),
        ));
    }
    let new = app.store.create_token(name).await?;
    tracing::info!(token = %new.record.hint, name, "API token created");
    Ok((
        StatusCode::CREATED,
        Json(json!({ "token": new.token, "record": new.record })),
    ))
}

/// `DELETE /api/v1/tokens/<id>`.
pub async fn revoke(
    _: Authenticated,
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    match app.store.revoke_token(&id).await? {
        0 => Err(ApiError::NotFound(format!("no token {id:?}"))),
        _ => Ok(StatusCode::NO_CONTENT),
    }
}

/// `POST /api-token-auth/`: the original's username/password login. TAU has
/// no user accounts; say how to get a token instead of failing obscurely.
pub async fn password_login() -> ApiError {
    ApiError::BadRequest(
        "password login is not supported; create a token with `tau-relay token create` and send `Authorization: Token <token>`".into(),
    )
}
