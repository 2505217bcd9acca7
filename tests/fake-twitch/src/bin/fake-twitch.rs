//! The fake Twitch as a process, for tiers whose relays run elsewhere (pods
//! of the real-cluster tier, `.ci/cluster-tier.sh`).
//!
//! ```text
//! fake-twitch --listen 10.244.0.1:0 --control 127.0.0.1:0
//! ```
//!
//! Serves the fake (OAuth, Helix, EventSub WebSocket) on `--listen` and a
//! small control API on `--control` (keep it on loopback: it steers the
//! fake). Prints one line per listener once bound, `twitch http://A:P` and
//! `control http://A:P`, then serves until killed.
//!
//! Control API (JSON):
//! - `GET /sessions`: every EventSub WebSocket session, oldest first.
//! - `GET /subscriptions`: every subscription.
//! - `POST /notify` `{"type", "version", "event"}`: sends a notification on
//!   the newest connected session subscribed to that type; answers
//!   `{"message_id", "session_id"}`, or 404 when no session has it. With
//!   `"transport"`:
//!   - `"conduit"`: through the newest conduit holding an enabled
//!     subscription of that type, routed to a shard as Twitch does (the
//!     condition's shard, else the next enabled one); answers
//!     `{"message_id", "conduit_id", "shard_id", "session_id"}` once the
//!     frame is queued on that shard's session, 409 when no shard could
//!     take it;
//!   - `"webhook"`: a signed POST to the callback of the newest enabled
//!     webhook subscription of that type (with `"callback"`: of those
//!     delivering to that callback); `"message_id"` and `"retry"`
//!     resend an earlier message as Twitch retries one that was not
//!     acknowledged. Answers `{"message_id", "subscription_id", "status"}`
//!     (`status`: the callback's HTTP status; 2xx = acknowledged), 502 with
//!     `{"message_id", "error"}` when the callback could not be reached.
//! - `POST /webhook-routes` `{"host", "to"}`: deliver webhooks whose
//!   callback host is `host` to the base URL `to` (e.g. a Service's
//!   ClusterIP), as DNS and an ingress would; 204.
//! - `GET /requests`: `[{"method", "path", "status", "auth"}]` of every request served
//!   (`auth`: `none`, `app`, `user` or `invalid`).
//! - `POST /client-secret` `{"secret"}`: the token endpoint accepts only this
//!   client secret from now on (Twitch's "New Secret").
//! - `POST /expire-user-tokens`: every user access token answers 401 from
//!   now on, so the next use needs a refresh (which needs the client secret).
//! - `POST /eventsub-outage` `{"down", "code"}`: `"down": true` closes every
//!   connected EventSub WebSocket session with `code` (default 4006,
//!   network error) and refuses new connections with 503; `"down": false`
//!   accepts them again. Answers `{"closed": [session ids]}`.
//! - `POST /deny-authorization` `{"deny"}`: while true, `/oauth2/authorize`
//!   redirects back with `error=access_denied` (the user clicked Cancel); 204.
//! - `POST /users` `{"login", "id"}`: Twitch knows one more user (for
//!   `GET /helix/users`, e.g. a streamer to watch); 204.
//! - `POST /streams` `{"user_id", "live", "id"?, "title"?, "game_name"?,
//!   "viewer_count"?, "started_at"?, "listed"?}`: that user goes live (`GET
//!   /helix/streams` lists it, unless `"listed": false`, and its
//!   `stream.online` subscriptions are notified) or, with `"live": false`,
//!   offline; answers `{"message_ids"}`.
//! - `POST /list-stream` `{"user_id"}`: its unlisted live stream appears in
//!   `GET /helix/streams` (Twitch's list catching up); 204, 404 if not live.
//! - `POST /drop-next-chat` `{"code", "message"}`: the next
//!   `POST /helix/chat/messages` answers `is_sent: false` with that reason; 204.
//! - `POST /authorize-as` `{"login", "id"}`: `/oauth2/authorize` approves as
//!   that Twitch account (a chat bot, or a wrong account) instead of the
//!   broadcaster; `{"reset": true}` restores the broadcaster; 204.
//! - `POST /refuse-bot-chat` `{"channel_id", "refuse"}`: while true, only
//!   that channel's broadcaster may chat there or subscribe to its chat
//!   with a user token (bots get 403); 204.
//! - `POST /revoke-user` `{"id"}`: that user disconnects the app at
//!   twitch.tv: its access tokens answer 401, its refresh tokens are refused; 204.
//! - `POST /channel-bot` `{"channel_id", "granted": bool | null}`: whether
//!   that channel's broadcaster granted `channel:bot` (app-token chat, the
//!   Chat Bot badge); `null` returns to the default; 204.

