//! Starting while the database is not there yet.
//!
//! On Kubernetes a relay often starts before its Postgres accepts
//! connections (the chart's bundled Postgres initializes its volume on
//! first start; a managed database fails over). Exiting on the first failed
//! connect would put the pod in CrashLoopBackOff, whose growing delays
//! outlast the database's own start. So [`build_when_reachable`] keeps
//! trying, with backoff, while the listener already answers: `/healthz`
//! 200 (the process is fine: no restart), everything else 503 (so
//! `/readyz` keeps the pod out of its Service). One log line per attempt
//! says what failed and when the next try is.
//!
//! Only a Postgres that cannot be reached (or refuses us for now) is
//! waited for. An SQLite file that cannot be opened, a malformed URL or a
//! failed migration will not get better by waiting: those still end the
//! process with the error.

use std::time::{Duration, Instant};

use axum::{http::StatusCode, routing::get, Router};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    app::{self, AppState, BuildError},
    config::{Config, DatabaseKind},
    secret::SecretKey,
    store::StoreError,
};

/// Backoff between attempts: doubles from the first to the last value.
#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    /// Wait after the first failure.
    pub first: Duration,
    /// Longest wait between attempts.
    pub max: Duration,
    /// One attempt (connect, schema, migrations) gives up after this.
    pub attempt_timeout: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            first: Duration::from_secs(1),
            max: Duration::from_secs(10),
            attempt_timeout: Duration::from_secs(30),
        }
    }
}

/// Whether waiting could cure this build failure: the database is Postgres
/// and it could not be reached, or refused us for now (starting up, too
/// many connections, database or role not created yet).
pub fn worth_retrying(kind: &DatabaseKind, err: &BuildError) -> bool {
    match (kind, err) {
        (DatabaseKind::Postgres, BuildError::Store(StoreError::Database(e))) => {
            !matches!(e, sqlx::Error::Configuration(_))
        }
        _ => false,
    }
}

/// What the listener answers while the store is not open yet.
fn waiting_router() -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .fallback(|| async {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [("content-type", "application/json")],
                r#"{"detail":"starting: the database is not reachable yet"}"#,
            )
        })
}

/// Builds the relay ([`app::build`]), retrying with `backoff` while the
/// Postgres database cannot be reached. Meanwhile `listener` (a duplicate
/// of the socket the relay will serve on) answers `/healthz` 200 and
/// everything else 503. Returns `Ok(None)` when `stop` fires first.
pub async fn build_when_reachable(
    config: Config,
    secret_key: SecretKey,
    listener: TcpListener,
    backoff: Backoff,
    stop: CancellationToken,
) -> Result<Option<AppState>, BuildError> {
    let done = CancellationToken::new();
    let waiting = {
        let done = done.clone();
        tokio::spawn(async move {
            let _ = axum::serve(crate::http_stack::accepting(listener), waiting_router())
                .with_graceful_shutdown(done.cancelled_owned())
                .await;
        })
    };
    let result = retry(config, secret_key, backoff, &stop).await;
    done.cancel();
    // Hands the socket back: the waiting server has stopped accepting.
    let _ = waiting.await;
    result
}

async fn retry(
    config: Config,
    secret_key: SecretKey,
    backoff: Backoff,
    stop: &CancellationToken,
) -> Result<Option<AppState>, BuildError> {
    let kind = config.database.clone();
    let started = Instant::now();
    let mut wait = backoff.first;
    let mut attempt = 1u32;
    loop {
        let build = app::build(config.clone(), secret_key.clone());
        let outcome = tokio::select! {
            _ = stop.cancelled() => return Ok(None),
            outcome = tokio::time::timeout(backoff.attempt_timeout, build) => outcome,
        };
        let err = match outcome {
            Ok(Ok(state)) => {
                if attempt > 1 {
                    tracing::info!(
                        attempt,
                        waited = ?started.elapsed(),
                        "database reachable; starting"
                    );
                }
                return Ok(Some(state));
            }
            Ok(Err(err)) if worth_retrying(&kind, &err) => err.to_string(),
            Ok(Err(err)) => return Err(err),
            Err(_) => format!(
                "no answer within {:?} (connect, schema, migrations)",
                backoff.attempt_timeout
            ),
        };
        tracing::warn!(
            attempt,
            retry_in = ?wait,
            waited = ?started.elapsed(),
            "database not reachable yet ({err}); not ready until it is (/readyz answers 503)"
        );
        tokio::select! {
            _ = stop.cancelled() => return Ok(None),
            _ = tokio::time::sleep(wait) => {}
        }
        wait = (wait * 2).min(backoff.max);
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_unreachable_postgres_is_waited_for() {
        let io = || {
            BuildError::Store(StoreError::Database(sqlx::Error::Io(std::io::Error::from(
                std::io::ErrorKind::ConnectionRefused,
            ))))
        };
        assert!(worth_retrying(&DatabaseKind::Postgres, &io()));
        assert!(worth_retrying(
            &DatabaseKind::Postgres,
            &BuildError::Store(StoreError::Database(sqlx::Error::PoolTimedOut))
        ));
        assert!(
            !worth_retrying(&DatabaseKind::Sqlite, &io()),
            "a local file does not come up later"
        );
        let bad_url = BuildError::Store(StoreError::Database(sqlx::Error::Configuration(
            "bad url".into(),
        )));
        assert!(!worth_retrying(&DatabaseKind::Postgres, &bad_url));
        let corrupt = BuildError::Store(StoreError::Malformed("x".into()));
        assert!(!worth_retrying(&DatabaseKind::Postgres, &corrupt));
    }
}
