//! The API's contract: an OpenAPI 3.1 document generated from the
//! handlers' own types and `#[utoipa::path]` annotations, served at
//! `GET /api/v1/openapi.json`.
//!
//! Public (like `/api/v1/heartbeat`): it describes routes, never data or
//! secrets, and API tools fetch it before they have a token.
//!
//! What it leaves out, and why (the test below holds the route table to
//! this list, so a new route cannot be forgotten):
//! - the websockets (`/eventsub/ws`, `/ws/twitch-events`, `/ws/tau-status`,
//!   `/ws/irc-messages`, `/ws/chat-bots/{login}`, `/ws/chat-bots/status`): not HTTP
//!   request/response; their frames are described in the README;
//! - Twitch's webhook (`POST /twitch/eventsub`): Twitch's contract,
//!   signed by Twitch;
//! - the Helix passthrough (`/api/twitch/helix/{*path}`): Twitch's API,
//!   forwarded unchanged;
//! - the browser pages (`/`, `/app.js`, `/app.css`, `/favicon.svg`,
//!   `/favicon.ico`, `/twitch/authorize`, `/twitch-callback` and its
//!   alias `/api/v1/chat-bots/twitch-callback`): HTML,
//!   assets and redirects, not an API.

use std::sync::LazyLock;

use axum::{http::header, response::IntoResponse};
use utoipa::{
    openapi::security::{ApiKey, ApiKeyValue, SecurityScheme},
    IntoResponses, Modify, OpenApi,
};

use crate::error::ErrorBody;

/// The name of the security scheme every token route requires.
pub const TOKEN: &str = "token";

/// The answers of every route behind a token (see [`crate::access`]).
#[derive(IntoResponses)]
pub enum AuthErrors {
    /// No `Authorization` header, another scheme, or an unknown token.
    #[response(status = 401, description = "No token, or an invalid one")]
    Unauthorized(ErrorBody),
    /// The token's role is too weak for this route.
    #[response(
        status = 403,
        description = "The token's role is too weak for this route (admin > bot > overlay)"
    )]
    Forbidden(ErrorBody),
}

/// Adds the token scheme: `Authorization: Token <token>`.
struct TokenScheme;

impl Modify for TokenScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            TOKEN,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "A TAU API token with the `Token ` prefix: `Authorization: Token <token>` \
                 (`Bearer <token>` works too). Create one with \
                 `tau-relay token create --name <name> --role <admin|bot|overlay>` \
                 or `POST /api/v1/tokens`.",
            ))),
        );
    }
}

/// The document's source: every documented handler.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "TAU relay",
        description = "Twitch API Unifier: Twitch EventSub in, one authenticated websocket out. \
                       Trailing slashes are optional on every path. Errors are `{\"detail\": \"...\"}`.",
        license(name = "MIT", identifier = "MIT"),
    ),
    paths(
        super::heartbeat,
        super::events::list,
        super::events::get_one,
        super::events::delete_one,
        super::events::not_editable,
        super::events::replay,
        super::events::test_event,
        super::events::test_sample,
        super::catalog::list,
        super::status::status,
        super::resubscribe::resubscribe,
        super::event_types::get,
        super::event_types::put,
        super::event_types::reset,
        super::twitch_app::get,
        super::twitch_app::put,
        super::twitch_app::forget,
        super::streamers::list,
        super::streamers::add,
        super::streamers::get_one,
        super::streamers::update,
        super::streamers::replace,
        super::streamers::remove,
        super::streamers::streams,
        super::streamers::latest,
        super::tokens::whoami,
        super::tokens::current,
        super::tokens::refresh,
        super::tokens::list,
        super::tokens::create,
        super::tokens::update,
        super::tokens::revoke,
        super::tokens::password_login,
        crate::twitch::routes::authorize_json,
        super::chat::send,
        super::chat::senders,
        super::chat_bots::list,
        super::chat_bots::get_one,
        super::chat_bots::remove,
        super::chat_bots::auth_link,
        super::chat_bots::channels,
        super::chat_bots::join,
        super::chat_bots::leave,
        crate::forwarding::rest::list,
        crate::forwarding::rest::create,
        crate::forwarding::rest::get_one,
        crate::forwarding::rest::update,
        crate::forwarding::rest::remove,
        crate::eventsub_server::subscriptions::create,
        crate::eventsub_server::subscriptions::list,
        crate::eventsub_server::subscriptions::delete,
        crate::eventsub_server::subscriptions::validate,
        crate::ops::healthz,
        crate::ops::readyz,
        crate::ops::metrics,
        document,
    ),
    modifiers(&TokenScheme),
    tags(
        (name = "events", description = "Event history, replay and test events"),
        (name = "tokens", description = "TAU API tokens"),
        (name = "status", description = "What the relay is doing"),
        (name = "twitch", description = "Connecting the broadcaster's Twitch account"),
        (name = "streamers", description = "Watched streamers: other channels' going live and offline"),
        (name = "operations", description = "Probes and metrics"),
        (name = "eventsub", description = "Twitch-compatible EventSub for bots written against Twitch: Helix's subscription API for `/eventsub/ws` sessions, and Twitch's token check. Errors here are Twitch's `{\"error\", \"status\", \"message\"}`"),
        (name = "webhook forwarding", description = "Signed webhook forwarding: stored events POSTed to targets with Twitch's EventSub webhook headers and HMAC signature (secrets are never returned)"),
        (name = "chat", description = "Sending chat messages, and who can send"),
        (name = "chat bots", description = "Chat bots: other Twitch accounts TAU sends chat as (their tokens are never returned)"),
    )
)]
pub struct ApiDoc;