use std::net::SocketAddr;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tau_fake_twitch::{FakeTwitch, Options, StreamInfo, Transport, WebhookOverrides};

fn arg(name: &str) -> Option<String> {
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == name {
            return args.next();
        }
    }
    None
}

async fn sessions(State(fake): State<FakeTwitch>) -> Json<Value> {
    let list: Vec<Value> = fake
        .sessions()
        .await
        .into_iter()
        .map(|s| {
            json!({
                "id": s.id,
                "connected": s.connected,
                "welcomed": s.welcomed,
                "subscription_ids": s.subscription_ids,
            })
        })
        .collect();
    Json(Value::Array(list))
}

async fn subscriptions(State(fake): State<FakeTwitch>) -> Json<Value> {
    let list: Vec<Value> = fake.subscriptions().iter().map(|s| s.to_json()).collect();
    Json(Value::Array(list))
}

async fn requests(State(fake): State<FakeTwitch>) -> Json<Value> {
    let list: Vec<Value> = fake
        .requests()
        .iter()
        .map(|r| {
            let auth = format!("{:?}", r.auth).to_ascii_lowercase();
            json!({"method": r.method, "path": r.path, "status": r.status, "auth": auth})
        })
        .collect();
    Json(Value::Array(list))
}

async fn notify(
    State(fake): State<FakeTwitch>,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let kind = body["type"].as_str().unwrap_or_default().to_string();
    let version = body["version"].as_str().unwrap_or("1").to_string();
    let event = body["event"].clone();
    match body["transport"].as_str().unwrap_or("websocket") {
        "websocket" => {}
        "conduit" => return notify_conduit(&fake, &kind, &version, event).await,
        "webhook" => return notify_webhook(&fake, &kind, &version, event, &body).await,
        other => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": format!("unknown transport {other:?}")})),
            )
        }
    }
    // The newest connected session holding an enabled subscription of that type.
    let subs = fake.subscriptions();
    let session = fake.sessions().await.into_iter().rev().find(|s| {
        s.connected
            && subs.iter().any(|sub| {
                sub.sub_type == kind
                    && sub.version == version
                    && sub.is_enabled()
                    && matches!(&sub.transport, Transport::WebSocket { session_id, .. } if *session_id == s.id)
            })
    });
    let Some(session) = session else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": format!("no connected session subscribed to {kind}@{version}")})),
        );
    };
    match fake
        .send_notification(&session.id, &kind, &version, event)
        .await
    {
        Ok(id) => (
            StatusCode::OK,
            Json(json!({"message_id": id, "session_id": session.id})),
        ),
        Err(err) => (
            StatusCode::CONFLICT,
            Json(json!({"error": err.to_string()})),
        ),
    }
}

/// Through the newest conduit with an enabled subscription of the type.
async fn notify_conduit(
    fake: &FakeTwitch,
    kind: &str,
    version: &str,
    event: Value,
) -> (StatusCode, Json<Value>) {
    let conduit = fake
        .subscriptions()
        .into_iter()
        .rev()
        .find_map(|s| match s.transport {
            Transport::Conduit { conduit_id }
                if s.sub_type == kind && s.version == version && s.is_enabled() =>
            {
                Some(conduit_id)
            }
            _ => None,
        });
    let Some(conduit_id) = conduit else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": format!("no conduit subscribed to {kind}@{version}")})),
        );
    };
    match fake
        .send_conduit_notification_traced(&conduit_id, kind, version, event)
        .await
    {
        Ok(sent) => (
            StatusCode::OK,
            Json(
                json!({"message_id": sent.message_id, "conduit_id": conduit_id,
                        "shard_id": sent.shard_id, "session_id": sent.session_id}),
            ),
        ),
        Err(err) => (
            StatusCode::CONFLICT,
            Json(json!({"error": err.to_string(), "conduit_id": conduit_id})),
        ),
    }
}

