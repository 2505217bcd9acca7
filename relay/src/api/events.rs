//! Event history, replay and test events.

use axum::{extract::State, http::StatusCode, Json};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{
    extract::{PathParam, QueryParams, RawBody},
    openapi::AuthErrors,
    Authenticated,
};
use crate::{
    app::AppState,
    catalog::{generate_test_event, CatalogEntry, TestBroadcaster},
    error::{ApiError, ErrorBody},
    event::{Origin, TauEvent, SOURCE_TEST},
    metrics::SourceLabel,
    store::{EventFilter, PageCursor},
};

/// Default page size: a screenful.
pub const PAGE_SIZE: i64 = 50;
/// Largest page size: bounds one query's memory and time.
pub const MAX_PAGE_SIZE: i64 = 500;

/// Query of `GET /api/v1/twitch-events`, as the client sent it.
#[derive(Debug, Deserialize, Default, Clone, PartialEq, Eq, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Where to continue: from a page's `next` or `previous` link.
    pub cursor: Option<String>,
    /// Events per page (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub page_size: Option<i64>,
    /// Only this type, either spelling (`channel.follow`, `channel-follow`).
    pub event_type: Option<String>,
    /// Only events of this user (id); a raid's raider.
    pub user_id: Option<String>,
    /// Only events of this user (display name or login, any case).
    pub user_name: Option<String>,
    /// Only redemptions of this channel point reward.
    pub reward_id: Option<String>,
    /// Only raids from this channel (id or login).
    pub raid_from: Option<String>,
    /// Only raids to this channel (id or login).
    pub raid_to: Option<String>,
    /// Only events created at or after this time (RFC 3339, e.g.
    /// `2026-01-02T15:04:05Z`; encode a `+` offset as `%2B`; empty: no bound).
    #[param(value_type = Option<String>, format = DateTime)]
    pub created_after: Option<String>,
    /// Only events created before this time (RFC 3339; exclusive).
    #[param(value_type = Option<String>, format = DateTime)]
    pub created_before: Option<String>,
}

/// `text` as µs since the epoch, or a 400 naming the parameter. An offset's
/// `+` that arrived unencoded (a query decodes it to a space) is read as `+`.
fn timestamp_us(name: &str, text: &str) -> Result<i64, ApiError> {
    let parse = |t: &str| chrono::DateTime::parse_from_rfc3339(t.trim()).ok();
    let restored = text
        .rfind(' ')
        .filter(|&i| i > 10)
        .map(|i| format!("{}+{}", &text[..i], &text[i + 1..]));
    parse(text)
        .or_else(|| restored.as_deref().and_then(parse))
        .map(|t| t.timestamp_micros())
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "{name} must be an RFC 3339 timestamp such as 2026-01-02T15:04:05Z, not {text:?}"
            ))
        })
}

/// A checked history request: what to read.
#[derive(Debug)]
pub struct PageRequest {
    /// Which rows.
    pub filter: EventFilter,
    /// Where the page starts (`None`: the newest).
    pub cursor: Option<PageCursor>,
    /// Rows per page.
    pub limit: i64,
}

impl ListQuery {
    /// Checks the cursor, page size and time range; `allowed_types` is the token's
    /// grant (`None`: any type). Pure, so it is fuzzed (fuzz/history_query).
    pub fn request(&self, allowed_types: Option<Vec<String>>) -> Result<PageRequest, ApiError> {
        let cursor = match self.cursor.as_deref() {
            None | Some("") => None,
            Some(text) => Some(
                PageCursor::decode(text)
                    .ok_or_else(|| ApiError::BadRequest("invalid cursor".into()))?,
            ),
        };
        let limit = self.page_size.unwrap_or(PAGE_SIZE);
        if !(1..=MAX_PAGE_SIZE).contains(&limit) {
            return Err(ApiError::BadRequest(format!(
                "page_size must be 1 to {MAX_PAGE_SIZE}"
            )));
        }
        let created_after_us = self
            .created_after
            .as_deref()
            .filter(|t| !t.trim().is_empty())
            .map(|t| timestamp_us("created_after", t))
            .transpose()?;
        let created_before_us = self
            .created_before
            .as_deref()
            .filter(|t| !t.trim().is_empty())
            .map(|t| timestamp_us("created_before", t))
            .transpose()?;
        let filter = EventFilter {
            event_type: self.event_type.as_deref().map(crate::event::tau_event_type),
            user_id: self.user_id.clone(),
            user_name: self.user_name.clone(),
            reward_id: self.reward_id.clone(),
            raid_from: self.raid_from.clone(),
            raid_to: self.raid_to.clone(),
            created_after_us,
            created_before_us,
            allowed_types,
        };
        Ok(PageRequest {
            filter,
            cursor,
            limit,
        })
    }

