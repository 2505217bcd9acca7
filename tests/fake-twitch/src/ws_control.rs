//! Test-facing control of EventSub delivery: inspecting sessions, pushing
//! notifications and raw frames, reconnect hand-overs, closes, keepalive
//! silence, revocations, and conduit routing.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::Duration;

use serde_json::{json, Value};

use crate::error::FakeError;
use crate::eventsub_ws::envelope;
use crate::state::{
    random_token, Session, SessionInfo, Shard, State, Subscription, Transport, WsCommand,
};
use crate::FakeTwitch;

/// How long [`FakeTwitch::close_session`] waits for the socket task to finish.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

fn info(st: &State, s: &Session) -> SessionInfo {
    SessionInfo {
        id: s.id.clone(),
        connected: s.connected,
        welcomed: s.welcomed,
        keepalive_timeout_seconds: s.keepalive_timeout_seconds,
        subscription_ids: st
            .subscriptions
            .iter()
            .filter(|sub| sub.is_enabled() && sub.transport.session_id() == Some(&s.id))
            .map(|sub| sub.id.clone())
            .collect(),
        conduit_shard: st.shard_of(&s.id),
        reconnect_url: s.reconnect_url.clone(),
        reconnected_from: s.reconnected_from.clone(),
        close_code: s.close_code,
    }
}

/// Among candidate subscriptions, the one whose condition agrees with the
/// event (e.g. raid to vs. from), else the first.
fn pick(candidates: Vec<Subscription>, event: &Value) -> Option<Subscription> {
    let best = pick_index(&candidates, event);
    candidates.into_iter().nth(best)
}

/// [`pick`]'s choice as an index (0 when none agrees or there are none).
fn pick_index(candidates: &[Subscription], event: &Value) -> usize {
    let agrees = |s: &Subscription| {
        s.condition
            .as_object()
            .is_some_and(|c| c.iter().all(|(k, v)| event.get(k).is_none_or(|e| e == v)))
    };
    candidates.iter().position(agrees).unwrap_or(0)
}

/// Where [`FakeTwitch::send_conduit_notification_traced`] sent a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardDelivery {
    /// The message id.
    pub message_id: String,
    /// The shard it went through.
    pub shard_id: String,
    /// That shard's WebSocket session (`None` for a webhook shard).
    pub session_id: Option<String>,
}

impl FakeTwitch {
    /// Snapshots of every session ever opened, in connection order.
    pub async fn sessions(&self) -> Vec<SessionInfo> {
        let st = self.state();
        st.sessions.iter().map(|s| info(&st, s)).collect()
    }

    /// Waits until a connected session holds at least one enabled WebSocket
    /// subscription; returns the newest such session.
    pub async fn wait_for_session(&self, timeout: Duration) -> Result<SessionInfo, FakeError> {
        self.wait_until(timeout, "a session with a subscription", |st| {
            st.sessions
                .iter()
                .rev()
                .map(|s| info(st, s))
                .find(|s| s.connected && !s.subscription_ids.is_empty())
        })
        .await
    }

    /// Waits until `pred` holds for the session list; returns that list.
    pub async fn wait_for_sessions(
        &self,
        timeout: Duration,
        pred: impl Fn(&[SessionInfo]) -> bool,
    ) -> Result<Vec<SessionInfo>, FakeError> {
        self.wait_until(timeout, "sessions matching the predicate", |st| {
            let all: Vec<_> = st.sessions.iter().map(|s| info(st, s)).collect();
            pred(&all).then_some(all)
        })
        .await
    }

    /// Queues a text frame on a connected session.
    fn push(&self, session_id: &str, cmd: WsCommand) -> Result<(), FakeError> {
        let st = self.state();
        let s = st.connected_session(session_id)?;
        s.tx.send(cmd)
            .map_err(|_| FakeError::SessionClosed(session_id.into()))
    }

    /// The enabled subscriptions of `sub_type`/`version` whose events go to
    /// `session_id`: WebSocket subscriptions on it, and conduit ones whose
    /// conduit has it as an enabled shard.
    fn subscriptions_on(
        &self,
        session_id: &str,
        sub_type: &str,
        version: &str,
    ) -> Vec<Subscription> {
        let st = self.state();
        let shard_conduit = st
            .conduits
            .iter()
            .find(|c| {
                c.shards.iter().any(|s| {
                    s.status == "enabled"
                        && matches!(&s.transport, Some(t) if t.session_id() == Some(session_id))
                })
            })
            .map(|c| c.id.clone());
        st.subscriptions
            .iter()
            .filter(|s| s.is_enabled() && s.sub_type == sub_type && s.version == version)
            .filter(|s| match &s.transport {
                Transport::WebSocket {
                    session_id: sid, ..
                } => sid == session_id,
                Transport::Conduit { conduit_id } => shard_conduit.as_ref() == Some(conduit_id),
                Transport::Webhook { .. } => false,
            })
            .cloned()
            .collect()
    }

