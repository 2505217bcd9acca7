//! Other channels and their broadcasts: users besides the broadcaster
//! (for `GET /users?login=`), `GET /helix/streams`, and the test controls
//! [`FakeTwitch::add_user`], [`FakeTwitch::go_live`] (optionally unlisted
//! until [`FakeTwitch::list_stream`], as Twitch's list lags) and
//! [`FakeTwitch::go_offline`]. Going live or offline also notifies every
//! enabled `stream.online` / `stream.offline` subscription whose condition
//! names that channel, on whatever transport it has, as Twitch does.

use std::collections::HashMap;

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::Json;
use serde_json::{json, Value};

use crate::error::{FakeError, HelixError};
use crate::state::{now_rfc3339, State as World};
use crate::FakeTwitch;

/// Most `user_id` + `user_login` parameters `GET /streams` takes.
const MAX_FILTERS: usize = 100;
/// `first`'s default and maximum.
const DEFAULT_FIRST: usize = 20;
const MAX_FIRST: usize = 100;

/// A broadcast as a test describes it; [`StreamInfo::new`] fills the rest.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamInfo {
    /// Twitch's stream id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Category id.
    pub game_id: String,
    /// Category name.
    pub game_name: String,
    /// `live` (the event's `type`).
    pub kind: String,
    /// Viewers.
    pub viewer_count: u64,
    /// ISO 639-1 language.
    pub language: String,
    /// Tags.
    pub tags: Vec<String>,
    /// When it started (RFC 3339); `None`: now.
    pub started_at: Option<String>,
    /// Whether `GET /streams` lists it yet (Twitch's list lags behind
    /// `stream.online` by up to minutes): `false` to see a client cope.
    pub listed: bool,
}

impl StreamInfo {
    /// A live, listed broadcast `id` titled `title`, in Just Chatting.
    pub fn new(id: &str, title: &str) -> StreamInfo {
        StreamInfo {
            id: id.into(),
            title: title.into(),
            game_id: "509658".into(),
            game_name: "Just Chatting".into(),
            kind: "live".into(),
            viewer_count: 42,
            language: "en".into(),
            tags: vec!["English".into()],
            started_at: None,
            listed: true,
        }
    }
}

/// A user besides the broadcaster.
#[derive(Clone, Debug)]
pub(crate) struct OtherUser {
    id: String,
    login: String,
    display_name: String,
}

/// The other users and the live broadcasts (part of the fake's world).
#[derive(Default)]
pub(crate) struct Channels {
    users: Vec<OtherUser>,
    /// User id → its live broadcast.
    live: HashMap<String, (StreamInfo, String)>,
}

fn user_json(u: &OtherUser) -> Value {
    json!({
        "id": u.id, "login": u.login, "display_name": u.display_name,
        "type": "", "broadcaster_type": "", "description": "",
        "profile_image_url": "", "offline_image_url": "", "view_count": 0,
        "created_at": "2020-01-01T00:00:00Z",
    })
}

impl Channels {
    /// `GET /users` entries for the `id` / `login` parameters among the other users.
    pub(crate) fn users(&self, wanted: &[&(String, String)]) -> Vec<Value> {
        self.users
            .iter()
            .filter(|u| {
                wanted.iter().any(|(k, v)| {
                    (k == "id" && *v == u.id) || (k == "login" && v.eq_ignore_ascii_case(&u.login))
                })
            })
            .map(user_json)
            .collect()
    }

    /// `(login, display name)` of `user_id`.
    fn names(&self, user_id: &str) -> (String, String) {
        if user_id == FakeTwitch::BROADCASTER_ID {
            return (
                FakeTwitch::BROADCASTER_LOGIN.into(),
                FakeTwitch::BROADCASTER_NAME.into(),
            );
        }
        self.users
            .iter()
            .find(|u| u.id == user_id)
            .map(|u| (u.login.clone(), u.display_name.clone()))
            .unwrap_or_else(|| (user_id.into(), user_id.into()))
    }

    /// The Helix entry of `user_id`'s broadcast.
    fn stream_json(&self, user_id: &str, info: &StreamInfo, started_at: &str) -> Value {
        let (login, name) = self.names(user_id);
        json!({
            "id": info.id, "user_id": user_id, "user_login": login, "user_name": name,
            "game_id": info.game_id, "game_name": info.game_name, "type": info.kind,
            "title": info.title, "viewer_count": info.viewer_count, "started_at": started_at,
            "language": info.language,
            "thumbnail_url": format!("https://static-cdn.jtvnw.net/previews-ttv/live_user_{login}-{{width}}x{{height}}.jpg"),
            "tag_ids": [], "tags": info.tags, "is_mature": false,
        })
    }
}

