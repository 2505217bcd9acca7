//! The chat feed: chat events from the hub, turned into frames once.
//!
//! One task reads the hub like any client, keeps the chat types that have
//! an IRC form, builds each frame's `data` (parsing the event once, however
//! many chat sockets are open) and broadcasts it to the chat sockets. It
//! does nothing while no chat socket listens.
//!
//! Chat sockets cannot resume (the original's could not either): a socket
//! that falls a whole ring behind is closed, and history stays available
//! over REST and `/ws/twitch-events/` with `since`.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::extract::ws::Utf8Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::irc_frame::{irc_data, is_chat_type};
use crate::{event::EncodedEvent, hub::Hub, twitch::Twitch};

/// How long the broadcaster's id is trusted before it is read again
/// (the broadcaster changes only by a new authorization).
const BROADCASTER_TTL: Duration = Duration::from_secs(5);
/// Account names whose rendered frame a [`ChatFrame`] keeps: sockets show
/// the channel's login unless a bot names its account, so a few names
/// cover every socket; a name beyond these is rendered for its socket.
const RENDERED_NAMES: usize = 16;
/// How long a chat socket treats a clear of the same chat (and user) as a
/// copy: Twitch delivers each clear once per subscription, moments apart,
/// and a clear carries no id to tell copies from a second clear. Merging
/// two real clears this close loses nothing: clearing is idempotent.
pub const CLEAR_COPY_WINDOW: Duration = Duration::from_secs(10);

/// One chat event, ready to send to any chat socket.
#[derive(Debug)]
pub struct ChatFrame {
    /// TAU type (`channel-chat-message`).
    pub event_type: String,
    /// Whether it belongs to the broadcaster's own chat (test events do:
    /// they exist to try clients with).
    pub broadcaster_chat: bool,
    /// The login of the channel it happened in.
    pub channel_login: String,
    /// The user id of that channel.
    pub room_id: String,
    /// A test event (shown on every chat socket, to try clients with).
    pub test: bool,
    /// What makes copies of this event the same: the same event reaches
    /// TAU once per subscription (the broadcaster's and each bot's in that
    /// channel), and a socket shows it once. See [`Dedup`].
    pub dedup: Option<Dedup>,
    /// `"data":…,"event_type":…,"event_data":…`: the frame after its
    /// first field, serialized once.
    rest: String,
    /// The whole frame per account name, rendered by the first socket that
    /// needs it and shared (not copied) by every other socket.
    rendered: Mutex<Vec<(String, Utf8Bytes)>>,
}

/// How a chat socket recognizes copies of one chat event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dedup {
    /// `<type>:<message id>` for events that name a message; for clears
    /// (no id) `<type>:<room id>[:<target user id>]`.
    pub key: String,
    /// `None`: a copy whenever seen before (ids are unique); `Some`: only
    /// within this window ([`CLEAR_COPY_WINDOW`]).
    pub window: Option<Duration>,
}

impl Dedup {
    /// The copy key of a chat event from Twitch of TAU type `tau_type`.
    /// Test and replayed clears are deliberate: never merged.
    fn of(tau_type: &str, event: &serde_json::Value, origin: &str) -> Option<Dedup> {
        if let Some(id) = event["message_id"].as_str() {
            return Some(Dedup {
                key: format!("{tau_type}:{id}"),
                window: None,
            });
        }
        let clear = matches!(
            tau_type,
            "channel-chat-clear" | "channel-chat-clear_user_messages"
        );
        if !clear || origin != "twitch" {
            return None;
        }
        let room = event["broadcaster_user_id"].as_str().unwrap_or_default();
        let target = event["target_user_id"].as_str().unwrap_or_default();
        Some(Dedup {
            key: format!("{tau_type}:{room}:{target}"),
            window: Some(CLEAR_COPY_WINDOW),
        })
    }
}

impl ChatFrame {
    /// The frame `{"irc_username": …, "data": …, "event_type": …,
    /// "event_data": …}` for the account `irc_username`: rendered once per
    /// name, its bytes shared by every socket that shows that name.
    pub fn render(&self, irc_username: &str) -> Utf8Bytes {
        let mut rendered = self.rendered.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, text)) = rendered.iter().find(|(name, _)| name == irc_username) {
            return text.clone();
        }
        let name = serde_json::to_string(irc_username).expect("a string serializes");
        let text = Utf8Bytes::from(format!("{{\"irc_username\":{name},{}}}", self.rest));
        if rendered.len() < RENDERED_NAMES {
            rendered.push((irc_username.to_string(), text.clone()));
        }
        text
    }

    /// Builds the frame from a hub event's client payload; `None` for
    /// non-chat types and events that cannot be read.
    pub fn from_payload(payload: &str, broadcaster_id: Option<&str>) -> Option<ChatFrame> {
        #[derive(Deserialize)]
        struct Wire<'a> {
            event_type: String,
            #[serde(borrow)]
            event_data: &'a RawValue,
            created: String,
            origin: String,
        }
        let wire: Wire = serde_json::from_str(payload).ok()?;
        if !is_chat_type(&wire.event_type) {
            return None;
        }
        let event: serde_json::Value = serde_json::from_str(wire.event_data.get()).ok()?;
        let sent_ms = chrono::DateTime::parse_from_rfc3339(&wire.created)
            .map_or(0, |at| at.timestamp_millis());
        let data = irc_data(&wire.event_type, &event, sent_ms)?;
        let room = event["broadcaster_user_id"].as_str().unwrap_or_default();
        let rest = format!(
            "\"data\":{},\"event_type\":{},\"event_data\":{}",
            serde_json::to_string(&data).ok()?,
            serde_json::to_string(&wire.event_type).ok()?,
            wire.event_data.get(),
        );
        Some(ChatFrame {
            broadcaster_chat: wire.origin == "test" || broadcaster_id.is_none_or(|id| id == room),
            room_id: room.to_string(),
            test: wire.origin == "test",
            dedup: Dedup::of(&wire.event_type, &event, &wire.origin),
            channel_login: event["broadcaster_user_login"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            event_type: wire.event_type,
            rest,
            rendered: Mutex::new(Vec::new()),
        })
    }
}

