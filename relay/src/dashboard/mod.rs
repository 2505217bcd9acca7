//! The dashboard: one static page and its script, compiled into the binary.
//!
//! It talks to the same REST and websocket API as bots do, with a token the
//! user pastes once (kept in the browser's localStorage).

use axum::{http::header, response::IntoResponse, routing::get, Router};

use crate::app::AppState;

const INDEX: &str = include_str!("index.html");
const SCRIPT: &str = include_str!("dashboard.js");
/// Scripts only from this origin; no inline script.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self' ws: wss:; frame-ancestors 'none'";

/// Adds the dashboard routes.
pub fn routes(r: Router<AppState>) -> Router<AppState> {
    r.route("/", get(index)).route("/dashboard.js", get(script))
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
