//! `/api/v1/streamers`: the watch list and its streams, in the original
//! TAU's shapes (Django REST framework's `{next, previous, results}`
//! pages). See [`crate::streamers`] for what watching does.
//!
//! `{id}` is a streamer's TAU id or its login. Reading takes an overlay
//! token; changing the list takes an admin one.

use axum::{extract::State, http::StatusCode, Json};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{
    extract::{JsonBody, PathParam, QueryParams},
    openapi::AuthErrors,
    Authenticated,
};
use crate::{
    app::AppState,
    error::{ApiError, ErrorBody},
    event::format_created,
    store::{Stream, Streamer, StreamerSource},
    streamers::WatchError,
};

/// Streams per page by default (the original's page size).
pub const STREAMS_PAGE: i64 = 10;
/// Largest page of streams.
pub const MAX_STREAMS_PAGE: i64 = 100;

fn time(us: i64) -> String {
    format_created(chrono::DateTime::from_timestamp_micros(us).unwrap_or_default())
}

/// A watched streamer.
#[derive(Debug, Serialize, ToSchema)]
pub struct StreamerBody {
    /// TAU's id.
    #[schema(format = Uuid)]
    id: String,
    /// Twitch login (lower case).
    #[schema(example = "cooler_user")]
    twitch_username: String,
    /// Twitch user id.
    #[schema(example = "1337")]
    twitch_id: String,
    /// Live, as the last `stream.online` / `stream.offline` said.
    streaming: bool,
    /// On the list but not subscribed to.
    disabled: bool,
    /// When it was added.
    #[schema(format = DateTime)]
    created: String,
    /// When it last changed.
    #[schema(format = DateTime)]
    updated: String,
    /// `api` (added here) or `spec` (`TAU_STREAMERS`: the TwitchChannel's
    /// `spec.streamers`; cannot be deleted here).
    source: StreamerSource,
}

impl From<Streamer> for StreamerBody {
    fn from(s: Streamer) -> StreamerBody {
        StreamerBody {
            id: s.id,
            twitch_username: s.twitch_username,
            twitch_id: s.twitch_id,
            streaming: s.streaming,
            disabled: s.disabled,
            created: time(s.created_us),
            updated: time(s.updated_us),
            source: s.source,
        }
    }
}

/// One broadcast of a watched streamer (Helix's stream object, as the
/// original TAU stored it).
#[derive(Debug, Serialize, ToSchema)]
pub struct StreamBody {
    /// TAU's id.
    #[schema(format = Uuid)]
    id: String,
    /// Twitch's stream id.
    stream_id: String,
    /// The streamer's Twitch id.
    user_id: String,
    /// The streamer's login.
    user_login: String,
    /// The streamer's display name.
    user_name: String,
    /// Category id.
    game_id: String,
    /// Category name.
    game_name: String,
    /// `live`.
    #[serde(rename = "type")]
    kind: String,
    /// Title.
    title: String,
    /// Viewers when it was recorded.
    viewer_count: i64,
    /// When it began.
    #[schema(format = DateTime)]
    started_at: String,
    /// When it ended (`null`: live, or its end was not seen).
    #[schema(format = DateTime)]
    ended_at: Option<String>,
    /// ISO 639-1 language.
    language: String,
    /// Thumbnail URL template (`{width}x{height}`).
    thumbnail_url: String,
    /// Always `null`: Twitch replaced tag ids with `tags`.
    #[schema(value_type = Option<Vec<String>>)]
    tag_ids: Option<()>,
    /// The stream's tags.
    tags: Vec<String>,
    /// Twitch's (deprecated) mature flag.
    is_mature: bool,
}

impl From<Stream> for StreamBody {
    fn from(s: Stream) -> StreamBody {
        StreamBody {
            id: s.id,
            stream_id: s.stream_id,
            user_id: s.streamer,
            user_login: s.user_login,
            user_name: s.user_name,
            game_id: s.game_id,
            game_name: s.game_name,
            kind: s.kind,
            title: s.title,
            viewer_count: s.viewer_count,
            started_at: time(s.started_us),
            ended_at: s.ended_us.map(time),
            language: s.language,
            thumbnail_url: s.thumbnail_url,
            tag_ids: None,
            tags: s.tags,
            is_mature: s.is_mature,
        }
    }
}