/// A signed POST to the newest enabled webhook subscription of the type.
async fn notify_webhook(
    fake: &FakeTwitch,
    kind: &str,
    version: &str,
    event: Value,
    body: &Value,
) -> (StatusCode, Json<Value>) {
    let wanted_callback = body["callback"].as_str();
    let sub = fake.subscriptions().into_iter().rev().find(|s| {
        s.sub_type == kind
            && s.version == version
            && s.is_enabled()
            && matches!(&s.transport, Transport::Webhook { callback, .. }
                if wanted_callback.is_none_or(|w| w == callback))
    });
    let Some(sub) = sub else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": format!("no enabled webhook subscription to {kind}@{version}")})),
        );
    };
    // A resend keeps the message id, as Twitch's retries do.
    let message_id = body["message_id"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let overrides = WebhookOverrides {
        message_id: Some(message_id.clone()),
        retry: body["retry"].as_u64().unwrap_or(0) as u32,
        ..WebhookOverrides::default()
    };
    match fake
        .post_webhook_notification_with(&sub.id, event, overrides)
        .await
    {
        Ok((id, status)) => (
            StatusCode::OK,
            Json(json!({"message_id": id, "subscription_id": sub.id, "status": status.as_u16()})),
        ),
        Err(err) => {
            // The whole chain: "delivery failed" alone says nothing.
            let mut error = err.to_string();
            let mut source = std::error::Error::source(&err);
            while let Some(cause) = source {
                error.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            (
                StatusCode::BAD_GATEWAY,
                Json(json!({"message_id": message_id, "error": error})),
            )
        }
    }
}

async fn webhook_routes(State(fake): State<FakeTwitch>, Json(body): Json<Value>) -> StatusCode {
    match (body["host"].as_str(), body["to"].as_str()) {
        (Some(host), Some(to)) if !host.is_empty() && to.starts_with("http") => {
            fake.route_webhooks(host, to);
            StatusCode::NO_CONTENT
        }
        _ => StatusCode::BAD_REQUEST,
    }
}

async fn client_secret(State(fake): State<FakeTwitch>, Json(body): Json<Value>) -> StatusCode {
    match body["secret"].as_str() {
        Some(secret) if !secret.is_empty() => {
            fake.rotate_client_secret(secret);
            StatusCode::NO_CONTENT
        }
        _ => StatusCode::BAD_REQUEST,
    }
}

async fn expire_user_tokens(State(fake): State<FakeTwitch>) -> StatusCode {
    fake.expire_user_tokens();
    StatusCode::NO_CONTENT
}

async fn eventsub_outage(
    State(fake): State<FakeTwitch>,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let Some(down) = body["down"].as_bool() else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "\"down\" must be true or false"})),
        );
    };
    let code = match body["code"].as_u64() {
        None => 4006,
        Some(code @ 4000..=4999) => code as u16,
        Some(_) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": "\"code\" must be 4000-4999"})),
            )
        }
    };
    let closed = fake.set_eventsub_outage(down, code).await;
    (StatusCode::OK, Json(json!({"closed": closed})))
}

async fn deny_authorization(State(fake): State<FakeTwitch>, Json(body): Json<Value>) -> StatusCode {
    match body["deny"].as_bool() {
        Some(deny) => {
            fake.set_deny_authorization(deny);
            StatusCode::NO_CONTENT
        }
        None => StatusCode::BAD_REQUEST,
    }
}

async fn add_user(State(fake): State<FakeTwitch>, Json(body): Json<Value>) -> StatusCode {
    match (body["login"].as_str(), body["id"].as_str()) {
        (Some(login), Some(id)) if !login.is_empty() && !id.is_empty() => {
            fake.add_user(login, id);
            StatusCode::NO_CONTENT
        }
        _ => StatusCode::BAD_REQUEST,
    }
}

async fn stream(
    State(fake): State<FakeTwitch>,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let (Some(user_id), Some(live)) = (body["user_id"].as_str(), body["live"].as_bool()) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "\"user_id\" and \"live\" are required"})),
        );
    };
    let sent = if live {
        let text = |k: &str, default: &str| body[k].as_str().unwrap_or(default).to_string();
        let mut info = StreamInfo::new(
            &text("id", &uuid::Uuid::new_v4().simple().to_string()),
            &text("title", "A stream"),
        );
        info.game_name = text("game_name", &info.game_name);
        info.viewer_count = body["viewer_count"].as_u64().unwrap_or(info.viewer_count);
        info.started_at = body["started_at"].as_str().map(str::to_string);
        info.listed = body["listed"].as_bool().unwrap_or(true);
        fake.go_live(user_id, info).await
    } else {
        fake.go_offline(user_id).await
    };
    match sent {
        Ok(ids) => (StatusCode::OK, Json(json!({"message_ids": ids}))),
        Err(err) => (
            StatusCode::BAD_GATEWAY,
            Json(json!({"error": err.to_string()})),
        ),
    }
}

