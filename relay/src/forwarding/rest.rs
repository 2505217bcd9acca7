//! `/api/v1/webhook-targets` (admin): add, list, change, pause, resume
//! and delete webhook targets. The secret is write-only: answers say
//! `secret_set`, never the secret.

use axum::{extract::State, http::StatusCode, Json};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::{target, ForwardError, UnverifiedBody};
use crate::{
    api::{
        extract::{JsonBody, PathParam},
        openapi::AuthErrors,
        Authenticated,
    },
    app::AppState,
    error::ErrorBody,
    store::{TargetConfig, WebhookTarget},
};

/// A webhook target as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TargetBody {
    /// TAU's id.
    #[schema(format = Uuid)]
    id: String,
    /// Unique name.
    name: String,
    /// Where events are POSTed.
    #[schema(example = "https://bot.example.com/twitch/webhook")]
    url: String,
    /// EventSub types forwarded; empty: every type.
    #[schema(example = json!(["channel.follow"]))]
    event_types: Vec<String>,
    /// Fields every forwarded event must carry with these values.
    #[schema(value_type = Object, example = json!({"broadcaster_user_id": "1337"}))]
    conditions: Map<String, Value>,
    /// Always true: a secret is set (it is never shown).
    secret_set: bool,
    /// `enabled`, `retrying` (the oldest undelivered event failed and
    /// waits for `next_attempt_at`) or `paused`.
    #[schema(example = "enabled")]
    status: String,
    /// `manual` or `failing` (failed continuously for the pause window)
    /// when paused.
    paused_reason: Option<String>,
    /// When it was added.
    #[schema(format = DateTime)]
    created_at: String,
    /// Last 2xx.
    #[schema(format = DateTime)]
    last_success_at: Option<String>,
    /// Last attempt.
    #[schema(format = DateTime)]
    last_attempt_at: Option<String>,
    /// The last failure, in words (`null` after a success).
    last_error: Option<String>,
    /// When the failed event is tried again.
    #[schema(format = DateTime)]
    next_attempt_at: Option<String>,
    /// Events it wants and has not received yet (counted up to 10000
    /// stored events).
    backlog: i64,
    /// Events delivered.
    delivered: i64,
    /// Failed attempts (each retry counts).
    failed_attempts: i64,
}

fn time(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl TargetBody {
    fn new(t: WebhookTarget, backlog: i64) -> TargetBody {
        let status = if t.paused_reason.is_some() {
            "paused"
        } else if t.failing_since_us.is_some() {
            "retrying"
        } else {
            "enabled"
        };
        TargetBody {
            status: status.into(),
            next_attempt_at: if status == "retrying" {
                t.next_attempt_us.map(time)
            } else {
                None
            },
            id: t.id,
            name: t.name,
            url: t.url,
            event_types: t.event_types,
            conditions: t.conditions,
            secret_set: true,
            paused_reason: t.paused_reason,
            created_at: time(t.created_us),
            last_success_at: t.last_success_us.map(time),
            last_attempt_at: t.last_attempt_us.map(time),
            last_error: t.last_error,
            backlog,
            delivered: t.delivered,
            failed_attempts: t.failed_attempts,
        }
    }

    async fn of(app: &AppState, t: WebhookTarget) -> Result<TargetBody, ForwardError> {
        let backlog = target::backlog(&app.store, &t).await?;
        Ok(TargetBody::new(t, backlog))
    }
}

/// `GET /api/v1/webhook-targets`'s answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct TargetList {
    /// Every target, oldest first.
    targets: Vec<TargetBody>,
}

/// Body of `POST /api/v1/webhook-targets`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTarget {
    /// Unique name, 1 to 100 characters.
    #[schema(example = "my-bot")]
    name: String,
    /// http(s) URL with a host.
    #[schema(example = "https://bot.example.com/twitch/webhook")]
    url: String,
    /// Signing secret: 10 to 100 ASCII characters (Twitch's rule).
    #[schema(example = "a-long-shared-secret")]
    secret: String,
    /// EventSub types (TAU's names work too); empty or absent: every type.
    #[serde(default)]
    event_types: Vec<String>,
    /// Only events whose fields have these (string) values.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    conditions: Option<Map<String, Value>>,
}

/// Body of `PATCH /api/v1/webhook-targets/{id}`: any of the fields.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetChange {
    /// New name.
    name: Option<String>,
    /// New URL (verified with a challenge first).
    url: Option<String>,
    /// New secret (verified with a challenge first).
    secret: Option<String>,
    /// New types; empty: every type.
    event_types: Option<Vec<String>>,
    /// New condition filter (`{}` or `null`: none).
    #[schema(value_type = Option<Object>)]
    #[serde(default, deserialize_with = "present")]
    conditions: Option<Option<Map<String, Value>>>,
    /// `true` pauses by hand; `false` resumes (retries start now).
    paused: Option<bool>,
}

/// A present field, even `null`, is `Some`.
fn present<'de, D, T>(de: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(de).map(Some)
}

/// `GET /api/v1/webhook-targets`.
#[utoipa::path(
    get,
    path = "/api/v1/webhook-targets",
    tag = "webhook forwarding",
    security(("token" = [])),
    responses(
        (status = 200, description = "Every webhook target", body = TargetList),
        AuthErrors,
    )
)]
pub async fn list(
    _: Authenticated,
    State(app): State<AppState>,
) -> Result<Json<TargetList>, ForwardError> {
    let mut targets = Vec::new();
    for t in app.store.webhook_targets().await? {
        if !t.pending {
            targets.push(TargetBody::of(&app, t).await?);
        }
    }
    Ok(Json(TargetList { targets }))
}