    /// Sends a `notification` on `session_id` for its enabled subscription of
    /// `sub_type`/`version` (a WebSocket subscription on that session, or a
    /// conduit subscription whose conduit has that session as an enabled
    /// shard). Returns the message id; errors if no such subscription exists.
    ///
    /// During a reconnect hand-over the old session keeps its subscriptions
    /// (and so keeps receiving) until the new session's welcome.
    pub async fn send_notification(
        &self,
        session_id: &str,
        sub_type: &str,
        version: &str,
        event: Value,
    ) -> Result<String, FakeError> {
        let mut ids = self.send_notifications(session_id, sub_type, version, [event])?;
        Ok(ids.pop().expect("one event, one message id"))
    }

    /// [`FakeTwitch::send_notification`] for many events at once, for load:
    /// the subscription is looked up once and every frame is queued on the
    /// session under one lock, in order, so a load generator can push tens
    /// of thousands a second without the per-call bookkeeping. The socket
    /// task writes them as fast as the client reads (TCP back-pressure);
    /// nothing is sent if the lookup fails. Returns the message ids in
    /// event order.
    pub fn send_notifications(
        &self,
        session_id: &str,
        sub_type: &str,
        version: &str,
        events: impl IntoIterator<Item = Value>,
    ) -> Result<Vec<String>, FakeError> {
        let candidates = self.subscriptions_on(session_id, sub_type, version);
        let no_match = || FakeError::NoMatchingSubscription {
            sub_type: sub_type.into(),
            version: version.into(),
            target: session_id.into(),
        };
        if candidates.is_empty() {
            return Err(no_match());
        }
        // Serialized once per candidate, not once per event.
        let sub_json: Vec<Value> = candidates.iter().map(Subscription::to_json).collect();
        let frames: Vec<(String, String)> = events
            .into_iter()
            .map(|event| {
                let sub = pick_index(&candidates, &event);
                envelope(
                    "notification",
                    Some((sub_type, version)),
                    json!({"subscription": sub_json[sub], "event": event}),
                )
            })
            .collect();
        let st = self.state();
        let s = st.connected_session(session_id)?;
        let mut ids = Vec::with_capacity(frames.len());
        for (id, text) in frames {
            s.tx.send(WsCommand::Send(text))
                .map_err(|_| FakeError::SessionClosed(session_id.into()))?;
            ids.push(id);
        }
        Ok(ids)
    }

    /// Sends any JSON value as a text frame on `session_id`.
    pub async fn send_raw(&self, session_id: &str, msg: Value) -> Result<(), FakeError> {
        self.push(session_id, WsCommand::Send(msg.to_string()))
    }

    /// Sends `session_reconnect` with a fresh `ws://.../ws/reconnect/<token>`
    /// URL and returns that URL. A connection to it gets a welcome with a NEW
    /// session id and the old session's subscriptions (and conduit shard). The
    /// old socket keeps delivering until then and is closed
    /// [`crate::Options::reconnect_grace`] after the reconnect message (1000
    /// if the client moved, 4004 if not).
    pub async fn send_reconnect(&self, session_id: &str) -> Result<String, FakeError> {
        let token = random_token(24);
        let url = format!("ws://{}/ws/reconnect/{token}", self.inner.addr);
        self.push(session_id, WsCommand::Reconnect(url.clone()))?;
        let mut st = self.state();
        st.reconnect_tokens.insert(token, session_id.into());
        if let Some(s) = st.session_mut(session_id) {
            s.reconnect_url = Some(url.clone());
        }
        drop(st);
        self.notify();
        Ok(url)
    }

    /// While `true`, a client connecting to a reconnect URL is accepted but
    /// gets no welcome (and takes over no subscriptions) until this is set
    /// back to `false` — the window in which the old socket still delivers.
    /// The waiting session shows up in [`FakeTwitch::sessions`] with
    /// `welcomed: false`.
    pub fn set_hold_reconnect_welcome(&self, yes: bool) {
        self.state().hold_reconnect_welcome = yes;
        self.notify();
    }