async fn drop_next_chat(State(fake): State<FakeTwitch>, Json(body): Json<Value>) -> StatusCode {
    match (body["code"].as_str(), body["message"].as_str()) {
        (Some(code), Some(message)) => {
            fake.drop_next_chat(code, message);
            StatusCode::NO_CONTENT
        }
        _ => StatusCode::BAD_REQUEST,
    }
}

async fn authorize_as(State(fake): State<FakeTwitch>, Json(body): Json<Value>) -> StatusCode {
    if body["reset"].as_bool() == Some(true) {
        fake.set_authorize_as(None);
        return StatusCode::NO_CONTENT;
    }
    match (body["id"].as_str(), body["login"].as_str()) {
        (Some(id), Some(login)) if !id.is_empty() && !login.is_empty() => {
            fake.set_authorize_as(Some((id, login)));
            StatusCode::NO_CONTENT
        }
        _ => StatusCode::BAD_REQUEST,
    }
}

async fn refuse_bot_chat(State(fake): State<FakeTwitch>, Json(body): Json<Value>) -> StatusCode {
    match (body["channel_id"].as_str(), body["refuse"].as_bool()) {
        (Some(channel), Some(refuse)) if !channel.is_empty() => {
            fake.refuse_bot_chat(channel, refuse);
            StatusCode::NO_CONTENT
        }
        _ => StatusCode::BAD_REQUEST,
    }
}

async fn list_stream(State(fake): State<FakeTwitch>, Json(body): Json<Value>) -> StatusCode {
    match body["user_id"].as_str() {
        Some(id) if fake.list_stream(id) => StatusCode::NO_CONTENT,
        _ => StatusCode::NOT_FOUND,
    }
}

async fn channel_bot(State(fake): State<FakeTwitch>, Json(body): Json<Value>) -> StatusCode {
    let granted = &body["granted"];
    match body["channel_id"].as_str() {
        Some(channel) if !channel.is_empty() && (granted.is_null() || granted.is_boolean()) => {
            fake.set_channel_bot(channel, granted.as_bool());
            StatusCode::NO_CONTENT
        }
        _ => StatusCode::BAD_REQUEST,
    }
}

async fn revoke_user(State(fake): State<FakeTwitch>, Json(body): Json<Value>) -> StatusCode {
    match body["id"].as_str() {
        Some(id) if !id.is_empty() => {
            fake.revoke_user(id);
            StatusCode::NO_CONTENT
        }
        _ => StatusCode::BAD_REQUEST,
    }
}

#[tokio::main]
async fn main() {
    let listen: SocketAddr = arg("--listen")
        .unwrap_or_else(|| "127.0.0.1:0".into())
        .parse()
        .expect("--listen ADDR:PORT");
    let control: SocketAddr = arg("--control")
        .unwrap_or_else(|| "127.0.0.1:0".into())
        .parse()
        .expect("--control ADDR:PORT");
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .unwrap_or_else(|e| panic!("bind {listen}: {e}"));
    let fake = FakeTwitch::serve_on(listener, Options::default());
    let control_listener = tokio::net::TcpListener::bind(control)
        .await
        .unwrap_or_else(|e| panic!("bind {control}: {e}"));
    let control_addr = control_listener.local_addr().expect("control addr");
    println!("twitch {}", fake.base_url());
    println!("control http://{control_addr}");
    let app = Router::new()
        .route("/sessions", get(sessions))
        .route("/subscriptions", get(subscriptions))
        .route("/requests", get(requests))
        .route("/notify", post(notify))
        .route("/webhook-routes", post(webhook_routes))
        .route("/client-secret", post(client_secret))
        .route("/expire-user-tokens", post(expire_user_tokens))
        .route("/eventsub-outage", post(eventsub_outage))
        .route("/deny-authorization", post(deny_authorization))
        .route("/users", post(add_user))
        .route("/streams", post(stream))
        .route("/drop-next-chat", post(drop_next_chat))
        .route("/authorize-as", post(authorize_as))
        .route("/refuse-bot-chat", post(refuse_bot_chat))
        .route("/revoke-user", post(revoke_user))
        .route("/list-stream", post(list_stream))
        .route("/channel-bot", post(channel_bot))
        .with_state(fake);
    axum::serve(control_listener, app)
        .await
        .expect("control server");
}
