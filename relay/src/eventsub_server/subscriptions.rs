//! The Helix-compatible subscription API for [`super::session`] sessions,
//! and the token check libraries make first.
//!
//! - `POST /helix/eventsub/subscriptions`: `transport.method = websocket`
//!   with the `session_id` of a live session on this replica. A type TAU
//!   already receives is instant; one it does not is added to the relay's
//!   own chosen types (an admin token, the relay choosing its own types,
//!   and the stored authorization holding the type's scopes), else 403.
//! - `POST` with `transport.method = webhook` (`callback`, `secret`) and
//!   an admin token: a webhook forwarding target for that one type and
//!   condition ([`crate::forwarding`]), answered 202
//!   `webhook_callback_verification_pending` and challenged in the
//!   background as Twitch does (enabled when answered, removed when not),
//!   so stock webhook libraries subscribe through TAU unchanged.
//! - `GET` lists the caller's subscriptions (Twitch's filters and paging
//!   shape; an admin's include the webhook ones); `DELETE ?id=` removes one.
//! - `GET /oauth2/validate`: Twitch's token-validation shape for a TAU
//!   token (`Authorization: OAuth <token>` as Twitch takes it, or `Bearer`).
//!
//! A TAU API token stands in for the user token (`Authorization: Bearer`,
//! any `Client-Id`); its role and event-type restriction decide what it may
//! subscribe to. Errors are Twitch's: `{"error", "status", "message"}`.

use axum::{
    body::Bytes,
    extract::{Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{AddError, Subscription, Transport};
use crate::{
    access::{Grant, Role},
    api::{openapi::AuthErrors, Authenticated},
    app::AppState,
    error::ErrorBody,
    event::tau_event_type,
    forwarding::wire::WebhookSubscription,
    store::WebhookTarget,
    twitch::{
        event_types::Source,
        subscriptions::{missing_scopes, scopes_for},
    },
};

/// Twitch's `max_total_cost` (cost is always 0 here).
const MAX_TOTAL_COST: u32 = 10;
/// `expires_in` of a TAU token as `/oauth2/validate` reports it: TAU
/// tokens do not expire, so libraries never try to refresh one.
const EXPIRES_IN: u64 = 5_184_000;

/// Twitch's error body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HelixErrorBody {
    /// The status's reason phrase.
    #[schema(example = "Bad Request")]
    error: String,
    /// The HTTP status.
    #[schema(example = 400)]
    status: u16,
    /// What went wrong.
    message: String,
}

/// An error answer in Twitch's shape.
#[derive(Debug)]
pub struct HelixError {
    status: StatusCode,
    message: String,
}

impl HelixError {
    fn new(status: StatusCode, message: impl Into<String>) -> HelixError {
        HelixError {
            status,
            message: message.into(),
        }
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> HelixError {
        HelixError::new(StatusCode::BAD_REQUEST, message)
    }

    fn forbidden(message: impl Into<String>) -> HelixError {
        HelixError::new(StatusCode::FORBIDDEN, message)
    }
}

impl IntoResponse for HelixError {
    fn into_response(self) -> Response {
        let body = HelixErrorBody {
            error: self
                .status
                .canonical_reason()
                .unwrap_or("Error")
                .to_string(),
            status: self.status.as_u16(),
            message: self.message,
        };
        (self.status, Json(body)).into_response()
    }
}

/// `transport` of a subscription request.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct RequestTransport {
    /// `websocket` or `webhook`.
    #[schema(example = "websocket")]
    method: String,
    /// `websocket`: a live session on this relay (from its `session_welcome`).
    session_id: Option<String>,
    /// `webhook`: where to POST the events (http or https).
    callback: Option<String>,
    /// `webhook`: the signing secret (10 to 100 ASCII characters).
    secret: Option<String>,
}

/// A listed subscription: a session's, or a webhook target's.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Listed {
    /// Delivered over an `/eventsub/ws` session.
    Socket(Subscription),
    /// Forwarded to a webhook.
    Webhook(WebhookSubscription),
}

/// `POST /helix/eventsub/subscriptions`'s body (Helix's).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct CreateSubscription {
    /// EventSub type.
    #[serde(rename = "type")]
    #[schema(example = "channel.follow")]
    kind: String,
    /// Its version.
    #[schema(example = "2")]
    version: String,
    /// Condition fields.
    #[schema(value_type = Object)]
    condition: Map<String, Value>,
    /// Where to deliver.
    transport: RequestTransport,
}

