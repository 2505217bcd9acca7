//! REST API under `/api/v1`, with the original TAU's paths and shapes.
//!
//! Every route but the heartbeat takes `Authorization: Token <TAU token>`
//! (see [`auth::Authenticated`]). Trailing slashes are optional.

mod auth;
mod catalog;
mod events;
mod status;
mod tokens;

use axum::{
    routing::{get, post},
    Router,
};

pub use auth::Authenticated;

use crate::app::{both, AppState};

/// Adds the API routes to `r`.
pub fn routes(mut r: Router<AppState>) -> Router<AppState> {
    r = both(r, "/api/v1/heartbeat", get(heartbeat));
    r = both(r, "/api/v1/twitch-events", get(events::list));
    r = both(
        r,
        "/api/v1/twitch-events/{key}",
        get(events::get_one)
            .delete(events::delete_one)
            .put(events::not_editable)
            .patch(events::not_editable),
    );
    r = both(
        r,
        "/api/v1/twitch-events/{key}/replay",
        get(events::replay).post(events::replay),
    );
    r = both(
        r,
        "/api/v1/twitch-events/{key}/test",
        post(events::test_event),
    );
    r = both(
        r,
        "/api/v1/twitch/eventsub-subscriptions",
        get(catalog::list),
    );
    r = both(r, "/api/v1/status", get(status::status));
    r = both(r, "/ws/tau-status", get(status::status_socket));
    r = both(r, "/api/v1/tau-user-token", get(tokens::current));
    r = both(r, "/api/v1/tau-user-token/refresh", post(tokens::refresh));
    r = both(r, "/api/v1/tokens", get(tokens::list).post(tokens::create));
    r = both(
        r,
        "/api/v1/tokens/{id}",
        axum::routing::delete(tokens::revoke),
    );
    r = both(r, "/api-token-auth", post(tokens::password_login));
    r
}

/// `GET /api/v1/heartbeat` (no auth): `{"message": "pong"}`.
async fn heartbeat() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({ "message": "pong" }))
}
