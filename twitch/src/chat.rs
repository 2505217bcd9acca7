//! Sending a chat message: Helix `POST /chat/messages`.
//!
//! Twitch answers 200 even when it does not deliver the message (AutoMod,
//! a banned word, slow mode...): `is_sent` is false and `drop_reason` says
//! why. Those are outcomes, returned as [`ChatSent`]; only error statuses
//! are errors (401: the token lacks `user:write:chat` or is not the
//! sender's; 403: the sender may not chat there; 422: too long).

use reqwest::Method;
use serde_json::{json, Value};

use crate::auth::Auth;
use crate::client::Client;
use crate::error::Error;

/// Why Twitch did not deliver a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropReason {
    /// Twitch's code (`msg_rejected`, `msg_duplicate`, ...).
    pub code: String,
    /// Twitch's explanation.
    pub message: String,
}

/// Twitch's answer to a chat message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatSent {
    /// The message's id (empty when it was dropped).
    pub message_id: String,
    /// Whether Twitch delivered it.
    pub is_sent: bool,
    /// Why not, when it did not.
    pub drop_reason: Option<DropReason>,
}

impl Client {
    /// Sends `message` to `broadcaster_id`'s chat as `sender_id` (the
    /// token's user), as a reply when `reply_parent_message_id` is given.
    pub async fn send_chat_message<A: Auth>(
        &self,
        auth: &A,
        broadcaster_id: &str,
        sender_id: &str,
        message: &str,
        reply_parent_message_id: Option<&str>,
    ) -> Result<ChatSent, A::Error> {
        let what = "POST /chat/messages";
        let mut request = json!({
            "broadcaster_id": broadcaster_id,
            "sender_id": sender_id,
            "message": message,
        });
        if let Some(parent) = reply_parent_message_id {
            request["reply_parent_message_id"] = json!(parent);
        }
        let body = self
            .ok(
                auth,
                what,
                Method::POST,
                &["chat", "messages"],
                &[],
                Some(&request),
            )
            .await?;
        parse_sent(&body["data"][0]).ok_or_else(|| {
            Error::BadResponse {
                what: what.into(),
                reason: "no data[0].is_sent".into(),
            }
            .into()
        })
    }
}

/// `{"message_id", "is_sent", "drop_reason"}`; `None` without `is_sent`.
fn parse_sent(item: &Value) -> Option<ChatSent> {
    let text = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_string();
    let reason = &item["drop_reason"];
    Some(ChatSent {
        message_id: text(item, "message_id"),
        is_sent: item["is_sent"].as_bool()?,
        drop_reason: reason.is_object().then(|| DropReason {
            code: text(reason, "code"),
            message: text(reason, "message"),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twitchs_answers_parse() {
        let sent = parse_sent(&json!({"message_id": "abc-123-def", "is_sent": true})).unwrap();
        assert_eq!(
            sent,
            ChatSent {
                message_id: "abc-123-def".into(),
                is_sent: true,
                drop_reason: None
            }
        );
        let dropped = parse_sent(&json!({"message_id": "", "is_sent": false,
            "drop_reason": {"code": "msg_duplicate", "message": "duplicate"}}))
        .unwrap();
        assert_eq!(dropped.drop_reason.unwrap().code, "msg_duplicate");
        assert!(parse_sent(&json!({})).is_none());
    }
}
