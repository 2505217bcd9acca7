//! Durable history: events, API tokens, revocations, settings, watched
//! streamers and their streams, webhook forwarding targets.
//!
//! One `sqlx::AnyPool` serves both backends with the same portable SQL
//! (`$n` placeholders, `ON CONFLICT`, `RETURNING`, no JSON functions); only the
//! migrations differ per backend. Events reach the database through the
//! batching [`writer::EventWriter`], so ingest never pays one commit per event;
//! its batches go past the pool: on SQLite to a thread of their own
//! (`sqlite_events`), on Postgres as one UNNEST statement on a native
//! connection (`insert_postgres`).
//!
//! `sqlite::memory:` names a throwaway database: a file in the temp
//! directory, deleted when the last handle is dropped, written without
//! fsync. (A true in-memory database is private to one connection, and the
//! event inserter needs a connection of its own.)

mod chat_bots;
pub(crate) mod events;
mod forwarding;
mod insert_postgres;
mod leases;
mod revocations;
mod settings;
mod sqlite_events;
mod streamers;
mod tokens;
pub mod writer;

use std::{
    path::{Path, PathBuf},
    str::FromStr,
    sync::Arc,
    time::Duration,
};

use sqlx::{
    any::{AnyConnectOptions, AnyPoolOptions},
    AnyPool,
};

pub use chat_bots::{ChatBotChannel, ChatBotRow, NewChatBot};
pub use events::{EventFilter, EventPage, PageCursor, StoredRow};
pub use forwarding::{TargetConfig, WebhookTarget};
pub use leases::Lease;
pub use revocations::Revocation;
pub use streamers::{Stream, Streamer, StreamerSource};
pub use tokens::{ApiToken, NewToken, TOKENS_REVISION};

use crate::config::DatabaseKind;

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or could not be reached.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The SQLite event inserter's connection failed.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
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
    /// A unique name is already taken (e.g. an API token's name).
    #[error("the name {0:?} is already taken")]
    Duplicate(String),
}

/// Result alias of this layer.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Handle to the database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    kind: DatabaseKind,
    /// Event inserts past the pool (SQLite only).
    sqlite_events: Option<Arc<sqlite_events::SqliteEventInserter>>,
    /// Deletes a throwaway database's files once the last handle is gone.
    _throwaway: Option<Arc<ThrowawayFile>>,
    /// Postgres only: the event inserter (array binds need the native driver).
    pg_insert: Option<std::sync::Arc<insert_postgres::PgInserter>>,
}

/// A `sqlite::memory:` database's file, removed on drop.
#[derive(Debug)]
struct ThrowawayFile(PathBuf);

impl ThrowawayFile {
    fn new() -> ThrowawayFile {
        let name = format!("tau-throwaway-{}.db", uuid::Uuid::new_v4().simple());
        ThrowawayFile(std::env::temp_dir().join(name))
    }

    fn url(&self) -> String {
        format!("sqlite://{}?mode=rwc", self.0.display())
    }
}

