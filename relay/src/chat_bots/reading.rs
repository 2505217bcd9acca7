//! Reading a bot's chat: one EventSub WebSocket session per bot that is
//! in channels (WebSocket transport).
//!
//! Why a session per bot: `channel.chat.*` with condition
//! `{broadcaster_user_id: <channel>, user_id: <bot>}` over a WebSocket
//! must be created with the bot's own user token, and WebSocket
//! subscriptions belong to the token's sessions. As for the broadcaster's
//! socket, exactly one replica holds each bot's session: the holder of the
//! lease `eventsub-websocket-bot:<bot id>`. The events go through the
//! ordinary ingest (stored, replayable, on every replica's hub), and
//! `/ws/chat-bots/<bot>/` shows those of the bot's channels.
//!
//! A supervisor follows the bots: a session starts for each ready bot with
//! channels, makes its subscriptions anew when its channels change, and
//! stops when it has none, turns invalid or is removed. A subscription
//! Twitch refuses marks that channel `failed` with the reason in words.
//! Each session has its own status board (state, session id, each
//! subscription's Twitch status, the last problem), registered with
//! [`super::ChatBots::track_session`] so the API shows it per bot.
//!
//! With the webhook and conduit transports the same subscriptions are
//! made with the app token instead ([`ChatBots::add_wanted`], in the
//! reconcile of [`crate::twitch::app_subs`]): Twitch then needs the bot's
//! `user:bot` and, from the channel, `channel:bot` or the bot being a
//! moderator there. A change of the bots makes the reconcile run again.

use std::{collections::HashMap, sync::Arc};

use tau_eventsub::subscriptions::Desired;

use futures_util::future::BoxFuture;
use serde_json::json;
use tau_twitch::Created;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{tokens::BotAuth, BotStatus};
use crate::{
    app::AppState,
    ingest::socket::{self, Binding, Pipeline, SocketIngest, Welcome},
    twitch::{lease::HeldLease, SubscriptionStatus, Twitch, TwitchError},
};

/// The chat types a bot reads, each at version 1.
pub const CHAT_TYPES: [&str; 5] = [
    "channel.chat.message",
    "channel.chat.notification",
    "channel.chat.message_delete",
    "channel.chat.clear",
    "channel.chat.clear_user_messages",
];

/// The scope an app token needs from a bot to read chat as it.
const BOT_SCOPE: &str = "user:bot";

impl super::ChatBots {
    /// Adds every ready bot's chat subscriptions (each channel, as the
    /// bot) to the app-token transports' wanted list.
    pub async fn add_wanted(
        &self,
        wanted: &mut Vec<Desired>,
    ) -> Result<(), crate::store::StoreError> {
        let bots = self.store.chat_bots().await?;
        let channels = self.store.chat_bot_channels().await?;
        for bot in bots.iter().filter(|b| {
            b.status == BotStatus::Ready.as_str() && b.scopes.iter().any(|s| s == BOT_SCOPE)
        }) {
            for channel in channels.iter().filter(|c| c.bot_id == bot.id) {
                for kind in CHAT_TYPES {
                    let mut condition = serde_json::Map::new();
                    condition.insert(
                        "broadcaster_user_id".into(),
                        channel.channel_id.clone().into(),
                    );
                    condition.insert("user_id".into(), bot.user_id.clone().into());
                    let want = Desired {
                        kind: kind.into(),
                        version: "1".into(),
                        condition,
                    };
                    if !wanted.contains(&want) {
                        wanted.push(want);
                    }
                }
            }
        }
        Ok(())
    }

    /// Records, after an app-token reconcile, which bot channels Twitch
    /// refused (`failures[i]` is why `wanted[i]` was not created).
    pub async fn note_app_results(&self, wanted: &[Desired], failures: &[Option<String>]) {
        let Ok(bots) = self.store.chat_bots().await else {
            return;
        };
        let mut verdicts: HashMap<(String, String), Option<String>> = HashMap::new();
        for (want, failure) in wanted.iter().zip(failures) {
            let user = want.condition.get("user_id").and_then(|v| v.as_str());
            let channel = want
                .condition
                .get("broadcaster_user_id")
                .and_then(|v| v.as_str());
            let (Some(user), Some(channel)) = (user, channel) else {
                continue;
            };
            let Some(bot) = bots.iter().find(|b| b.user_id == user) else {
                continue;
            };
            if !CHAT_TYPES.contains(&want.kind.as_str()) {
                continue;
            }
            let verdict = verdicts
                .entry((bot.id.clone(), channel.to_string()))
                .or_default();
            if let Some(failure) = failure.as_ref().filter(|f| f.contains("403")) {
                *verdict = Some(format!(
                    "Twitch does not let {} read this channel: the bot must be a moderator there, \
                     or the channel must authorize channel:bot ({failure})",
                    bot.user_login
                ));
            }
        }
        for ((bot_id, channel_id), reason) in verdicts {
            self.set_channel_status(&bot_id, &channel_id, reason.as_deref())
                .await;
        }
    }
}

