//! Chat bots: other Twitch accounts TAU sends chat as (the original TAU's
//! `chatbots` app).
//!
//! - A bot is added by authorizing it on Twitch ([`authorize`]: the same
//!   callback URL as the broadcaster's, the one-time state says which
//!   flow); its token pair is sealed with the relay's key exactly like
//!   the broadcaster's and kept in its row ([`crate::store::ChatBotRow`]).
//! - Its tokens refresh on expiry and on Twitch's 401, and are validated
//!   hourly ([`tokens`]); when Twitch no longer accepts them the bot turns
//!   `token_invalid` with a reason in words, and nothing else is affected.
//! - It is one more sender of [`crate::chat::Chat`], keyed by its login:
//!   `POST /api/v1/irc` with `irc_username` = its login, and
//!   `/ws/chat-bots/<login>/`, send as the bot with the bot's token.
//! - Every change (added, re-authorized, status, channels, removed) goes
//!   out on `/ws/chat-bots/status/` ([`status`]) on every replica: the
//!   replica that made it publishes at once and bumps [`REVISION`]; the
//!   others notice within [`POLL`] and publish the same difference.
//!
//! - Its chat is read through its own EventSub WebSocket session, or
//!   app-token subscriptions with the webhook and conduit transports
//!   ([`reading`]), and delivered on `/ws/chat-bots/<login>/` for the
//!   bot's channels. That session's state ([`BotSession`]: connecting,
//!   connected, backoff, its subscriptions as Twitch answered, the last
//!   problem) is part of the bot as the API and the status socket show it;
//!   it is this replica's view, so a replica that does not hold the bot's
//!   session says `standby`. Session changes are published within [`POLL`].

pub mod authorize;
pub mod manage;
pub mod reading;
pub mod status;
pub mod tokens;

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
    time::Duration,
};

use serde::Serialize;
use tokio::sync::{broadcast, Mutex};
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

use crate::{
    event::format_created,
    poll::Revision,
    store::{ChatBotChannel, ChatBotRow, Store, StoreError},
    twitch::{tokens::TokenManager, ConnectionStatus, SubscriptionStatus, Twitch},
};

/// The setting every change of the bots rewrites (see [`Revision`]).
pub const REVISION: &str = "chat_bots_revision";
/// How often each replica checks [`REVISION`].
pub const POLL: Duration = Duration::from_secs(2);
/// The scopes a bot is asked for: read and write chat, and be a bot.
pub const SCOPES: [&str; 3] = ["user:read:chat", "user:write:chat", "user:bot"];

/// Whether a bot can act.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BotStatus {
    /// Its token works and can send chat.
    Ready,
    /// Twitch no longer accepts its authorization: add it again.
    TokenInvalid,
    /// Its authorization lacks `user:write:chat`: add it again.
    ScopeMissing,
}

impl BotStatus {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            BotStatus::Ready => "ready",
            BotStatus::TokenInvalid => "token_invalid",
            BotStatus::ScopeMissing => "scope_missing",
        }
    }

    fn parse(text: &str) -> BotStatus {
        match text {
            "ready" => BotStatus::Ready,
            "scope_missing" => BotStatus::ScopeMissing,
            _ => BotStatus::TokenInvalid,
        }
    }
}

/// A bot's own EventSub WebSocket session (WebSocket transport), as this
/// replica sees it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct BotSession {
    /// `standby` (another replica holds the session), `connecting`,
    /// `connected`, `reconnecting` (Twitch moved it), `backoff` (it ended;
    /// waiting before the next try).
    #[schema(example = "connected")]
    pub state: String,
    /// Twitch's session id while connected.
    pub session_id: Option<String>,
    /// When the current session was welcomed.
    #[schema(format = DateTime)]
    pub connected_at: Option<String>,
    /// Its chat subscriptions, one per channel and type, with Twitch's
    /// status (`enabled`, a revocation reason, `websocket_disconnected`,
    /// or why creating it failed).
    pub subscriptions: Vec<SubscriptionStatus>,
    /// The last problem, in words (kept after a reconnect, as history).
    pub last_error: Option<String>,
}

impl BotSession {
    fn of(connection: ConnectionStatus) -> BotSession {
        BotSession {
            state: connection.state,
            session_id: connection.session_id,
            connected_at: connection.connected_at,
            subscriptions: connection.subscriptions,
            last_error: connection.last_error,
        }
    }
}

