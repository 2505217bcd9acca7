//! Event queries: batched insert with dedupe, cursors, filters, retention.
//!
//! `seq` (an auto-increment column) orders events. REST pages go newest
//! first by `seq`; client resume (`since`) reads `seq` ascending.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use chrono::{DateTime, Utc};
use serde_json::value::RawValue;
use sqlx::{any::AnyRow, Row};
use uuid::Uuid;

use super::{Result, Store, StoreError};
use crate::event::{EventIndex, TauEvent};

/// A stored event and its position.
#[derive(Debug, Clone)]
pub struct StoredRow {
    /// Position in the store.
    pub seq: i64,
    /// The event.
    pub event: TauEvent,
}

/// REST filters (all optional, combined with AND).
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// TAU type name, exact.
    pub event_type: Option<String>,
    /// Only these TAU types (a restricted token's grant); `None`: any.
    pub allowed_types: Option<Vec<String>>,
    /// `user_id` or raider id.
    pub user_id: Option<String>,
    /// Login or display name, case-insensitive.
    pub user_name: Option<String>,
    /// Channel points reward id.
    pub reward_id: Option<String>,
    /// Raider id or login (case-insensitive).
    pub raid_from: Option<String>,
    /// Raided channel id or login (case-insensitive).
    pub raid_to: Option<String>,
    /// Created at or after this time (µs since the epoch; inclusive).
    pub created_after_us: Option<i64>,
    /// Created before this time (µs since the epoch; exclusive).
    pub created_before_us: Option<i64>,
}

/// Where a page starts: strictly older or strictly newer than a position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageCursor {
    /// Rows with `seq` below this (the `next` link).
    Before(i64),
    /// Rows with `seq` above this (the `previous` link).
    After(i64),
}

impl PageCursor {
    /// Opaque text form for URLs.
    pub fn encode(self) -> String {
        let text = match self {
            PageCursor::Before(seq) => format!("b{seq}"),
            PageCursor::After(seq) => format!("a{seq}"),
        };
        URL_SAFE_NO_PAD.encode(text)
    }

    /// Parses [`PageCursor::encode`]'s output.
    pub fn decode(text: &str) -> Option<PageCursor> {
        let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(text).ok()?).ok()?;
        // By character, not byte: the text is the caller's and may start
        // with a multibyte character.
        let mut chars = raw.chars();
        let kind = chars.next()?;
        let seq = chars.as_str().parse().ok()?;
        match kind {
            'b' => Some(PageCursor::Before(seq)),
            'a' => Some(PageCursor::After(seq)),
            _ => None,
        }
    }
}

/// One page, newest first.
#[derive(Debug)]
pub struct EventPage {
    /// The rows.
    pub rows: Vec<StoredRow>,
    /// Cursor for older rows, if there are any.
    pub next: Option<PageCursor>,
    /// Cursor for newer rows, if there are any.
    pub previous: Option<PageCursor>,
}

const COLUMNS: &str =
    "seq, id, event_id, event_type, version, event_source, event_data, created_us, origin";

fn decode_row(row: &AnyRow) -> Result<StoredRow> {
    let malformed = |what: &str| StoreError::Malformed(what.to_string());
    let id: String = row.try_get("id")?;
    let data: String = row.try_get("event_data")?;
    let created_us: i64 = row.try_get("created_us")?;
    let origin: String = row.try_get("origin")?;
    Ok(StoredRow {
        seq: row.try_get("seq")?,
        event: TauEvent {
            id: Some(Uuid::parse_str(&id).map_err(|_| malformed("id is not a UUID"))?),
            event_id: row.try_get("event_id")?,
            event_type: row.try_get("event_type")?,
            version: row.try_get("version")?,
            event_source: row.try_get("event_source")?,
            event_data: RawValue::from_string(data)
                .map_err(|_| malformed("event_data is not JSON"))?,
            created: DateTime::<Utc>::from_timestamp_micros(created_us)
                .ok_or_else(|| malformed("created_us out of range"))?,
            origin: serde_json::from_value(serde_json::Value::String(origin))
                .map_err(|_| malformed("unknown origin"))?,
        },
    })
}

