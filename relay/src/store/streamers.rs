//! Watched streamers and their streams (see [`crate::streamers`]).
//!
//! Every write is idempotent, because several replicas may act on the same
//! fact and Twitch may deliver an event twice: a streamer is unique by its
//! Twitch id, a stream by Twitch's stream id, and "ended" only ever fills
//! an empty end. Booleans are stored as 0/1 (one decoding for both
//! backends); a stream's tags as a JSON array in text (no JSON in SQL).

use serde::Serialize;
use sqlx::{any::AnyRow, Row};
use uuid::Uuid;

use super::{now_us, Result, Store, StoreError};

/// Who put a streamer on the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StreamerSource {
    /// Added through `POST /api/v1/streamers` (or the dashboard).
    Api,
    /// Listed in `TAU_STREAMERS` (the TwitchChannel's `spec.streamers`).
    Spec,
}

impl StreamerSource {
    fn as_str(self) -> &'static str {
        match self {
            StreamerSource::Api => "api",
            StreamerSource::Spec => "spec",
        }
    }

    fn parse(text: &str) -> Result<StreamerSource> {
        match text {
            "api" => Ok(StreamerSource::Api),
            "spec" => Ok(StreamerSource::Spec),
            other => Err(StoreError::Malformed(format!(
                "unknown streamer source {other:?}"
            ))),
        }
    }
}

/// One watched streamer as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Streamer {
    /// TAU's id (a UUID).
    pub id: String,
    /// Twitch login, lower case.
    pub twitch_username: String,
    /// Twitch user id.
    pub twitch_id: String,
    /// Live, as the last `stream.online` / `stream.offline` said.
    pub streaming: bool,
    /// Kept on the list but not subscribed to.
    pub disabled: bool,
    /// Who added it.
    pub source: StreamerSource,
    /// When it was added, µs since the epoch.
    pub created_us: i64,
    /// When it last changed, µs since the epoch.
    pub updated_us: i64,
}

/// One broadcast of a watched streamer.
#[derive(Debug, Clone, PartialEq)]
pub struct Stream {
    /// TAU's id (a UUID).
    pub id: String,
    /// Twitch's stream id.
    pub stream_id: String,
    /// The streamer's Twitch id.
    pub streamer: String,
    /// The streamer's login.
    pub user_login: String,
    /// The streamer's display name.
    pub user_name: String,
    /// Category id.
    pub game_id: String,
    /// Category name.
    pub game_name: String,
    /// `live` (Twitch's only value; empty on Twitch's errors).
    pub kind: String,
    /// Title.
    pub title: String,
    /// Viewers when the stream was recorded.
    pub viewer_count: i64,
    /// When the broadcast began, µs since the epoch.
    pub started_us: i64,
    /// When it ended (`None`: live, or the end was not seen).
    pub ended_us: Option<i64>,
    /// ISO 639-1 language.
    pub language: String,
    /// Thumbnail URL template (`{width}x{height}`).
    pub thumbnail_url: String,
    /// The stream's tags.
    pub tags: Vec<String>,
    /// Twitch's (deprecated, always false) mature flag.
    pub is_mature: bool,
}

const STREAMER_COLUMNS: &str =
    "id, twitch_username, twitch_id, streaming, disabled, source, created_us, updated_us";
const STREAM_COLUMNS: &str = "id, stream_id, streamer, user_login, user_name, game_id, game_name, \
     type, title, viewer_count, started_us, ended_us, language, thumbnail_url, tags, is_mature";

fn flag(r: &AnyRow, column: &str) -> Result<bool> {
    Ok(r.try_get::<i64, _>(column)? != 0)
}

fn decode_streamer(r: &AnyRow) -> Result<Streamer> {
    Ok(Streamer {
        id: r.try_get("id")?,
        twitch_username: r.try_get("twitch_username")?,
        twitch_id: r.try_get("twitch_id")?,
        streaming: flag(r, "streaming")?,
        disabled: flag(r, "disabled")?,
        source: StreamerSource::parse(&r.try_get::<String, _>("source")?)?,
        created_us: r.try_get("created_us")?,
        updated_us: r.try_get("updated_us")?,
    })
}

fn decode_stream(r: &AnyRow) -> Result<Stream> {
    let tags: String = r.try_get("tags")?;
    Ok(Stream {
        id: r.try_get("id")?,
        stream_id: r.try_get("stream_id")?,
        streamer: r.try_get("streamer")?,
        user_login: r.try_get("user_login")?,
        user_name: r.try_get("user_name")?,
        game_id: r.try_get("game_id")?,
        game_name: r.try_get("game_name")?,
        kind: r.try_get("type")?,
        title: r.try_get("title")?,
        viewer_count: r.try_get("viewer_count")?,
        started_us: r.try_get("started_us")?,
        ended_us: r.try_get("ended_us")?,
        language: r.try_get("language")?,
        thumbnail_url: r.try_get("thumbnail_url")?,
        tags: serde_json::from_str(&tags)
            .map_err(|e| StoreError::Malformed(format!("stream tags: {e}")))?,
        is_mature: flag(r, "is_mature")?,
    })
}

