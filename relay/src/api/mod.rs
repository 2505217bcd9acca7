//! REST API under `/api/v1`, with the original TAU's paths and shapes.
//!
//! Every route but the heartbeat takes `Authorization: Token <TAU token>`
//! of the role its rule names (see [`crate::access`]); the handlers get the
//! caller as [`Authenticated`]. Trailing slashes are optional.
//!
//! | role     | routes |
//! |----------|--------|
//! | overlay  | history (list, one event), `/ws/twitch-events/` |
//! | bot      | replay, test events, status (+ `/ws/tau-status/`), catalog, own token |
//! | admin    | tokens, deleting events, connecting Twitch |

mod auth;
mod catalog;
pub mod events;
pub mod helix;
mod status;
mod tokens;

use axum::{
    http::Method,
    routing::{delete, get, patch, post, put},
};

pub use auth::Authenticated;

use crate::access::{
    routes::{Need, RouteTable},
    Role,
};

const OVERLAY: Need = Need::Token(Role::Overlay);
const BOT: Need = Need::Token(Role::Bot);
const ADMIN: Need = Need::Token(Role::Admin);

/// Adds the API routes, each with its rule.
pub fn routes(t: RouteTable) -> RouteTable {
    let event = "/api/v1/twitch-events/{key}";
    t.both(
        Method::GET,
        "/api/v1/heartbeat",
        Need::Public,
        get(heartbeat),
    )
    .both(
        Method::GET,
        "/api/v1/twitch-events",
        OVERLAY,
        get(events::list),
    )
    .both(Method::GET, event, OVERLAY, get(events::get_one))
    .both(Method::DELETE, event, ADMIN, delete(events::delete_one))
    .both(Method::PUT, event, ADMIN, put(events::not_editable))
    .both(Method::PATCH, event, ADMIN, patch(events::not_editable))
    .both(
        Method::GET,
        "/api/v1/twitch-events/{key}/replay",
        BOT,
        get(events::replay),
    )
    .both(
        Method::POST,
        "/api/v1/twitch-events/{key}/replay",
        BOT,
        post(events::replay),
    )
    .both(
        Method::POST,
        "/api/v1/twitch-events/{key}/test",
        BOT,
        post(events::test_event),
    )
    .both(
        Method::GET,
        "/api/v1/twitch/eventsub-subscriptions",
        BOT,
        get(catalog::list),
    )
    .both(Method::GET, "/api/v1/status", BOT, get(status::status))
    .both(
        Method::GET,
        "/ws/tau-status",
        Need::Socket(Role::Bot),
        get(status::status_socket),
    )
    .both(
        Method::GET,
        "/api/v1/tau-user-token",
        BOT,
        get(tokens::current),
    )
    .both(
        Method::POST,
        "/api/v1/tau-user-token/refresh",
        BOT,
        post(tokens::refresh),
    )
    .both(Method::GET, "/api/v1/tokens", ADMIN, get(tokens::list))
    .both(Method::POST, "/api/v1/tokens", ADMIN, post(tokens::create))
    .both(
        Method::DELETE,
        "/api/v1/tokens/{id}",
        ADMIN,
        delete(tokens::revoke),
    )
    .both(
        Method::PATCH,
        "/api/v1/tokens/{id}",
        ADMIN,
        patch(tokens::update),
    )
    .both(
        Method::POST,
        "/api-token-auth",
        Need::Public,
        post(tokens::password_login),
    )
}

/// `GET /api/v1/heartbeat` (no auth): `{"message": "pong"}`.
async fn heartbeat() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({ "message": "pong" }))
}
