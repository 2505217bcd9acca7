//! Sending chat messages: who sends, to which channel, within which limit.
//!
//! A message is checked before Twitch sees it (not empty, at most 500
//! characters, a channel that is a Twitch login), its sender is looked up
//! in the registry of senders (the broadcaster: the account that
//! authorized TAU, and the chat bots, keyed by login), it
//! waits its turn in the sender's [`SendQueue`], then goes to Helix
//! `POST /chat/messages`. Twitch's verdict comes back as [`SentMessage`]
//! (`is_sent`, `drop_reason`, `badge`); every refusal is a [`SendError`]
//! whose text says what to do.
//!
//! Which token: Twitch shows the Chat Bot badge on a message sent with the
//! app token, which it accepts when the sender granted `user:bot` and the
//! channel's broadcaster granted `channel:bot` (or made the sender a
//! moderator). TAU cannot see the channel's grants, so a sender with
//! `user:bot` in someone else's channel tries the app token first, and on
//! Twitch's 401/403 sends the same message with its own user token; that
//! refusal is remembered for [`BADGE_RETRY`] per (sender, channel), so a
//! refused pair costs one request per message, not two. The broadcaster in
//! its own channel always sends with its user token (the badge is for bots).

use std::time::Duration;

use serde::Serialize;

use super::{queue::Limits, Chat};
use crate::twitch::{helix::TokenKind, TwitchError};

/// Twitch's limit on one chat message, in characters.
pub const MAX_MESSAGE_CHARS: usize = 500;
/// The scope sending needs.
pub const WRITE_SCOPE: &str = "user:write:chat";
/// The sender's scope the app token (the badge path) needs.
pub const BOT_SCOPE: &str = "user:bot";
/// How long a (sender, channel) pair Twitch refused the app token for
/// sends with the user token only (a grant given meanwhile is used after).
pub const BADGE_RETRY: Duration = Duration::from_secs(600);

/// One message to send.
#[derive(Debug, Clone, Default)]
pub struct SendRequest {
    /// The text.
    pub message: String,
    /// Channel login (`#` optional); the sender's own channel when empty.
    pub irc_channel: Option<String>,
    /// The sender's login; the broadcaster when empty.
    pub irc_username: Option<String>,
    /// Makes the message a reply to this message id.
    pub reply_parent_message_id: Option<String>,
}

/// Twitch's reason for not delivering a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DropReason {
    /// Twitch's code (`msg_duplicate`, `msg_rejected`, ...).
    pub code: String,
    /// Twitch's explanation.
    pub message: String,
}

/// What happened to a message Twitch accepted to judge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SentMessage {
    /// Twitch's id of the message (empty when dropped).
    pub message_id: String,
    /// Whether Twitch delivered it to the chat.
    pub is_sent: bool,
    /// Why not, when it did not.
    pub drop_reason: Option<DropReason>,
    /// The channel's login.
    #[schema(example = "cooler_user")]
    pub irc_channel: String,
    /// The sender's login.
    #[schema(example = "cooler_user")]
    pub irc_username: String,
    /// Whether it went out with the app token, the way Twitch shows the
    /// Chat Bot badge (false: with the sender's own token).
    pub badge: bool,
}

/// Why a message was not sent; the text is what the caller is told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The request is wrong (empty, too long, not a login).
    #[error("{0}")]
    Invalid(String),
    /// No sender by that login.
    #[error("no chat bot named \"{0}\"")]
    UnknownSender(String),
    /// No Twitch user by that channel login.
    #[error("Twitch has no channel \"{0}\"")]
    UnknownChannel(String),
    /// The sender's queue is full, or Twitch's own rate limit answered.
    #[error("{0}")]
    RateLimited(String),
    /// Twitch is not connected, or its authorization cannot send.
    #[error("{0}")]
    NotReady(String),
    /// Twitch refused this sender in this channel (a bot that may not chat there).
    #[error("{0}")]
    Forbidden(String),
    /// Twitch failed or refused; its message.
    #[error("{0}")]
    Twitch(String),
}

/// Who a message goes out as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sender {
    /// Login (lowercase).
    pub login: String,
    /// Twitch user id.
    pub user_id: String,
    /// Granted scopes of its token.
    pub scopes: Vec<String>,
    /// The chat bot's TAU id (`None`: the broadcaster).
    pub bot: Option<String>,
}