/// Every watched streamer (one page: the list is capped).
#[derive(Debug, Serialize, ToSchema)]
pub struct StreamerPage {
    /// Always `null` (everything is on this page).
    #[schema(value_type = Option<String>)]
    next: Option<()>,
    /// Always `null`.
    #[schema(value_type = Option<String>)]
    previous: Option<()>,
    /// The streamers, newest first.
    results: Vec<StreamerBody>,
}

/// A page of a streamer's streams, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct StreamPage {
    /// The next (older) page, if there is one.
    next: Option<String>,
    /// Always `null` (pages go from newest to oldest).
    #[schema(value_type = Option<String>)]
    previous: Option<()>,
    /// This page's streams.
    results: Vec<StreamBody>,
}

/// Body of `POST /api/v1/streamers`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddStreamer {
    /// The streamer's Twitch login (any case).
    #[schema(example = "cooler_user")]
    twitch_username: String,
}

/// Body of `PATCH` / `PUT /api/v1/streamers/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateStreamer {
    /// `true`: stop subscribing (kept on the list); `false`: subscribe again.
    disabled: bool,
}

/// Query of `GET /api/v1/streamers/{id}/streams`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamsQuery {
    /// Where to continue: from a page's `next` link.
    cursor: Option<String>,
    /// Streams per page (default 10).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
}

/// A place in a streamer's streams: after `(started_us, id)`.
fn encode_cursor(stream: &Stream) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}:{}", stream.started_us, stream.id))
}

fn decode_cursor(text: &str) -> Option<(i64, String)> {
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(text).ok()?).ok()?;
    let (started, id) = raw.split_once(':')?;
    Some((started.parse().ok()?, id.to_string()))
}

impl From<WatchError> for ApiError {
    fn from(err: WatchError) -> ApiError {
        match err {
            WatchError::BadLogin(_) | WatchError::UnknownUser(_) | WatchError::OverCap(_) => {
                ApiError::BadRequest(err.to_string())
            }
            WatchError::AlreadyWatched(_)
            | WatchError::OwnedBySpec(_)
            | WatchError::ManagedElsewhere => ApiError::Conflict(err.to_string()),
            WatchError::NotFound(_) => ApiError::NotFound(err.to_string()),
            WatchError::Twitch { .. } => ApiError::Unavailable(err.to_string()),
            WatchError::Store(err) => err.into(),
        }
    }
}

/// `GET /api/v1/streamers`.
#[utoipa::path(
    get,
    path = "/api/v1/streamers",
    tag = "streamers",
    security(("token" = [])),
    responses(
        (status = 200, description = "Every watched streamer, newest first", body = StreamerPage),
        AuthErrors,
    )
)]
pub async fn list(
    _: Authenticated,
    State(app): State<AppState>,
) -> Result<Json<StreamerPage>, ApiError> {
    let results = app.streamers.list().await?;
    Ok(Json(StreamerPage {
        next: None,
        previous: None,
        results: results.into_iter().map(StreamerBody::from).collect(),
    }))
}

/// `POST /api/v1/streamers`: watches a streamer (looked up at Twitch);
/// every replica subscribes to its `stream.online` and `stream.offline`.
#[utoipa::path(
    post,
    path = "/api/v1/streamers",
    tag = "streamers",
    security(("token" = [])),
    request_body = AddStreamer,
    responses(
        (status = 201, description = "Watched; the transports subscribe anew", body = StreamerBody),
        (status = 400, description = "Not a Twitch login, Twitch has no such user, or the transport's cap is reached (the detail says which and what to do)", body = ErrorBody),
        (status = 409, description = "Already watched, or the operator manages the subscriptions (use the TwitchChannel's spec.streamers)", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 503, description = "Twitch cannot be asked: not configured (TWITCH_CLIENT_ID/SECRET), or failing", body = ErrorBody),
        AuthErrors,
    )
)]
pub async fn add(
    _: Authenticated,
    State(app): State<AppState>,
    JsonBody(body): JsonBody<AddStreamer>,
) -> Result<(StatusCode, Json<StreamerBody>), ApiError> {
    let added = app.streamers.add(&body.twitch_username).await?;
    Ok((StatusCode::CREATED, Json(added.into())))
}

