//! `/api/v1/chat-bots`: the original TAU's chat bot routes (see
//! [`crate::chat_bots`]). A bot's tokens are never returned.
//!
//! `{id}` is a bot's TAU id or its login. Reading takes a bot token;
//! adding (the authorization link), removing and changing channels take
//! an admin one.

use axum::{
    extract::State,
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    extract::{JsonBody, PathParam},
    openapi::AuthErrors,
};
use crate::{
    app::AppState,
    chat_bots::{manage::BotError, ChatBot},
    error::{ApiError, ErrorBody},
    store::ChatBotChannel,
};

impl From<BotError> for ApiError {
    fn from(err: BotError) -> ApiError {
        match err {
            BotError::NoBot(_) | BotError::NoChannel(_) => ApiError::NotFound(err.to_string()),
            BotError::BadChannel(_) | BotError::UnknownChannel(_) => {
                ApiError::BadRequest(err.to_string())
            }
            BotError::AlreadyIn { .. } => ApiError::Conflict(err.to_string()),
            BotError::Twitch(_) => ApiError::Unavailable(err.to_string()),
            BotError::Store(err) => err.into(),
        }
    }
}

/// Every chat bot (one page: the original's shape).
#[derive(Debug, Serialize, ToSchema)]
pub struct ChatBotPage {
    /// Always `null`.
    #[schema(value_type = Option<String>)]
    next: Option<()>,
    /// Always `null`.
    #[schema(value_type = Option<String>)]
    previous: Option<()>,
    /// The bots, oldest first.
    results: Vec<ChatBot>,
}

/// A bot in a channel.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChatBotChannelBody {
    /// TAU's id of this membership.
    #[schema(format = Uuid)]
    id: String,
    /// The channel, as `#login`.
    #[schema(example = "#cooler_user")]
    channel: String,
    /// The bot's TAU id.
    #[schema(format = Uuid)]
    chat_bot: String,
    /// `joined`, `pending`, or `failed` (Twitch refused the bot there; see `reason`).
    #[schema(example = "joined")]
    status: String,
    /// Why it failed, in words.
    reason: Option<String>,
}

impl From<ChatBotChannel> for ChatBotChannelBody {
    fn from(c: ChatBotChannel) -> ChatBotChannelBody {
        ChatBotChannelBody {
            id: c.id,
            channel: format!("#{}", c.channel_login),
            chat_bot: c.bot_id,
            status: c.status,
            reason: c.reason,
        }
    }
}

/// Body of `POST /api/v1/chat-bots/channels`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JoinChannel {
    /// The channel: `#login` or `login`.
    #[schema(example = "#cooler_user")]
    channel: String,
    /// The bot: its TAU id or login.
    #[schema(example = "helper_bot")]
    chat_bot: String,
}

/// Twitch's consent page for a new bot.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuthLink {
    /// Open it logged into Twitch as the bot (a private window).
    url: String,
}

/// `GET /api/v1/chat-bots`.
#[utoipa::path(
    get,
    path = "/api/v1/chat-bots",
    tag = "chat bots",
    security(("token" = [])),
    responses(
        (status = 200, description = "Every chat bot, oldest first. Its access and refresh tokens are deliberately not returned (the original TAU returned them). `session` is each bot's own EventSub WebSocket session as this replica sees it (`null` without one).", body = ChatBotPage),
        AuthErrors,
    )
)]
pub async fn list(State(app): State<AppState>) -> Result<Json<ChatBotPage>, ApiError> {
    Ok(Json(ChatBotPage {
        next: None,
        previous: None,
        results: app.chat_bots.list().await?,
    }))
}

/// `GET /api/v1/chat-bots/{id}`.
#[utoipa::path(
    get,
    path = "/api/v1/chat-bots/{id}",
    tag = "chat bots",
    security(("token" = [])),
    params(("id" = String, Path, description = "The bot's TAU id or login")),
    responses(
        (status = 200, description = "The bot (never its tokens), with its chat session's state on this replica", body = ChatBot),
        (status = 404, description = "No such bot", body = ErrorBody),
        AuthErrors,
    )
)]
pub async fn get_one(
    State(app): State<AppState>,
    PathParam(id): PathParam<String>,
) -> Result<Json<ChatBot>, ApiError> {
    app.chat_bots
        .get(&id)
        .await?
        .map(Json)
        .ok_or_else(|| BotError::NoBot(id).into())
}

