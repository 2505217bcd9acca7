//! Following watched streamers' broadcasts: `streaming`, and one stream
//! record per broadcast.
//!
//! Why here and how: ingest calls [`Tracker`] (as its
//! [`crate::ingest::AfterStore`]) for every notification once it is
//! durably stored, on the replica that ingested it, so each event is acted
//! on once per delivery and only after it is safe. The call only parses
//! the two stream types and queues them (bounded, never waiting): ingest is
//! never slowed by Helix. One worker takes the queue in order, so an
//! offline never overtakes its online on this replica.
//!
//! - `stream.online` of a watched (not disabled) streamer: `streaming` is
//!   set, and the broadcast is recorded from `GET /helix/streams` (title,
//!   category, viewers, tags, ...); if Helix fails or does not list that
//!   stream yet (Twitch's list often lags the notification by seconds),
//!   from what the event carries (stream id, `started_at`, `type`, login
//!   and name), and Helix is asked again after each of [`REFETCH_DELAYS`]
//!   until it lists the stream. The re-fetch stops early when the stream
//!   ended or its record already has details (another replica filled it);
//!   at most one waits per streamer (a newer online replaces it, an
//!   offline cancels it), so a flood of events cannot pile tasks up.
//! - `stream.offline`: `streaming` cleared, the open stream ended now.
//! - Anyone else's stream events (the channel's own, unless it watches
//!   itself) are ordinary events and nothing more.
//!
//! Known limit: with a conduit, an online and its offline may be ingested
//! by two replicas; if the offline is handled first, the stream stays open
//! until the streamer's next broadcast ends it.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use serde::Deserialize;
use serde_json::{value::RawValue, Value};
use tokio::{sync::mpsc, task::AbortHandle};
use uuid::Uuid;

use crate::{
    ingest::AfterStore,
    store::{now_us, Store, StoreError, Stream},
    twitch::{Twitch, TwitchError},
};

/// Stream changes waiting for the worker; past it, changes are dropped
/// with a warning rather than slowing ingest (a burst this large means
/// the worker is stuck on Twitch).
const QUEUE: usize = 256;

/// The waits before each new `GET /helix/streams` for a stream it did not
/// list at `stream.online` (about 77 s in all: Twitch's list usually
/// catches up within seconds, rarely after a minute).
pub const REFETCH_DELAYS: [Duration; 5] = [
    Duration::from_secs(2),
    Duration::from_secs(5),
    Duration::from_secs(10),
    Duration::from_secs(20),
    Duration::from_secs(40),
];

/// What a stream event said.
#[derive(Debug, Clone, PartialEq)]
enum Change {
    /// `stream.online`.
    Online(Online),
    /// `stream.offline` of this broadcaster id.
    Offline(String),
}

/// The fields of a `stream.online` event TAU uses.
#[derive(Debug, Clone, PartialEq, Deserialize)]
struct Online {
    /// The stream's id.
    #[serde(default)]
    id: String,
    broadcaster_user_id: String,
    #[serde(default)]
    broadcaster_user_login: String,
    #[serde(default)]
    broadcaster_user_name: String,
    /// `live`, `playlist`, `watch_party`, `premiere`, `rerun`.
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    started_at: String,
}

#[derive(Deserialize)]
struct Offline {
    broadcaster_user_id: String,
}

/// Reads a stored notification of `kind`; `None` for other types.
fn change(kind: &str, event: &RawValue) -> Option<Result<Change, serde_json::Error>> {
    match kind {
        "stream.online" => Some(serde_json::from_str(event.get()).map(Change::Online)),
        "stream.offline" => Some(
            serde_json::from_str::<Offline>(event.get())
                .map(|o| Change::Offline(o.broadcaster_user_id)),
        ),
        _ => None,
    }
}

/// RFC 3339 as µs since the epoch (`None` if it is not one).
fn micros(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp_micros())
}

