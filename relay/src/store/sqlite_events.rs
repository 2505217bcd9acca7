//! Event inserts on SQLite, on a thread of their own.
//!
//! Why not through the sqlx pool like every other query: sqlx runs each
//! SQLite connection on a worker thread and crosses to it for every
//! statement, and back for every returned row (a channel message, a futex
//! wake and two context switches each). At maximum ingest those crossings,
//! plus converting each bind through the `Any` driver, were the largest
//! cost in the relay (README "Performance"). Here a whole batch is one job:
//! one hand-off in, one reply out. The thread owns one `rusqlite`
//! connection to the same file (WAL mode lets the pool keep reading while
//! it writes), prepares the one-row INSERT once and binds by position.
//!
//! Only event inserts go this way; every other statement, and all reads,
//! stay on the pool. Writers of both kinds wait for SQLite's write lock
//! through `busy_timeout`.

use std::{
    path::Path,
    sync::{mpsc, Mutex},
    thread,
    time::Duration,
};

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use tokio::sync::oneshot;

use super::{Result, StoreError};
use crate::event::{EventIndex, TauEvent};

/// How long a write waits for SQLite's lock (held by a pool connection).
pub(super) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The statement every event is inserted with (prepared once).
const INSERT_EVENT: &str = "INSERT INTO events (id, event_id, event_type, version, event_source, \
     broadcaster_id, event_data, created_us, origin, user_id, user_login, user_name, reward_id, \
     raid_from_id, raid_from_login, raid_to_id, raid_to_login) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'twitch', ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16) \
     ON CONFLICT (event_id) DO NOTHING RETURNING seq";

/// Whether a commit waits for the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Durability {
    /// `synchronous = FULL`: the WAL is fsynced before a commit returns,
    /// so an acknowledged event survives power loss.
    Full,
    /// `synchronous = OFF`, for throwaway databases (tests, `:memory:`).
    Ephemeral,
}

impl Durability {
    /// The `PRAGMA synchronous` value that gives it.
    pub(super) fn synchronous(self) -> &'static str {
        match self {
            Durability::Full => "FULL",
            Durability::Ephemeral => "OFF",
        }
    }
}

/// One event's column values, owned so they can cross to the thread.
struct Row {
    id: String,
    event_id: String,
    event_type: String,
    version: String,
    event_source: String,
    event_data: String,
    created_us: i64,
    index: EventIndex,
}

impl Row {
    fn new(event: &TauEvent, index: &EventIndex) -> Row {
        Row {
            id: event.id.expect("stored events have an id").to_string(),
            event_id: event.event_id.clone(),
            event_type: event.event_type.clone(),
            version: event.version.clone(),
            event_source: event.event_source.clone(),
            event_data: event.event_data.get().to_string(),
            created_us: event.created.timestamp_micros(),
            index: index.clone(),
        }
    }
}

struct Job {
    rows: Vec<Row>,
    reply: oneshot::Sender<Result<Vec<Option<i64>>>>,
}

/// Handle to the insert thread. The thread ends (closing its connection)
/// when the handle is dropped or closed.
#[derive(Debug)]
pub(super) struct SqliteEventInserter {
    /// `None` once closed: inserts then fail as on a closed pool.
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
}

impl SqliteEventInserter {
    /// Opens a connection to the database file at `path` (already
    /// migrated by the pool) and starts the thread.
    pub(super) fn start(path: &Path, durability: Durability) -> Result<SqliteEventInserter> {
        let connection = open(path, durability)?;
        let (jobs, queue) = mpsc::channel::<Job>();
        thread::Builder::new()
            .name("tau-sqlite-events".into())
            .spawn(move || {
                let mut connection = connection;
                // One job at a time: the batching writer awaits each reply.
                for job in queue {
                    let _ = job.reply.send(insert(&mut connection, &job.rows));
                }
            })
            .map_err(|err| {
                StoreError::Malformed(format!("cannot start the SQLite writer: {err}"))
            })?;
        Ok(SqliteEventInserter {
            jobs: Mutex::new(Some(jobs)),
        })
    }

    /// Stops the thread after the job in hand; later inserts fail.
    pub(super) fn close(&self) {
        self.jobs.lock().expect("inserter lock").take();
    }

    /// Inserts `batch` in one transaction: per event `Some(seq)` if it was
    /// new, `None` if its `event_id` was already stored.
    pub(super) async fn insert(
        &self,
        batch: &[(&TauEvent, &EventIndex)],
    ) -> Result<Vec<Option<i64>>> {
        let rows = batch
            .iter()
            .map(|(event, index)| Row::new(event, index))
            .collect();
        let (reply, answer) = oneshot::channel();
        let jobs = self.jobs.lock().expect("inserter lock").clone();
        jobs.ok_or(StoreError::Database(sqlx::Error::PoolClosed))?
            .send(Job { rows, reply })
            .map_err(|_| StoreError::WriterGone)?;
        answer.await.map_err(|_| StoreError::WriterGone)?
    }
}

fn open(path: &Path, durability: Durability) -> Result<Connection> {
    let connection = Connection::open(path)?;
    connection.busy_timeout(BUSY_TIMEOUT)?;
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.pragma_update(None, "synchronous", durability.synchronous())?;
    Ok(connection)
}

fn insert(connection: &mut Connection, rows: &[Row]) -> Result<Vec<Option<i64>>> {
    // IMMEDIATE: take the write lock now (waiting up to the busy timeout)
    // rather than fail mid-batch when upgrading a read lock.
    let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut seqs = Vec::with_capacity(rows.len());
    {
        let mut statement = transaction.prepare_cached(INSERT_EVENT)?;
        for row in rows {
            let index = &row.index;
            let seq = statement
                .query_row(
                    params![
                        row.id,
                        row.event_id,
                        row.event_type,
                        row.version,
                        row.event_source,
                        index.broadcaster_id,
                        row.event_data,
                        row.created_us,
                        index.user_id,
                        index.user_login,
                        index.user_name,
                        index.reward_id,
                        index.raid_from.0,
                        index.raid_from.1,
                        index.raid_to.0,
                        index.raid_to.1,
                    ],
                    |stored| stored.get::<_, i64>(0),
                )
                .optional()?;
            seqs.push(seq);
        }
    }
    transaction.commit()?;
    Ok(seqs)
}
