//! The admin server: `/metrics` (Prometheus text), `/healthz` (the process
//! is alive) and `/readyz` (the CRD is installed and readable, so the
//! operator can do its job; standby replicas waiting for the Lease are
//! ready too, and say so).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::metrics::Metrics;

/// What the admin endpoints report.
#[derive(Clone, Default)]
pub struct Health {
    /// The CRD answered a list.
    pub ready: Arc<AtomicBool>,
    /// This replica holds the Lease (or leader election is off).
    pub leader: Arc<AtomicBool>,
    /// Metrics to encode.
    pub metrics: Arc<Metrics>,
}

/// The admin routes.
pub fn router(health: Health) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(health)
}

async fn metrics(State(h): State<Health>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        h.metrics.encode(),
    )
}

async fn readyz(State(h): State<Health>) -> impl IntoResponse {
    if !h.ready.load(Ordering::Relaxed) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "waiting for the TwitchChannel CRD\n",
        );
    }
    if h.leader.load(Ordering::Relaxed) {
        (StatusCode::OK, "ok: leader\n")
    } else {
        (StatusCode::OK, "ok: standby\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn get(app: Router, path: &str) -> (StatusCode, String) {
        let response = app
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn health_readiness_and_metrics() {
        let health = Health::default();
        let app = router(health.clone());
        assert_eq!(get(app.clone(), "/healthz").await.0, StatusCode::OK);
        assert_eq!(
            get(app.clone(), "/readyz").await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        health.ready.store(true, Ordering::Relaxed);
        assert_eq!(
            get(app.clone(), "/readyz").await,
            (StatusCode::OK, "ok: standby\n".into())
        );
        health
            .metrics
            .reconciled(std::time::Duration::from_millis(5));
        let (status, body) = get(app, "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            body.contains("tau_operator_reconciliations_total 1"),
            "{body}"
        );
    }
}
