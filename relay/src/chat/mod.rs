//! Chat: the original TAU's chat sockets and sending, over EventSub.
//!
//! The original read and wrote Twitch chat over IRC. Twitch's supported way
//! today is EventSub chat events (`channel.chat.*`, scope `user:read:chat`)
//! to read and Helix `POST /chat/messages` (scope `user:write:chat`) to
//! send; TAU's clients keep the original's sockets and frames:
//!
//! - `/ws/irc-messages/`: the broadcaster's chat;
//! - `/ws/chat-bots/<login>/`: the chat of sender `<login>` (the
//!   broadcaster, or a chat bot of [`crate::chat_bots`], which sends with
//!   its own token);
//! - `POST /api/v1/irc`, `GET /api/v1/chat/senders`: sending over REST.
//!
//! Both sockets authenticate like `/ws/twitch-events/` (first frame
//! `{"token": …}`), receive `{"irc_username", "data", "event_type",
//! "event_data"}` per chat event (`data` as the original's IRC parser made
//! it, see [`irc_frame`]) and `{"event": "keep_alive"}` every 30 s, and
//! send with `{"irc_channel": "#name", "message": "…"}` (bot role).
//!
//! - [`irc`]: the original's IRC parser, ported, and IRC line building.
//! - [`irc_frame`]: EventSub chat events → IRC lines (the mapping table).
//! - [`feed`]: hub → frames, built once for every chat socket.
//! - [`socket`]: the two sockets.
//! - [`send`]: checks, the sender registry, Helix (with the app token for
//!   the Chat Bot badge where Twitch allows it); [`queue`]: Twitch's chat
//!   rate limit per sender.

pub mod feed;
pub mod irc;
pub mod irc_frame;
pub mod queue;
pub mod send;
pub mod socket;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use serde::Serialize;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::{
    hub::Hub,
    twitch::{helix::TokenKind, Twitch},
};
use queue::{Limits, SendQueue};
use send::{not_connected, SendError, Sender};

/// What kind of account a sender is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SenderKind {
    /// The account that authorized TAU, in its own channel.
    Broadcaster,
    /// A chat bot (see [`crate::chat_bots`]), with its own token.
    Bot,
}

/// A sender as the dashboard lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SenderInfo {
    /// Login (`null` while no Twitch account is connected and
    /// `TWITCH_BROADCASTER` is unset).
    #[schema(example = "cooler_user")]
    pub login: Option<String>,
    /// Twitch user id (`null` while not connected).
    pub user_id: Option<String>,
    /// Display name (`null` while not connected).
    pub display_name: Option<String>,
    /// What kind of sender.
    pub kind: SenderKind,
    /// Whether a message sent as this account would go to Twitch now.
    pub can_send: bool,
    /// Why not, when it cannot.
    pub reason: Option<String>,
}

/// The chat side of the relay; one per process.
pub struct Chat {
    /// Frames for the chat sockets (filled by [`feed`]).
    frames: broadcast::Sender<Arc<feed::ChatFrame>>,
    /// Tokens and Helix.
    twitch: Arc<Twitch>,
    /// The chat bots: more senders, keyed by login.
    bots: Arc<crate::chat_bots::ChatBots>,
    /// `TWITCH_BROADCASTER`, named before any authorization.
    configured_broadcaster: Option<String>,
    /// Each sender's rate-limit queue, by user id.
    queues: Mutex<HashMap<String, Arc<SendQueue>>>,
    /// Channel login → user id.
    channel_ids: Mutex<HashMap<String, String>>,
    /// User id → display name.
    display_names: Mutex<HashMap<String, String>>,
    /// Twitch's limits (tests shrink them).
    limits: Mutex<Limits>,
    /// (sender id, channel id) → when Twitch last refused the app token
    /// (the badge path) for it; see [`send::BADGE_RETRY`].
    badge_refused: Mutex<HashMap<(String, String), tokio::time::Instant>>,
}

impl std::fmt::Debug for Chat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chat").finish_non_exhaustive()
    }
}