/// `DELETE /api/v1/chat-bots/{id}`: revokes its token at Twitch, removes
/// it and its channels, closes its chat sockets.
#[utoipa::path(
    delete,
    path = "/api/v1/chat-bots/{id}",
    tag = "chat bots",
    security(("token" = [])),
    params(("id" = String, Path, description = "The bot's TAU id or login")),
    responses(
        (status = 204, description = "Removed (a failure to revoke at Twitch is only logged: the token expires anyway)"),
        (status = 404, description = "No such bot", body = ErrorBody),
        AuthErrors,
    )
)]
pub async fn remove(
    State(app): State<AppState>,
    PathParam(id): PathParam<String>,
) -> Result<StatusCode, ApiError> {
    app.chat_bots.remove(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/chat-bots/twitch-auth-link`.
#[utoipa::path(
    get,
    path = "/api/v1/chat-bots/twitch-auth-link",
    tag = "chat bots",
    security(("token" = [])),
    responses(
        (status = 200, description = "Twitch's consent page asking for `user:read:chat user:write:chat user:bot` (with `force_verify`), to open logged into Twitch as the bot; the one-time state also travels in an HttpOnly cookie", body = AuthLink,
            headers(("set-cookie" = String, description = "The one-time OAuth state"))),
        (status = 503, description = "The relay has no Twitch credentials (`TWITCH_CLIENT_ID`)", body = ErrorBody),
        AuthErrors,
    )
)]
pub async fn auth_link(State(app): State<AppState>) -> Result<Response, ApiError> {
    let (url, state) = crate::chat_bots::authorize::link(&app).await?;
    let mut response = Json(AuthLink { url }).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        crate::twitch::routes::state_cookie(&app, &state, true),
    );
    Ok(response)
}

/// `GET /api/v1/chat-bots/channels`: every bot's channels (not paged, as
/// in the original).
#[utoipa::path(
    get,
    path = "/api/v1/chat-bots/channels",
    tag = "chat bots",
    security(("token" = [])),
    responses(
        (status = 200, description = "Every bot's channels, oldest first", body = [ChatBotChannelBody]),
        AuthErrors,
    )
)]
pub async fn channels(
    State(app): State<AppState>,
) -> Result<Json<Vec<ChatBotChannelBody>>, ApiError> {
    let channels = app.chat_bots.channels().await?;
    Ok(Json(channels.into_iter().map(Into::into).collect()))
}

/// `POST /api/v1/chat-bots/channels`: puts a bot in a channel.
#[utoipa::path(
    post,
    path = "/api/v1/chat-bots/channels",
    tag = "chat bots",
    security(("token" = [])),
    request_body = JoinChannel,
    responses(
        (status = 201, description = "The bot is in the channel", body = ChatBotChannelBody),
        (status = 400, description = "Not JSON of this shape, a channel that is no Twitch login, or one Twitch does not know", body = ErrorBody),
        (status = 404, description = "No such bot", body = ErrorBody),
        (status = 409, description = "The bot is in that channel already", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 503, description = "Twitch could not be asked about the channel", body = ErrorBody),
        AuthErrors,
    )
)]
pub async fn join(
    State(app): State<AppState>,
    JsonBody(body): JsonBody<JoinChannel>,
) -> Result<(StatusCode, Json<ChatBotChannelBody>), ApiError> {
    let joined = app
        .chat_bots
        .join(&app.twitch.helix, &body.chat_bot, &body.channel)
        .await?;
    Ok((StatusCode::CREATED, Json(joined.into())))
}

/// `DELETE /api/v1/chat-bots/channels/{id}`: takes a bot out of a channel.
#[utoipa::path(
    delete,
    path = "/api/v1/chat-bots/channels/{id}",
    tag = "chat bots",
    security(("token" = [])),
    params(("id" = String, Path, description = "The membership's TAU id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such membership", body = ErrorBody),
        AuthErrors,
    )
)]
pub async fn leave(
    State(app): State<AppState>,
    PathParam(id): PathParam<String>,
) -> Result<StatusCode, ApiError> {
    app.chat_bots.leave(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