    /// The link to the page at `cursor` under `public_url`, with this
    /// query's filters and page size.
    pub fn page_url(&self, public_url: &url::Url, cursor: PageCursor) -> String {
        let mut url = public_url
            .join("/api/v1/twitch-events")
            .expect("valid path");
        {
            let mut pairs = url.query_pairs_mut();
            pairs.append_pair("cursor", &cursor.encode());
            let filters = [
                ("page_size", self.page_size.map(|n| n.to_string())),
                ("event_type", self.event_type.clone()),
                ("user_id", self.user_id.clone()),
                ("user_name", self.user_name.clone()),
                ("reward_id", self.reward_id.clone()),
                ("raid_from", self.raid_from.clone()),
                ("raid_to", self.raid_to.clone()),
                ("created_after", self.created_after.clone()),
                ("created_before", self.created_before.clone()),
            ];
            for (name, value) in filters {
                if let Some(value) = value {
                    pairs.append_pair(name, &value);
                }
            }
        }
        url.to_string()
    }
}

/// One page of event history, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventPage {
    /// The next (older) page, if there is one.
    next: Option<String>,
    /// The previous (newer) page, if there is one.
    previous: Option<String>,
    /// This page's events.
    results: Vec<TauEvent>,
}

/// `GET /api/v1/twitch-events`: newest first, `{next, previous, results}`.
#[utoipa::path(
    get,
    path = "/api/v1/twitch-events",
    tag = "events",
    params(ListQuery),
    security(("token" = [])),
    responses(
        (status = 200, description = "A page of stored events the token may see", body = EventPage),
        (status = 400, description = "A malformed cursor, page size, timestamp or query", body = ErrorBody),
        AuthErrors,
    )
)]
pub async fn list(
    auth: Authenticated,
    State(app): State<AppState>,
    QueryParams(query): QueryParams<ListQuery>,
) -> Result<Json<EventPage>, ApiError> {
    let request = query.request(auth.record.event_types.clone())?;
    let page = app
        .store
        .page(&request.filter, request.cursor, request.limit)
        .await?;
    let public_url = &app.config.public_url;
    Ok(Json(EventPage {
        next: page.next.map(|c| query.page_url(public_url, c)),
        previous: page.previous.map(|c| query.page_url(public_url, c)),
        results: page.rows.into_iter().map(|r| r.event).collect(),
    }))
}

fn parse_id(key: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(key).map_err(|_| ApiError::NotFound(format!("no event with id {key:?}")))
}

async fn load(app: &AppState, key: &str) -> Result<TauEvent, ApiError> {
    let id = parse_id(key)?;
    app.store
        .event(id)
        .await?
        .map(|row| row.event)
        .ok_or_else(|| ApiError::NotFound(format!("no event with id {id}")))
}

/// `GET /api/v1/twitch-events/<id>` (a restricted token sees only its types).
#[utoipa::path(
    get,
    path = "/api/v1/twitch-events/{key}",
    tag = "events",
    params(("key" = String, Path, description = "The event's id (a UUID)")),
    security(("token" = [])),
    responses(
        (status = 200, description = "The stored event", body = TauEvent),
        (status = 404, description = "No such event (or not one this token may see)", body = ErrorBody),
        AuthErrors,
    )
)]
pub async fn get_one(
    auth: Authenticated,
    State(app): State<AppState>,
    PathParam(key): PathParam<String>,
) -> Result<Json<TauEvent>, ApiError> {
    let event = load(&app, &key).await?;
    if !auth.record.grant().sees(&event.event_type) {
        return Err(ApiError::NotFound(format!("no event with id {key}")));
    }
    Ok(Json(event))
}

/// `DELETE /api/v1/twitch-events/<id>`.
#[utoipa::path(
    delete,
    path = "/api/v1/twitch-events/{key}",
    tag = "events",
    params(("key" = String, Path, description = "The event's id (a UUID)")),
    security(("token" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such event", body = ErrorBody),
        AuthErrors,
    )
)]
pub async fn delete_one(
    _: Authenticated,
    State(app): State<AppState>,
    PathParam(key): PathParam<String>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id(&key)?;
    if app.store.delete_event(id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("no event with id {id}")))
    }
}

