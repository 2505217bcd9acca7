//! Chat over REST: `POST /api/v1/irc` sends a message, `GET
//! /api/v1/chat/senders` lists who can send (the dashboard's sender select).
//!
//! In the original, `POST /api/v1/irc` was the IRC worker's callback
//! (`{"irc_username", "data"}`) that fed the chat sockets; chat now arrives
//! through EventSub, so that shape is refused with a 400 that says so, and
//! the path sends instead. Refusals are [`SendError`]s, answered as
//! `{"detail": …}` with the status each one names.

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use serde::Deserialize;

use super::{extract::RawBody, openapi::AuthErrors};
use crate::{
    app::AppState,
    chat::{
        send::{SendError, SendRequest, SentMessage},
        SenderInfo,
    },
    error::ErrorBody,
};

/// `POST /api/v1/irc` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct IrcSend {
    /// The text (1 to 500 characters).
    #[schema(example = "Hello chat!")]
    message: Option<String>,
    /// Channel login, `#` optional; the sender's own channel when omitted.
    #[schema(example = "#cooler_user")]
    irc_channel: Option<String>,
    /// The sender's login; the broadcaster when omitted.
    irc_username: Option<String>,
    /// Sends the message as a reply to this message id.
    reply_parent_message_id: Option<String>,
    /// The original's worker callback field; refused with an explanation.
    #[schema(value_type = Option<Object>)]
    data: Option<serde_json::Value>,
}

impl SendError {
    /// The HTTP status of this refusal.
    pub fn status(&self) -> StatusCode {
        match self {
            SendError::Invalid(_) => StatusCode::BAD_REQUEST,
            SendError::UnknownSender(_) | SendError::UnknownChannel(_) => StatusCode::NOT_FOUND,
            SendError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            SendError::NotReady(_) => StatusCode::SERVICE_UNAVAILABLE,
            SendError::Forbidden(_) => StatusCode::FORBIDDEN,
            SendError::Twitch(_) => StatusCode::BAD_GATEWAY,
        }
    }
}

impl IntoResponse for SendError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = (
            status,
            Json(ErrorBody {
                detail: self.to_string(),
            }),
        )
            .into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS {
            response
                .headers_mut()
                .insert("retry-after", axum::http::HeaderValue::from_static("5"));
        }
        response
    }
}

/// The body as a send request, or why not.
fn request_of(body: &[u8]) -> Result<SendRequest, SendError> {
    let body: IrcSend = serde_json::from_slice(body).map_err(|err| {
        SendError::Invalid(format!(
            "body must be JSON {{\"message\": \"...\", \"irc_channel\": \"optional\"}}: {err}"
        ))
    })?;
    let Some(message) = body.message else {
        return Err(SendError::Invalid(if body.data.is_some() {
            "chat is no longer posted here: TAU reads chat through EventSub now (choose the \
             channel.chat.* event types); this path sends a message: {\"message\": \"...\"}"
                .into()
        } else {
            "message is required".into()
        }));
    };
    Ok(SendRequest {
        message,
        irc_channel: body.irc_channel,
        irc_username: body.irc_username,
        reply_parent_message_id: body.reply_parent_message_id,
    })
}

/// `POST /api/v1/irc`: sends a chat message and reports Twitch's verdict.
#[utoipa::path(
    post,
    path = "/api/v1/irc",
    tag = "chat",
    request_body = IrcSend,
    responses(
        (status = 200, description = "Twitch judged the message: `is_sent`, or `drop_reason`; `badge` says whether it went out with the app token (Twitch's Chat Bot badge) or the sender's own token", body = SentMessage),
        (status = 400, description = "Empty, over 500 characters, not JSON, a channel that is no login, or the original's worker callback shape", body = ErrorBody),
        (status = 404, description = "No sender (`no chat bot named \"x\"`) or no Twitch channel by that login", body = ErrorBody),
        (status = 429, description = "The sender's queue for Twitch's chat rate limit is full, or Twitch's rate limit answered", body = ErrorBody),
        (status = 502, description = "Twitch failed or refused; its message", body = ErrorBody),
        (status = 503, description = "Twitch is not connected, or its authorization lacks `user:write:chat`: the detail says what to do", body = ErrorBody),
        AuthErrors,
        (status = 403, description = "The token's role is too weak, or Twitch refused a chat bot in that channel (it must be a moderator there, or the channel must authorize `channel:bot`): the detail says which", body = ErrorBody),
    ),
    security(("token" = []))
)]
pub async fn send(
    axum::extract::State(app): axum::extract::State<AppState>,
    RawBody(body): RawBody,
) -> Result<Json<SentMessage>, SendError> {
    let request = request_of(&body)?;
    Ok(Json(app.chat.send(request).await?))
}

/// `GET /api/v1/chat/senders`: the accounts chat can be sent as.
#[utoipa::path(
    get,
    path = "/api/v1/chat/senders",
    tag = "chat",
    responses(
        (status = 200, description = "Every sender, and whether it can send now (and why not)", body = [SenderInfo]),
        AuthErrors,
    ),
    security(("token" = []))
)]
pub async fn senders(
    axum::extract::State(app): axum::extract::State<AppState>,
) -> Json<Vec<SenderInfo>> {
    Json(app.chat.senders().await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_become_requests_or_say_what_is_wrong() {
        let request = request_of(br##"{"message":"hi","irc_channel":"#x"}"##).unwrap();
        assert_eq!(request.message, "hi");
        assert_eq!(request.irc_channel.as_deref(), Some("#x"));
        let worker = request_of(br#"{"irc_username":"bot","data":{"command":"PRIVMSG"}}"#);
        assert!(
            matches!(worker, Err(SendError::Invalid(ref m)) if m.contains("EventSub")),
            "{worker:?}"
        );
        assert!(matches!(request_of(b"{"), Err(SendError::Invalid(_))));
        assert!(
            matches!(request_of(b"{}"), Err(SendError::Invalid(ref m)) if m.contains("required"))
        );
        assert_eq!(
            SendError::UnknownSender("x".into()).to_string(),
            "no chat bot named \"x\""
        );
    }
}