/// A chat bot as the API shows it. Its tokens are deliberately never
/// shown (the original TAU returned them).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ChatBot {
    /// TAU's id.
    #[schema(format = Uuid)]
    pub id: String,
    /// Display name.
    #[schema(example = "Helper_Bot")]
    pub user_name: String,
    /// Twitch user id.
    #[schema(example = "9001")]
    pub user_id: String,
    /// Login.
    #[schema(example = "helper_bot")]
    pub user_login: String,
    /// Whether it can act now (`status` is `ready`).
    pub connected: bool,
    /// Whether it can act.
    pub status: BotStatus,
    /// Why not, in words.
    pub reason: Option<String>,
    /// Scopes Twitch granted it.
    pub scopes: Vec<String>,
    /// Logins of the channels it is in.
    pub channels: Vec<String>,
    /// When it was first authorized.
    #[schema(format = DateTime)]
    pub created: String,
    /// When it last changed.
    #[schema(format = DateTime)]
    pub updated: String,
    /// Its own EventSub WebSocket session reading its channels' chat;
    /// `null` when it has none (no channels, not ready, or the webhook or
    /// conduit transport, which read with the app token).
    pub session: Option<BotSession>,
}

fn time(us: i64) -> String {
    format_created(chrono::DateTime::from_timestamp_micros(us).unwrap_or_default())
}

impl ChatBot {
    fn of(row: ChatBotRow, channels: &[ChatBotChannel]) -> ChatBot {
        let status = BotStatus::parse(&row.status);
        ChatBot {
            connected: status == BotStatus::Ready,
            channels: channels
                .iter()
                .filter(|c| c.bot_id == row.id)
                .map(|c| c.channel_login.clone())
                .collect(),
            id: row.id,
            user_name: row.user_name,
            user_id: row.user_id,
            user_login: row.user_login,
            status,
            reason: row.reason,
            scopes: row.scopes,
            created: time(row.created_us),
            updated: time(row.updated_us),
            session: None,
        }
    }
}

/// One change of a bot, as the status socket sends it.
#[derive(Debug, Clone, Serialize)]
pub struct BotChange {
    /// `Created`, `Updated` or `Deleted`.
    pub event: &'static str,
    /// The bot after the change (before it, when deleted).
    #[serde(rename = "chatBot")]
    pub chat_bot: ChatBot,
}

/// The status a bot with `scopes` has, and why.
pub fn status_for(login: &str, scopes: &[String]) -> (BotStatus, Option<String>) {
    if scopes.iter().any(|s| s == crate::chat::send::WRITE_SCOPE) {
        return (BotStatus::Ready, None);
    }
    (
        BotStatus::ScopeMissing,
        Some(format!(
            "{login}'s authorization lacks the scope {}: add the bot again and grant every permission",
            crate::chat::send::WRITE_SCOPE
        )),
    )
}

/// The chat bots of this relay; one per process.
pub struct ChatBots {
    store: Store,
    /// Sealing, refreshing, validating and revoking (shared with the
    /// broadcaster's tokens: one crypto and refresh path).
    tokens: Arc<TokenManager>,
    changes: broadcast::Sender<Arc<BotChange>>,
    /// What was last published, by id.
    published: Mutex<Option<BTreeMap<String, ChatBot>>>,
    revision: Revision,
    /// Held while refreshing a bot's token: one refresh at a time here.
    refreshing: Mutex<()>,
    /// Bot id → the status board of its session on this replica.
    sessions: std::sync::Mutex<HashMap<String, Arc<Twitch>>>,
    /// The sessions as last compared (see [`ChatBots::sessions_moved`]).
    seen_sessions: std::sync::Mutex<HashMap<String, BotSession>>,
}

impl std::fmt::Debug for ChatBots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatBots").finish_non_exhaustive()
    }
}

impl ChatBots {
    /// The bots kept in `store`.
    pub fn new(store: Store, tokens: Arc<TokenManager>) -> ChatBots {
        let (changes, _) = broadcast::channel(256);
        ChatBots {
            revision: Revision::new(store.clone(), REVISION),
            store,
            tokens,
            changes,
            published: Mutex::new(None),
            refreshing: Mutex::new(()),
            sessions: std::sync::Mutex::default(),
            seen_sessions: std::sync::Mutex::default(),
        }
    }

    /// Shows `board` as bot `bot_id`'s session from now on.
    pub fn track_session(&self, bot_id: &str, board: Arc<Twitch>) {
        self.sessions
            .lock()
            .expect("sessions lock")
            .insert(bot_id.to_string(), board);
    }

    /// Bot `bot_id` has no session here any more.
    pub fn untrack_session(&self, bot_id: &str) {
        self.sessions.lock().expect("sessions lock").remove(bot_id);
    }

    /// Every tracked session's state now.
    fn session_states(&self) -> HashMap<String, BotSession> {
        self.sessions
            .lock()
            .expect("sessions lock")
            .iter()
            .map(|(id, board)| (id.clone(), BotSession::of(board.connection())))
            .collect()
    }

    /// Whether any session changed since the last call.
    fn sessions_moved(&self) -> bool {
        let now = self.session_states();
        let mut seen = self.seen_sessions.lock().expect("sessions lock");
        let moved = *seen != now;
        *seen = now;
        moved
    }