/// Helix's list answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SubscriptionList {
    /// The subscriptions.
    data: Vec<Listed>,
    /// How many.
    total: usize,
    /// Always 0.
    total_cost: u32,
    /// Twitch's limit (10).
    max_total_cost: u32,
    /// Empty: everything fits one page.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pagination: Option<Map<String, Value>>,
}

/// `GET /helix/eventsub/subscriptions`'s filters (Twitch's).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only this status (`enabled`).
    status: Option<String>,
    /// Only this type.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    kind: Option<String>,
    /// Only subscriptions whose condition names this user.
    user_id: Option<String>,
    /// Only this subscription.
    subscription_id: Option<String>,
    /// Paging cursor (everything fits one page; ignored).
    after: Option<String>,
}

/// `DELETE /helix/eventsub/subscriptions`'s query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeleteQuery {
    /// The subscription to delete.
    id: Option<String>,
}

/// `POST /helix/eventsub/subscriptions`: subscribes a session.
#[utoipa::path(
    post,
    path = "/helix/eventsub/subscriptions",
    tag = "eventsub",
    security(("token" = [])),
    request_body = CreateSubscription,
    responses(
        (status = 202, description = "Subscribed (Helix's shape; cost 0); a webhook one is `webhook_callback_verification_pending` until its callback answers the challenge", body = SubscriptionList),
        (status = 400, description = "Not JSON, unknown type or version, a condition field the type does not have, a transport other than a live websocket session here or a webhook with callback and secret (10-100 ASCII characters), or 300 subscriptions on the session", body = HelixErrorBody),
        (status = 403, description = "The token may not receive this type, a webhook without an admin token, the session belongs to another token, or TAU does not receive the type and cannot add it (role, operator-managed types, or a missing scope, named), or the condition names only channels TAU receives nothing from", body = HelixErrorBody),
        (status = 409, description = "The session has this subscription already", body = HelixErrorBody),
        (status = 503, description = "The store failed while adding the type to the relay's, reading the chat bots' channels, or storing the webhook target; try again", body = HelixErrorBody),
        (status = 401, description = "No token, or an invalid one (TAU's error shape, from the access guard)", body = ErrorBody),
    )
)]
pub async fn create(
    caller: Authenticated,
    State(app): State<AppState>,
    body: Bytes,
) -> Result<(StatusCode, Json<SubscriptionList>), HelixError> {
    let body: CreateSubscription = serde_json::from_slice(&body)
        .map_err(|err| HelixError::bad_request(format!("invalid request body: {err}")))?;
    if !matches!(body.transport.method.as_str(), "websocket" | "webhook") {
        return Err(HelixError::bad_request(
            "transport.method must be websocket or webhook",
        ));
    }
    let entry = app.catalog.find(&body.kind, &body.version).ok_or_else(|| {
        HelixError::bad_request(format!(
            "unsupported subscription type {:?} version {:?}",
            body.kind, body.version
        ))
    })?;
    if body.condition.is_empty() {
        return Err(HelixError::bad_request("condition is required"));
    }
    if let Some(field) = body.condition.keys().find(|k| !entry.condition.contains(k)) {
        return Err(HelixError::bad_request(format!(
            "{} has no condition field {field:?} (its fields: {})",
            body.kind,
            entry.condition.join(", ")
        )));
    }
    if body.transport.method == "webhook" {
        return create_webhook(caller, app, body).await;
    }
    let session_id = body
        .transport
        .session_id
        .clone()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| HelixError::bad_request("transport.session_id is required"))?;
    let grant = caller.record.grant();
    if !grant.sees(&tau_event_type(&body.kind)) {
        return Err(HelixError::forbidden(format!(
            "this token may not receive {}",
            body.kind
        )));
    }
    if !app.eventsub.exists(&session_id) {
        return Err(HelixError::bad_request(
            "websocket transport session does not exist or has already disconnected",
        ));
    }
    ensure_received(&app, &grant, &body.kind, &body.version).await?;
    ensure_channel_received(&app, &body.condition).await?;
    let now = super::frames::timestamp(chrono::Utc::now());
    let sub = Subscription {
        id: uuid::Uuid::new_v4().to_string(),
        status: "enabled".into(),
        kind: body.kind,
        version: body.version,
        condition: body.condition,
        transport: Transport {
            method: "websocket".into(),
            session_id,
            connected_at: Some(now.clone()),
        },
        created_at: now,
        cost: 0,
    };
    let sub = app
        .eventsub
        .add(&caller.record, sub)
        .map_err(|err| match err {
            AddError::NoSession => HelixError::bad_request(
                "websocket transport session does not exist or has already disconnected",
            ),
            AddError::OtherOwner => {
                HelixError::forbidden("this websocket session belongs to another token")
            }
            AddError::Duplicate => {
                HelixError::new(StatusCode::CONFLICT, "subscription already exists")
            }
            AddError::Full => HelixError::bad_request(
                "this session has 300 subscriptions, Twitch's limit per session",
            ),
        })?;
    Ok((
        StatusCode::ACCEPTED,
        Json(SubscriptionList {
            total: app.eventsub.owned_by(&caller.record.id).len(),
            data: vec![Listed::Socket(sub)],
            total_cost: 0,
            max_total_cost: MAX_TOTAL_COST,
            pagination: None,
        }),
    ))
}