/// With the app-token transports: makes the reconcile run again whenever
/// the bots change (on any replica), until shutdown.
pub fn spawn_app_resubscribe(app: AppState) {
    tokio::spawn(async move {
        let mut changes = app.chat_bots.changes();
        loop {
            tokio::select! {
                _ = app.shutdown.cancelled() => return,
                change = changes.recv() => match change {
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                    _ => app.twitch.request_resubscribe(),
                },
            }
        }
    });
}

/// The lease of bot `bot_id`'s session.
fn lease_name(bot_id: &str) -> String {
    format!("eventsub-websocket-bot:{bot_id}")
}

/// One running bot session: how to stop it, how to make it resubscribe,
/// and the channels it subscribed for.
struct Running {
    stop: CancellationToken,
    resubscribe: watch::Sender<u64>,
    channels: Vec<String>,
}

/// Starts the supervisor (WebSocket transport); it runs until shutdown.
pub fn spawn(app: AppState) {
    tokio::spawn(async move {
        let mut changes = app.chat_bots.changes();
        let mut running: HashMap<String, Running> = HashMap::new();
        loop {
            reconcile(&app, &mut running).await;
            tokio::select! {
                _ = app.shutdown.cancelled() => return,
                change = changes.recv() => {
                    // Lagged: reconcile anyway (it reads the store).
                    if let Err(tokio::sync::broadcast::error::RecvError::Closed) = change {
                        return;
                    }
                }
            }
        }
    });
}

/// Starts, resubscribes and stops sessions to match the bots.
async fn reconcile(app: &AppState, running: &mut HashMap<String, Running>) {
    let (bots, channels) = match (app.chat_bots.list().await, app.chat_bots.channels().await) {
        (Ok(bots), Ok(channels)) => (bots, channels),
        (Err(err), _) | (_, Err(err)) => {
            return tracing::warn!(error = %err, "reading chat bots failed")
        }
    };
    let mut wanted: HashMap<String, Vec<String>> = HashMap::new();
    for bot in bots.iter().filter(|b| b.status == BotStatus::Ready) {
        let mut ids: Vec<String> = channels
            .iter()
            .filter(|c| c.bot_id == bot.id)
            .map(|c| c.channel_id.clone())
            .collect();
        ids.sort();
        if !ids.is_empty() {
            wanted.insert(bot.id.clone(), ids);
        }
    }
    running.retain(|id, run| {
        let keep = wanted.contains_key(id);
        if !keep {
            run.stop.cancel();
            app.chat_bots.untrack_session(id);
        }
        keep
    });
    for (id, channels) in wanted {
        match running.get_mut(&id) {
            Some(run) if run.channels == channels => {}
            Some(run) => {
                run.channels = channels;
                run.resubscribe.send_modify(|n| *n = n.wrapping_add(1));
            }
            None => {
                let run = start(app, &id, channels);
                running.insert(id, run);
            }
        }
    }
}

/// Starts bot `bot_id`'s session loop.
fn start(app: &AppState, bot_id: &str, channels: Vec<String>) -> Running {
    let stop = app.shutdown.child_token();
    let (resubscribe, _) = watch::channel(0);
    let timings = app.config.timings.clone();
    // The bot session's own status board: the broadcaster's stays its own.
    let board = Arc::new(Twitch::new(
        &app.config,
        app.store.clone(),
        app.secret_key.clone(),
    ));
    board.update(|s| s.state = "connecting".into());
    app.chat_bots.track_session(bot_id, board.clone());
    let ctx = SocketIngest {
        url: app.config.twitch.eventsub_ws_url.to_string(),
        pipeline: Pipeline::spawn(app.ingest(), &timings, stop.clone(), "websocket-bot"),
        timings,
        connection: board.clone(),
        shutdown: stop.clone(),
    };
    let binding = BotSocket {
        app: app.clone(),
        bot_id: bot_id.to_string(),
        lease: None,
        stop: stop.clone(),
        resubscribe: resubscribe.subscribe(),
        board,
    };
    tokio::spawn(socket::run(ctx, binding));
    Running {
        stop,
        resubscribe,
        channels,
    }
}

/// Binding of one bot's session: its lease and its subscriptions.
struct BotSocket {
    app: AppState,
    bot_id: String,
    lease: Option<HeldLease>,
    stop: CancellationToken,
    resubscribe: watch::Receiver<u64>,
    /// The session's status board (shown per bot).
    board: Arc<Twitch>,
}

