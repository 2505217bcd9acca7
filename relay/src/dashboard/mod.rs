//! The dashboard: one static page and its script, compiled into the binary.
//!
//! It talks to the same REST and websocket API as bots do, with a token the
//! user pastes once (kept in the browser's localStorage).

use axum::{
    http::{header, Method},
    response::IntoResponse,
    routing::get,
};

use crate::access::routes::{Need, RouteTable};

const INDEX: &str = include_str!("index.html");
const SCRIPT: &str = include_str!("dashboard.js");
/// Scripts only from this origin; no inline script.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self' ws: wss:; frame-ancestors 'none'";

/// Adds the dashboard routes (public: the page holds no data; it asks
/// for a token and uses the API like any client).
pub fn routes(t: RouteTable) -> RouteTable {
    t.add(Method::GET, "/", Need::Public, get(index)).add(
        Method::GET,
        "/dashboard.js",
        Need::Public,
        get(script),
    )
}

async fn index() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        INDEX,
    )
}

async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
}
