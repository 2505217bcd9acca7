//! Operational endpoints: `/healthz` (alive), `/readyz` (database
//! reachable), `/metrics` (Prometheus text).

use axum::{extract::State, http::StatusCode, response::IntoResponse};

use crate::app::AppState;

/// Liveness: the process serves HTTP.
pub async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: the database answers.
pub async fn readyz(State(app): State<AppState>) -> impl IntoResponse {
    match app.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready"),
        Err(err) => {
            tracing::warn!(error = %err, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
        }
    }
}

/// Prometheus metrics.
pub async fn metrics(State(app): State<AppState>) -> impl IntoResponse {
    (
        [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
        app.metrics.render(),
    )
}
