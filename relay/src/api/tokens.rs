//! Token endpoints: the original TAU's `tau-user-token` pair, plus token
//! management (admin only). Token values are shown only when created or
//! rotated; lists show records (name, role, hash hint), never values.

use axum::{
    extract::{Path, State},
    http::StatusCode,
    Json,
};
use serde::Deserialize;
use serde_json::{json, Value};

use super::Authenticated;
use crate::{
    access::{Grant, Role},
    app::AppState,
    error::ApiError,
};

/// `GET /api/v1/tau-user-token/`: the caller's own token (it already has it).
pub async fn current(auth: Authenticated) -> Json<Value> {
    Json(json!({ "token": auth.token }))
}

/// `POST /api/v1/tau-user-token/refresh/`: replaces the caller's token
/// (same name and role); the old one stops working and its sockets close.
pub async fn refresh(
    auth: Authenticated,
    State(app): State<AppState>,
) -> Result<Json<Value>, ApiError> {
    let new = app
        .store
        .rotate_token(&auth.record.id)
        .await?
        .ok_or_else(|| ApiError::Unauthorized("Invalid token.".into()))?;
    app.token_watch.refresh().await;
    tracing::info!(token = %new.record.name, hint = %new.record.hint, "API token rotated");
    Ok(Json(json!({ "token": new.token })))
}

/// `GET /api/v1/tokens`: every token's record (no values).
pub async fn list(_: Authenticated, State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!(app.store.list_tokens().await?)))
}

/// Body of `POST /api/v1/tokens`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    name: String,
    role: Option<String>,
    event_types: Option<Vec<String>>,
}

/// Body of `PATCH /api/v1/tokens/<id>`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateToken {
    role: Option<String>,
    event_types: Option<Vec<String>>,
}

/// The grant a request asks for, or a 400 saying what is wrong.
fn grant_from(
    app: &AppState,
    role: Option<&str>,
    event_types: Option<Vec<String>>,
) -> Result<Grant, ApiError> {
    Grant::requested(role, event_types, app.catalog).map_err(ApiError::BadRequest)
}

/// `POST /api/v1/tokens {"name", "role", "event_types"?}`: a new token,
/// shown once; 409 if the name is taken.
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
    let grant = grant_from(&app, body.role.as_deref(), body.event_types)?;
    let new = app.store.create_token(name, &grant).await?;
    tracing::info!(token = %name, role = %grant.role, hint = %new.record.hint, "API token created");
    Ok((
        StatusCode::CREATED,
        Json(json!({ "token": new.token, "record": new.record })),
    ))
}

/// Refuses to leave the relay without an admin token through the API (a
/// lock-out only `tau-relay token create` on the server could undo).
async fn keep_an_admin(app: &AppState, id: &str, new_role: Option<Role>) -> Result<(), ApiError> {
    let target = app.store.token_by_id(id).await?;
    let demoted = target.is_some_and(|t| t.role == Role::Admin && new_role != Some(Role::Admin));
    if demoted && app.store.count_admins().await? <= 1 {
        return Err(ApiError::Conflict(
            "this is the last admin token: create another admin token first".into(),
        ));
    }
    Ok(())
}

/// `PATCH /api/v1/tokens/<id> {"role", "event_types"?}`: a new grant; the
/// token's open sockets close so they reconnect under it.
pub async fn update(
    _: Authenticated,
    State(app): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<UpdateToken>,
) -> Result<Json<Value>, ApiError> {
    let grant = grant_from(&app, body.role.as_deref(), body.event_types)?;
    keep_an_admin(&app, &id, Some(grant.role)).await?;
    if !app.store.set_grant(&id, &grant).await? {
        return Err(ApiError::NotFound(format!("no token {id:?}")));
    }
    app.token_watch.refresh().await;
    tracing::info!(token = %id, role = %grant.role, "API token role changed");
    let record = app
        .store
        .list_tokens()
        .await?
        .into_iter()
        .find(|t| t.id == id);
    Ok(Json(json!(record)))
}

/// `DELETE /api/v1/tokens/<id>` (by id only): its open sockets close
/// within a second on every replica.
pub async fn revoke(
    _: Authenticated,
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    keep_an_admin(&app, &id, None).await?;
    let n = app.store.revoke_token_id(&id).await?;
    app.token_watch.refresh().await;
    match n {
        0 => Err(ApiError::NotFound(format!("no token {id:?}"))),
        _ => {
            tracing::info!(token = %id, "API token revoked");
            Ok(StatusCode::NO_CONTENT)
        }
    }
}

/// `POST /api-token-auth/`: the original's username/password login. TAU has
/// no user accounts; say how to get a token instead of failing obscurely.
pub async fn password_login() -> ApiError {
    ApiError::BadRequest(
        "password login is not supported; create a token with `tau-relay token create --name <name> --role <role>` and send `Authorization: Token <token>`".into(),
    )
}
