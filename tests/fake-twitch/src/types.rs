//! The public data types tests inspect: subscriptions, transports, conduits
//! and shards, session snapshots, and the request log.
//!
//! They are plain snapshots (cloned out of the shared world), rendered to
//! Twitch's JSON shapes with `to_json`.

use serde_json::{json, Value};

/// Which kind of credential a request carried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthKind {
    /// No `Authorization` header.
    None,
    /// A valid app access token (client credentials).
    App,
    /// A valid user access token (the broadcaster's).
    User,
    /// A token the fake does not know, or one that expired.
    Invalid,
}

/// One HTTP request the fake served (OAuth, Helix or WebSocket upgrade).
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// HTTP method, e.g. `"POST"`.
    pub method: String,
    /// Path without query, e.g. `"/helix/eventsub/subscriptions"`.
    pub path: String,
    /// Raw query string, if any.
    pub query: Option<String>,
    /// What the `Authorization` header held (`Bearer` or `OAuth` scheme).
    pub auth: AuthKind,
    /// The `Client-Id` header, if sent.
    pub client_id: Option<String>,
    /// Raw request body (UTF-8 lossy).
    pub body: String,
    /// Status code the fake answered with (101 for WebSocket upgrades).
    pub status: u16,
}

/// An EventSub subscription as the fake stores it.
#[derive(Clone, Debug, PartialEq)]
pub struct Subscription {
    /// Subscription id (UUID).
    pub id: String,
    /// Twitch status string: `enabled`, `webhook_callback_verification_pending`, ...
    pub status: String,
    /// Subscription type, e.g. `channel.follow`.
    pub sub_type: String,
    /// Subscription version, e.g. `2`.
    pub version: String,
    /// Condition object exactly as posted.
    pub condition: Value,
    /// Creation time, RFC 3339 with nanoseconds.
    pub created_at: String,
    /// Where notifications go.
    pub transport: Transport,
    /// Cost counted against `max_total_cost`.
    pub cost: u32,
    /// User id of the user token that created it (`None` for app tokens).
    pub created_by_user: Option<String>,
}

impl Subscription {
    /// The subscription object as Twitch renders it (never includes the secret).
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "status": self.status,
            "type": self.sub_type,
            "version": self.version,
            "condition": self.condition,
            "created_at": self.created_at,
            "transport": self.transport.to_json(),
            "cost": self.cost,
        })
    }

    /// Whether the subscription currently receives events.
    pub fn is_enabled(&self) -> bool {
        self.status == "enabled"
    }
}

/// Where a subscription (or conduit shard) delivers notifications.
#[derive(Clone, Debug, PartialEq)]
pub enum Transport {
    /// Signed HTTP POSTs to `callback`.
    Webhook {
        /// Callback URL.
        callback: String,
        /// HMAC secret (never rendered).
        secret: String,
    },
    /// Frames on an EventSub WebSocket session.
    WebSocket {
        /// Session id from the welcome message.
        session_id: String,
        /// When the session connected (RFC 3339).
        connected_at: String,
        /// When the session went away (RFC 3339), if it did.
        disconnected_at: Option<String>,
    },
    /// Delivered through a conduit's shards.
    Conduit {
        /// Conduit id.
        conduit_id: String,
    },
}

impl Transport {
    /// The transport object as Twitch renders it.
    pub fn to_json(&self) -> Value {
        match self {
            Transport::Webhook { callback, .. } => {
                json!({"method": "webhook", "callback": callback})
            }
            Transport::WebSocket {
                session_id,
                connected_at,
                disconnected_at,
            } => {
                let mut v = json!({"method": "websocket", "session_id": session_id, "connected_at": connected_at});
                if let Some(at) = disconnected_at {
                    v["disconnected_at"] = json!(at);
                }
                v
            }
            Transport::Conduit { conduit_id } => {
                json!({"method": "conduit", "conduit_id": conduit_id})
            }
        }
    }

    /// The WebSocket session id, for WebSocket transports.
    pub fn session_id(&self) -> Option<&str> {
        match self {
            Transport::WebSocket { session_id, .. } => Some(session_id),
            _ => None,
        }
    }
}

/// A conduit and its shards.
#[derive(Clone, Debug, PartialEq)]
pub struct Conduit {
    /// Conduit id (UUID).
    pub id: String,
    /// Shards `"0"..N-1`, in order.
    pub shards: Vec<Shard>,
}

/// One shard of a conduit.
#[derive(Clone, Debug, PartialEq)]
pub struct Shard {
    /// Shard id, `"0"`, `"1"`, ...
    pub id: String,
    /// Twitch shard status (`enabled`, `websocket_disconnected`, ...).
    pub status: String,
    /// Assigned transport (`None` until assigned; never [`Transport::Conduit`]).
    pub transport: Option<Transport>,
}

impl Shard {
    /// The shard as `GET /eventsub/conduits/shards` renders it.
    pub fn to_json(&self) -> Value {
        let transport = match &self.transport {
            Some(t) => t.to_json(),
            None => json!({"method": "websocket", "session_id": ""}),
        };
        json!({"id": self.id, "status": self.status, "transport": transport})
    }
}

/// A snapshot of one EventSub WebSocket session.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionInfo {
    /// Session id (as sent in the welcome).
    pub id: String,
    /// The socket is still open.
    pub connected: bool,
    /// The welcome was sent (false while a held reconnect waits).
    pub welcomed: bool,
    /// `keepalive_timeout_seconds` announced in the welcome.
    pub keepalive_timeout_seconds: u64,
    /// Ids of enabled WebSocket subscriptions bound to this session.
    pub subscription_ids: Vec<String>,
    /// `(conduit_id, shard_id)` if the session is a conduit shard.
    pub conduit_shard: Option<(String, String)>,
    /// The reconnect URL, once `session_reconnect` was sent.
    pub reconnect_url: Option<String>,
    /// The session this one replaced via a reconnect URL.
    pub reconnected_from: Option<String>,
    /// Close code, once the socket closed.
    pub close_code: Option<u16>,
}