impl Sender {
    /// `Err` with what to do when this sender's token cannot send.
    pub fn check_scope(&self) -> Result<(), SendError> {
        if self.scopes.iter().any(|s| s == WRITE_SCOPE) {
            return Ok(());
        }
        if self.bot.is_some() {
            return Err(SendError::NotReady(format!(
                "{} cannot send chat: its authorization lacks the scope {WRITE_SCOPE}; \
                 add the bot again in the dashboard's Bots view to grant it",
                self.login
            )));
        }
        Err(SendError::NotReady(format!(
            "{} cannot send chat: TAU's Twitch authorization lacks the scope {WRITE_SCOPE}; \
             choose a chat event type and reconnect Twitch in the dashboard's Setup to grant it",
            self.login
        )))
    }
}

/// A channel given as `#name`, `name` or nothing: its login, or `None`.
pub fn channel_login(irc_channel: Option<&str>) -> Result<Option<String>, SendError> {
    let name = irc_channel
        .unwrap_or_default()
        .trim()
        .trim_start_matches('#')
        .to_ascii_lowercase();
    if name.is_empty() {
        return Ok(None);
    }
    let valid = name.len() <= 25 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !valid {
        return Err(SendError::Invalid(format!(
            "irc_channel {name:?} is not a Twitch login (letters, digits and underscores, at most 25)"
        )));
    }
    Ok(Some(name))
}

/// Checks a message's text as Twitch would, before Twitch sees it.
pub fn check_message(message: &str) -> Result<(), SendError> {
    if message.trim().is_empty() {
        return Err(SendError::Invalid("message must not be empty".into()));
    }
    let chars = message.chars().count();
    if chars > MAX_MESSAGE_CHARS {
        return Err(SendError::Invalid(format!(
            "message is {chars} characters long; Twitch allows at most {MAX_MESSAGE_CHARS}"
        )));
    }
    Ok(())
}

/// The words for a Twitch failure while sending as `login`.
fn twitch_failure(err: TwitchError, login: &str) -> SendError {
    match err {
        TwitchError::NotConfigured | TwitchError::AuthorizationNeeded => {
            SendError::NotReady(not_connected())
        }
        TwitchError::Status {
            status: 401,
            message,
        } => SendError::NotReady(format!(
            "Twitch refused to send as {login} ({message}); sending needs the scope {WRITE_SCOPE}: \
             reconnect Twitch in the dashboard's Setup to grant it"
        )),
        TwitchError::Status {
            status: 429,
            message,
        } => SendError::RateLimited(format!("Twitch's rate limit: {message}")),
        TwitchError::Status { status, message } => {
            SendError::Twitch(format!("Twitch answered {status}: {message}"))
        }
        other => SendError::Twitch(other.to_string()),
    }
}

/// What to do when Twitch is not connected.
pub fn not_connected() -> String {
    "Twitch is not connected: open the dashboard's Setup and connect the broadcaster's \
     Twitch account"
        .into()
}

impl Chat {
    /// The sender named `login` (any case): a chat bot by that login, else
    /// the broadcaster; the broadcaster when `None`.
    pub async fn sender(&self, login: Option<&str>) -> Result<Sender, SendError> {
        let login = login.map(str::trim).filter(|l| !l.is_empty());
        if let Some(login) = login {
            if let Some(bot) = self.bot_sender(login).await? {
                return Ok(bot);
            }
        }
        let token = self.twitch.tokens.user_info().await;
        let Some((token, broadcaster)) = token.and_then(|t| {
            let login = t.login.clone()?;
            Some((t, login))
        }) else {
            return Err(SendError::NotReady(not_connected()));
        };
        if let Some(login) = login {
            if !login.eq_ignore_ascii_case(&broadcaster) {
                return Err(SendError::UnknownSender(login.to_string()));
            }
        }
        Ok(Sender {
            login: broadcaster.to_ascii_lowercase(),
            user_id: token.user_id.unwrap_or_default(),
            scopes: token.scopes,
            bot: None,
        })
    }

    /// The chat bot named `login`, if there is one; refused while Twitch
    /// does not accept its token.
    async fn bot_sender(&self, login: &str) -> Result<Option<Sender>, SendError> {
        if channel_login(Some(login)).is_err() {
            return Ok(None);
        }
        let bot = self
            .bots
            .get(login.trim_start_matches('#'))
            .await
            .map_err(|err| SendError::Twitch(format!("reading chat bots failed: {err}")))?;
        let Some(bot) = bot else {
            return Ok(None);
        };
        if bot.status == crate::chat_bots::BotStatus::TokenInvalid {
            return Err(SendError::NotReady(bot.reason.unwrap_or_else(|| {
                crate::chat_bots::tokens::invalid_reason(&bot.user_name)
            })));
        }
        Ok(Some(Sender {
            login: bot.user_login,
            user_id: bot.user_id,
            scopes: bot.scopes,
            bot: Some(bot.id),
        }))
    }

