//! Chat: Helix `POST /chat/messages`, and chat events pushed to
//! `channel.chat.*` subscriptions.
//!
//! As on Twitch, sending needs a user token with `user:write:chat` whose
//! user is the `sender_id` (401 otherwise), a message of at most 500
//! characters (422 beyond), and a sent message comes back to the channel's
//! `channel.chat.message` subscriptions as a notification (Twitch's echo),
//! after the answer. Tests make the next send be dropped
//! ([`FakeTwitch::drop_next_chat`]), read what was sent
//! ([`FakeTwitch::sent_chat`]) and push a viewer's message
//! ([`FakeTwitch::chat_message_event`], [`FakeTwitch::send_chat_event`]).
//!
//! An app token sends too (Twitch's Chat Bot badge path) when the sender
//! has a standing authorization (a refresh token the fake honours) with
//! `user:write:chat` and `user:bot` (401 otherwise) and, outside its own channel, the channel's broadcaster
//! granted `channel:bot` (403 otherwise): by default the fake's broadcaster
//! has when its authorization includes `channel:bot`, and no other
//! channel has; [`FakeTwitch::set_channel_bot`] decides per channel.
//! [`SentChat::app_token`] records which kind of token sent.

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    Json,
};
use serde_json::{json, Value};

use crate::{
    error::FakeError,
    error::HelixError,
    helix::Caller,
    state::{new_id, State as World},
    FakeTwitch,
};

/// Twitch's limit on one chat message, in characters.
const MAX_MESSAGE_CHARS: usize = 500;

/// One message a client asked Twitch to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentChat {
    /// The channel.
    pub broadcaster_id: String,
    /// The sender (the token's user).
    pub sender_id: String,
    /// The text.
    pub message: String,
    /// The message replied to, if any.
    pub reply_parent_message_id: Option<String>,
    /// The id Twitch gave it (empty when dropped).
    pub message_id: String,
    /// Whether it was delivered (false after [`FakeTwitch::drop_next_chat`]).
    pub is_sent: bool,
    /// Sent with an app token (the Chat Bot badge path), not a user token.
    pub app_token: bool,
}

/// Chat's share of the fake's world.
#[derive(Debug, Default)]
pub(crate) struct ChatState {
    /// Every accepted send request, oldest first.
    pub sent: Vec<SentChat>,
    /// `(code, message)` the next send is dropped with.
    pub drop_next: Option<(String, String)>,
    /// Channel id → whether its broadcaster granted `channel:bot`, where a
    /// test decided (see [`FakeTwitch::set_channel_bot`]).
    pub channel_bot: std::collections::HashMap<String, bool>,
}

impl FakeTwitch {
    /// Makes the next chat message answer `is_sent: false` with this reason
    /// (as AutoMod or a duplicate would).
    pub fn drop_next_chat(&self, code: &str, message: &str) {
        self.state().chat.drop_next = Some((code.into(), message.into()));
    }

    /// While `refuse`, only `channel_id`'s broadcaster may chat there:
    /// other senders (bots) get 403 when sending and when subscribing to
    /// its `channel.chat.*` events with their own token, as when a bot is
    /// banned there.
    pub fn refuse_bot_chat(&self, channel_id: &str, refuse: bool) {
        let mut st = self.state();
        if refuse {
            st.bot_chat_refused.insert(channel_id.to_string());
        } else {
            st.bot_chat_refused.remove(channel_id);
        }
    }

    /// Whether `channel_id`'s broadcaster granted `channel:bot`: as set by
    /// a test, else only the fake's broadcaster, when its authorization
    /// includes the scope.
    pub fn set_channel_bot(&self, channel_id: &str, granted: Option<bool>) {
        let mut st = self.state();
        match granted {
            Some(granted) => st.chat.channel_bot.insert(channel_id.to_string(), granted),
            None => st.chat.channel_bot.remove(channel_id),
        };
    }

    /// Every chat message sent through `POST /chat/messages`, oldest first.
    pub fn sent_chat(&self) -> Vec<SentChat> {
        self.state().chat.sent.clone()
    }