impl Drop for ThrowawayFile {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut path = self.0.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Instance name when none is configured.
pub const DEFAULT_INSTANCE: &str = "tau";

/// A stable 63-bit key for `instance` (FNV-1a), for its advisory lock.
fn lock_key(instance: &str) -> i64 {
    let hash = instance.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    (hash >> 1) as i64
}

/// Creates the instance's schema; a replica racing us to it is fine.
async fn create_schema(url: &str, instance: &str) -> Result<()> {
    use sqlx::{Connection, Executor};
    let mut conn = sqlx::AnyConnection::connect(url).await?;
    match conn
        .execute(format!("CREATE SCHEMA IF NOT EXISTS \"{instance}\"").as_str())
        .await
    {
        Ok(_) => {}
        // Two first starts at once: the loser sees a unique violation.
        Err(sqlx::Error::Database(e))
            if e.code().as_deref() == Some("23505") || e.code().as_deref() == Some("42P06") => {}
        Err(err) => return Err(err.into()),
    }
    conn.close().await?;
    Ok(())
}

/// The file a `sqlite:` URL names.
fn sqlite_file(url: &str) -> Result<PathBuf> {
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(url)?;
    Ok(Path::to_path_buf(options.get_filename()))
}

/// Page size of a new SQLite database, in bytes (SQLite's default is
/// 4096; an existing file keeps the size it was created with).
///
/// Why smaller: every commit writes each B-tree page it dirtied to the
/// WAL, whole, and a checkpoint writes it again to the database file. The
/// unique index on Twitch's message id and the user indexes take random
/// keys, so each event dirties a page of each of them, and at ingest those
/// page writes were the event inserter's largest cost (README
/// "Performance"). Half the page, half those bytes. Rows still fit: Twitch's
/// example events are 375 bytes at the median and 1.5 KiB at most, and a
/// 2 KiB page keeps up to 2,013 bytes of a row before it overflows.
/// 1 KiB pages were slower (rows overflow, trees deepen).
pub const SQLITE_PAGE_SIZE: u32 = 2048;

/// Microseconds since the Unix epoch, the stored time unit.
pub fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

impl Store {
    /// Connects as the default instance (see [`Store::open_instance`]).
    pub async fn open(url: &str, kind: DatabaseKind) -> Result<Store> {
        Store::open_instance(url, kind, DEFAULT_INSTANCE).await
    }

    /// Connects, creating the SQLite file if needed, and runs migrations.
    /// On Postgres, `instance` (validated: `[a-z][a-z0-9_]*`) is the schema
    /// that holds this relay fleet's tables, so several channels can share
    /// one database without seeing each other's events, tokens or leases.
    pub async fn open_instance(url: &str, kind: DatabaseKind, instance: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        if kind == DatabaseKind::Postgres {
            create_schema(url, instance).await?;
        }
        let throwaway =
            (kind == DatabaseKind::Sqlite && url.contains(":memory:")).then(ThrowawayFile::new);
        let mut url = match &throwaway {
            Some(file) => file.url(),
            None => url.to_string(),
        };
        if kind == DatabaseKind::Sqlite && !url.contains("mode=") {
            url.push_str(if url.contains('?') {
                "&mode=rwc"
            } else {
                "?mode=rwc"
            });
        }
        let pg_insert =
            match kind {
                DatabaseKind::Postgres => Some(std::sync::Arc::new(
                    insert_postgres::PgInserter::new(&url, instance, lock_key(instance))?,
                )),
                DatabaseKind::Sqlite => None,
            };
        let options = AnyConnectOptions::from_str(&url)?;
        let mut pool_options = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(5));
        pool_options = match &kind {
            DatabaseKind::Sqlite => pool_options.max_connections(4),
            DatabaseKind::Postgres => pool_options.max_connections(8),
        };
        // `synchronous = FULL`: a commit is on disk (WAL fsynced) before
        // the webhook answers 2xx, so an acknowledged event survives an
        // OS crash or power loss (Twitch will not resend it). The writer
        // batches events, so one fsync covers a whole batch.
        let durability = match throwaway {
            Some(_) => sqlite_events::Durability::Ephemeral,
            None => sqlite_events::Durability::Full,
        };
        if kind == DatabaseKind::Sqlite {
            // The page size first: it only takes effect while the file is
            // still empty (a new database); see `SQLITE_PAGE_SIZE`.
            let pragmas: Arc<str> = format!(
                "PRAGMA page_size = {SQLITE_PAGE_SIZE}; PRAGMA journal_mode = WAL; \
                 PRAGMA synchronous = {}; PRAGMA busy_timeout = {};",
                durability.synchronous(),
                sqlite_events::BUSY_TIMEOUT.as_millis(),
            )
            .into();
            pool_options = pool_options.after_connect(move |conn, _| {
                let pragmas = pragmas.clone();
                Box::pin(async move {
                    use sqlx::Executor;
                    conn.execute(&*pragmas).await?;
                    Ok(())
                })
            });
        }
        if kind == DatabaseKind::Postgres {
            let set_path = format!("SET search_path TO \"{instance}\"");
            pool_options = pool_options.after_connect(move |conn, _| {
                let set_path = set_path.clone();
                Box::pin(async move {
                    use sqlx::Executor;
                    conn.execute(set_path.as_str()).await?;
                    Ok(())
                })
            });
        }
        let pool = pool_options.connect_with(options).await?;
        match kind {
            DatabaseKind::Sqlite => sqlx::migrate!("./migrations/sqlite").run(&pool).await?,
            DatabaseKind::Postgres => sqlx::migrate!("./migrations/postgres").run(&pool).await?,
        }
        let sqlite_events = match kind {
            DatabaseKind::Sqlite => Some(Arc::new(sqlite_events::SqliteEventInserter::start(
                &sqlite_file(&url)?,
                durability,
            )?)),
            DatabaseKind::Postgres => None,
        };
        Ok(Store {
            pool,
            kind,
            sqlite_events,
            _throwaway: throwaway.map(Arc::new),
            pg_insert,
        })
    }