/// `GET /api/v1/streamers/{id}`.
#[utoipa::path(
    get,
    path = "/api/v1/streamers/{id}",
    tag = "streamers",
    params(("id" = String, Path, description = "The streamer's TAU id or login")),
    security(("token" = [])),
    responses(
        (status = 200, description = "The streamer", body = StreamerBody),
        (status = 404, description = "No such watched streamer", body = ErrorBody),
        AuthErrors,
    )
)]
pub async fn get_one(
    _: Authenticated,
    State(app): State<AppState>,
    PathParam(id): PathParam<String>,
) -> Result<Json<StreamerBody>, ApiError> {
    Ok(Json(app.streamers.get(&id).await?.into()))
}

/// `PATCH /api/v1/streamers/{id}`: disables or enables it.
#[utoipa::path(
    patch,
    path = "/api/v1/streamers/{id}",
    tag = "streamers",
    params(("id" = String, Path, description = "The streamer's TAU id or login")),
    security(("token" = [])),
    request_body = UpdateStreamer,
    responses(
        (status = 200, description = "Changed; its subscriptions follow", body = StreamerBody),
        (status = 400, description = "A malformed body, or enabling it would pass the transport's cap", body = ErrorBody),
        (status = 404, description = "No such watched streamer", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        AuthErrors,
    )
)]
pub async fn update(
    _: Authenticated,
    State(app): State<AppState>,
    PathParam(id): PathParam<String>,
    JsonBody(body): JsonBody<UpdateStreamer>,
) -> Result<Json<StreamerBody>, ApiError> {
    Ok(Json(
        app.streamers.set_disabled(&id, body.disabled).await?.into(),
    ))
}

/// `PUT /api/v1/streamers/{id}`: the same as `PATCH` (`disabled` is the
/// only field that can change).
#[utoipa::path(
    put,
    path = "/api/v1/streamers/{id}",
    tag = "streamers",
    params(("id" = String, Path, description = "The streamer's TAU id or login")),
    security(("token" = [])),
    request_body = UpdateStreamer,
    responses(
        (status = 200, description = "Changed; its subscriptions follow", body = StreamerBody),
        (status = 400, description = "A malformed body, or enabling it would pass the transport's cap", body = ErrorBody),
        (status = 404, description = "No such watched streamer", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        AuthErrors,
    )
)]
pub async fn replace(
    auth: Authenticated,
    state: State<AppState>,
    id: PathParam<String>,
    body: JsonBody<UpdateStreamer>,
) -> Result<Json<StreamerBody>, ApiError> {
    update(auth, state, id, body).await
}