impl Store {
    /// Inserts a batch in one transaction: for each event `Some(seq)` if it
    /// was new, `None` if its `event_id` was already stored. Each backend
    /// has its own inserter, past the `Any` pool: SQLite on a thread of its
    /// own (`sqlite_events`), Postgres as one UNNEST statement under the
    /// instance's advisory lock, so sequence numbers are handed out in
    /// commit order even when several replicas insert at once
    /// (`insert_postgres`).
    pub async fn insert_batch(
        &self,
        batch: &[(&TauEvent, &EventIndex)],
    ) -> Result<Vec<Option<i64>>> {
        match (&self.sqlite_events, &self.pg_insert) {
            (Some(sqlite), _) => sqlite.insert(batch).await,
            (None, Some(postgres)) => super::insert_postgres::insert_batch(postgres, batch).await,
            (None, None) => unreachable!("every store has an event inserter"),
        }
    }

    /// Highest stored position (0 when empty).
    pub async fn max_seq(&self) -> Result<i64> {
        let max: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM events")
            .fetch_one(&self.pool)
            .await?;
        Ok(max.unwrap_or(0))
    }

    /// The event with TAU id `id`.
    pub async fn event(&self, id: Uuid) -> Result<Option<StoredRow>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM events WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(decode_row).transpose()
    }

    /// Deletes one event, leaving a tombstone with its position; true if it existed.
    pub async fn delete_event(&self, id: Uuid) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let seq: Option<i64> = sqlx::query_scalar("DELETE FROM events WHERE id = $1 RETURNING seq")
            .bind(id.to_string())
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(seq) = seq {
            sqlx::query(
                "INSERT INTO deleted_events (id, seq, deleted_us) VALUES ($1, $2, $3) \
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(id.to_string())
            .bind(seq)
            .bind(super::now_us())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(seq.is_some())
    }

    /// Position of the event with TAU id `id`, stored or deleted (a
    /// tombstone keeps a deleted event's position for resuming after it).
    pub async fn seq_of(&self, id: Uuid) -> Result<Option<i64>> {
        let id = id.to_string();
        let stored: Option<i64> = sqlx::query_scalar("SELECT seq FROM events WHERE id = $1")
            .bind(&id)
            .fetch_optional(&self.pool)
            .await?;
        if stored.is_some() {
            return Ok(stored);
        }
        Ok(
            sqlx::query_scalar("SELECT seq FROM deleted_events WHERE id = $1")
                .bind(&id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Up to `limit` events after position `seq`, oldest first (client resume).
    pub async fn events_after(&self, seq: i64, limit: i64) -> Result<Vec<StoredRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM events WHERE seq > $1 ORDER BY seq ASC LIMIT $2"
        ))
        .bind(seq)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode_row).collect()
    }

    /// Up to `limit` events with `after < seq < before` (no upper bound
    /// without `before`), oldest first: the sequencer's bounded gap read.
    pub async fn events_between(
        &self,
        after: i64,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<StoredRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM events WHERE seq > $1 AND seq < $2 ORDER BY seq ASC LIMIT $3"
        ))
        .bind(after)
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode_row).collect()
    }

    /// One page of events, newest first.
    pub async fn page(
        &self,
        filter: &EventFilter,
        cursor: Option<PageCursor>,
        limit: i64,
    ) -> Result<EventPage> {
        let mut sql = format!("SELECT {COLUMNS} FROM events WHERE 1 = 1");
        let mut binds: Vec<String> = Vec::new();
        let mut push = |sql: &mut String, clause: &str, values: &[&str]| {
            let mut clause = clause.to_string();
            for value in values {
                binds.push(value.to_string());
                clause = clause.replacen('?', &format!("${}", binds.len()), 1);
            }
            sql.push_str(" AND ");
            sql.push_str(&clause);
        };
        if let Some(t) = &filter.event_type {
            push(&mut sql, "event_type = ?", &[t]);
        }
        if let Some(types) = &filter.allowed_types {
            if types.is_empty() {
                sql.push_str(" AND 1 = 0");
            } else {
                let marks = vec!["?"; types.len()].join(", ");
                let values: Vec<&str> = types.iter().map(String::as_str).collect();
                push(&mut sql, &format!("event_type IN ({marks})"), &values);
            }
        }
        if let Some(v) = &filter.user_id {
            push(&mut sql, "user_id = ?", &[v]);
        }
        if let Some(v) = &filter.user_name {
            let v = v.to_lowercase();
            push(&mut sql, "(user_login = ? OR user_name = ?)", &[&v, &v]);
        }
        if let Some(v) = &filter.reward_id {
            push(&mut sql, "reward_id = ?", &[v]);
        }
        if let Some(v) = &filter.raid_from {
            let v = v.to_lowercase();
            push(
                &mut sql,
                "(raid_from_id = ? OR raid_from_login = ?)",
                &[&v, &v],
            );
        }
        if let Some(v) = &filter.raid_to {
            let v = v.to_lowercase();
            push(&mut sql, "(raid_to_id = ? OR raid_to_login = ?)", &[&v, &v]);
        }
        // Integers, written into the SQL like the cursor's `seq`: the
        // binds are text, which Postgres will not compare with a BIGINT.
        if let Some(us) = filter.created_after_us {
            sql.push_str(&format!(" AND created_us >= {us}"));
        }
        if let Some(us) = filter.created_before_us {
            sql.push_str(&format!(" AND created_us < {us}"));
        }
        // Fetch one extra row to learn whether another page exists.
        let (order, ascending) = match cursor {
            Some(PageCursor::After(seq)) => (format!(" AND seq > {seq} ORDER BY seq ASC"), true),
            Some(PageCursor::Before(seq)) => (format!(" AND seq < {seq} ORDER BY seq DESC"), false),
            None => (" ORDER BY seq DESC".to_string(), false),
        };
        sql.push_str(&order);
        sql.push_str(&format!(" LIMIT {}", limit + 1));
        let mut query = sqlx::query(&sql);
        for value in &binds {
            query = query.bind(value);
        }
        let fetched = query.fetch_all(&self.pool).await?;
        let mut rows = fetched.iter().map(decode_row).collect::<Result<Vec<_>>>()?;
        let more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        if ascending {
            rows.reverse();
        }
        let (newest, oldest) = (rows.first().map(|r| r.seq), rows.last().map(|r| r.seq));
        let (has_older, has_newer) = match cursor {
            None => (more, false),
            Some(PageCursor::Before(_)) => (more, true),
            Some(PageCursor::After(_)) => (true, more),
        };
        Ok(EventPage {
            next: oldest.filter(|_| has_older).map(PageCursor::Before),
            previous: newest.filter(|_| has_newer).map(PageCursor::After),
            rows,
        })
    }

    /// Deletes events created before `cutoff_us`, leaving tombstones (so
    /// clients can still resume after them), and drops tombstones older
    /// than the cutoff; returns how many events were deleted.
    pub async fn delete_events_before(&self, cutoff_us: i64) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO deleted_events (id, seq, deleted_us) \
             SELECT id, seq, $2 FROM events WHERE created_us < $1 \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(cutoff_us)
        .bind(super::now_us())
        .execute(&mut *tx)
        .await?;
        let done = sqlx::query("DELETE FROM events WHERE created_us < $1")
            .bind(cutoff_us)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM deleted_events WHERE deleted_us < $1")
            .bind(cutoff_us)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    /// Number of stored events.
    pub async fn count_events(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM events")
            .fetch_one(&self.pool)
            .await?)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::event::{Origin, SOURCE_EVENTSUB};

    /// A stored-style event for tests.
    pub(crate) fn twitch_event(event_id: &str, event_type: &str, data: &str) -> TauEvent {
        TauEvent {
            id: Some(Uuid::new_v4()),
            event_id: event_id.into(),
            event_type: event_type.into(),
            version: "1".into(),
            event_source: SOURCE_EVENTSUB.into(),
            event_data: RawValue::from_string(data.into()).unwrap(),
            created: Utc::now(),
            origin: Origin::Twitch,
        }
    }

    async fn insert(store: &Store, event: &TauEvent) -> Option<i64> {
        let index = EventIndex::from_event_data(&event.event_data);
        store.insert_batch(&[(event, &index)]).await.unwrap()[0]
    }

    #[tokio::test]
    async fn duplicate_event_ids_are_not_stored_twice() {
        let store = Store::in_memory().await;
        let first = twitch_event("m1", "channel-follow", "{}");
        assert!(insert(&store, &first).await.is_some());
        let again = twitch_event("m1", "channel-follow", "{}");
        assert_eq!(insert(&store, &again).await, None);
        assert_eq!(store.count_events().await.unwrap(), 1);
        let row = store.event(first.id.unwrap()).await.unwrap().unwrap();
        assert_eq!(row.event.event_id, "m1");
    }

    #[tokio::test]
    async fn pages_walk_both_ways_with_filters() {
        let store = Store::in_memory().await;
        for i in 0..7 {
            let kind = if i % 2 == 0 {
                "channel-follow"
            } else {
                "channel-cheer"
            };
            let data = format!(r#"{{"user_id":"{i}","user_login":"User{i}"}}"#);
            insert(&store, &twitch_event(&format!("m{i}"), kind, &data)).await;
        }
        let all = EventFilter::default();
        let first = store.page(&all, None, 3).await.unwrap();
        let ids: Vec<_> = first
            .rows
            .iter()
            .map(|r| r.event.event_id.clone())
            .collect();
        assert_eq!(ids, ["m6", "m5", "m4"]);
        assert!(first.previous.is_none());
        let second = store.page(&all, first.next, 3).await.unwrap();
        let ids: Vec<_> = second
            .rows
            .iter()
            .map(|r| r.event.event_id.clone())
            .collect();
        assert_eq!(ids, ["m3", "m2", "m1"]);
        let back = store.page(&all, second.previous, 3).await.unwrap();
        let ids: Vec<_> = back.rows.iter().map(|r| r.event.event_id.clone()).collect();
        assert_eq!(ids, ["m6", "m5", "m4"]);
        let last = store.page(&all, second.next, 3).await.unwrap();
        assert_eq!(last.rows.len(), 1);
        assert!(last.next.is_none());

        let follows = EventFilter {
            event_type: Some("channel-follow".into()),
            ..Default::default()
        };
        assert_eq!(store.page(&follows, None, 50).await.unwrap().rows.len(), 4);
        let by_name = EventFilter {
            user_name: Some("USER3".into()),
            ..Default::default()
        };
        let rows = store.page(&by_name, None, 50).await.unwrap().rows;
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].event.event_id, "m3");
    }

    /// `created_after` is inclusive, `created_before` exclusive, on any
    /// backend (the bounds are integers in SQL that otherwise binds text).
    async fn time_range_filters(store: &Store) {
        let base = Utc::now() - chrono::Duration::hours(1);
        for minute in 0..5 {
            let mut event = twitch_event(&format!("t{minute}"), "channel-follow", "{}");
            event.created = base + chrono::Duration::minutes(minute);
            insert(store, &event).await;
        }
        let at = |minute: i64| (base + chrono::Duration::minutes(minute)).timestamp_micros();
        let ids = |filter: EventFilter| async move {
            let page = store.page(&filter, None, 2).await.unwrap();
            let mut all: Vec<String> = page.rows.iter().map(|r| r.event.event_id.clone()).collect();
            if let Some(next) = page.next {
                let more = store.page(&filter, Some(next), 50).await.unwrap();
                all.extend(more.rows.iter().map(|r| r.event.event_id.clone()));
            }
            all
        };
        let range = EventFilter {
            created_after_us: Some(at(1)),
            created_before_us: Some(at(4)),
            ..Default::default()
        };
        assert_eq!(ids(range).await, ["t3", "t2", "t1"]);
        let after = EventFilter {
            created_after_us: Some(at(3)),
            ..Default::default()
        };
        assert_eq!(ids(after).await, ["t4", "t3"]);
        let before = EventFilter {
            created_before_us: Some(at(1)),
            ..Default::default()
        };
        assert_eq!(ids(before).await, ["t0"]);
        let empty = EventFilter {
            created_after_us: Some(at(4)),
            created_before_us: Some(at(4)),
            ..Default::default()
        };
        assert!(ids(empty).await.is_empty());
    }

    #[tokio::test]
    async fn sqlite_time_range_filters() {
        time_range_filters(&Store::in_memory().await).await;
    }

    #[tokio::test]
    async fn postgres_time_range_filters() {
        let Some((_pg, store)) = Store::on_throwaway_postgres("postgres_time_range_filters").await
        else {
            return;
        };
        time_range_filters(&store).await;
    }

    /// A batch cut into several chunk sizes, holding ids stored earlier:
    /// `None` exactly for those, and new positions ascending in batch
    /// order (the writer publishes in that order).
    async fn batch_insert_across_chunks(store: &Store) {
        for i in 0..3 {
            insert(
                store,
                &twitch_event(&format!("old{i}"), "channel-follow", "{}"),
            )
            .await;
        }
        let mut batch: Vec<TauEvent> = (0..331)
            .map(|i| twitch_event(&format!("new{i}"), "channel-cheer", "{}"))
            .collect();
        batch[10] = twitch_event("old0", "channel-follow", "{}");
        batch[330] = twitch_event("old2", "channel-follow", "{}");
        let index = EventIndex::default();
        let rows: Vec<_> = batch.iter().map(|e| (e, &index)).collect();
        let seqs = store.insert_batch(&rows).await.unwrap();
        assert_eq!(seqs.len(), 331);
        assert_eq!((seqs[10], seqs[330]), (None, None));
        let new: Vec<i64> = seqs.iter().flatten().copied().collect();
        assert_eq!(new.len(), 329);
        assert!(new.windows(2).all(|w| w[0] < w[1]), "{new:?}");
        assert_eq!(store.count_events().await.unwrap(), 332);
        let row = store.event(batch[200].id.unwrap()).await.unwrap().unwrap();
        assert_eq!(
            (row.seq, row.event.event_id.as_str()),
            (seqs[200].unwrap(), "new200")
        );
    }

    #[tokio::test]
    async fn sqlite_batch_insert_across_chunks() {
        batch_insert_across_chunks(&Store::in_memory().await).await;
    }

    #[tokio::test]
    async fn postgres_batch_insert_across_chunks() {
        let Some((_pg, store)) =
            Store::on_throwaway_postgres("postgres_batch_insert_across_chunks").await
        else {
            return;
        };
        batch_insert_across_chunks(&store).await;
    }

    #[tokio::test]
    async fn cursor_round_trips_and_rejects_garbage() {
        for c in [PageCursor::Before(42), PageCursor::After(7)] {
            assert_eq!(PageCursor::decode(&c.encode()), Some(c));
        }
        assert_eq!(PageCursor::decode("!!"), None);
        // "w6kx" decodes to "é1": a multibyte first character once panicked.
        assert_eq!(PageCursor::decode("w6kx"), None);
        assert_eq!(PageCursor::decode(""), None);
        assert_eq!(PageCursor::decode(&URL_SAFE_NO_PAD.encode("b")), None);
        assert_eq!(PageCursor::decode(&URL_SAFE_NO_PAD.encode("x1")), None);
    }

    #[tokio::test]
    async fn retention_deletes_old_events() {
        let store = Store::in_memory().await;
        let mut old = twitch_event("old", "channel-follow", "{}");
        old.created = Utc::now() - chrono::Duration::days(40);
        insert(&store, &old).await;
        insert(&store, &twitch_event("new", "channel-follow", "{}")).await;
        let cutoff = (Utc::now() - chrono::Duration::days(30)).timestamp_micros();
        assert_eq!(store.delete_events_before(cutoff).await.unwrap(), 1);
        assert_eq!(store.count_events().await.unwrap(), 1);
        // The deleted event's position outlives it, for resuming after it.
        assert!(store.seq_of(old.id.unwrap()).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn a_deleted_event_keeps_its_position_for_resume() {
        let store = Store::in_memory().await;
        let events: Vec<_> = (0..3)
            .map(|i| twitch_event(&format!("d{i}"), "channel-follow", "{}"))
            .collect();
        let mut seqs = vec![];
        for e in &events {
            seqs.push(insert(&store, e).await.unwrap());
        }
        let middle = events[1].id.unwrap();
        assert!(store.delete_event(middle).await.unwrap());
        assert!(!store.delete_event(middle).await.unwrap());
        assert_eq!(store.seq_of(middle).await.unwrap(), Some(seqs[1]));
        let after: Vec<_> = store
            .events_after(seqs[1], 10)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.seq)
            .collect();
        assert_eq!(after, [seqs[2]]);
        assert_eq!(store.seq_of(Uuid::new_v4()).await.unwrap(), None);
    }
}