fn unavailable(err: crate::store::StoreError) -> HelixError {
    tracing::warn!(error = %err, "webhook subscriptions: the store failed");
    HelixError::new(StatusCode::SERVICE_UNAVAILABLE, "try again")
}

/// A target made through this API, as Twitch lists a webhook subscription:
/// pending until its challenge is answered, `notification_failures_exceeded`
/// once paused for failing.
fn helix_subscription(target: &WebhookTarget) -> Option<WebhookSubscription> {
    let version = target.helix_version.as_deref()?;
    let kind = target.event_types.first()?;
    let status = if target.pending {
        "webhook_callback_verification_pending"
    } else if target.paused_reason.as_deref() == Some("failing") {
        "notification_failures_exceeded"
    } else {
        "enabled"
    };
    Some(WebhookSubscription::of(target, kind, version, status))
}

/// `transport.method = webhook`: an admin's webhook forwarding target for
/// this type and condition, challenged in the background.
async fn create_webhook(
    caller: Authenticated,
    app: AppState,
    body: CreateSubscription,
) -> Result<(StatusCode, Json<SubscriptionList>), HelixError> {
    let grant = caller.record.grant();
    if grant.role != Role::Admin || !grant.sees(&tau_event_type(&body.kind)) {
        return Err(HelixError::forbidden(
            "only an admin token may subscribe a webhook (it forwards every matching event)",
        ));
    }
    let (Some(callback), Some(secret)) = (body.transport.callback, body.transport.secret) else {
        return Err(HelixError::bad_request(
            "transport.callback and transport.secret are required for webhook",
        ));
    };
    ensure_received(&app, &grant, &body.kind, &body.version).await?;
    let target = app
        .forwarder
        .add_helix(&body.kind, &body.version, body.condition, callback, secret)
        .await
        .map_err(|err| match err {
            crate::forwarding::ForwardError::Invalid { .. } => {
                HelixError::bad_request(err.to_string())
            }
            other => {
                tracing::warn!(error = %other, "adding a webhook subscription failed");
                HelixError::new(StatusCode::SERVICE_UNAVAILABLE, "try again")
            }
        })?;
    let sub = helix_subscription(&target).expect("a Helix target has a type and version");
    Ok((
        StatusCode::ACCEPTED,
        Json(SubscriptionList {
            total: 1,
            data: vec![Listed::Webhook(sub)],
            total_cost: 0,
            max_total_cost: MAX_TOTAL_COST,
            pagination: None,
        }),
    ))
}

/// Makes sure TAU receives `kind@version`, adding it to the relay's chosen
/// types when it may; else a 403 naming why.
async fn ensure_received(
    app: &AppState,
    grant: &Grant,
    kind: &str,
    version: &str,
) -> Result<(), HelixError> {
    let choice = app.twitch.event_types.choice().await;
    if choice
        .types
        .iter()
        .any(|(k, v)| k.as_str() == kind && v.as_str() == version)
    {
        return Ok(());
    }
    let not_received = format!("TAU does not receive {kind} version {version} now");
    if choice.source == Source::Operator {
        return Err(HelixError::forbidden(format!(
            "{not_received}, and the operator manages the subscriptions: the TwitchChannel's \
             spec.events decides which event types this relay receives"
        )));
    }
    if grant.role != Role::Admin {
        return Err(HelixError::forbidden(format!(
            "{not_received}; only an admin token may add an event type to the relay's \
             (this token's role is {})",
            grant.role
        )));
    }
    let wanted = [(kind.to_string(), version.to_string())];
    let Some(user) = app.twitch.tokens.user_info().await else {
        return Err(HelixError::forbidden(format!(
            "{not_received}, and Twitch is not connected: connect the broadcaster's account first"
        )));
    };
    let missing = missing_scopes(&scopes_for(&wanted), &user.scopes);
    if !missing.is_empty() {
        return Err(HelixError::forbidden(format!(
            "{not_received}: the broadcaster's authorization lacks the scope{} {}; \
             connect Twitch again with {}",
            if missing.len() == 1 { "" } else { "s" },
            missing.join(", "),
            if missing.len() == 1 { "it" } else { "them" },
        )));
    }
    let mut names: Vec<String> = choice
        .types
        .iter()
        .map(|(k, v)| format!("{k}@{v}"))
        .collect();
    names.push(format!("{kind}@{version}"));
    match app.twitch.event_types.set(&names).await {
        Ok(moved) => {
            if moved {
                tracing::info!(
                    kind,
                    version,
                    "an EventSub client added a type to the relay's; resubscribing"
                );
                app.twitch.request_resubscribe();
            }
            Ok(())
        }
        Err(err) => {
            tracing::warn!(error = %err, "adding an event type for an EventSub client failed");
            Err(HelixError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "could not add the event type to the relay's; try again",
            ))
        }
    }
}

