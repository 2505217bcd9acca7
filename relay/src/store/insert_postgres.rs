//! Postgres event insert: one statement and one round trip per batch.
//!
//! The batch travels as 17 column arrays unpacked by `UNNEST`, so one SQL
//! text serves every batch size (one prepared statement, no chunking, no
//! 65,535-parameter ceiling) and Postgres parses 17 parameters instead of
//! 17 per row.
//!
//! Why a native `PgConnection` beside the store's `AnyPool`: sqlx's Any
//! driver binds scalars only (`AnyValueKind` has no arrays), so the array
//! binds need the Postgres driver. Why one dedicated connection rather than
//! a second pool: a pool pings a connection when it is acquired and again
//! when it is returned, two extra round trips per batch; the relay's single
//! writer task inserts one batch at a time anyway. The connection is opened
//! on first use and dropped after any error, so the next batch reconnects
//! (a restarted Postgres costs one failed batch, which Twitch retries).
//!
//! Ordering across replicas: sequence numbers must be handed out in commit
//! order (readers of `seq > n` must never miss a row that commits later
//! with a smaller `seq`). The statement takes this instance's transaction
//! advisory lock before any row is produced: the lock is a CTE that the
//! `INSERT`'s `SELECT` gates on with an uncorrelated `EXISTS`, which
//! Postgres runs once, before reading a row (a one-time filter), and a CTE
//! calling a volatile function is always evaluated, never inlined. Each
//! row's `nextval` is computed above that gate, so inside the lock
//! (`EXPLAIN VERBOSE` on Postgres 15: `Result` with `One-Time Filter` on the
//! CTE's `InitPlan` under the `Subquery Scan` that computes `nextval`; the
//! test `sequence_numbers_are_handed_out_only_under_the_lock` checks it). The
//! statement runs in its own implicit transaction, so the lock is held
//! until its commit: what the old `BEGIN; SELECT pg_advisory_xact_lock;
//! INSERT…; COMMIT` did, in one round trip instead of at least four.

use std::{str::FromStr, time::Duration};

use sqlx::{
    postgres::{PgConnectOptions, PgConnection},
    ConnectOptions, Connection, Executor, Row,
};
use tokio::sync::Mutex;

use super::{Result, StoreError};
use crate::event::{EventIndex, Origin, TauEvent};

/// How long opening the insert connection may take before the batch fails
/// (as long as the store's pool waits for a connection).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The whole batch insert. `$18` is the advisory lock key. `ORDER BY n`
/// (the array position) makes batch order the `nextval` order.
const INSERT_SQL: &str = "\
WITH instance_lock AS (SELECT pg_advisory_xact_lock($18)) \
INSERT INTO events (id, event_id, event_type, version, event_source, broadcaster_id, \
    event_data, created_us, origin, user_id, user_login, user_name, reward_id, \
    raid_from_id, raid_from_login, raid_to_id, raid_to_login) \
SELECT id, event_id, event_type, version, event_source, broadcaster_id, \
    event_data, created_us, origin, user_id, user_login, user_name, reward_id, \
    raid_from_id, raid_from_login, raid_to_id, raid_to_login \
FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
    $7::text[], $8::bigint[], $9::text[], $10::text[], $11::text[], $12::text[], \
    $13::text[], $14::text[], $15::text[], $16::text[], $17::text[]) \
    WITH ORDINALITY AS batch (id, event_id, event_type, version, event_source, \
    broadcaster_id, event_data, created_us, origin, user_id, user_login, user_name, \
    reward_id, raid_from_id, raid_from_login, raid_to_id, raid_to_login, n) \
WHERE EXISTS (SELECT 1 FROM instance_lock) \
ORDER BY n \
ON CONFLICT (event_id) DO NOTHING \
RETURNING event_id, seq";

/// The Postgres event inserter of one [`super::Store`]: a lazily opened
/// connection to the instance's schema and its advisory lock key.
#[derive(Debug)]
pub(super) struct PgInserter {
    /// Where to connect (the store's URL).
    options: PgConnectOptions,
    /// `SET search_path` to the instance's schema, run once per connection.
    set_path: String,
    /// Advisory lock serializing this instance's event inserts.
    lock_key: i64,
    /// The open connection, if any (none before first use or after an error).
    conn: Mutex<Option<PgConnection>>,
}

impl PgInserter {
    /// An inserter for `instance`'s schema (validated by the caller);
    /// connects on first use.
    pub(super) fn new(url: &str, instance: &str, lock_key: i64) -> Result<PgInserter> {
        Ok(PgInserter {
            options: PgConnectOptions::from_str(url)?.disable_statement_logging(),
            set_path: format!("SET search_path TO \"{instance}\""),
            lock_key,
            conn: Mutex::new(None),
        })
    }