/// `GET /streams?user_id=..&user_login=..&first=` (repeatable filters;
/// none: every live broadcast).
pub(crate) async fn list(
    State(fake): State<FakeTwitch>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, HelixError> {
    fake.authenticate(&headers)?;
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let filters: Vec<_> = pairs
        .iter()
        .filter(|(k, _)| k == "user_id" || k == "user_login")
        .collect();
    if filters.len() > MAX_FILTERS {
        return Err(HelixError::bad_request(
            "The request exceeded the maximum of 100 user_id and user_login parameters",
        ));
    }
    let first = match pairs.iter().find(|(k, _)| k == "first") {
        None => DEFAULT_FIRST,
        Some((_, v)) => v
            .parse()
            .ok()
            .filter(|n| (1..=MAX_FIRST).contains(n))
            .ok_or_else(|| {
                HelixError::bad_request(
                    "The parameter \"first\" was malformed: the value must be between 1 and 100",
                )
            })?,
    };
    let st = fake.state();
    let channels = &st.channels;
    let mut data: Vec<Value> = channels
        .live
        .iter()
        .filter(|(_, (info, _))| info.listed)
        .filter(|(user_id, _)| {
            let (login, _) = channels.names(user_id);
            filters.is_empty()
                || filters.iter().any(|(k, v)| {
                    (k == "user_id" && v == *user_id)
                        || (k == "user_login" && v.eq_ignore_ascii_case(&login))
                })
        })
        .map(|(user_id, (info, started_at))| channels.stream_json(user_id, info, started_at))
        .collect();
    data.sort_by(|a, b| b["viewer_count"].as_u64().cmp(&a["viewer_count"].as_u64()));
    data.truncate(first);
    Ok(Json(json!({"data": data, "pagination": {}})))
}

impl FakeTwitch {
    /// Makes `login` (any case; display name as given) a user with `id`,
    /// known to `GET /users` besides the broadcaster.
    pub fn add_user(&self, login: &str, id: &str) {
        self.state().channels.users.push(OtherUser {
            id: id.into(),
            login: login.to_ascii_lowercase(),
            display_name: login.into(),
        });
        self.notify();
    }

    /// `user_id` goes live with `info`: `GET /streams` lists it (if
    /// `info.listed`) and every enabled `stream.online` subscription of
    /// that channel is notified. Returns the message ids sent.
    pub async fn go_live(&self, user_id: &str, info: StreamInfo) -> Result<Vec<String>, FakeError> {
        let started_at = info.started_at.clone().unwrap_or_else(now_rfc3339);
        let (login, name) = {
            let mut st = self.state();
            st.channels
                .live
                .insert(user_id.into(), (info.clone(), started_at.clone()));
            st.channels.names(user_id)
        };
        self.notify();
        let event = json!({
            "id": info.id, "broadcaster_user_id": user_id, "broadcaster_user_login": login,
            "broadcaster_user_name": name, "type": info.kind, "started_at": started_at,
        });
        self.notify_channel(user_id, "stream.online", event).await
    }

    /// `user_id`'s live broadcast, listed with `info.listed: false`,
    /// appears in `GET /streams` (Twitch's list caught up). False if
    /// `user_id` is not live.
    pub fn list_stream(&self, user_id: &str) -> bool {
        let listed = match self.state().channels.live.get_mut(user_id) {
            Some((info, _)) => {
                info.listed = true;
                true
            }
            None => false,
        };
        self.notify();
        listed
    }

    /// `user_id`'s broadcast ends: `GET /streams` no longer lists it and
    /// every enabled `stream.offline` subscription of that channel is
    /// notified. Returns the message ids sent.
    pub async fn go_offline(&self, user_id: &str) -> Result<Vec<String>, FakeError> {
        let (login, name) = {
            let mut st = self.state();
            st.channels.live.remove(user_id);
            st.channels.names(user_id)
        };
        self.notify();
        let event = json!({
            "broadcaster_user_id": user_id, "broadcaster_user_login": login,
            "broadcaster_user_name": name,
        });
        self.notify_channel(user_id, "stream.offline", event).await
    }

    /// Sends `event` to every enabled `kind` v1 subscription of `user_id`.
    async fn notify_channel(
        &self,
        user_id: &str,
        kind: &str,
        event: Value,
    ) -> Result<Vec<String>, FakeError> {
        let ids: Vec<String> = matching(&self.state(), user_id, kind);
        let mut sent = Vec::new();
        for id in ids {
            sent.push(self.send_to_subscription(&id, event.clone()).await?);
        }
        Ok(sent)
    }
}

/// Ids of the enabled `kind` v1 subscriptions whose broadcaster is `user_id`.
fn matching(st: &World, user_id: &str, kind: &str) -> Vec<String> {
    st.subscriptions
        .iter()
        .filter(|s| s.is_enabled() && s.sub_type == kind && s.version == "1")
        .filter(|s| s.condition["broadcaster_user_id"] == user_id)
        .map(|s| s.id.clone())
        .collect()
}