    /// A `channel.chat.message` event as Twitch sends it: `text` said by
    /// `chatter_login` (id `chatter_id`) in the broadcaster's chat.
    pub fn chat_message_event(chatter_id: &str, chatter_login: &str, text: &str) -> Value {
        json!({
            "broadcaster_user_id": FakeTwitch::BROADCASTER_ID,
            "broadcaster_user_login": FakeTwitch::BROADCASTER_LOGIN,
            "broadcaster_user_name": FakeTwitch::BROADCASTER_NAME,
            "chatter_user_id": chatter_id,
            "chatter_user_login": chatter_login,
            "chatter_user_name": chatter_login,
            "message_id": new_id(),
            "message": {"text": text, "fragments": [
                {"type": "text", "text": text, "cheermote": null, "emote": null, "mention": null}
            ]},
            "color": "#00FF7F",
            "badges": [],
            "message_type": "text",
            "cheer": null,
            "reply": null,
            "channel_points_custom_reward_id": null,
            "source_broadcaster_user_id": null,
            "source_broadcaster_user_login": null,
            "source_broadcaster_user_name": null,
            "source_message_id": null,
            "source_badges": null
        })
    }

    /// Delivers `event` to every enabled `sub_type` subscription of the
    /// event's channel (`broadcaster_user_id`), whatever its transport.
    /// Returns the message ids; an error if no subscription matches.
    pub async fn send_chat_event(
        &self,
        sub_type: &str,
        event: Value,
    ) -> Result<Vec<String>, FakeError> {
        let channel = event["broadcaster_user_id"].clone();
        let targets: Vec<String> = self
            .subscriptions()
            .into_iter()
            .filter(|s| {
                s.is_enabled()
                    && s.sub_type == sub_type
                    && s.condition["broadcaster_user_id"] == channel
            })
            .map(|s| s.id)
            .collect();
        if targets.is_empty() {
            return Err(FakeError::NoMatchingSubscription {
                sub_type: sub_type.into(),
                version: "1".into(),
                target: channel.to_string(),
            });
        }
        let mut ids = Vec::new();
        for id in targets {
            ids.push(self.send_to_subscription(&id, event.clone()).await?);
        }
        Ok(ids)
    }
}

/// Whether `channel_id`'s broadcaster granted `channel:bot` (see
/// [`FakeTwitch::set_channel_bot`]).
fn channel_bot_granted(st: &World, channel_id: &str) -> bool {
    if let Some(granted) = st.chat.channel_bot.get(channel_id) {
        return *granted;
    }
    channel_id == FakeTwitch::BROADCASTER_ID && live_scope(st, None, "channel:bot")
}

/// Whether `user` (`None`: the broadcaster) has a standing authorization
/// with `scope`: a refresh token Twitch still honours (an expired access
/// token does not end an authorization; disconnecting the app does).
fn live_scope(st: &World, user: Option<&str>, scope: &str) -> bool {
    st.refresh_tokens.values().any(|(scopes, owner)| {
        owner.as_ref().map(|(id, _)| id.as_str()) == user && scopes.iter().any(|s| s == scope)
    })
}

/// The login of `user_id` among the users holding tokens (app-token sends).
fn login_of(st: &World, user_id: &str) -> String {
    if user_id == FakeTwitch::BROADCASTER_ID {
        return FakeTwitch::BROADCASTER_LOGIN.into();
    }
    st.tokens
        .values()
        .find_map(|t| t.user.as_ref().filter(|(id, _)| id == user_id))
        .map(|(_, login)| login.clone())
        .unwrap_or_else(|| user_id.to_string())
}

/// Checks an app-token send of `sender_id` into `broadcaster_id`'s chat
/// as Twitch does; the sender's login.
fn app_sender(st: &World, sender_id: &str, broadcaster_id: &str) -> Result<String, HelixError> {
    let user = (sender_id != FakeTwitch::BROADCASTER_ID).then_some(sender_id);
    if !["user:write:chat", "user:bot"]
        .iter()
        .all(|scope| live_scope(st, user, scope))
    {
        return Err(HelixError::unauthorized(
            "The sender must authorize the app with the user:write:chat and user:bot scopes",
        ));
    }
    if sender_id != broadcaster_id && !channel_bot_granted(st, broadcaster_id) {
        return Err(HelixError::new(
            StatusCode::FORBIDDEN,
            "The broadcaster must authorize the app with the channel:bot scope, or the sender must be a moderator",
        ));
    }
    Ok(login_of(st, sender_id))
}