fn unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(e) if e.is_unique_violation())
}

impl Store {
    /// Every watched streamer, newest first.
    pub async fn streamers(&self) -> Result<Vec<Streamer>> {
        let rows = sqlx::query(&format!(
            "SELECT {STREAMER_COLUMNS} FROM streamers ORDER BY created_us DESC, id DESC"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode_streamer).collect()
    }

    /// The streamer whose TAU id or login (any case) is `key`.
    pub async fn streamer(&self, key: &str) -> Result<Option<Streamer>> {
        let (column, value) = match Uuid::parse_str(key) {
            Ok(id) => ("id", id.to_string()),
            Err(_) => ("twitch_username", key.to_ascii_lowercase()),
        };
        let row = sqlx::query(&format!(
            "SELECT {STREAMER_COLUMNS} FROM streamers WHERE {column} = $1 \
             ORDER BY created_us DESC LIMIT 1"
        ))
        .bind(value)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(decode_streamer).transpose()
    }

    /// The streamer with Twitch id `twitch_id`.
    pub async fn streamer_by_twitch_id(&self, twitch_id: &str) -> Result<Option<Streamer>> {
        let row = sqlx::query(&format!(
            "SELECT {STREAMER_COLUMNS} FROM streamers WHERE twitch_id = $1"
        ))
        .bind(twitch_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(decode_streamer).transpose()
    }

    /// Twitch ids of the streamers to subscribe to (not disabled), oldest first.
    pub async fn enabled_streamer_ids(&self) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT twitch_id FROM streamers WHERE disabled = 0 ORDER BY created_us, id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|r| r.get::<String, _>(0)).collect())
    }

    /// `(watched, live)`: streamers not disabled, and of those the live ones.
    pub async fn streamer_counts(&self) -> Result<(i64, i64)> {
        let row = sqlx::query(
            "SELECT COUNT(*), COUNT(CASE WHEN streaming = 1 THEN 1 END) FROM streamers WHERE disabled = 0",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((row.try_get(0)?, row.try_get(1)?))
    }

    /// Adds a streamer; `Duplicate` if its Twitch id is already listed.
    pub async fn insert_streamer(
        &self,
        login: &str,
        twitch_id: &str,
        source: StreamerSource,
    ) -> Result<Streamer> {
        let now = now_us();
        let streamer = Streamer {
            id: Uuid::new_v4().to_string(),
            twitch_username: login.to_ascii_lowercase(),
            twitch_id: twitch_id.to_string(),
            streaming: false,
            disabled: false,
            source,
            created_us: now,
            updated_us: now,
        };
        let inserted = sqlx::query(
            "INSERT INTO streamers (id, twitch_username, twitch_id, streaming, disabled, source, created_us, updated_us) \
             VALUES ($1, $2, $3, 0, 0, $4, $5, $5)",
        )
        .bind(&streamer.id)
        .bind(&streamer.twitch_username)
        .bind(&streamer.twitch_id)
        .bind(source.as_str())
        .bind(now)
        .execute(&self.pool)
        .await;
        match inserted {
            Ok(_) => Ok(streamer),
            Err(err) if unique_violation(&err) => Err(StoreError::Duplicate(login.to_string())),
            Err(err) => Err(err.into()),
        }
    }

    /// Makes `twitch_id` a `spec` streamer called `login` (adding it, or
    /// taking over an `api` one; its `disabled` flag stands). True if
    /// anything changed, so replicas starting together change it once.
    pub async fn upsert_spec_streamer(&self, login: &str, twitch_id: &str) -> Result<bool> {
        let now = now_us();
        let done = sqlx::query(
            "INSERT INTO streamers (id, twitch_username, twitch_id, streaming, disabled, source, created_us, updated_us) \
             VALUES ($1, $2, $3, 0, 0, 'spec', $4, $4) \
             ON CONFLICT (twitch_id) DO UPDATE SET twitch_username = excluded.twitch_username, \
             source = 'spec', updated_us = excluded.updated_us \
             WHERE streamers.twitch_username <> excluded.twitch_username OR streamers.source <> 'spec'",
        )
        .bind(Uuid::new_v4().to_string())
        .bind(login.to_ascii_lowercase())
        .bind(twitch_id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Sets a streamer's `disabled` flag; the streamer after, if it exists.
    pub async fn set_streamer_disabled(
        &self,
        id: &str,
        disabled: bool,
    ) -> Result<Option<Streamer>> {
        sqlx::query(
            "UPDATE streamers SET disabled = $2, updated_us = $3 WHERE id = $1 AND disabled <> $2",
        )
        .bind(id)
        .bind(i64::from(disabled))
        .bind(now_us())
        .execute(&self.pool)
        .await?;
        self.streamer(id).await
    }

    /// Sets whether a streamer is live; true if it changed.
    pub async fn set_streaming(&self, twitch_id: &str, streaming: bool) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE streamers SET streaming = $2, updated_us = $3 WHERE twitch_id = $1 AND streaming <> $2",
        )
        .bind(twitch_id)
        .bind(i64::from(streaming))
        .bind(now_us())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Removes a streamer (by TAU id) and its streams; false if it was not listed.
    pub async fn delete_streamer(&self, id: &str) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query("DELETE FROM streamers WHERE id = $1 RETURNING twitch_id")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            return Ok(false);
        };
        let twitch_id: String = row.try_get(0)?;
        sqlx::query("DELETE FROM streams WHERE streamer = $1")
            .bind(&twitch_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Records a broadcast (again: Twitch's newer details win, a seen end
    /// stands) and ends any other open stream of the same streamer (an
    /// offline Twitch never sent).
    pub async fn record_stream(&self, s: &Stream) -> Result<()> {
        let tags = serde_json::to_string(&s.tags).expect("strings serialize");
        let mut tx = self.pool.begin().await?;
        sqlx::query(&format!(
            "INSERT INTO streams ({STREAM_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
             ON CONFLICT (stream_id) DO UPDATE SET user_login = excluded.user_login, \
             user_name = excluded.user_name, game_id = excluded.game_id, game_name = excluded.game_name, \
             type = excluded.type, title = excluded.title, viewer_count = excluded.viewer_count, \
             language = excluded.language, thumbnail_url = excluded.thumbnail_url, \
             tags = excluded.tags, is_mature = excluded.is_mature"
        ))
        .bind(&s.id)
        .bind(&s.stream_id)
        .bind(&s.streamer)
        .bind(&s.user_login)
        .bind(&s.user_name)
        .bind(&s.game_id)
        .bind(&s.game_name)
        .bind(&s.kind)
        .bind(&s.title)
        .bind(s.viewer_count)
        .bind(s.started_us)
        .bind(s.ended_us)
        .bind(&s.language)
        .bind(&s.thumbnail_url)
        .bind(tags)
        .bind(i64::from(s.is_mature))
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE streams SET ended_us = $3 \
             WHERE streamer = $1 AND stream_id <> $2 AND ended_us IS NULL",
        )
        .bind(&s.streamer)
        .bind(&s.stream_id)
        .bind(s.started_us)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The broadcast Twitch calls `stream_id`, if recorded.
    pub async fn stream(&self, stream_id: &str) -> Result<Option<Stream>> {
        let row = sqlx::query(&format!(
            "SELECT {STREAM_COLUMNS} FROM streams WHERE stream_id = $1"
        ))
        .bind(stream_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(decode_stream).transpose()
    }

    /// Ends the streamer's open streams at `at_us`; how many.
    pub async fn end_streams(&self, twitch_id: &str, at_us: i64) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE streams SET ended_us = $2 WHERE streamer = $1 AND ended_us IS NULL",
        )
        .bind(twitch_id)
        .bind(at_us)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Up to `limit` streams of a streamer, newest first, older than
    /// `before` (`(started_us, id)` of the last row already shown).
    pub async fn streams(
        &self,
        twitch_id: &str,
        before: Option<(i64, String)>,
        limit: i64,
    ) -> Result<Vec<Stream>> {
        // The first page: before everything (no tie to break at i64::MAX).
        let (started, id) = before.unwrap_or((i64::MAX, String::new()));
        let rows = sqlx::query(&format!(
            "SELECT {STREAM_COLUMNS} FROM streams WHERE streamer = $1 \
             AND (started_us < $2 OR (started_us = $2 AND id < $3)) \
             ORDER BY started_us DESC, id DESC LIMIT $4"
        ))
        .bind(twitch_id)
        .bind(started)
        .bind(id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode_stream).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(stream_id: &str, streamer: &str, started_us: i64) -> Stream {
        Stream {
            id: Uuid::new_v4().to_string(),
            stream_id: stream_id.into(),
            streamer: streamer.into(),
            user_login: "watched".into(),
            user_name: "Watched".into(),
            game_id: "509658".into(),
            game_name: "Just Chatting".into(),
            kind: "live".into(),
            title: "first".into(),
            viewer_count: 3,
            started_us,
            ended_us: None,
            language: "en".into(),
            thumbnail_url: "https://example.com/{width}x{height}.jpg".into(),
            tags: vec!["English".into()],
            is_mature: false,
        }
    }

    async fn streamers_are_unique_by_twitch_id_and_spec_upserts_are_idempotent(store: &Store) {
        let added = store
            .insert_streamer("Watched", "42", StreamerSource::Api)
            .await
            .unwrap();
        assert_eq!(added.twitch_username, "watched");
        assert!(matches!(
            store
                .insert_streamer("renamed", "42", StreamerSource::Api)
                .await,
            Err(StoreError::Duplicate(_))
        ));
        assert_eq!(
            store.streamer("WATCHED").await.unwrap(),
            Some(added.clone())
        );
        assert_eq!(
            store.streamer(&added.id).await.unwrap(),
            Some(added.clone())
        );
        assert_eq!(store.streamer("nobody").await.unwrap(), None);

        // The spec takes an api streamer over once; again changes nothing.
        assert!(store.upsert_spec_streamer("watched", "42").await.unwrap());
        assert!(!store.upsert_spec_streamer("watched", "42").await.unwrap());
        assert!(store.upsert_spec_streamer("other", "7").await.unwrap());
        let all = store.streamers().await.unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].twitch_username, "other", "newest first");
        assert_eq!(all[1].source, StreamerSource::Spec);
        assert_eq!(all[1].id, added.id, "the same row");

        let off = store
            .set_streamer_disabled(&added.id, true)
            .await
            .unwrap()
            .unwrap();
        assert!(off.disabled);
        assert_eq!(store.enabled_streamer_ids().await.unwrap(), ["7"]);
        assert!(!store.upsert_spec_streamer("watched", "42").await.unwrap());
        assert!(store.streamer("watched").await.unwrap().unwrap().disabled);
        assert!(store.set_streaming("7", true).await.unwrap());
        assert!(!store.set_streaming("7", true).await.unwrap());
        assert_eq!(store.streamer_counts().await.unwrap(), (1, 1));
    }

    async fn streams_page_newest_first_end_once_and_go_with_their_streamer(store: &Store) {
        let watched = store
            .insert_streamer("streams_owner", "99", StreamerSource::Api)
            .await
            .unwrap();
        for (i, started) in [(1, 100), (2, 200), (3, 200), (4, 400)] {
            store
                .record_stream(&stream(&format!("s{i}"), "99", started))
                .await
                .unwrap();
        }
        // Recording a newer stream ended the older open ones at its start.
        let all = store.streams("99", None, 10).await.unwrap();
        let ids: Vec<_> = all.iter().map(|s| s.stream_id.as_str()).collect();
        assert_eq!(ids[0], "s4");
        assert_eq!(all[0].ended_us, None);
        assert!(all[1..].iter().all(|s| s.ended_us.is_some()));

        // Pages of two, ties broken by id, nothing twice.
        let first = store.streams("99", None, 2).await.unwrap();
        let last = first.last().unwrap();
        let second = store
            .streams("99", Some((last.started_us, last.id.clone())), 2)
            .await
            .unwrap();
        let mut seen: Vec<_> = first.iter().chain(&second).map(|s| &s.stream_id).collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 4);

        // A redelivered online updates details, keeps the end.
        let mut again = stream("s4", "99", 400);
        again.title = "second title".into();
        store.record_stream(&again).await.unwrap();
        assert_eq!(store.end_streams("99", 500).await.unwrap(), 1);
        assert_eq!(store.end_streams("99", 600).await.unwrap(), 0, "ended once");
        store.record_stream(&again).await.unwrap();
        let latest = &store.streams("99", None, 1).await.unwrap()[0];
        assert_eq!(latest.title, "second title");
        assert_eq!(latest.ended_us, Some(500));
        assert_eq!(latest.tags, ["English"]);

        assert!(store.delete_streamer(&watched.id).await.unwrap());
        assert!(!store.delete_streamer(&watched.id).await.unwrap());
        assert!(store.streams("99", None, 10).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn sqlite_streamers_and_streams() {
        let store = Store::in_memory().await;
        streamers_are_unique_by_twitch_id_and_spec_upserts_are_idempotent(&store).await;
        streams_page_newest_first_end_once_and_go_with_their_streamer(&store).await;
    }

    /// The same SQL on Postgres (skipped without a Postgres to start).
    #[tokio::test]
    async fn postgres_streamers_and_streams() {
        let Some((_pg, store)) = Store::on_throwaway_postgres("postgres_streamers").await else {
            return;
        };
        streamers_are_unique_by_twitch_id_and_spec_upserts_are_idempotent(&store).await;
        streams_page_newest_first_end_once_and_go_with_their_streamer(&store).await;
    }
}