    /// The user id of channel `login` (cached; Twitch ids never change).
    async fn channel_id(&self, login: &str, sender: &Sender) -> Result<String, SendError> {
        if login == sender.login {
            return Ok(sender.user_id.clone());
        }
        if let Some(id) = self.channel_ids.lock().expect("channel cache").get(login) {
            return Ok(id.clone());
        }
        let user = self
            .twitch
            .helix
            .user_by_login(login, TokenKind::User)
            .await
            .map_err(|err| twitch_failure(err, &sender.login))?
            .ok_or_else(|| SendError::UnknownChannel(login.to_string()))?;
        self.channel_ids
            .lock()
            .expect("channel cache")
            .insert(login.to_string(), user.id.clone());
        Ok(user.id)
    }

    /// Checks, queues and sends one message; Twitch's verdict.
    pub async fn send(&self, request: SendRequest) -> Result<SentMessage, SendError> {
        check_message(&request.message)?;
        let channel = channel_login(request.irc_channel.as_deref())?;
        let sender = self.sender(request.irc_username.as_deref()).await?;
        sender.check_scope()?;
        let channel = channel.unwrap_or_else(|| sender.login.clone());
        let channel_id = self.channel_id(&channel, &sender).await?;
        let limits: Limits = self.limits();
        let (limit, place) = if channel_id == sender.user_id {
            (limits.own_channel, "in its own channel")
        } else {
            (limits.other_channel, "in other channels")
        };
        let queue = self.queue_of(&sender.user_id);
        queue.admit(limit, &limits).await.map_err(|full| {
            SendError::RateLimited(format!(
                "chat queue of {} is full: {} messages wait for Twitch's rate limit \
                 ({limit} messages per {} {place}); try again later",
                sender.login,
                full.waiting,
                humantime::format_duration(limits.window)
            ))
        })?;
        let reply = request
            .reply_parent_message_id
            .as_deref()
            .filter(|r| !r.is_empty());
        let badged = self
            .send_with_badge(&sender, &channel_id, &request.message, reply)
            .await?;
        let badge = badged.is_some();
        let sent = match (badged, &sender.bot) {
            (Some(sent), Some(bot_id)) => {
                self.bots
                    .set_channel_status(bot_id, &channel_id, None)
                    .await;
                sent
            }
            (Some(sent), None) => sent,
            (None, None) => self
                .twitch
                .helix
                .send_chat_message(&channel_id, &sender.user_id, &request.message, reply)
                .await
                .map_err(|err| twitch_failure(err, &sender.login))?,
            (None, Some(bot_id)) => {
                self.send_as_bot(
                    bot_id,
                    &sender,
                    (&channel, &channel_id),
                    &request.message,
                    reply,
                )
                .await?
            }
        };
        Ok(SentMessage {
            message_id: sent.message_id,
            is_sent: sent.is_sent,
            drop_reason: sent.drop_reason.map(|r| DropReason {
                code: r.code,
                message: r.message,
            }),
            irc_channel: channel,
            irc_username: sender.login,
            badge,
        })
    }

    /// Whether `sender` should try the app token in `channel_id` now.
    fn badge_possible(&self, sender: &Sender, channel_id: &str) -> bool {
        use crate::twitch::tokens::AppTokenState;
        if channel_id == sender.user_id || !sender.scopes.iter().any(|s| s == BOT_SCOPE) {
            return false;
        }
        if matches!(
            self.twitch.tokens.app_state().0,
            AppTokenState::Missing | AppTokenState::Rejected
        ) {
            return false;
        }
        let mut refused = self.badge_refused.lock().expect("badge lock");
        refused.retain(|_, at| at.elapsed() < BADGE_RETRY);
        !refused.contains_key(&(sender.user_id.clone(), channel_id.to_string()))
    }