/// `POST /helix/chat/messages`.
pub(crate) async fn send(
    State(fake): State<FakeTwitch>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, HelixError> {
    let caller = fake.authenticate(&headers)?;
    let body: Value = serde_json::from_slice(&body)
        .map_err(|_| HelixError::bad_request("Malformed request body"))?;
    let field = |name: &str| {
        body[name]
            .as_str()
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .ok_or_else(|| HelixError::bad_request(format!("The parameter \"{name}\" is required")))
    };
    let (broadcaster_id, sender_id, message) = (
        field("broadcaster_id")?,
        field("sender_id")?,
        field("message")?,
    );
    let app_token = matches!(caller, Caller::App);
    let login = match caller {
        Caller::App => app_sender(&fake.state(), &sender_id, &broadcaster_id)?,
        Caller::User {
            user_id,
            login,
            scopes,
        } => {
            if !scopes.iter().any(|s| s == "user:write:chat") {
                return Err(HelixError::unauthorized("Missing scope: user:write:chat"));
            }
            if sender_id != user_id {
                return Err(HelixError::unauthorized(
                    "The ID in sender_id must match the user ID in the access token",
                ));
            }
            login
        }
    };
    if sender_id != broadcaster_id && fake.state().bot_chat_refused.contains(&broadcaster_id) {
        return Err(HelixError::new(
            StatusCode::FORBIDDEN,
            "The sender is not permitted to send chat messages to the broadcaster's chat room.",
        ));
    }
    if message.chars().count() > MAX_MESSAGE_CHARS {
        return Err(HelixError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "The message is too large",
        ));
    }
    let reply = body["reply_parent_message_id"].as_str().map(str::to_string);
    let dropped = fake.state().chat.drop_next.take();
    let message_id = if dropped.is_some() {
        String::new()
    } else {
        new_id()
    };
    fake.state().chat.sent.push(SentChat {
        broadcaster_id: broadcaster_id.clone(),
        sender_id: sender_id.clone(),
        message: message.clone(),
        reply_parent_message_id: reply.clone(),
        message_id: message_id.clone(),
        is_sent: dropped.is_none(),
        app_token,
    });
    fake.notify();
    if let Some((code, reason)) = dropped {
        return Ok(Json(json!({"data": [{
            "message_id": "", "is_sent": false,
            "drop_reason": {"code": code, "message": reason}
        }]})));
    }
    let echo = echo_event(
        &broadcaster_id,
        (&sender_id, &login),
        &message,
        &message_id,
        reply,
    );
    // Twitch answers first, then notifies the channel's chat readers.
    tokio::spawn(async move {
        let _ = fake.send_chat_event("channel.chat.message", echo).await;
    });
    Ok(Json(json!({"data": [{
        "message_id": message_id, "is_sent": true, "drop_reason": null
    }]})))
}

/// The `channel.chat.message` event of a message `(sender id, login)` sent.
fn echo_event(
    broadcaster_id: &str,
    (sender_id, sender_login): (&str, &str),
    text: &str,
    message_id: &str,
    reply: Option<String>,
) -> Value {
    let mut event = FakeTwitch::chat_message_event(sender_id, sender_login, text);
    event["broadcaster_user_id"] = json!(broadcaster_id);
    event["message_id"] = json!(message_id);
    if sender_id == FakeTwitch::BROADCASTER_ID {
        event["chatter_user_name"] = json!(FakeTwitch::BROADCASTER_NAME);
        event["badges"] = json!([{"set_id": "broadcaster", "id": "1", "info": ""}]);
    }
    if let Some(parent) = reply {
        event["reply"] = json!({
            "parent_message_id": parent, "parent_message_body": "",
            "parent_user_id": "", "parent_user_login": "", "parent_user_name": "",
            "thread_message_id": parent, "thread_user_id": "",
            "thread_user_login": "", "thread_user_name": ""
        });
    }
    event
}