/// Condition fields naming the channel an event belongs to.
const CHANNEL_FIELDS: [&str; 3] = [
    "broadcaster_user_id",
    "to_broadcaster_user_id",
    "from_broadcaster_user_id",
];

/// A condition naming only channels TAU receives nothing from (not the
/// connected broadcaster, not a chat bot's channel) would subscribe to
/// silence: refused with 403, as Twitch refuses a condition its token is
/// not authorized for. Before Twitch is connected TAU cannot tell, and
/// accepts.
async fn ensure_channel_received(
    app: &AppState,
    condition: &Map<String, Value>,
) -> Result<(), HelixError> {
    let named: Vec<&str> = CHANNEL_FIELDS
        .iter()
        .filter_map(|field| condition.get(*field)?.as_str())
        .collect();
    if named.is_empty() {
        return Ok(());
    }
    let Some(broadcaster) = app
        .twitch
        .tokens
        .user_info()
        .await
        .and_then(|user| user.user_id)
    else {
        return Ok(());
    };
    if named.contains(&broadcaster.as_str()) {
        return Ok(());
    }
    let bot_channels = app.store.chat_bot_channels().await.map_err(|err| {
        tracing::warn!(error = %err, "EventSub subscribe: reading the chat bots' channels failed");
        HelixError::new(StatusCode::SERVICE_UNAVAILABLE, "try again")
    })?;
    if bot_channels
        .iter()
        .any(|channel| named.contains(&channel.channel_id.as_str()))
    {
        return Ok(());
    }
    Err(HelixError::forbidden(format!(
        "subscription missing proper authorization: TAU receives the events of channel \
         {broadcaster} (the connected broadcaster) and its chat bots' channels, not of {}",
        named.join(", ")
    )))
}

/// `GET /helix/eventsub/subscriptions`: the caller's subscriptions on
/// this replica's live sessions.
#[utoipa::path(
    get,
    path = "/helix/eventsub/subscriptions",
    tag = "eventsub",
    security(("token" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "The token's subscriptions (Helix's shape; an admin's include the webhook ones)", body = SubscriptionList),
        (status = 400, description = "More than one filter (Twitch allows one)", body = HelixErrorBody),
        (status = 503, description = "The store failed reading the webhook subscriptions; try again", body = HelixErrorBody),
        AuthErrors,
    )
)]
pub async fn list(
    caller: Authenticated,
    State(app): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<Json<SubscriptionList>, HelixError> {
    let _ = &query.after;
    let filters = [
        &query.status,
        &query.kind,
        &query.user_id,
        &query.subscription_id,
    ];
    if filters.iter().filter(|f| f.is_some()).count() > 1 {
        return Err(HelixError::bad_request(
            "use at most one of status, type, user_id and subscription_id",
        ));
    }
    let mut mine: Vec<Listed> = app
        .eventsub
        .owned_by(&caller.record.id)
        .into_iter()
        .map(Listed::Socket)
        .collect();
    if caller.record.grant().role == Role::Admin {
        let targets = app.store.webhook_targets().await.map_err(unavailable)?;
        mine.extend(
            targets
                .iter()
                .filter_map(helix_subscription)
                .map(Listed::Webhook),
        );
    }
    let total = mine.len();
    let data: Vec<Listed> = mine
        .into_iter()
        .filter(|l| {
            let (status, kind, id, condition) = match l {
                Listed::Socket(s) => (&s.status, &s.kind, &s.id, &s.condition),
                Listed::Webhook(s) => (&s.status, &s.kind, &s.id, &s.condition),
            };
            query.status.as_ref().is_none_or(|v| status == v)
                && query.kind.as_ref().is_none_or(|v| kind == v)
                && query.subscription_id.as_ref().is_none_or(|v| id == v)
                && query
                    .user_id
                    .as_ref()
                    .is_none_or(|v| condition.values().any(|c| c.as_str() == Some(v)))
        })
        .collect();
    Ok(Json(SubscriptionList {
        data,
        total,
        total_cost: 0,
        max_total_cost: MAX_TOTAL_COST,
        pagination: Some(Map::new()),
    }))
}

/// `DELETE /helix/eventsub/subscriptions?id=`.
#[utoipa::path(
    delete,
    path = "/helix/eventsub/subscriptions",
    tag = "eventsub",
    security(("token" = [])),
    params(DeleteQuery),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "No id", body = HelixErrorBody),
        (status = 404, description = "No such subscription of this token", body = HelixErrorBody),
        (status = 503, description = "The store failed removing a webhook subscription; try again", body = HelixErrorBody),
        AuthErrors,
    )
)]
pub async fn delete(
    caller: Authenticated,
    State(app): State<AppState>,
    Query(query): Query<DeleteQuery>,
) -> Result<StatusCode, HelixError> {
    let id = query
        .id
        .filter(|id| !id.is_empty())
        .ok_or_else(|| HelixError::bad_request("missing required parameter id"))?;
    if app.eventsub.remove(&caller.record.id, &id) {
        return Ok(StatusCode::NO_CONTENT);
    }
    if caller.record.grant().role == Role::Admin {
        let targets = app.store.webhook_targets().await.map_err(unavailable)?;
        let found = targets
            .iter()
            .find(|t| helix_subscription(t).is_some_and(|s| s.id == id));
        if let Some(target) = found {
            app.store
                .delete_webhook_target(&target.id)
                .await
                .map_err(unavailable)?;
            app.forwarder.changed();
            return Ok(StatusCode::NO_CONTENT);
        }
    }
    {
        Err(HelixError::new(
            StatusCode::NOT_FOUND,
            "subscription not found",
        ))
    }
}