    /// Every bot, oldest first.
    pub async fn list(&self) -> Result<Vec<ChatBot>, StoreError> {
        let channels = self.store.chat_bot_channels().await?;
        let mut sessions = self.session_states();
        Ok(self
            .store
            .chat_bots()
            .await?
            .into_iter()
            .map(|row| {
                let session = sessions.remove(&row.id);
                ChatBot {
                    session,
                    ..ChatBot::of(row, &channels)
                }
            })
            .collect())
    }

    /// The bot whose TAU id or login is `key`.
    pub async fn get(&self, key: &str) -> Result<Option<ChatBot>, StoreError> {
        let Some(row) = self.store.chat_bot(key).await? else {
            return Ok(None);
        };
        let channels = self.store.chat_bot_channels().await?;
        let session = self.session_states().remove(&row.id);
        Ok(Some(ChatBot {
            session,
            ..ChatBot::of(row, &channels)
        }))
    }

    /// The stored row of the bot `key` (id or login).
    pub async fn row(&self, key: &str) -> Result<Option<ChatBotRow>, StoreError> {
        self.store.chat_bot(key).await
    }

    /// The shared Twitch client (Helix as a bot, with [`tokens::BotAuth`]).
    pub fn tokens_client(&self) -> &tau_twitch::Client {
        self.tokens.client()
    }

    /// Every bot's channels.
    pub async fn channels(&self) -> Result<Vec<ChatBotChannel>, StoreError> {
        self.store.chat_bot_channels().await
    }

    /// Changes from now on.
    pub fn changes(&self) -> broadcast::Receiver<Arc<BotChange>> {
        self.changes.subscribe()
    }

    /// Records a change made here: publishes it now, and tells the other
    /// replicas. A store failure is logged (they catch up at the next change).
    pub async fn changed(&self) {
        if let Err(err) = self.revision.bump().await {
            tracing::warn!(error = %err, "could not announce a chat bot change to other replicas");
        }
        self.publish(false).await;
    }

    /// Compares the bots with what was last published and sends the
    /// difference. With nothing published yet, `learn` only learns them
    /// (the poll at start); otherwise every bot counts as new.
    async fn publish(&self, learn: bool) {
        let bots = match self.list().await {
            Ok(bots) => bots,
            Err(err) => {
                tracing::warn!(error = %err, "reading chat bots failed");
                return;
            }
        };
        let now: BTreeMap<String, ChatBot> = bots.into_iter().map(|b| (b.id.clone(), b)).collect();
        let mut published = self.published.lock().await;
        let Some(before) = published.take() else {
            if learn {
                *published = Some(now);
                return;
            }
            return self.send_all_new(&mut published, now);
        };
        for (id, bot) in &now {
            let event = match before.get(id) {
                None => "Created",
                Some(old) if old != bot => "Updated",
                Some(_) => continue,
            };
            let _ = self.changes.send(Arc::new(BotChange {
                event,
                chat_bot: bot.clone(),
            }));
        }
        for (id, bot) in before {
            if !now.contains_key(&id) {
                let _ = self.changes.send(Arc::new(BotChange {
                    event: "Deleted",
                    chat_bot: bot,
                }));
            }
        }
        *published = Some(now);
    }

    fn send_all_new(
        &self,
        published: &mut Option<BTreeMap<String, ChatBot>>,
        now: BTreeMap<String, ChatBot>,
    ) {
        for bot in now.values() {
            let _ = self.changes.send(Arc::new(BotChange {
                event: "Created",
                chat_bot: bot.clone(),
            }));
        }
        *published = Some(now);
    }

    /// Publishes what other replicas change and what this replica's bot
    /// sessions do, until `shutdown`.
    pub fn spawn(self: &Arc<Self>, shutdown: CancellationToken) {
        let bots = self.clone();
        crate::poll::spawn_every(POLL, shutdown.clone(), move || {
            let bots = bots.clone();
            async move {
                let sessions = bots.sessions_moved();
                match bots.revision.moved().await {
                    Ok(moved) if moved || sessions || bots.published.lock().await.is_none() => {
                        bots.publish(true).await
                    }
                    Ok(_) => {}
                    Err(err) => tracing::warn!(error = %err, "checking chat bot changes failed"),
                }
            }
        });
    }

    /// Validates every bot's token now and hourly until `shutdown` (Twitch
    /// requires it of every user token an application keeps).
    pub fn spawn_validation(self: &Arc<Self>, shutdown: CancellationToken) {
        let bots = self.clone();
        crate::poll::spawn_every(Duration::from_secs(3600), shutdown, move || {
            let bots = bots.clone();
            async move { bots.validate_all().await }
        });
    }
}
