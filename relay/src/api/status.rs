//! `GET /api/v1/status`: what the relay is doing. Never a token or secret.

use axum::{extract::State, Json};
use serde_json::{json, Value};

use super::Authenticated;
use crate::{app::AppState, error::ApiError, event::format_created};

/// How many recent revocations the status shows.
const RECENT_REVOCATIONS: i64 = 20;

/// The status document.
pub async fn status(
    _: Authenticated,
    State(app): State<AppState>,
) -> Result<Json<Value>, ApiError> {
    let revocations = app.store.recent_revocations(RECENT_REVOCATIONS).await?;
    let twitch = &app.config.twitch;
    let user = app.twitch.tokens.user_info().await;
    Ok(Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "started_at": format_created(app.status.started_at()),
        "database": format!("{:?}", app.store.kind()).to_lowercase(),
        "clients_connected": app.metrics.clients_connected.get(),
        "events_stored": app.store.count_events().await?,
        "last_event_at": app.status.last_event_at().map(format_created),
        "twitch": {
            "client_id_configured": twitch.client_id.is_some(),
            "webhook_secret_configured": twitch.webhook_secret.is_some(),
            "broadcaster": twitch.broadcaster,
            "user_token": {
                "state": app.twitch.tokens.state(),
                "login": user.as_ref().and_then(|u| u.login.clone()),
                "scopes": user.as_ref().map(|u| u.scopes.clone()),
                "expires_at": user.as_ref().map(|u| format_created(u.expires_at)),
            },
            "eventsub": app.twitch.connection(),
        },
        "revocations": revocations,
    })))
}