    /// Closes a session with `code` (4000-4007) and waits until it is gone.
    /// Its enabled subscriptions and shards get the matching status
    /// (4000 `websocket_internal_error`, 4001 `..._received_inbound_traffic`,
    /// 4002 `..._failed_ping_pong`, 4004 `..._failed_to_reconnect`,
    /// 4005 `..._network_timeout`, 4006 `..._network_error`, else
    /// `websocket_disconnected`).
    pub async fn close_session(&self, session_id: &str, code: u16) -> Result<(), FakeError> {
        let reason = format!("closed by fake twitch ({code})");
        self.push(session_id, WsCommand::Close(code, reason))?;
        self.wait_until(CLOSE_WAIT, "session close", |st| {
            st.session(session_id).filter(|s| !s.connected).map(|_| ())
        })
        .await
    }

    /// Simulates an EventSub outage (`true`): closes every connected
    /// session with `code` (see [`FakeTwitch::close_session`]) and refuses
    /// new connections to `/ws` with 503 until called with `false`.
    /// Returns the ids of the sessions it closed.
    pub async fn set_eventsub_outage(&self, down: bool, code: u16) -> Vec<String> {
        self.state().refuse_websockets = down;
        if !down {
            return Vec::new();
        }
        let open: Vec<String> = {
            let st = self.state();
            st.sessions
                .iter()
                .filter(|s| s.connected)
                .map(|s| s.id.clone())
                .collect()
        };
        let mut closed = Vec::new();
        for id in open {
            if self.close_session(&id, code).await.is_ok() {
                closed.push(id);
            }
        }
        closed
    }

    /// Stops (`true`) or resumes (`false`) keepalives on a session, to
    /// simulate a silent connection.
    pub fn pause_keepalives(&self, session_id: &str, yes: bool) {
        if let Some(s) = self.state().session_mut(session_id) {
            s.keepalives_paused = yes;
        }
    }

    /// Revokes a subscription with `status` (`authorization_revoked`,
    /// `user_removed`, `version_removed`, ...) and tells the client once:
    /// a `revocation` frame for WebSocket subscriptions, a signed
    /// `revocation` POST for webhook ones, via an enabled shard for conduits.
    pub async fn revoke(&self, subscription_id: &str, status: &str) -> Result<(), FakeError> {
        let sub = {
            let mut st = self.state();
            let sub = st
                .subscription_mut(subscription_id)
                .ok_or_else(|| FakeError::UnknownSubscription(subscription_id.into()))?;
            sub.status = status.into();
            sub.clone()
        };
        self.notify();
        let payload = json!({"subscription": sub.to_json()});
        self.deliver_message(&sub, "revocation", payload)
            .await
            .map(|_| ())
    }

    /// Fires `event` for one enabled subscription through whatever transport
    /// it uses (WebSocket frame, signed webhook POST, or conduit routing).
    /// Returns the message id.
    pub async fn send_to_subscription(
        &self,
        subscription_id: &str,
        event: Value,
    ) -> Result<String, FakeError> {
        let sub = self
            .subscription(subscription_id)
            .ok_or_else(|| FakeError::UnknownSubscription(subscription_id.into()))?;
        if !sub.is_enabled() {
            return Err(FakeError::NotEnabled(sub.id, sub.status));
        }
        let payload = json!({"subscription": sub.to_json(), "event": event});
        self.deliver_message(&sub, "notification", payload).await
    }

    /// Delivers an event for a conduit subscription of `sub_type`/`version`
    /// the way Twitch routes it: hash the condition to a shard; if that shard
    /// is not enabled try the next one; else fail. Returns the message id.
    pub async fn send_conduit_notification(
        &self,
        conduit_id: &str,
        sub_type: &str,
        version: &str,
        event: Value,
    ) -> Result<String, FakeError> {
        self.send_conduit_notification_traced(conduit_id, sub_type, version, event)
            .await
            .map(|d| d.message_id)
    }