impl BotSocket {
    async fn wait_for_turn(&mut self) -> bool {
        let leases = self.app.leases();
        loop {
            if self.stop.is_cancelled() {
                return false;
            }
            if let Some(lease) = leases.take(&lease_name(&self.bot_id)).await {
                self.lease = Some(lease);
                return true;
            }
            self.board.update(|s| {
                s.state = "standby".into();
                s.session_id = None;
                s.subscriptions.clear();
            });
            tokio::select! {
                _ = self.stop.cancelled() => return false,
                _ = tokio::time::sleep(leases.renew_every()) => {}
            }
        }
    }

    /// Creates the chat subscriptions of every channel of the bot, and
    /// shows them on the session's board.
    async fn subscribe(&self, welcome: &Welcome) -> Result<(), TwitchError> {
        let session_id = welcome.session_id.as_str();
        let bots = &self.app.chat_bots;
        let Some(bot) = bots.row(&self.bot_id).await? else {
            return Ok(());
        };
        let channels: Vec<_> = bots
            .channels()
            .await?
            .into_iter()
            .filter(|c| c.bot_id == bot.id)
            .collect();
        let auth = BotAuth {
            bots,
            bot_id: &bot.id,
        };
        let mut shown = Vec::new();
        for channel in channels {
            let mut refused = None;
            for kind in CHAT_TYPES {
                let condition =
                    json!({"broadcaster_user_id": channel.channel_id, "user_id": bot.user_id});
                let body = json!({
                    "type": kind,
                    "version": "1",
                    "condition": condition,
                    "transport": {"method": "websocket", "session_id": session_id},
                });
                let (id, status) = match bots
                    .tokens_client()
                    .create_subscription(&auth, &body)
                    .await
                {
                    Ok(Created::Created(created)) => (
                        created["id"].as_str().unwrap_or_default().to_string(),
                        created["status"].as_str().unwrap_or("enabled").to_string(),
                    ),
                    Ok(Created::Exists) => (String::new(), "already_exists".into()),
                    Ok(Created::Forbidden(message)) => {
                        let status = format!("forbidden: {message}");
                        refused = Some(message);
                        (String::new(), status)
                    }
                    Err(err) => {
                        tracing::warn!(bot = %bot.user_login, kind, error = %err, "bot chat subscription not created");
                        if matches!(err, TwitchError::AuthorizationNeeded) {
                            return Err(err);
                        }
                        (String::new(), format!("failed: {err}"))
                    }
                };
                shown.push(SubscriptionStatus {
                    id,
                    kind: kind.into(),
                    version: "1".into(),
                    condition: condition.as_object().cloned().unwrap_or_default(),
                    status,
                });
            }
            let reason = refused.map(|twitch| {
                format!(
                    "Twitch does not let {} read #{}: the bot must be a moderator there, or {} \
                     must authorize channel:bot (Twitch: {twitch})",
                    bot.user_login, channel.channel_login, channel.channel_login
                )
            });
            bots.set_channel_status(&bot.id, &channel.channel_id, reason.as_deref())
                .await;
        }
        self.board.update(|s| {
            s.state = "connected".into();
            s.session_id = Some(session_id.to_string());
            s.keepalive_seconds = Some(welcome.keepalive.as_secs());
            s.connected_at = Some(crate::event::format_created(chrono::Utc::now()));
            s.subscriptions = shown;
        });
        Ok(())
    }
}

impl Binding for BotSocket {
    fn name(&self) -> &'static str {
        "chat bot EventSub WebSocket"
    }

    fn acquire(&mut self) -> BoxFuture<'_, bool> {
        Box::pin(self.wait_for_turn())
    }

    fn bind<'a>(&'a mut self, welcome: &'a Welcome) -> BoxFuture<'a, Result<(), TwitchError>> {
        Box::pin(async move {
            let lease = self
                .lease
                .as_ref()
                .ok_or_else(|| TwitchError::Socket("no bot socket lease held".into()))?;
            lease.verify().await?;
            self.subscribe(welcome).await
        })
    }

    fn rebind<'a>(&'a mut self, _welcome: &'a Welcome) -> BoxFuture<'a, Result<(), TwitchError>> {
        // Subscriptions carry over to the reconnect URL's session (the
        // handover shows the new session id on the board).
        Box::pin(async { Ok(()) })
    }

    fn lost(&self) -> CancellationToken {
        self.lease
            .as_ref()
            .map(|l| l.lost.clone())
            .unwrap_or_default()
    }

    fn restart(&self) -> Option<watch::Receiver<u64>> {
        // From the current value on: an earlier request ended an earlier session.
        let mut requests = self.resubscribe.clone();
        requests.borrow_and_update();
        Some(requests)
    }

    fn release(&mut self, expire: bool) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if let Some(lease) = self.lease.take() {
                lease.release(expire || self.stop.is_cancelled()).await;
            }
            self.board.update(|s| {
                for sub in &mut s.subscriptions {
                    sub.status = "websocket_disconnected".into();
                }
            });
        })
    }
}