    /// Sends with the app token when that may work: `Some` with Twitch's
    /// verdict, `None` when the caller must send with the user token
    /// (not possible, or Twitch refused the app token: remembered).
    async fn send_with_badge(
        &self,
        sender: &Sender,
        channel_id: &str,
        message: &str,
        reply: Option<&str>,
    ) -> Result<Option<tau_twitch::ChatSent>, SendError> {
        if !self.badge_possible(sender, channel_id) {
            return Ok(None);
        }
        let sent = self
            .twitch
            .helix
            .send_chat_message_with_badge(channel_id, &sender.user_id, message, reply)
            .await;
        match sent {
            Ok(sent) => Ok(Some(sent)),
            // 429 is the rate limit: sending again would only add to it.
            Err(err @ TwitchError::Status { status: 429, .. }) => {
                Err(twitch_failure(err, &sender.login))
            }
            Err(err) => {
                let refused = matches!(
                    err,
                    TwitchError::Status {
                        status: 401 | 403,
                        ..
                    }
                );
                if refused {
                    self.badge_refused.lock().expect("badge lock").insert(
                        (sender.user_id.clone(), channel_id.to_string()),
                        tokio::time::Instant::now(),
                    );
                }
                tracing::info!(sender = %sender.login, channel_id, error = %err,
                    "sending with the app token (Chat Bot badge) failed; sending with the user token");
                Ok(None)
            }
        }
    }
}

impl Chat {
    /// Sends as chat bot `bot_id` with its token, and records whether it
    /// may chat in the channel.
    async fn send_as_bot(
        &self,
        bot_id: &str,
        sender: &Sender,
        (channel, channel_id): (&str, &str),
        message: &str,
        reply: Option<&str>,
    ) -> Result<tau_twitch::ChatSent, SendError> {
        let auth = crate::chat_bots::tokens::BotAuth {
            bots: &self.bots,
            bot_id,
        };
        let sent = self
            .bots
            .tokens_client()
            .send_chat_message(&auth, channel_id, &sender.user_id, message, reply)
            .await;
        match sent {
            Ok(sent) => {
                self.bots.set_channel_status(bot_id, channel_id, None).await;
                Ok(sent)
            }
            Err(TwitchError::AuthorizationNeeded) => {
                let reason = match self.bots.get(bot_id).await {
                    Ok(Some(bot)) => bot.reason,
                    _ => None,
                };
                Err(SendError::NotReady(reason.unwrap_or_else(|| {
                    crate::chat_bots::tokens::invalid_reason(&sender.login)
                })))
            }
            Err(TwitchError::Status {
                status: 403,
                message,
            }) => {
                let words = bot_refused(&sender.login, channel, &message);
                self.bots
                    .set_channel_status(bot_id, channel_id, Some(&words))
                    .await;
                Err(SendError::Forbidden(words))
            }
            Err(err) => Err(twitch_failure(err, &sender.login)),
        }
    }
}

/// Twitch's 403 to a bot in `channel`, in words.
fn bot_refused(bot: &str, channel: &str, twitch: &str) -> String {
    format!(
        "{bot} may not chat in #{channel}: the bot must be a moderator there, or {channel} \
         must authorize channel:bot, or the channel restricts chat (Twitch: {twitch})"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_and_channels_are_checked_before_twitch() {
        assert!(check_message("hi").is_ok());
        assert!(
            check_message(&"é".repeat(500)).is_ok(),
            "characters, not bytes"
        );
        assert_eq!(
            check_message(" "),
            Err(SendError::Invalid("message must not be empty".into()))
        );
        let long = check_message(&"a".repeat(501)).unwrap_err().to_string();
        assert!(long.contains("501") && long.contains("500"), "{long}");
        assert_eq!(
            channel_login(Some("#Cooler_User")),
            Ok(Some("cooler_user".into()))
        );
        assert_eq!(channel_login(Some("")), Ok(None));
        assert_eq!(channel_login(None), Ok(None));
        assert!(channel_login(Some("#no spaces")).is_err());
        assert!(channel_login(Some(&"a".repeat(26))).is_err());
    }

    #[test]
    fn a_token_without_the_write_scope_says_what_to_do() {
        let sender = Sender {
            login: "cooler_user".into(),
            user_id: "1337".into(),
            scopes: vec!["user:read:chat".into()],
            bot: None,
        };
        let err = sender.check_scope().unwrap_err().to_string();
        assert!(err.contains(WRITE_SCOPE) && err.contains("Setup"), "{err}");
        let failure = twitch_failure(
            TwitchError::Status {
                status: 401,
                message: "Missing scope".into(),
            },
            "cooler_user",
        );
        assert!(matches!(failure, SendError::NotReady(ref m) if m.contains(WRITE_SCOPE)));
    }
}