    /// [`FakeTwitch::send_conduit_notification`], also saying which shard
    /// (and WebSocket session) the message went to.
    pub async fn send_conduit_notification_traced(
        &self,
        conduit_id: &str,
        sub_type: &str,
        version: &str,
        event: Value,
    ) -> Result<ShardDelivery, FakeError> {
        let candidates = self
            .subscriptions()
            .into_iter()
            .filter(|s| s.is_enabled() && s.sub_type == sub_type && s.version == version)
            .filter(
                |s| matches!(&s.transport, Transport::Conduit { conduit_id: c } if c == conduit_id),
            )
            .collect();
        let sub = pick(candidates, &event).ok_or_else(|| FakeError::NoMatchingSubscription {
            sub_type: sub_type.into(),
            version: version.into(),
            target: conduit_id.into(),
        })?;
        let mut hasher = DefaultHasher::new();
        sub.condition.to_string().hash(&mut hasher);
        let payload = json!({"subscription": sub.to_json(), "event": event});
        self.via_shard(
            conduit_id,
            hasher.finish() as usize,
            "notification",
            &sub,
            payload,
        )
        .await
    }

    /// Sends one message for `sub` over its transport; returns the message id.
    async fn deliver_message(
        &self,
        sub: &Subscription,
        message_type: &str,
        payload: Value,
    ) -> Result<String, FakeError> {
        match &sub.transport {
            Transport::WebSocket { session_id, .. } => {
                let (id, text) =
                    envelope(message_type, Some((&sub.sub_type, &sub.version)), payload);
                self.push(session_id, WsCommand::Send(text))?;
                Ok(id)
            }
            Transport::Webhook { callback, secret } => self
                .post_signed(callback, secret, message_type, sub, payload)
                .await
                .map(|(id, _)| id),
            Transport::Conduit { conduit_id } => {
                let mut hasher = DefaultHasher::new();
                sub.condition.to_string().hash(&mut hasher);
                self.via_shard(
                    conduit_id,
                    hasher.finish() as usize,
                    message_type,
                    sub,
                    payload,
                )
                .await
                .map(|d| d.message_id)
            }
        }
    }

    /// Sends through shard `hint % n` or the one after it, whichever is enabled.
    async fn via_shard(
        &self,
        conduit_id: &str,
        hint: usize,
        message_type: &str,
        sub: &Subscription,
        payload: Value,
    ) -> Result<ShardDelivery, FakeError> {
        let conduit = self
            .conduits()
            .into_iter()
            .find(|c| c.id == conduit_id)
            .ok_or_else(|| FakeError::UnknownConduit(conduit_id.into()))?;
        let n = conduit.shards.len().max(1);
        let shard = [hint % n, (hint + 1) % n]
            .into_iter()
            .filter_map(|i| conduit.shards.get(i))
            .find(|s| s.status == "enabled")
            .ok_or_else(|| FakeError::NoEnabledShard(conduit_id.into()))?;
        let delivered = |message_id: String, session_id: Option<&String>| ShardDelivery {
            message_id,
            shard_id: shard.id.clone(),
            session_id: session_id.cloned(),
        };
        match shard
            .transport
            .as_ref()
            .expect("enabled shards have a transport")
        {
            Transport::WebSocket { session_id, .. } => {
                let (id, text) =
                    envelope(message_type, Some((&sub.sub_type, &sub.version)), payload);
                self.push(session_id, WsCommand::Send(text))?;
                Ok(delivered(id, Some(session_id)))
            }
            Transport::Webhook { callback, secret } => self
                .post_signed(callback, secret, message_type, sub, payload)
                .await
                .map(|(id, _)| delivered(id, None)),
            Transport::Conduit { .. } => unreachable!("shards never use the conduit transport"),
        }
    }

    /// Sends `conduit.shard.disabled` to every enabled subscription for it
    /// (condition `client_id`, optionally `conduit_id`). Best effort.
    pub(crate) async fn announce_shard_disabled(&self, conduit_id: &str, shard: &Shard) {
        let event = json!({
            "conduit_id": conduit_id,
            "shard_id": shard.id,
            "status": shard.status,
            "transport": shard.transport.as_ref().map(Transport::to_json),
        });
        let listeners = self.subscriptions().into_iter().filter(|s| {
            s.is_enabled()
                && s.sub_type == "conduit.shard.disabled"
                && s.condition["client_id"] == FakeTwitch::CLIENT_ID
                && s.condition
                    .get("conduit_id")
                    .is_none_or(|c| c == conduit_id)
        });
        for sub in listeners.collect::<Vec<_>>() {
            let payload = json!({"subscription": sub.to_json(), "event": event});
            if let Err(err) = self.deliver_message(&sub, "notification", payload).await {
                tracing::debug!(%err, "conduit.shard.disabled not delivered");
            }
        }
    }
}
