//! REST API under `/api/v1`, with the original TAU's paths and shapes.
//!
//! The contract is an OpenAPI 3.1 document generated from these handlers'
//! own types ([`openapi`]), served at `/api/v1/openapi.json`.
//!
//! Every route but the heartbeat and the document takes `Authorization: Token <TAU token>`
//! of the role its rule names (see [`crate::access`]); the handlers get the
//! caller as [`Authenticated`]. Trailing slashes are optional
//! ([`crate::http_stack`] trims them before routing).
//!
//! | role     | routes |
//! |----------|--------|
//! | overlay  | history (list, one event), `/ws/twitch-events/`, reading chat (`/ws/irc-messages/`, `/ws/chat-bots/<login>/`), `/ws/chat-bots/status/`, `whoami`, watched streamers and their streams |
//! | bot      | replay, test events (and their samples), status (+ `/ws/tau-status/`), catalog, own token, sending chat (`/api/v1/irc`, chat senders), listing chat bots and their channels |
//! | admin    | tokens, deleting events, connecting Twitch, resubscribing, choosing event types, the Twitch application (`/api/v1/twitch/app`), webhook forwarding targets (`/api/v1/webhook-targets`), changing the watched streamers, adding (authorization link) and removing chat bots, their channels |

mod auth;
mod catalog;
mod chat;
mod chat_bots;
mod event_types;
pub mod events;
pub mod extract;
pub mod helix;
pub mod openapi;
mod resubscribe;
mod status;
mod streamers;
mod tokens;
mod twitch_app;

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
    let streamer = "/api/v1/streamers/{id}";
    t.add(
        Method::GET,
        "/api/v1/heartbeat",
        Need::Public,
        get(heartbeat),
    )
    .add(
        Method::GET,
        "/api/v1/openapi.json",
        Need::Public,
        get(openapi::document),
    )
    .add(
        Method::GET,
        "/api/v1/twitch-events",
        OVERLAY,
        get(events::list),
    )
    .add(Method::GET, event, OVERLAY, get(events::get_one))
    .add(Method::DELETE, event, ADMIN, delete(events::delete_one))
    .add(Method::PUT, event, ADMIN, put(events::not_editable))
    .add(Method::PATCH, event, ADMIN, patch(events::not_editable))
    .add(
        Method::GET,
        "/api/v1/twitch-events/{key}/replay",
        BOT,
        get(events::replay),
    )
    .add(
        Method::POST,
        "/api/v1/twitch-events/{key}/replay",
        BOT,
        post(events::replay),
    )
    .add(
        Method::GET,
        "/api/v1/twitch-events/{key}/test",
        BOT,
        get(events::test_sample),
    )
    .add(
        Method::POST,
        "/api/v1/twitch-events/{key}/test",
        BOT,
        post(events::test_event),
    )
    .add(
        Method::GET,
        "/api/v1/twitch/eventsub-subscriptions",
        BOT,
        get(catalog::list),
    )
    .add(Method::GET, "/api/v1/status", BOT, get(status::status))
    .add(
        Method::POST,
        "/api/v1/twitch/resubscribe",
        ADMIN,
        post(resubscribe::resubscribe),
    )
    .add(
        Method::GET,
        "/api/v1/twitch/event-types",
        ADMIN,
        get(event_types::get),
    )
    .add(
        Method::PUT,
        "/api/v1/twitch/event-types",
        ADMIN,
        put(event_types::put),
    )
    .add(
        Method::DELETE,
        "/api/v1/twitch/event-types",
        ADMIN,
        delete(event_types::reset),
    )
    .add(
        Method::GET,
        "/api/v1/webhook-targets",
        ADMIN,
        get(crate::forwarding::rest::list),
    )
    .add(
        Method::POST,
        "/api/v1/webhook-targets",
        ADMIN,
        post(crate::forwarding::rest::create),
    )
    .add(
        Method::GET,
        "/api/v1/webhook-targets/{id}",
        ADMIN,
        get(crate::forwarding::rest::get_one),
    )
    .add(
        Method::PATCH,
        "/api/v1/webhook-targets/{id}",
        ADMIN,
        patch(crate::forwarding::rest::update),
    )
    .add(
        Method::DELETE,
        "/api/v1/webhook-targets/{id}",
        ADMIN,
        delete(crate::forwarding::rest::remove),
    )
    .add(
        Method::GET,
        "/api/v1/twitch/app",
        ADMIN,
        get(twitch_app::get),
    )
    .add(
        Method::PUT,
        "/api/v1/twitch/app",
        ADMIN,
        put(twitch_app::put),
    )
    .add(
        Method::DELETE,
        "/api/v1/twitch/app",
        ADMIN,
        delete(twitch_app::forget),
    )
    .add(
        Method::GET,
        "/ws/tau-status",
        Need::Socket(Role::Bot),
        get(status::status_socket),
    )
    .add(
        Method::GET,
        "/api/v1/tau-user-token",
        BOT,
        get(tokens::current),
    )
    .add(
        Method::POST,
        "/api/v1/tau-user-token/refresh",
        BOT,
        post(tokens::refresh),
    )
    .add(Method::POST, "/api/v1/irc", BOT, post(chat::send))
    .add(Method::GET, "/api/v1/chat/senders", BOT, get(chat::senders))
    .add(Method::GET, "/api/v1/chat-bots", BOT, get(chat_bots::list))
    .add(
        Method::GET,
        "/api/v1/chat-bots/twitch-auth-link",
        ADMIN,
        get(chat_bots::auth_link),
    )
    .add(
        Method::GET,
        "/api/v1/chat-bots/channels",
        BOT,
        get(chat_bots::channels),
    )
    .add(
        Method::POST,
        "/api/v1/chat-bots/channels",
        ADMIN,
        post(chat_bots::join),
    )
    .add(
        Method::DELETE,
        "/api/v1/chat-bots/channels/{id}",
        ADMIN,
        delete(chat_bots::leave),
    )
    .add(
        Method::GET,
        "/api/v1/chat-bots/{id}",
        BOT,
        get(chat_bots::get_one),
    )
    .add(
        Method::DELETE,
        "/api/v1/chat-bots/{id}",
        ADMIN,
        delete(chat_bots::remove),
    )
    .add(
        Method::GET,
        "/api/v1/streamers",
        OVERLAY,
        get(streamers::list),
    )
    .add(
        Method::POST,
        "/api/v1/streamers",
        ADMIN,
        post(streamers::add),
    )
    .add(Method::GET, streamer, OVERLAY, get(streamers::get_one))
    .add(Method::PATCH, streamer, ADMIN, patch(streamers::update))
    .add(Method::PUT, streamer, ADMIN, put(streamers::replace))
    .add(Method::DELETE, streamer, ADMIN, delete(streamers::remove))
    .add(
        Method::GET,
        "/api/v1/streamers/{id}/streams",
        OVERLAY,
        get(streamers::streams),
    )
    .add(
        Method::GET,
        "/api/v1/streamers/{id}/streams/latest",
        OVERLAY,
        get(streamers::latest),
    )
    .add(Method::GET, "/api/v1/whoami", OVERLAY, get(tokens::whoami))
    .add(Method::GET, "/api/v1/tokens", ADMIN, get(tokens::list))
    .add(Method::POST, "/api/v1/tokens", ADMIN, post(tokens::create))
    .add(
        Method::DELETE,
        "/api/v1/tokens/{id}",
        ADMIN,
        delete(tokens::revoke),
    )
    .add(
        Method::PATCH,
        "/api/v1/tokens/{id}",
        ADMIN,
        patch(tokens::update),
    )
    .add(
        Method::POST,
        "/api-token-auth",
        Need::Public,
        post(tokens::password_login),
    )
}

/// The heartbeat's answer.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Pong {
    /// Always `pong`.
    #[schema(example = "pong")]
    message: &'static str,
}

/// `GET /api/v1/heartbeat` (no auth): `{"message": "pong"}`.
#[utoipa::path(
    get,
    path = "/api/v1/heartbeat",
    tag = "status",
    responses((status = 200, description = "The relay answers", body = Pong))
)]
async fn heartbeat() -> axum::Json<Pong> {
    axum::Json(Pong { message: "pong" })
}