impl Chat {
    /// The chat side, its feed reading `hub` (frames held for slow sockets:
    /// `queue`) until `shutdown`.
    pub fn start(
        hub: &Hub,
        twitch: Arc<Twitch>,
        bots: Arc<crate::chat_bots::ChatBots>,
        configured_broadcaster: Option<String>,
        queue: usize,
        shutdown: CancellationToken,
    ) -> Chat {
        let (frames, _) = broadcast::channel(queue.max(1));
        feed::spawn(hub, twitch.clone(), frames.clone(), shutdown);
        Chat {
            frames,
            twitch,
            bots,
            configured_broadcaster,
            queues: Mutex::default(),
            channel_ids: Mutex::default(),
            display_names: Mutex::default(),
            limits: Mutex::new(Limits::default()),
            badge_refused: Mutex::default(),
        }
    }

    /// Chat frames from now on.
    pub fn frames(&self) -> broadcast::Receiver<Arc<feed::ChatFrame>> {
        self.frames.subscribe()
    }

    /// The rate limits in force.
    pub fn limits(&self) -> Limits {
        *self.limits.lock().expect("limits lock")
    }

    /// Replaces the rate limits (tests use short windows and queues).
    pub fn set_limits(&self, limits: Limits) {
        *self.limits.lock().expect("limits lock") = limits;
    }

    fn queue_of(&self, user_id: &str) -> Arc<SendQueue> {
        self.queues
            .lock()
            .expect("queues lock")
            .entry(user_id.to_string())
            .or_default()
            .clone()
    }

    /// Every sender (the broadcaster, then the bots), and whether it can
    /// send now.
    pub async fn senders(&self) -> Vec<SenderInfo> {
        let mut senders = self.broadcaster_info().await;
        match self.bots.list().await {
            Ok(bots) => senders.extend(bots.into_iter().map(|bot| {
                let sender = Sender {
                    login: bot.user_login.clone(),
                    user_id: bot.user_id.clone(),
                    scopes: bot.scopes.clone(),
                    bot: Some(bot.id.clone()),
                };
                let reason = bot
                    .reason
                    .clone()
                    .filter(|_| !bot.connected)
                    .or_else(|| sender.check_scope().err().map(|e| e.to_string()));
                SenderInfo {
                    login: Some(bot.user_login),
                    user_id: Some(bot.user_id),
                    display_name: Some(bot.user_name),
                    kind: SenderKind::Bot,
                    can_send: reason.is_none(),
                    reason,
                }
            })),
            Err(err) => tracing::warn!(error = %err, "reading chat bots failed"),
        }
        senders
    }

    /// The broadcaster as a sender.
    async fn broadcaster_info(&self) -> Vec<SenderInfo> {
        let sender = match self.sender(None).await {
            Ok(sender) => sender,
            Err(err) => {
                return vec![SenderInfo {
                    login: self.configured_broadcaster.clone(),
                    user_id: None,
                    display_name: None,
                    kind: SenderKind::Broadcaster,
                    can_send: false,
                    reason: Some(match err {
                        SendError::NotReady(reason) => reason,
                        _ => not_connected(),
                    }),
                }]
            }
        };
        let lost = self.twitch.tokens.state()
            == crate::twitch::tokens::UserTokenState::AuthorizationNeeded;
        let reason = if lost {
            Some(
                "Twitch's authorization was lost: reconnect Twitch in the dashboard's Setup".into(),
            )
        } else {
            sender.check_scope().err().map(|e| e.to_string())
        };
        let display_name = self.display_name(&sender.login, &sender.user_id).await;
        vec![SenderInfo {
            login: Some(sender.login),
            user_id: Some(sender.user_id),
            display_name: Some(display_name),
            kind: SenderKind::Broadcaster,
            can_send: reason.is_none(),
            reason,
        }]
    }

    /// The display name of `login` (looked up once; the login if Twitch fails).
    async fn display_name(&self, login: &str, user_id: &str) -> String {
        if let Some(name) = self.display_names.lock().expect("names lock").get(user_id) {
            return name.clone();
        }
        match self
            .twitch
            .helix
            .user_by_login(login, TokenKind::User)
            .await
        {
            Ok(Some(user)) => {
                self.display_names
                    .lock()
                    .expect("names lock")
                    .insert(user_id.to_string(), user.display_name.clone());
                user.display_name
            }
            _ => login.to_string(),
        }
    }
}