    /// Closes the connection, if open.
    pub(super) async fn close(&self) {
        if let Some(conn) = self.conn.lock().await.take() {
            let _ = conn.close().await;
        }
    }

    async fn connect(&self) -> Result<PgConnection> {
        let connect = async {
            let mut conn = PgConnection::connect_with(&self.options).await?;
            conn.execute(self.set_path.as_str()).await?;
            Ok::<_, sqlx::Error>(conn)
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
            Ok(conn) => Ok(conn?),
            Err(_) => Err(StoreError::Database(sqlx::Error::PoolTimedOut)),
        }
    }
}

/// Inserts a batch in one statement (see the module doc). For each event:
/// `Some(seq)` if it was new, `None` if its `event_id` was already stored;
/// new positions ascend in batch order.
pub(super) async fn insert_batch(
    inserter: &PgInserter,
    batch: &[(&TauEvent, &EventIndex)],
) -> Result<Vec<Option<i64>>> {
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    let columns = Columns::of(batch);
    let mut slot = inserter.conn.lock().await;
    let conn = match slot.as_mut() {
        Some(conn) => conn,
        None => slot.insert(inserter.connect().await?),
    };
    let rows = match columns
        .bind(sqlx::query(INSERT_SQL))
        .bind(inserter.lock_key)
        .fetch_all(&mut *conn)
        .await
    {
        Ok(rows) => rows,
        Err(err) => {
            // The connection may be broken or mid-protocol: start afresh.
            *slot = None;
            return Err(err.into());
        }
    };
    drop(slot);
    let mut seqs = std::collections::HashMap::with_capacity(rows.len());
    for row in &rows {
        seqs.insert(row.try_get::<&str, _>(0)?, row.try_get::<i64, _>(1)?);
    }
    Ok(batch
        .iter()
        .map(|(event, _)| seqs.get(event.event_id.as_str()).copied())
        .collect())
}

/// A batch turned inside out: one vector per inserted column.
struct Columns<'a> {
    id: Vec<String>,
    event_id: Vec<&'a str>,
    event_type: Vec<&'a str>,
    version: Vec<&'a str>,
    event_source: Vec<&'a str>,
    broadcaster_id: Vec<Option<&'a str>>,
    event_data: Vec<&'a str>,
    created_us: Vec<i64>,
    origin: Vec<&'static str>,
    user_id: Vec<Option<&'a str>>,
    user_login: Vec<Option<&'a str>>,
    user_name: Vec<Option<&'a str>>,
    reward_id: Vec<Option<&'a str>>,
    raid_from_id: Vec<Option<&'a str>>,
    raid_from_login: Vec<Option<&'a str>>,
    raid_to_id: Vec<Option<&'a str>>,
    raid_to_login: Vec<Option<&'a str>>,
}