/// `DELETE /api/v1/streamers/{id}`: stops watching; its streams go too.
#[utoipa::path(
    delete,
    path = "/api/v1/streamers/{id}",
    tag = "streamers",
    params(("id" = String, Path, description = "The streamer's TAU id or login")),
    security(("token" = [])),
    responses(
        (status = 204, description = "Removed; its subscriptions go"),
        (status = 404, description = "No such watched streamer", body = ErrorBody),
        (status = 409, description = "It comes from the TwitchChannel's spec.streamers (TAU_STREAMERS): remove it there, or disable it", body = ErrorBody),
        AuthErrors,
    )
)]
pub async fn remove(
    _: Authenticated,
    State(app): State<AppState>,
    PathParam(id): PathParam<String>,
) -> Result<StatusCode, ApiError> {
    app.streamers.remove(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/streamers/{id}/streams`: newest first.
#[utoipa::path(
    get,
    path = "/api/v1/streamers/{id}/streams",
    tag = "streamers",
    params(("id" = String, Path, description = "The streamer's TAU id or login"), StreamsQuery),
    security(("token" = [])),
    responses(
        (status = 200, description = "A page of the streamer's streams", body = StreamPage),
        (status = 400, description = "A malformed cursor or limit", body = ErrorBody),
        (status = 404, description = "No such watched streamer", body = ErrorBody),
        AuthErrors,
    )
)]
pub async fn streams(
    _: Authenticated,
    State(app): State<AppState>,
    PathParam(id): PathParam<String>,
    QueryParams(query): QueryParams<StreamsQuery>,
) -> Result<Json<StreamPage>, ApiError> {
    let limit = query.limit.unwrap_or(STREAMS_PAGE);
    if !(1..=MAX_STREAMS_PAGE).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit must be 1 to {MAX_STREAMS_PAGE}"
        )));
    }
    let before = match query.cursor.as_deref() {
        None | Some("") => None,
        Some(text) => {
            Some(decode_cursor(text).ok_or_else(|| ApiError::BadRequest("invalid cursor".into()))?)
        }
    };
    let streamer = app.streamers.get(&id).await?;
    let mut rows = app
        .store
        .streams(&streamer.twitch_id, before, limit + 1)
        .await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next = match rows.last() {
        Some(last) if more => {
            let mut url = app
                .config
                .public_url
                .join(&format!("/api/v1/streamers/{}/streams", streamer.id))
                .expect("a valid path");
            url.query_pairs_mut()
                .append_pair("cursor", &encode_cursor(last))
                .append_pair("limit", &limit.to_string());
            Some(url.to_string())
        }
        _ => None,
    };
    Ok(Json(StreamPage {
        next,
        previous: None,
        results: rows.into_iter().map(StreamBody::from).collect(),
    }))
}

/// The latest stream, or `{}` when there is none (the original's answer).
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum LatestStream {
    /// The newest stream.
    Stream(Box<StreamBody>),
    /// `{}`: the streamer has not been seen live.
    None {},
}

/// `GET /api/v1/streamers/{id}/streams/latest`.
#[utoipa::path(
    get,
    path = "/api/v1/streamers/{id}/streams/latest",
    tag = "streamers",
    params(("id" = String, Path, description = "The streamer's TAU id or login")),
    security(("token" = [])),
    responses(
        (status = 200, description = "The newest stream, or `{}` if none was recorded", body = LatestStream),
        (status = 404, description = "No such watched streamer", body = ErrorBody),
        AuthErrors,
    )
)]
pub async fn latest(
    _: Authenticated,
    State(app): State<AppState>,
    PathParam(id): PathParam<String>,
) -> Result<Json<LatestStream>, ApiError> {
    let streamer = app.streamers.get(&id).await?;
    let newest = app.store.streams(&streamer.twitch_id, None, 1).await?;
    Ok(Json(match newest.into_iter().next() {
        Some(stream) => LatestStream::Stream(Box::new(stream.into())),
        None => LatestStream::None {},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let stream = Stream {
            id: "abc".into(),
            stream_id: "1".into(),
            streamer: "7".into(),
            user_login: String::new(),
            user_name: String::new(),
            game_id: String::new(),
            game_name: String::new(),
            kind: String::new(),
            title: String::new(),
            viewer_count: 0,
            started_us: 1_700_000_000_000_000,
            ended_us: None,
            language: String::new(),
            thumbnail_url: String::new(),
            tags: vec![],
            is_mature: false,
        };
        assert_eq!(
            decode_cursor(&encode_cursor(&stream)),
            Some((1_700_000_000_000_000, "abc".into()))
        );
        for bad in ["", "!!", "bm9jb2xvbg", "eDph"] {
            assert_eq!(decode_cursor(bad), None, "{bad}");
        }
    }

    #[test]
    fn an_absent_latest_stream_is_an_empty_object() {
        assert_eq!(serde_json::to_string(&LatestStream::None {}).unwrap(), "{}");
    }
}
