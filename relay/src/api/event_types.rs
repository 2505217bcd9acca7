//! `/api/v1/twitch/event-types`: which EventSub types the relay subscribes
//! to, chosen from the dashboard (stored, shared by every replica) instead
//! of only `TAU_EVENTSUB_TYPES`. See [`crate::twitch::event_types`].

use axum::{extract::State, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{extract::JsonBody, openapi::AuthErrors, Authenticated};
use crate::{
    app::AppState,
    error::{ApiError, ErrorBody},
    twitch::{
        event_types::{tau_names, ChoiceError, Source},
        subscriptions::{missing_scopes, scopes_for},
    },
};

/// One chosen type at its version.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChosenType {
    /// EventSub type.
    #[serde(rename = "type")]
    #[schema(example = "channel.follow")]
    kind: String,
    /// Its version.
    #[schema(example = "2")]
    version: String,
}

/// The event types the relay subscribes to, and the scopes they need.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventTypesDocument {
    /// TAU's names (`channel-follow`; `name@version` when not the newest
    /// version), as `PUT` takes them.
    #[schema(example = json!(["channel-follow", "channel-raid"]))]
    event_types: Vec<String>,
    /// The same, as EventSub types and versions.
    types: Vec<ChosenType>,
    /// `environment` (`TAU_EVENTSUB_TYPES`), `dashboard` (chosen here), or
    /// `operator` (`TAU_MANAGE_SUBSCRIPTIONS=false`: the TwitchChannel's
    /// `spec.events` decides; `PUT` and `DELETE` answer 409).
    source: Source,
    /// The types `TAU_EVENTSUB_TYPES` names (what `DELETE` returns to).
    environment: Vec<String>,
    /// Every scope these types need (what Connect Twitch asks for).
    scopes_needed: Vec<String>,
    /// The scopes the broadcaster's stored authorization grants (`null`:
    /// not authorized).
    scopes_granted: Option<Vec<String>>,
    /// Needed scopes the stored authorization lacks (empty without one):
    /// connect Twitch again to receive those types.
    scopes_missing: Vec<String>,
}

/// Body of `PUT /api/v1/twitch/event-types`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChooseEventTypes {
    /// Type names, either spelling (`channel-follow`, `channel.follow`),
    /// optionally `@version` (else the newest), or `default` for the
    /// streamer-bot set.
    #[schema(example = json!(["default", "channel.moderate@2"]))]
    event_types: Vec<String>,
}

async fn document(app: &AppState) -> EventTypesDocument {
    let choice = app.twitch.event_types.choice().await;
    let scopes_needed = scopes_for(&choice.types);
    let granted = app.twitch.tokens.user_info().await.map(|u| u.scopes);
    let scopes_missing = granted
        .as_ref()
        .map(|g| missing_scopes(&scopes_needed, g))
        .unwrap_or_default();
    EventTypesDocument {
        event_types: tau_names(&choice.types),
        types: choice
            .types
            .iter()
            .map(|(kind, version)| ChosenType {
                kind: kind.clone(),
                version: version.clone(),
            })
            .collect(),
        source: choice.source,
        environment: tau_names(&app.config.eventsub_types),
        scopes_needed,
        scopes_granted: granted,
        scopes_missing,
    }
}

impl From<ChoiceError> for ApiError {
    fn from(err: ChoiceError) -> ApiError {
        match err {
            ChoiceError::Unknown(_) | ChoiceError::Empty => ApiError::BadRequest(err.to_string()),
            ChoiceError::ManagedElsewhere => ApiError::Conflict(err.to_string()),
            ChoiceError::Store(err) => err.into(),
        }
    }
}

/// Makes a changed list effective at once on this replica (the others
/// read it within seconds and do the same).
fn changed(app: &AppState, changed: bool) {
    if changed {
        let types = app.twitch.event_types.watch().borrow().types.clone();
        tracing::info!(types = ?tau_names(&types), "event types changed; resubscribing");
        app.twitch.request_resubscribe();
    }
}

/// `GET /api/v1/twitch/event-types`.
#[utoipa::path(
    get,
    path = "/api/v1/twitch/event-types",
    tag = "twitch",
    security(("token" = [])),
    responses(
        (status = 200, description = "The event types subscribed to, where the list comes from, and the scopes they need", body = EventTypesDocument),
        AuthErrors,
    )
)]
pub async fn get(_: Authenticated, State(app): State<AppState>) -> Json<EventTypesDocument> {
    Json(document(&app).await)
}

/// `PUT /api/v1/twitch/event-types`: stores the choice for every replica
/// and resubscribes. Connect Twitch again when `scopes_missing` is not empty.
#[utoipa::path(
    put,
    path = "/api/v1/twitch/event-types",
    tag = "twitch",
    security(("token" = [])),
    request_body = ChooseEventTypes,
    responses(
        (status = 200, description = "Stored and in effect; the transports subscribe anew", body = EventTypesDocument),
        (status = 400, description = "An unknown type (named in `detail`), or an empty list", body = ErrorBody),
        (status = 409, description = "The operator manages the subscriptions: the TwitchChannel's spec.events decides", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        AuthErrors,
    )
)]
pub async fn put(
    _: Authenticated,
    State(app): State<AppState>,
    JsonBody(body): JsonBody<ChooseEventTypes>,
) -> Result<Json<EventTypesDocument>, ApiError> {
    let moved = app.twitch.event_types.set(&body.event_types).await?;
    changed(&app, moved);
    Ok(Json(document(&app).await))
}

/// `DELETE /api/v1/twitch/event-types`: forgets the choice;
/// `TAU_EVENTSUB_TYPES` decides again.
#[utoipa::path(
    delete,
    path = "/api/v1/twitch/event-types",
    tag = "twitch",
    security(("token" = [])),
    responses(
        (status = 200, description = "Back to TAU_EVENTSUB_TYPES; the transports subscribe anew if the list changed", body = EventTypesDocument),
        (status = 409, description = "The operator manages the subscriptions: the TwitchChannel's spec.events decides", body = ErrorBody),
        AuthErrors,
    )
)]
pub async fn reset(
    _: Authenticated,
    State(app): State<AppState>,
) -> Result<Json<EventTypesDocument>, ApiError> {
    let moved = app.twitch.event_types.reset().await?;
    changed(&app, moved);
    Ok(Json(document(&app).await))
}