/// `PUT`/`PATCH`: stored events are Twitch's record and stay unedited.
#[utoipa::path(
    method(put, patch),
    path = "/api/v1/twitch-events/{key}",
    tag = "events",
    params(("key" = String, Path, description = "The event's id (a UUID)")),
    security(("token" = [])),
    responses(
        (status = 405, description = "Stored events cannot be edited", body = ErrorBody),
        AuthErrors,
    )
)]
pub async fn not_editable(_: Authenticated) -> ApiError {
    ApiError::MethodNotAllowed(
        "stored events cannot be edited; replay or delete them instead".into(),
    )
}

/// `GET|POST /api/v1/twitch-events/<id>/replay`: re-broadcast with `origin: replay`.
#[utoipa::path(
    method(get, post),
    path = "/api/v1/twitch-events/{key}/replay",
    tag = "events",
    params(("key" = String, Path, description = "The event's id (a UUID)")),
    security(("token" = [])),
    responses(
        (status = 200, description = "The event as it was sent again", body = TauEvent),
        (status = 404, description = "No such event", body = ErrorBody),
        AuthErrors,
    )
)]
pub async fn replay(
    _: Authenticated,
    State(app): State<AppState>,
    PathParam(key): PathParam<String>,
) -> Result<Json<TauEvent>, ApiError> {
    let mut event = load(&app, &key).await?;
    event.origin = Origin::Replay;
    let encoded = event.encode(None);
    app.bus.publish(encoded);
    app.metrics
        .events_ingested
        .get_or_create(&SourceLabel { source: "replay" })
        .inc();
    Ok(Json(event))
}

/// `POST /api/v1/twitch-events/<event_type>/test`: body is `event_data`
/// (empty → a generated realistic payload). Broadcast, never stored.
#[utoipa::path(
    post,
    path = "/api/v1/twitch-events/{key}/test",
    tag = "events",
    params((
        "key" = String, Path,
        description = "The event type, either spelling (see `/api/v1/twitch/eventsub-subscriptions`)",
        example = "channel-follow",
    )),
    request_body(
        content = Option<Object>,
        content_type = "application/json",
        description = "The event's `event_data`; none for a generated realistic payload",
    ),
    security(("token" = [])),
    responses(
        (status = 200, description = "The test event as it was broadcast (never stored)", body = TauEvent),
        (status = 400, description = "Unknown event type, or a body that is not a JSON object", body = ErrorBody),
        AuthErrors,
    )
)]
pub async fn test_event(
    _: Authenticated,
    State(app): State<AppState>,
    PathParam(key): PathParam<String>,
    RawBody(body): RawBody,
) -> Result<Json<TauEvent>, ApiError> {
    let entry = catalog_entry(&app, &key)?;
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::BadRequest("body must be UTF-8 JSON".into()))?;
    // No body, or JSON `null` (an absent optional body): generate one.
    let event_data: Box<RawValue> = if matches!(text.trim(), "" | "null") {
        let generated = generate(&app, entry).await?;
        RawValue::from_string(generated.to_string()).expect("serialized JSON is valid")
    } else {
        let raw: Box<RawValue> = serde_json::from_str(text)
            .map_err(|e| ApiError::BadRequest(format!("body is not JSON: {e}")))?;
        if !raw.get().trim_start().starts_with('{') {
            return Err(ApiError::BadRequest(
                "body must be a JSON object (the event_data)".into(),
            ));
        }
        raw
    };
    let event = TauEvent {
        id: None,
        event_id: Uuid::new_v4().to_string(),
        event_type: entry.tau_type(),
        version: entry.version.clone(),
        event_source: SOURCE_TEST.into(),
        event_data,
        created: chrono::Utc::now(),
        origin: Origin::Test,
    };
    app.bus.publish(event.encode(None));
    app.metrics
        .events_ingested
        .get_or_create(&SourceLabel { source: "test" })
        .inc();
    Ok(Json(event))
}

/// The catalog entry (newest version) of `key`, either spelling; 400 naming
/// the valid types if there is none.
fn catalog_entry(app: &AppState, key: &str) -> Result<&'static CatalogEntry, ApiError> {
    app.catalog.latest(key).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "unknown event type {key:?}; valid types: {}",
            app.catalog.tau_types().join(", ")
        ))
    })
}

/// A realistic `event_data` for `entry`, about the configured channel.
async fn generate(app: &AppState, entry: &CatalogEntry) -> Result<serde_json::Value, ApiError> {
    let broadcaster = test_broadcaster(app).await;
    generate_test_event(entry, broadcaster.as_ref())
        .ok_or_else(|| ApiError::BadRequest(format!("no test payload for {}", entry.kind)))
}

