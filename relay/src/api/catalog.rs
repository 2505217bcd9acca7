//! `GET /api/v1/twitch/eventsub-subscriptions`: the catalog of EventSub types.

use axum::{extract::State, Json};
use serde::Serialize;
use utoipa::ToSchema;

use super::{openapi::AuthErrors, Authenticated};
use crate::{app::AppState, catalog::CatalogEntry};

/// One EventSub type TAU knows. `name`, `subscription_type` and
/// `scope_required` keep the original TAU's keys; the rest are additions.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionType {
    /// EventSub type (`channel.follow`).
    #[schema(example = "channel.follow")]
    name: String,
    /// Twitch's name for it.
    subscription_type: String,
    /// TAU's name for it (`channel-follow`), as events carry it.
    #[schema(example = "channel-follow")]
    event_type: String,
    /// EventSub version.
    version: String,
    /// Twitch's one-line description.
    description: String,
    /// The first scope it needs, if any (the original's key).
    scope_required: Option<String>,
    /// Every scope TAU asks for to subscribe to it.
    scopes: Vec<String>,
    /// Its condition's field names.
    condition: Vec<String>,
    /// Part of the default set.
    active: bool,
}

impl From<&CatalogEntry> for SubscriptionType {
    fn from(e: &CatalogEntry) -> SubscriptionType {
        SubscriptionType {
            name: e.kind.clone(),
            subscription_type: e.name.clone(),
            event_type: e.tau_type(),
            version: e.version.clone(),
            description: e.description.clone(),
            scope_required: e.scopes.first().cloned(),
            scopes: e.scopes.clone(),
            condition: e.condition.clone(),
            active: e.default,
        }
    }
}

/// Every known type.
#[utoipa::path(
    get,
    path = "/api/v1/twitch/eventsub-subscriptions",
    tag = "status",
    security(("token" = [])),
    responses(
        (status = 200, description = "Every EventSub type TAU knows", body = Vec<SubscriptionType>),
        AuthErrors,
    )
)]
pub async fn list(_: Authenticated, State(app): State<AppState>) -> Json<Vec<SubscriptionType>> {
    Json(app.catalog.entries().iter().map(Into::into).collect())
}