/// Starts the feed task; frames go to `frames`.
pub fn spawn(
    hub: &Hub,
    twitch: Arc<Twitch>,
    frames: broadcast::Sender<Arc<ChatFrame>>,
    shutdown: CancellationToken,
) {
    let mut events = hub.subscribe();
    tokio::spawn(async move {
        let mut broadcaster = Broadcaster::default();
        loop {
            let event = tokio::select! {
                _ = shutdown.cancelled() => return,
                event = events.recv() => event,
            };
            match event {
                Ok(event) => {
                    if frames.receiver_count() == 0 || !is_chat_type(&event.event_type) {
                        continue;
                    }
                    if let Some(frame) = frame_of(&event, &mut broadcaster, &twitch).await {
                        let _ = frames.send(Arc::new(frame));
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(
                        missed = n,
                        "chat feed fell behind the hub; chat sockets missed events"
                    );
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    });
}

async fn frame_of(
    event: &EncodedEvent,
    broadcaster: &mut Broadcaster,
    twitch: &Twitch,
) -> Option<ChatFrame> {
    let id = broadcaster.id(twitch).await;
    let frame = ChatFrame::from_payload(&event.payload, id.as_deref());
    if frame.is_none() {
        tracing::debug!(event_type = %event.event_type, "chat event without an IRC form skipped");
    }
    frame
}

/// The broadcaster's user id, read from the stored authorization now and then.
#[derive(Default)]
struct Broadcaster {
    known: Option<(Instant, Option<String>)>,
}

impl Broadcaster {
    async fn id(&mut self, twitch: &Twitch) -> Option<String> {
        if let Some((at, id)) = &self.known {
            if at.elapsed() < BROADCASTER_TTL {
                return id.clone();
            }
        }
        let id = twitch.tokens.user_info().await.and_then(|t| t.user_id);
        self.known = Some((Instant::now(), id.clone()));
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_renders_per_account_from_one_encoding() {
        let payload = r#"{"id":null,"event_id":"e","event_type":"channel-chat-clear","event_source":"EventSub","event_data":{"broadcaster_user_id":"1337","broadcaster_user_login":"cooler_user"},"created":"2023-11-14T22:13:20+00:00","origin":"twitch"}"#;
        let frame = ChatFrame::from_payload(payload, Some("1337")).unwrap();
        assert!(frame.broadcaster_chat);
        let value: serde_json::Value = serde_json::from_str(&frame.render("cooler_user")).unwrap();
        assert_eq!(value["irc_username"], "cooler_user");
        assert_eq!(value["event_type"], "channel-chat-clear");
        assert_eq!(value["event_data"]["broadcaster_user_id"], "1337");
        assert_eq!(value["data"]["command"], "CLEARCHAT");
        assert_eq!(
            value["data"]["tags"]["tmi-sent-ts"], "1700000000000",
            "TAU's receive time"
        );
        // Rendered once per name: every socket showing it shares the bytes.
        let again = frame.render("cooler_user");
        assert_eq!(
            again.as_str().as_ptr(),
            frame.render("cooler_user").as_str().as_ptr()
        );
        let bot = frame.render("a_bot");
        assert_ne!(bot.as_str().as_ptr(), again.as_str().as_ptr());
        let value: serde_json::Value = serde_json::from_str(&bot).unwrap();
        assert_eq!(value["irc_username"], "a_bot");
        assert_eq!(value["data"]["command"], "CLEARCHAT");
        for i in 0..2 * RENDERED_NAMES {
            let name = format!("bot{i}");
            let value: serde_json::Value = serde_json::from_str(&frame.render(&name)).unwrap();
            assert_eq!(value["irc_username"], name);
        }
        assert_eq!(frame.rendered.lock().unwrap().len(), RENDERED_NAMES);
        let elsewhere = ChatFrame::from_payload(payload, Some("42")).unwrap();
        assert!(!elsewhere.broadcaster_chat);
        let follow = payload.replace("channel-chat-clear", "channel-follow");
        assert!(ChatFrame::from_payload(&follow, None).is_none());
    }

    #[test]
    fn a_clear_from_twitch_has_a_copy_key_by_chat_and_user_a_test_clear_none() {
        let clear = r#"{"event_type":"channel-chat-clear_user_messages","event_data":{"broadcaster_user_id":"1337","broadcaster_user_login":"cooler_user","target_user_id":"7734","target_user_login":"viewer"},"created":"2023-11-14T22:13:20+00:00","origin":"twitch"}"#;
        let dedup = ChatFrame::from_payload(clear, Some("1337"))
            .unwrap()
            .dedup
            .unwrap();
        assert_eq!(dedup.key, "channel-chat-clear_user_messages:1337:7734");
        assert_eq!(dedup.window, Some(CLEAR_COPY_WINDOW));
        let test = clear.replace("\"twitch\"", "\"test\"");
        assert_eq!(ChatFrame::from_payload(&test, None).unwrap().dedup, None);
    }
}
