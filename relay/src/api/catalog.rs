//! `GET /api/v1/twitch/eventsub-subscriptions`: the catalog of EventSub types.

use axum::{extract::State, Json};
use serde_json::{json, Value};

use super::Authenticated;
use crate::app::AppState;

/// Every known type; `name`/`subscription_type`/`scope_required` keep the
/// original TAU's keys, the rest are additions.
pub async fn list(_: Authenticated, State(app): State<AppState>) -> Json<Value> {
    let entries: Vec<Value> = app
        .catalog
        .entries()
        .iter()
        .map(|e| {
            json!({
                "name": e.kind,
                "subscription_type": e.name,
                "event_type": e.tau_type(),
                "version": e.version,
                "description": e.description,
                "scope_required": e.scopes.first(),
                "scopes": e.scopes,
                "condition": e.condition,
                "active": e.default,
            })
        })
        .collect();
    Json(Value::Array(entries))
}