/// The stream record from a Helix `GET /streams` entry.
fn from_helix(entry: &Value, streamer: &str) -> Option<Stream> {
    let text = |key: &str| entry[key].as_str().unwrap_or_default().to_string();
    Some(Stream {
        id: Uuid::new_v4().to_string(),
        stream_id: entry["id"]
            .as_str()
            .filter(|id| !id.is_empty())?
            .to_string(),
        streamer: streamer.to_string(),
        user_login: text("user_login"),
        user_name: text("user_name"),
        game_id: text("game_id"),
        game_name: text("game_name"),
        kind: text("type"),
        title: text("title"),
        viewer_count: entry["viewer_count"].as_i64().unwrap_or_default(),
        started_us: micros(entry["started_at"].as_str()?)?,
        ended_us: None,
        language: text("language"),
        thumbnail_url: text("thumbnail_url"),
        tags: entry["tags"]
            .as_array()
            .map(|tags| {
                tags.iter()
                    .filter_map(|t| t.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        is_mature: entry["is_mature"].as_bool().unwrap_or_default(),
    })
}

/// The stream record from the event alone (Helix failed or lags).
fn from_event(online: &Online) -> Stream {
    Stream {
        id: Uuid::new_v4().to_string(),
        stream_id: online.id.clone(),
        streamer: online.broadcaster_user_id.clone(),
        user_login: online.broadcaster_user_login.clone(),
        user_name: online.broadcaster_user_name.clone(),
        game_id: String::new(),
        game_name: String::new(),
        kind: online.kind.clone(),
        title: String::new(),
        viewer_count: 0,
        started_us: micros(&online.started_at).unwrap_or_else(now_us),
        ended_us: None,
        language: String::new(),
        thumbnail_url: String::new(),
        tags: Vec::new(),
        is_mature: false,
    }
}

/// Whether a record holds Helix's details (Helix always gives a language
/// and a thumbnail; the event alone gives neither).
fn has_details(stream: &Stream) -> bool {
    !stream.language.is_empty() || !stream.thumbnail_url.is_empty()
}

/// Hands stored stream events to the worker; cheap to clone.
#[derive(Clone)]
pub struct Tracker {
    tx: mpsc::Sender<Change>,
}

impl AfterStore for Tracker {
    fn wants(&self, kind: &str) -> bool {
        super::TYPES.iter().any(|(k, _)| *k == kind)
    }

    fn stored(&self, kind: &str, event: &RawValue) {
        let change = match change(kind, event) {
            None => return,
            Some(Err(err)) => {
                tracing::warn!(kind, error = %err, "stream event not understood; not tracked");
                return;
            }
            Some(Ok(change)) => change,
        };
        if self.tx.try_send(change).is_err() {
            tracing::warn!(kind, "stream tracker queue full; event not tracked");
        }
    }
}

/// What the worker needs.
struct Worker {
    store: Store,
    twitch: Arc<Twitch>,
    /// Streamer id → the stream id a re-fetch waits for, and its task.
    pending: Mutex<HashMap<String, (String, AbortHandle)>>,
}

impl Tracker {
    /// Starts the worker; it ends when every [`Tracker`] clone is gone.
    pub fn spawn(store: Store, twitch: Arc<Twitch>) -> Tracker {
        let (tx, mut rx) = mpsc::channel(QUEUE);
        let worker = Arc::new(Worker {
            store,
            twitch,
            pending: Mutex::default(),
        });
        tokio::spawn(async move {
            while let Some(change) = rx.recv().await {
                if let Err(err) = worker.apply(&change).await {
                    tracing::warn!(?change, error = %err, "tracking a stream event failed");
                }
            }
            worker.cancel_all();
        });
        Tracker { tx }
    }
}

impl Worker {
    async fn apply(self: &Arc<Self>, change: &Change) -> Result<(), StoreError> {
        match change {
            Change::Online(online) => self.online(online).await,
            Change::Offline(id) => {
                self.cancel_refetch(id);
                self.offline(id).await
            }
        }
    }

    /// True if `twitch_id` is a watched streamer, not disabled.
    async fn watched(&self, twitch_id: &str) -> Result<bool, StoreError> {
        let streamer = self.store.streamer_by_twitch_id(twitch_id).await?;
        Ok(streamer.is_some_and(|s| !s.disabled))
    }

    /// Helix's entry for `online`'s stream, if it lists that one (not the
    /// previous broadcast); `None` when it fails or does not list it yet.
    async fn listed(&self, online: &Online) -> Option<Stream> {
        let id = &online.broadcaster_user_id;
        match self.helix_stream(id).await {
            Ok(listed) => listed.filter(|s| online.id.is_empty() || s.stream_id == online.id),
            Err(err) => {
                tracing::warn!(twitch_id = %id, error = %err, "GET /helix/streams failed");
                None
            }
        }
    }

    async fn online(self: &Arc<Self>, online: &Online) -> Result<(), StoreError> {
        let id = &online.broadcaster_user_id;
        if !self.watched(id).await? {
            return Ok(());
        }
        self.cancel_refetch(id);
        // The stream first: whoever sees the streamer live finds its stream.
        self.record_online(online).await?;
        self.store.set_streaming(id, true).await?;
        Ok(())
    }

    /// Records the broadcast `online` started, from Helix if it lists it
    /// yet, else from the event (and asks Helix again later).
    async fn record_online(self: &Arc<Self>, online: &Online) -> Result<(), StoreError> {
        let id = &online.broadcaster_user_id;
        if let Some(stream) = self.listed(online).await {
            tracing::info!(twitch_id = %id, stream_id = %stream.stream_id, title = %stream.title, "watched streamer went live");
            return self.store.record_stream(&stream).await;
        }
        let stream = from_event(online);
        if stream.stream_id.is_empty() {
            tracing::warn!(twitch_id = %id, "stream.online without a stream id; no stream recorded");
            return Ok(());
        }
        // Another delivery (another replica) may have recorded the details.
        let known = self.store.stream(&stream.stream_id).await?;
        if known.as_ref().is_some_and(has_details) {
            return Ok(());
        }
        tracing::info!(twitch_id = %id, stream_id = %stream.stream_id, "watched streamer went live; Helix does not list the stream yet");
        self.store.record_stream(&stream).await?;
        self.schedule_refetch(online.clone());
        Ok(())
    }

    /// Asks Helix again for `online`'s stream later (replacing any
    /// re-fetch waiting for this streamer).
    fn schedule_refetch(self: &Arc<Self>, online: Online) {
        let streamer = online.broadcaster_user_id.clone();
        let stream_id = online.id.clone();
        let worker = self.clone();
        let task = tokio::spawn(async move {
            for delay in REFETCH_DELAYS {
                tokio::time::sleep(delay).await;
                match worker.refetch(&online).await {
                    Ok(true) => break,
                    Ok(false) => {}
                    Err(err) => {
                        tracing::warn!(stream_id = %online.id, error = %err, "re-fetching a stream failed")
                    }
                }
            }
            let mut pending = worker.pending.lock().expect("pending lock");
            if pending
                .get(&online.broadcaster_user_id)
                .is_some_and(|(waiting, _)| *waiting == online.id)
            {
                pending.remove(&online.broadcaster_user_id);
            }
        });
        let replaced = self
            .pending
            .lock()
            .expect("pending lock")
            .insert(streamer, (stream_id, task.abort_handle()));
        if let Some((_, old)) = replaced {
            old.abort();
        }
    }

    /// One re-fetch: `true` when done (details recorded, already there,
    /// or no longer wanted).
    async fn refetch(&self, online: &Online) -> Result<bool, StoreError> {
        let Some(known) = self.store.stream(&online.id).await? else {
            return Ok(true); // the streamer was removed with its streams
        };
        if known.ended_us.is_some() || has_details(&known) {
            return Ok(true);
        }
        if !self.watched(&online.broadcaster_user_id).await? {
            return Ok(true);
        }
        let Some(stream) = self.listed(online).await else {
            return Ok(false);
        };
        tracing::info!(twitch_id = %online.broadcaster_user_id, stream_id = %stream.stream_id, title = %stream.title, "Helix lists the watched stream now");
        self.store.record_stream(&stream).await?;
        Ok(true)
    }

    /// Stops the re-fetch waiting for `streamer`, if any.
    fn cancel_refetch(&self, streamer: &str) {
        if let Some((_, task)) = self.pending.lock().expect("pending lock").remove(streamer) {
            task.abort();
        }
    }

    /// Stops every waiting re-fetch (the tracker is gone).
    fn cancel_all(&self) {
        for (_, (_, task)) in self.pending.lock().expect("pending lock").drain() {
            task.abort();
        }
    }

    async fn offline(&self, twitch_id: &str) -> Result<(), StoreError> {
        if !self.watched(twitch_id).await? {
            return Ok(());
        }
        // Ended first, as `online` records first: not streaming means ended.
        self.store.end_streams(twitch_id, now_us()).await?;
        self.store.set_streaming(twitch_id, false).await?;
        tracing::info!(%twitch_id, "watched streamer went offline");
        Ok(())
    }

    /// The streamer's live stream as Helix lists it, if it does.
    async fn helix_stream(&self, twitch_id: &str) -> Result<Option<Stream>, TwitchError> {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("user_id", twitch_id)
            .finish();
        let response = self
            .twitch
            .helix
            .send_segments(
                reqwest::Method::GET,
                &["streams".to_string()],
                Some(&query),
                None,
                self.twitch.lookup_token(),
            )
            .await?;
        let status = response.status();
        if !status.is_success() {
            let message = response.text().await.unwrap_or_default();
            return Err(TwitchError::Status {
                status: status.as_u16(),
                message,
            });
        }
        let body: Value = response.json().await?;
        Ok(body["data"]
            .as_array()
            .and_then(|data| data.iter().find(|s| s["user_id"] == twitch_id))
            .and_then(|entry| from_helix(entry, twitch_id)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(json: &str) -> Box<RawValue> {
        RawValue::from_string(json.to_string()).unwrap()
    }

    #[test]
    fn only_the_two_stream_types_are_read() {
        let online = raw(
            r#"{"id":"9001","broadcaster_user_id":"7","broadcaster_user_login":"w","broadcaster_user_name":"W","type":"live","started_at":"2020-10-11T10:11:12.123Z"}"#,
        );
        let Some(Ok(Change::Online(seen))) = change("stream.online", &online) else {
            panic!("an online")
        };
        assert_eq!(seen.id, "9001");
        let stream = from_event(&seen);
        assert_eq!(stream.stream_id, "9001");
        assert_eq!(
            stream.started_us,
            micros("2020-10-11T10:11:12.123Z").unwrap()
        );
        assert_eq!(
            (stream.kind.as_str(), stream.user_name.as_str()),
            ("live", "W")
        );
        assert_eq!(
            change("stream.offline", &raw(r#"{"broadcaster_user_id":"7"}"#))
                .unwrap()
                .unwrap(),
            Change::Offline("7".into())
        );
        assert!(change("channel.follow", &online).is_none());
        assert!(change("stream.offline", &raw("{}")).unwrap().is_err());
    }

    #[test]
    fn a_helix_entry_becomes_a_stream_and_an_incomplete_one_does_not() {
        let entry = serde_json::json!({
            "id": "40952121085", "user_id": "7", "user_login": "w", "user_name": "W",
            "game_id": "509658", "game_name": "Just Chatting", "type": "live",
            "title": "hello", "viewer_count": 78365, "started_at": "2021-03-10T15:04:21Z",
            "language": "es", "thumbnail_url": "https://x/{width}x{height}.jpg",
            "tag_ids": [], "tags": ["Español"], "is_mature": false
        });
        let stream = from_helix(&entry, "7").unwrap();
        assert_eq!(stream.title, "hello");
        assert_eq!(stream.viewer_count, 78365);
        assert_eq!(stream.tags, ["Español"]);
        assert_eq!(stream.streamer, "7");
        let mut broken = entry.clone();
        broken["started_at"] = "yesterday".into();
        assert!(from_helix(&broken, "7").is_none());
        broken["id"] = "".into();
        assert!(from_helix(&broken, "7").is_none());
    }
}
