//! Token endpoints: the original TAU's `tau-user-token` pair, plus token
//! management (admin only). Token values are shown only when created or
//! rotated; lists show records (name, role, hash hint), never values.

use axum::{extract::State, http::StatusCode, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    extract::{JsonBody, PathParam},
    openapi::AuthErrors,
    Authenticated,
};
use crate::{
    access::{Grant, Role},
    app::AppState,
    error::{ApiError, ErrorBody},
    store::ApiToken,
};

/// A token's value: the one moment it is shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenValue {
    /// The token, for `Authorization: Token <token>`.
    token: String,
}

/// `GET /api/v1/tau-user-token/`: the caller's own token (it already has it).
#[utoipa::path(
    get,
    path = "/api/v1/tau-user-token",
    tag = "tokens",
    security(("token" = [])),
    responses(
        (status = 200, description = "The token this request was made with", body = TokenValue),
        AuthErrors,
    )
)]
pub async fn current(auth: Authenticated) -> Json<TokenValue> {
    Json(TokenValue { token: auth.token })
}

/// `POST /api/v1/tau-user-token/refresh/`: replaces the caller's token
/// (same name and role); the old one stops working and its sockets close.
#[utoipa::path(
    post,
    path = "/api/v1/tau-user-token/refresh",
    tag = "tokens",
    security(("token" = [])),
    responses(
        (status = 200, description = "The caller's new token; the one this request was made with no longer works", body = TokenValue),
        AuthErrors,
    )
)]
pub async fn refresh(
    auth: Authenticated,
    State(app): State<AppState>,
) -> Result<Json<TokenValue>, ApiError> {
    let new = app
        .store
        .rotate_token(&auth.record.id)
        .await?
        .ok_or_else(|| ApiError::Unauthorized("Invalid token.".into()))?;
    app.token_watch.refresh().await;
    tracing::info!(token = %new.record.name, hint = %new.record.hint, "API token rotated");
    Ok(Json(TokenValue { token: new.token }))
}

/// Who the caller is: the token a request was made with, without its value.
#[derive(Debug, Serialize, ToSchema)]
pub struct WhoAmI {
    /// The token's name.
    #[schema(example = "streamerbot")]
    name: String,
    /// What the token may do.
    role: Role,
    /// The event types an overlay token is limited to (`null`: all).
    #[schema(example = json!(["channel-follow"]))]
    event_types: Option<Vec<String>>,
}

/// `GET /api/v1/whoami`: the name, role and event types of the token this
/// request was made with (any role), so a page can show what it may do.
#[utoipa::path(
    get,
    path = "/api/v1/whoami",
    tag = "tokens",
    security(("token" = [])),
    responses(
        (status = 200, description = "The token this request was made with (never its value)", body = WhoAmI),
        AuthErrors,
    )
)]
pub async fn whoami(auth: Authenticated) -> Json<WhoAmI> {
    Json(WhoAmI {
        name: auth.record.name,
        role: auth.record.role,
        event_types: auth.record.event_types,
    })
}

/// `GET /api/v1/tokens`: every token's record (no values).
#[utoipa::path(
    get,
    path = "/api/v1/tokens",
    tag = "tokens",
    security(("token" = [])),
    responses(
        (status = 200, description = "Every token's record (never a value)", body = Vec<ApiToken>),
        AuthErrors,
    )
)]
pub async fn list(
    _: Authenticated,
    State(app): State<AppState>,
) -> Result<Json<Vec<ApiToken>>, ApiError> {
    Ok(Json(app.store.list_tokens().await?))
}

/// Body of `POST /api/v1/tokens`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// A unique label (1 to 100 characters).
    #[schema(min_length = 1, max_length = 100, example = "streamerbot")]
    name: String,
    /// What the token may do.
    #[schema(value_type = Role, required = true)]
    role: Option<String>,
    /// Overlay tokens only: the event types it may see (omit for all).
    #[schema(min_items = 1, example = json!(["channel-follow"]))]
    event_types: Option<Vec<String>>,
}

/// Body of `PATCH /api/v1/tokens/<id>`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateToken {
    /// The token's new role.
    #[schema(value_type = Role, required = true)]
    role: Option<String>,
    /// Overlay tokens only: the event types it may see (omit for all).
    #[schema(min_items = 1, example = json!(["channel-follow"]))]
    event_types: Option<Vec<String>>,
}

/// A new token: its value (shown this once) and its record.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedToken {
    /// The token, for `Authorization: Token <token>`.
    token: String,
    /// What the relay keeps of it.
    record: ApiToken,
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
#[utoipa::path(
    post,
    path = "/api/v1/tokens",
    tag = "tokens",
    request_body = CreateToken,
    security(("token" = [])),
    responses(
        (status = 201, description = "Created; the value is shown only now", body = CreatedToken),
        (status = 400, description = "A malformed body, unknown role or event type", body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        AuthErrors,
    )
)]
pub async fn create(
    _: Authenticated,
    State(app): State<AppState>,
    JsonBody(body): JsonBody<CreateToken>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
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
        Json(CreatedToken {
            token: new.token,
            record: new.record,
        }),
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
#[utoipa::path(
    patch,
    path = "/api/v1/tokens/{id}",
    tag = "tokens",
    params(("id" = String, Path, description = "The token's id (from `GET /api/v1/tokens`)")),
    request_body = UpdateToken,
    security(("token" = [])),
    responses(
        (status = 200, description = "The token's record under its new grant", body = ApiToken),
        (status = 400, description = "A malformed body, unknown role or event type", body = ErrorBody),
        (status = 404, description = "No such token", body = ErrorBody),
        (status = 409, description = "This would demote the last admin token", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        AuthErrors,
    )
)]
pub async fn update(
    _: Authenticated,
    State(app): State<AppState>,
    PathParam(id): PathParam<String>,
    JsonBody(body): JsonBody<UpdateToken>,
) -> Result<Json<ApiToken>, ApiError> {
    let grant = grant_from(&app, body.role.as_deref(), body.event_types)?;
    keep_an_admin(&app, &id, Some(grant.role)).await?;
    if !app.store.set_grant(&id, &grant).await? {
        return Err(ApiError::NotFound(format!("no token {id:?}")));
    }
    app.token_watch.refresh().await;
    tracing::info!(token = %id, role = %grant.role, "API token role changed");
    // Revoked meanwhile (by another request): as gone as it would be after.
    let record = app
        .store
        .token_by_id(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no token {id:?}")))?;
    Ok(Json(record))
}

/// `DELETE /api/v1/tokens/<id>` (by id only): its open sockets close
/// within a second on every replica.
#[utoipa::path(
    delete,
    path = "/api/v1/tokens/{id}",
    tag = "tokens",
    params(("id" = String, Path, description = "The token's id (from `GET /api/v1/tokens`)")),
    security(("token" = [])),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "No such token", body = ErrorBody),
        (status = 409, description = "This is the last admin token", body = ErrorBody),
        AuthErrors,
    )
)]
pub async fn revoke(
    _: Authenticated,
    State(app): State<AppState>,
    PathParam(id): PathParam<String>,
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
#[utoipa::path(
    post,
    path = "/api-token-auth",
    tag = "tokens",
    responses(
        (status = 400, description = "Always: TAU has no user accounts; the message says how to get a token", body = ErrorBody),
    )
)]
pub async fn password_login() -> ApiError {
    ApiError::BadRequest(
        "password login is not supported; create a token with `tau-relay token create --name <name> --role <role>` and send `Authorization: Token <token>`".into(),
    )
}