    /// A throwaway store for tests (`sqlite::memory:`).
    pub async fn in_memory() -> Store {
        Store::open("sqlite::memory:", DatabaseKind::Sqlite)
            .await
            .expect("in-memory SQLite opens")
    }

    /// A store on a throwaway Postgres of its own for `test_name`, with
    /// the server (keep it alive as long as the store). `None` where no
    /// Postgres is installed and `TAU_REQUIRE_SERVICES` is unset.
    #[cfg(test)]
    pub async fn on_throwaway_postgres(
        test_name: &str,
    ) -> Option<(tau_test_services::Postgres, Store)> {
        let pg = tau_test_services::postgres(test_name).await?;
        let store = Store::open(&pg.url(), DatabaseKind::Postgres)
            .await
            .expect("throwaway Postgres opens");
        Some((pg, store))
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
        if let Some(inserter) = &self.sqlite_events {
            inserter.close();
        }
        if let Some(inserter) = &self.pg_insert {
            inserter.close().await;
        }
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventIndex;

    async fn page_size(store: &Store) -> i64 {
        sqlx::query_scalar("PRAGMA page_size")
            .fetch_one(&store.pool)
            .await
            .unwrap()
    }

    async fn stores_an_event(store: &Store) {
        let event = events::tests::twitch_event("m1", "channel-follow", "{}");
        let seqs = store
            .insert_batch(&[(&event, &EventIndex::default())])
            .await
            .unwrap();
        assert!(seqs[0].is_some(), "stored");
        assert_eq!(store.count_events().await.unwrap(), 1);
    }

    #[tokio::test]
    async fn a_new_sqlite_database_gets_the_smaller_pages() {
        let file = ThrowawayFile::new();
        let store = Store::open(&file.url(), DatabaseKind::Sqlite)
            .await
            .unwrap();
        assert_eq!(page_size(&store).await, i64::from(SQLITE_PAGE_SIZE));
        stores_an_event(&store).await;
        store.close().await;
    }

    #[tokio::test]
    async fn an_existing_sqlite_database_keeps_its_page_size() {
        let file = ThrowawayFile::new();
        // As an older relay left it: WAL mode, and (so the test can tell
        // "kept" from "never set") a size that is no one's default.
        let legacy = rusqlite::Connection::open(&file.0).unwrap();
        legacy.pragma_update(None, "page_size", 8192).unwrap();
        legacy.pragma_update(None, "journal_mode", "WAL").unwrap();
        legacy
            .execute_batch("CREATE TABLE made_by_an_older_relay (x INTEGER)")
            .unwrap();
        drop(legacy);
        let store = Store::open(&file.url(), DatabaseKind::Sqlite)
            .await
            .unwrap();
        assert_eq!(page_size(&store).await, 8192);
        stores_an_event(&store).await;
        store.close().await;
    }
}
