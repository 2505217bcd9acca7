//! The dashboard: a Preact app built by Vite from `dashboard/` at the repo
//! root into `dist/` (stable names, committed), compiled into the binary, so
//! `cargo build` needs no Node. `.ci/dashboard-build.sh` fails CI when the
//! committed build is stale.
//!
//! It talks to the same REST and websocket API as bots do, with a token the
//! user pastes once (kept in the browser's localStorage).

use axum::{
    http::{header, Method},
    response::IntoResponse,
    routing::get,
};

use crate::access::routes::{Need, RouteTable};

const INDEX: &str = include_str!("dist/index.html");
const SCRIPT: &str = include_str!("dist/app.js");
const STYLE: &str = include_str!("dist/app.css");
/// The "τ" mark on the header logo's purple, kept outside `dist/` (Vite's
/// build holds exactly index.html, app.js, app.css). Served at
/// `/favicon.svg` (the page's `<link rel="icon">`) and at `/favicon.ico`,
/// which browsers fetch on their own for pages without one (the OAuth
/// outcome pages), so neither is a 404.
const ICON: &str = include_str!("favicon.svg");
/// Scripts and styles only from this origin: no inline script or style.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self' ws: wss:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Adds the dashboard routes (public: the page holds no data; it asks
/// for a token and uses the API like any client).
pub fn routes(t: RouteTable) -> RouteTable {
    t.add(Method::GET, "/", Need::Public, get(index))
        .add(Method::GET, "/app.js", Need::Public, get(script))
        .add(Method::GET, "/app.css", Need::Public, get(style))
        .add(Method::GET, "/favicon.svg", Need::Public, get(icon))
        .add(Method::GET, "/favicon.ico", Need::Public, get(icon))
}

async fn index() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        INDEX,
    )
}

async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        SCRIPT,
    )
}

async fn style() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        STYLE,
    )
}

async fn icon() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        ICON,
    )
}