/// A generated test payload, before anyone edits or sends it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TestSample {
    /// The TAU event type.
    #[schema(example = "channel-follow")]
    event_type: String,
    /// Twitch's EventSub type.
    #[schema(example = "channel.follow")]
    subscription_type: String,
    /// The EventSub version the payload follows.
    #[schema(example = "2")]
    version: String,
    /// A realistic `event_data`: what `POST` sends when it gets no body.
    #[schema(value_type = Object)]
    event_data: serde_json::Value,
}

/// `GET /api/v1/twitch-events/<event_type>/test`: the realistic payload
/// `POST` would generate, to edit before sending. Neither broadcast nor
/// stored.
#[utoipa::path(
    get,
    path = "/api/v1/twitch-events/{key}/test",
    tag = "events",
    params((
        "key" = String, Path,
        description = "The event type, either spelling (see `/api/v1/twitch/eventsub-subscriptions`)",
        example = "channel-follow",
    )),
    security(("token" = [])),
    responses(
        (status = 200, description = "A generated payload (nothing is sent)", body = TestSample),
        (status = 400, description = "Unknown event type", body = ErrorBody),
        AuthErrors,
    )
)]
pub async fn test_sample(
    _: Authenticated,
    State(app): State<AppState>,
    PathParam(key): PathParam<String>,
) -> Result<Json<TestSample>, ApiError> {
    let entry = catalog_entry(&app, &key)?;
    let event_data = generate(&app, entry).await?;
    Ok(Json(TestSample {
        event_type: entry.tau_type(),
        subscription_type: entry.kind.clone(),
        version: entry.version.clone(),
        event_data,
    }))
}

/// The configured channel, if its Twitch id is known (stored once resolved).
async fn test_broadcaster(app: &AppState) -> Option<TestBroadcaster> {
    let login = app.config.twitch.broadcaster.clone()?;
    let id = app.store.setting("broadcaster_id").await.ok().flatten()?;
    Some(TestBroadcaster {
        id,
        name: login.clone(),
        login,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(after: Option<&str>, before: Option<&str>) -> ListQuery {
        ListQuery {
            created_after: after.map(str::to_string),
            created_before: before.map(str::to_string),
            ..Default::default()
        }
    }

    #[test]
    fn time_range_is_parsed_and_kept_in_page_links() {
        let q = query(
            Some("2026-01-02T03:04:05Z"),
            Some("2026-01-02T05:04:05+02:00"),
        );
        let request = q.request(None).unwrap();
        let after = chrono::DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z").unwrap();
        assert_eq!(
            request.filter.created_after_us,
            Some(after.timestamp_micros())
        );
        // The same instant: 05:04:05+02:00 is 03:04:05Z.
        assert_eq!(
            request.filter.created_before_us,
            Some(after.timestamp_micros())
        );
        let public = url::Url::parse("https://tau.example.com/").unwrap();
        let link = q.page_url(&public, PageCursor::Before(9));
        let url = url::Url::parse(&link).unwrap();
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        for (name, value) in [
            ("created_after", "2026-01-02T03:04:05Z"),
            ("created_before", "2026-01-02T05:04:05+02:00"),
        ] {
            assert!(
                pairs.contains(&(name.to_string(), value.to_string())),
                "{link}"
            );
        }
    }

    #[test]
    fn an_empty_bound_is_no_bound() {
        let request = query(Some(""), Some(" ")).request(None).unwrap();
        assert_eq!(request.filter.created_after_us, None);
        assert_eq!(request.filter.created_before_us, None);
    }

    #[test]
    fn an_unencoded_plus_in_an_offset_is_read_as_plus() {
        let q = query(Some("2026-01-02T05:04:05 02:00"), None);
        let expected = chrono::DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z").unwrap();
        assert_eq!(
            q.request(None).unwrap().filter.created_after_us,
            Some(expected.timestamp_micros())
        );
    }

    #[test]
    fn a_bad_timestamp_is_a_400_naming_the_parameter() {
        for (q, name) in [
            (query(Some("yesterday"), None), "created_after"),
            (query(None, Some("2026-13-01T00:00:00Z")), "created_before"),
            (query(None, Some("2026-01-02")), "created_before"),
        ] {
            match q.request(None) {
                Err(ApiError::BadRequest(detail)) => assert!(detail.contains(name), "{detail}"),
                other => panic!("{q:?}: {other:?}"),
            }
        }
    }
}