impl<'a> Columns<'a> {
    fn of(batch: &[(&'a TauEvent, &'a EventIndex)]) -> Columns<'a> {
        let mut c = Columns::with_capacity(batch.len());
        for &(event, index) in batch {
            debug_assert_eq!(
                event.origin,
                Origin::Twitch,
                "only Twitch events are stored"
            );
            c.id.push(event.id.expect("stored events have an id").to_string());
            c.event_id.push(&event.event_id);
            c.event_type.push(&event.event_type);
            c.version.push(&event.version);
            c.event_source.push(&event.event_source);
            c.broadcaster_id.push(index.broadcaster_id.as_deref());
            c.event_data.push(event.event_data.get());
            c.created_us.push(event.created.timestamp_micros());
            c.origin.push("twitch");
            c.user_id.push(index.user_id.as_deref());
            c.user_login.push(index.user_login.as_deref());
            c.user_name.push(index.user_name.as_deref());
            c.reward_id.push(index.reward_id.as_deref());
            c.raid_from_id.push(index.raid_from.0.as_deref());
            c.raid_from_login.push(index.raid_from.1.as_deref());
            c.raid_to_id.push(index.raid_to.0.as_deref());
            c.raid_to_login.push(index.raid_to.1.as_deref());
        }
        c
    }

    fn with_capacity(n: usize) -> Columns<'a> {
        Columns {
            id: Vec::with_capacity(n),
            event_id: Vec::with_capacity(n),
            event_type: Vec::with_capacity(n),
            version: Vec::with_capacity(n),
            event_source: Vec::with_capacity(n),
            broadcaster_id: Vec::with_capacity(n),
            event_data: Vec::with_capacity(n),
            created_us: Vec::with_capacity(n),
            origin: Vec::with_capacity(n),
            user_id: Vec::with_capacity(n),
            user_login: Vec::with_capacity(n),
            user_name: Vec::with_capacity(n),
            reward_id: Vec::with_capacity(n),
            raid_from_id: Vec::with_capacity(n),
            raid_from_login: Vec::with_capacity(n),
            raid_to_id: Vec::with_capacity(n),
            raid_to_login: Vec::with_capacity(n),
        }
    }

    /// Binds the 17 arrays as `$1`..`$17`, in [`INSERT_SQL`]'s column order.
    fn bind(
        self,
        query: sqlx::query::Query<'a, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::Query<'a, sqlx::Postgres, sqlx::postgres::PgArguments> {
        query
            .bind(self.id)
            .bind(self.event_id)
            .bind(self.event_type)
            .bind(self.version)
            .bind(self.event_source)
            .bind(self.broadcaster_id)
            .bind(self.event_data)
            .bind(self.created_us)
            .bind(self.origin)
            .bind(self.user_id)
            .bind(self.user_login)
            .bind(self.user_name)
            .bind(self.reward_id)
            .bind(self.raid_from_id)
            .bind(self.raid_from_login)
            .bind(self.raid_to_id)
            .bind(self.raid_to_login)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use sqlx::{Connection, PgConnection};

    use super::super::{lock_key, Store, DEFAULT_INSTANCE};
    use crate::{event::EventIndex, store::events::tests::twitch_event};

    /// The statement takes the instance's advisory lock before it hands out
    /// a single sequence number: while another session (a replica's insert)
    /// holds the lock, the insert waits and the sequence stays where it was.
    /// That is what keeps `seq` in commit order across replicas.
    #[tokio::test]
    async fn sequence_numbers_are_handed_out_only_under_the_lock() {
        let Some((pg, store)) = Store::on_throwaway_postgres("insert_waits_for_the_lock").await
        else {
            return;
        };
        let index = EventIndex::default();
        let first = twitch_event("first", "channel-follow", "{}");
        let [Some(first_seq)] = store.insert_batch(&[(&first, &index)]).await.unwrap()[..] else {
            panic!("the first event was not stored");
        };

        let mut other = PgConnection::connect(&pg.url()).await.unwrap();
        let key = lock_key(DEFAULT_INSTANCE);
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(key)
            .execute(&mut other)
            .await
            .unwrap();
        let inserting = tokio::spawn({
            let store = store.clone();
            async move {
                let batch = [
                    twitch_event("second", "channel-follow", "{}"),
                    twitch_event("third", "channel-follow", "{}"),
                ];
                let index = EventIndex::default();
                let rows: Vec<_> = batch.iter().map(|e| (e, &index)).collect();
                store.insert_batch(&rows).await.unwrap()
            }
        });
        // Wait until the insert is queued behind the lock (not a timing:
        // Postgres says so).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
            )
            .fetch_one(&mut other)
            .await
            .unwrap();
            if waiting == 1 {
                break;
            }
            assert!(
                !inserting.is_finished(),
                "the insert did not wait for the lock"
            );
            assert!(
                tokio::time::Instant::now() < deadline,
                "the insert never reached the lock"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let last_value: i64 = sqlx::query_scalar("SELECT last_value FROM tau.events_seq_seq")
            .fetch_one(&mut other)
            .await
            .unwrap();
        assert_eq!(
            last_value, first_seq,
            "a sequence number was taken before the lock"
        );

        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(key)
            .execute(&mut other)
            .await
            .unwrap();
        let seqs = inserting.await.unwrap();
        assert!(
            matches!(seqs[..], [Some(a), Some(b)] if first_seq < a && a < b),
            "{seqs:?} after {first_seq}"
        );
    }

    /// Any batch size is one statement (no chunking, no parameter ceiling):
    /// 2,000 rows, ids repeated from earlier batches left out, positions in
    /// batch order.
    #[tokio::test]
    async fn a_large_batch_is_one_statement_in_batch_order() {
        let Some((_pg, store)) = Store::on_throwaway_postgres("insert_large_batch").await else {
            return;
        };
        let index = EventIndex::default();
        let old = twitch_event("big7", "channel-follow", "{}");
        store.insert_batch(&[(&old, &index)]).await.unwrap();
        let batch: Vec<_> = (0..2000)
            .map(|i| twitch_event(&format!("big{i}"), "channel-cheer", r#"{"bits":1}"#))
            .collect();
        let rows: Vec<_> = batch.iter().map(|e| (e, &index)).collect();
        let seqs = store.insert_batch(&rows).await.unwrap();
        assert_eq!(seqs[7], None);
        let new: Vec<i64> = seqs.iter().flatten().copied().collect();
        assert_eq!(new.len(), 1999);
        assert!(new.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(store.count_events().await.unwrap(), 2000);
        assert_eq!(
            store.insert_batch(&[]).await.unwrap(),
            Vec::<Option<i64>>::new()
        );
    }
}
