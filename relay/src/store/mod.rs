//! Durable history: events, API tokens, revocations, settings.
//!
//! One `sqlx::AnyPool` serves both backends with the same portable SQL
//! (`$n` placeholders, `ON CONFLICT`, `RETURNING`, no JSON functions); only the
//! migrations differ per backend. Events reach the database through the
//! batching [`writer::EventWriter`], so ingest never pays one commit per event.

pub(crate) mod events;
mod leases;
mod revocations;
mod settings;
mod tokens;
pub mod writer;

use std::{str::FromStr, time::Duration};

use sqlx::{
    any::{AnyConnectOptions, AnyPoolOptions},
    AnyPool,
};

pub use events::{EventFilter, EventPage, PageCursor, StoredRow};
pub use leases::Lease;
pub use revocations::Revocation;
pub use tokens::{ApiToken, NewToken};

use crate::config::DatabaseKind;

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or could not be reached.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Schema migration failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored row could not be decoded (corrupt or foreign data).
    #[error("stored row is malformed: {0}")]
    Malformed(String),
    /// The transaction holding this event failed (the cause was logged once).
    #[error("event batch not stored: {0}")]
    BatchFailed(String),
    /// The batching writer has stopped (shutdown).
    #[error("event writer is not running")]
    WriterGone,
}

/// Result alias of this layer.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Handle to the database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    kind: DatabaseKind,
}

/// Microseconds since the Unix epoch, the stored time unit.
pub fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

impl Store {
    /// Connects, creating the SQLite file if needed, and runs migrations.
    pub async fn open(url: &str, kind: DatabaseKind) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let mut url = url.to_string();
        let in_memory = url.contains(":memory:");
        if kind == DatabaseKind::Sqlite && !in_memory && !url.contains("mode=") {
            url.push_str(if url.contains('?') {
                "&mode=rwc"
            } else {
                "?mode=rwc"
            });
        }
        let options = AnyConnectOptions::from_str(&url)?;
        let mut pool_options = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(5));
        pool_options = match (&kind, in_memory) {
            // Every connection to `:memory:` is its own database: keep exactly one.
            (DatabaseKind::Sqlite, true) => pool_options
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None),
            (DatabaseKind::Sqlite, false) => pool_options.max_connections(4),
            (DatabaseKind::Postgres, _) => pool_options.max_connections(8),
        };
        if kind == DatabaseKind::Sqlite {
            pool_options = pool_options.after_connect(|conn, _| {
                Box::pin(async move {
                    use sqlx::Executor;
                    conn.execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;")
                        .await?;
                    Ok(())
                })
            });
        }
        let pool = pool_options.connect_with(options).await?;
        match kind {
            DatabaseKind::Sqlite => sqlx::migrate!("./migrations/sqlite").run(&pool).await?,
            DatabaseKind::Postgres => sqlx::migrate!("./migrations/postgres").run(&pool).await?,
        }
        Ok(Store { pool, kind })
    }

    /// An in-memory store for tests.
    pub async fn in_memory() -> Store {
        Store::open("sqlite::memory:", DatabaseKind::Sqlite)
            .await
            .expect("in-memory SQLite opens")
    }

    /// Which backend this is.
    pub fn kind(&self) -> &DatabaseKind {
        &self.kind
    }

    /// Cheap liveness query for `/readyz`.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes the pool (waits for connections to be returned).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}