/// The document, built and serialized once.
static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    ApiDoc::openapi()
        .to_json()
        .expect("the OpenAPI document serializes")
});

/// `GET /api/v1/openapi.json` (no auth): this document.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "status",
    responses((status = 200, description = "This document (OpenAPI 3.1)", body = Object))
)]
pub async fn document() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        DOCUMENT.as_str(),
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use axum::http::Method;
    use serde_json::Value;

    use super::*;
    use crate::access::routes::Need;

    /// Routes the document leaves out on purpose (see the module docs).
    const UNDOCUMENTED: &[&str] = &[
        "/eventsub/ws",
        "/ws/twitch-events",
        "/ws/tau-status",
        "/ws/irc-messages",
        "/ws/chat-bots/{login}",
        "/ws/chat-bots/status",
        "/api/v1/chat-bots/twitch-callback",
        "/twitch/eventsub",
        "/api/twitch/helix/{*path}",
        "/",
        "/app.js",
        "/app.css",
        "/favicon.svg",
        "/favicon.ico",
        "/twitch/authorize",
        "/twitch-callback",
    ];

    fn document() -> Value {
        serde_json::from_str(&DOCUMENT).unwrap()
    }

    /// Every operation of the document: (method, path) → its operation.
    fn operations(doc: &Value) -> Vec<(Method, String, Value)> {
        let mut out = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                if let Ok(method) = Method::from_bytes(method.to_uppercase().as_bytes()) {
                    out.push((method, path.clone(), operation.clone()));
                }
            }
        }
        out
    }

    #[test]
    fn the_document_is_openapi_3_1_with_the_token_scheme() {
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        let scheme = &doc["components"]["securitySchemes"][TOKEN];
        assert_eq!(scheme["type"], "apiKey");
        assert_eq!(scheme["in"], "header");
        assert_eq!(scheme["name"], "Authorization");
    }

    /// Every route of the table is documented with its method, or listed
    /// in [`UNDOCUMENTED`]; and the document lists nothing else. Token
    /// routes require the token scheme and document 401 and 403; public
    /// routes require nothing.
    #[test]
    fn every_route_is_documented_with_its_access_rule() {
        let doc = document();
        let table = crate::app::routes();
        let mut documented: BTreeSet<(String, String)> = operations(&doc)
            .into_iter()
            .map(|(m, p, _)| (m.to_string(), p))
            .collect();
        let operations = operations(&doc);
        for rule in table.rules() {
            if UNDOCUMENTED.contains(&rule.path.as_str()) {
                continue;
            }
            let method = rule
                .method
                .clone()
                .expect("documented routes have a method");
            let key = (method.to_string(), rule.path.clone());
            assert!(
                documented.remove(&key),
                "{method} {} is not in the OpenAPI document: add #[utoipa::path] \
                 and list it in ApiDoc, or add it to UNDOCUMENTED with a reason",
                rule.path
            );
            let (_, _, operation) = operations
                .iter()
                .find(|(m, p, _)| *m == method && *p == rule.path)
                .unwrap();
            let security = operation.get("security");
            match rule.need {
                Need::Token(_) => {
                    assert_eq!(
                        security,
                        Some(&serde_json::json!([{ TOKEN: [] }])),
                        "{method} {} needs a token",
                        rule.path
                    );
                    for status in ["401", "403"] {
                        assert!(
                            operation["responses"].get(status).is_some(),
                            "{method} {} does not document {status}",
                            rule.path
                        );
                    }
                }
                Need::Public => assert!(security.is_none(), "{method} {} is public", rule.path),
                Need::Socket(_) => panic!("{} is a socket: list it in UNDOCUMENTED", rule.path),
            }
        }
        assert!(
            documented.is_empty(),
            "documented but not routed: {documented:?}"
        );
        for path in UNDOCUMENTED {
            assert!(
                table.rules().iter().any(|r| r.path == *path),
                "{path} is listed as undocumented but is not routed"
            );
        }
    }

    /// Every error answer is documented as TAU's error shape, except the
    /// Twitch-compatible routes' own errors, which are Twitch's, and a
    /// failed webhook challenge (422), whose body adds `error` to `detail`.
    #[test]
    fn errors_are_documented_as_the_detail_shape() {
        let doc = document();
        for (method, path, operation) in operations(&doc) {
            let twitch = path.starts_with("/helix/") || path.starts_with("/oauth2/");
            for (status, response) in operation["responses"].as_object().unwrap() {
                if status.starts_with('4') {
                    let schema = &response["content"]["application/json"]["schema"]["$ref"];
                    let allowed: &[&str] = if twitch {
                        &[
                            "#/components/schemas/ErrorBody",
                            "#/components/schemas/HelixErrorBody",
                            "#/components/schemas/ValidateErrorBody",
                        ]
                    } else if status == "422" && path.starts_with("/api/v1/webhook-targets") {
                        &["#/components/schemas/UnverifiedBody"]
                    } else {
                        &["#/components/schemas/ErrorBody"]
                    };
                    assert!(
                        allowed.iter().any(|a| schema == a),
                        "{method} {path} {status}: {schema}"
                    );
                }
            }
        }
    }
}