/// `/oauth2/validate`'s answer (Twitch's).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Validation {
    /// The relay's Twitch client id (empty without one).
    client_id: String,
    /// The broadcaster's login (empty until Twitch is connected).
    login: String,
    /// Scopes behind the event types this token may subscribe to.
    scopes: Vec<String>,
    /// The broadcaster's user id (empty until Twitch is connected).
    user_id: String,
    /// Seconds left: TAU tokens do not expire, so a large number.
    expires_in: u64,
}

/// Twitch's 401 of `/oauth2/validate`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ValidateErrorBody {
    /// 401 (or 400 without a token).
    status: u16,
    /// `invalid access token`.
    message: String,
}

fn validate_error(status: StatusCode, message: &str) -> Response {
    let body = ValidateErrorBody {
        status: status.as_u16(),
        message: message.into(),
    };
    (status, Json(body)).into_response()
}

/// `GET /oauth2/validate`: Twitch's token check, for a TAU token.
#[utoipa::path(
    get,
    path = "/oauth2/validate",
    tag = "eventsub",
    responses(
        (status = 200, description = "The token is valid: the broadcaster's identity and the scopes of the types it may subscribe to", body = Validation),
        (status = 400, description = "No `Authorization: OAuth <token>` (or `Bearer`) header", body = ValidateErrorBody),
        (status = 401, description = "Unknown token: `{\"status\":401,\"message\":\"invalid access token\"}`", body = ValidateErrorBody),
        (status = 503, description = "The store failed; try again", body = ValidateErrorBody),
    )
)]
pub async fn validate(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let header = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let token = header
        .strip_prefix("OAuth ")
        .or_else(|| header.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return validate_error(StatusCode::BAD_REQUEST, "missing authorization token");
    };
    let record = match app.store.authenticate(token).await {
        Ok(Some(record)) => record,
        Ok(None) => return validate_error(StatusCode::UNAUTHORIZED, "invalid access token"),
        Err(err) => {
            tracing::error!(error = %err, "token check failed");
            return validate_error(StatusCode::SERVICE_UNAVAILABLE, "try again");
        }
    };
    let grant = record.grant();
    let visible: Vec<(String, String)> = app
        .twitch
        .event_types
        .current()
        .await
        .iter()
        .filter(|(kind, _)| grant.sees(&tau_event_type(kind)))
        .cloned()
        .collect();
    let user = app.twitch.tokens.user_info().await;
    let (login, user_id) = user
        .map(|u| (u.login.unwrap_or_default(), u.user_id.unwrap_or_default()))
        .unwrap_or_default();
    Json(Validation {
        client_id: app.twitch.credentials.client_id().unwrap_or_default(),
        login,
        scopes: scopes_for(&visible),
        user_id,
        expires_in: EXPIRES_IN,
    })
    .into_response()
}