/// `POST /api/v1/webhook-targets`: challenges the URL, then adds the
/// target; it receives events stored from now on.
#[utoipa::path(
    post,
    path = "/api/v1/webhook-targets",
    tag = "webhook forwarding",
    security(("token" = [])),
    request_body = NewTarget,
    responses(
        (status = 201, description = "Added (the target answered the challenge)", body = TargetBody),
        (status = 400, description = "A field is invalid (named): name 1-100 characters, url http(s) with a host, secret 10-100 ASCII characters, a known event type, string condition values", body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "The target did not answer the challenge with 200 and the challenge (why: status code, body mismatch, timeout, connection refused); nothing was stored", body = UnverifiedBody),
        AuthErrors,
    )
)]
pub async fn create(
    _: Authenticated,
    State(app): State<AppState>,
    JsonBody(body): JsonBody<NewTarget>,
) -> Result<(StatusCode, Json<TargetBody>), ForwardError> {
    let created = app
        .forwarder
        .add(
            body.name,
            body.url,
            body.secret,
            &body.event_types,
            body.conditions.unwrap_or_default(),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(TargetBody::of(&app, created).await?),
    ))
}

async fn find(app: &AppState, id: &str) -> Result<WebhookTarget, ForwardError> {
    app.store
        .webhook_target(id)
        .await?
        .filter(|t| !t.pending)
        .ok_or(ForwardError::NotFound)
}

/// `GET /api/v1/webhook-targets/{id}`.
#[utoipa::path(
    get,
    path = "/api/v1/webhook-targets/{id}",
    tag = "webhook forwarding",
    params(("id" = String, Path, description = "The target's id")),
    security(("token" = [])),
    responses(
        (status = 200, description = "The target", body = TargetBody),
        (status = 404, description = "No such target", body = ErrorBody),
        AuthErrors,
    )
)]
pub async fn get_one(
    _: Authenticated,
    State(app): State<AppState>,
    PathParam(id): PathParam<String>,
) -> Result<Json<TargetBody>, ForwardError> {
    let t = find(&app, &id).await?;
    Ok(Json(TargetBody::of(&app, t).await?))
}

/// `PATCH /api/v1/webhook-targets/{id}`.
#[utoipa::path(
    patch,
    path = "/api/v1/webhook-targets/{id}",
    tag = "webhook forwarding",
    params(("id" = String, Path, description = "The target's id")),
    security(("token" = [])),
    request_body = TargetChange,
    responses(
        (status = 200, description = "Changed", body = TargetBody),
        (status = 400, description = "A field is invalid (named)", body = ErrorBody),
        (status = 404, description = "No such target", body = ErrorBody),
        (status = 409, description = "The new name is taken", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "A new url or secret was not confirmed by the challenge; nothing changed", body = UnverifiedBody),
        AuthErrors,
    )
)]
pub async fn update(
    _: Authenticated,
    State(app): State<AppState>,
    PathParam(id): PathParam<String>,
    JsonBody(change): JsonBody<TargetChange>,
) -> Result<Json<TargetBody>, ForwardError> {
    let mut t = find(&app, &id).await?;
    let key = &app.secret_key;
    let reverify = change.url.is_some() || change.secret.is_some();
    if let Some(name) = change.name {
        target::check_name(&name)?;
        t.name = name;
    }
    if let Some(url) = change.url {
        target::check_url(&url)?;
        t.url = url;
    }
    let secret = match change.secret {
        Some(secret) => {
            target::check_secret(&secret)?;
            secret
        }
        None => key.open(&t.sealed_secret)?,
    };
    if let Some(types) = change.event_types {
        t.event_types = target::check_event_types(&types)?;
    }
    if let Some(conditions) = change.conditions {
        let conditions = conditions.unwrap_or_default();
        target::check_conditions(&conditions)?;
        t.conditions = conditions;
    }
    if reverify {
        target::verify(app.forwarder.sender(), &t, &secret).await?;
    }
    let config = TargetConfig {
        name: t.name.clone(),
        url: t.url.clone(),
        sealed_secret: key.seal(&secret),
        event_types: t.event_types.clone(),
        conditions: t.conditions.clone(),
    };
    if !app.store.update_webhook_target(&id, &config).await? {
        return Err(ForwardError::NotFound);
    }
    match change.paused {
        Some(true) if t.paused_reason.as_deref() != Some("manual") => {
            app.store.set_webhook_paused(&id, Some("manual")).await?;
        }
        Some(false) => {
            app.store.set_webhook_paused(&id, None).await?;
        }
        _ => {}
    }
    app.forwarder.changed();
    let t = find(&app, &id).await?;
    Ok(Json(TargetBody::of(&app, t).await?))
}

/// `DELETE /api/v1/webhook-targets/{id}`: nothing more is sent to it.
#[utoipa::path(
    delete,
    path = "/api/v1/webhook-targets/{id}",
    tag = "webhook forwarding",
    params(("id" = String, Path, description = "The target's id")),
    security(("token" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such target", body = ErrorBody),
        AuthErrors,
    )
)]
pub async fn remove(
    _: Authenticated,
    State(app): State<AppState>,
    PathParam(id): PathParam<String>,
) -> Result<StatusCode, ForwardError> {
    find(&app, &id).await?;
    if !app.store.delete_webhook_target(&id).await? {
        return Err(ForwardError::NotFound);
    }
    app.forwarder.changed();
    Ok(StatusCode::NO_CONTENT)
}
