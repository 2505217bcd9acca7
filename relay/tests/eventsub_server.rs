//! TAU as an EventSub WebSocket server: Twitch's protocol on `/eventsub/ws`
//! and the Helix-compatible subscription API, checked against the shapes
//! of Twitch's EventSub WebSocket and Helix references.

mod common;

use std::time::Duration;

use common::{Client, Frame, TestRelay};
use futures_util::SinkExt;
use serde_json::{json, Value};
use tau_relay::access::{Grant, Role};
use tokio_tungstenite::tungstenite::Message;

/// A relay whose unused-session window is short.
async fn relay() -> TestRelay {
    TestRelay::start_with(|c| c.timings.eventsub_unused = Duration::from_secs(2)).await
}

fn ws_url(relay: &TestRelay, query: &str) -> String {
    format!(
        "{}/eventsub/ws{query}",
        relay.base.replace("http://", "ws://")
    )
}

/// Connects and returns the client with its welcome message.
async fn connect(relay: &TestRelay, query: &str) -> (Client, Value) {
    let (ws, _) = tokio_tungstenite::connect_async(ws_url(relay, query))
        .await
        .unwrap();
    let mut client = Client { ws };
    let Frame::Json(welcome, _) = client.next(5).await else {
        panic!("no welcome")
    };
    (client, welcome)
}

async fn token(relay: &TestRelay, grant: Grant) -> (String, String) {
    let created = relay
        .state
        .store
        .create_token(&format!("t-{}", uuid::Uuid::new_v4()), &grant)
        .await
        .unwrap();
    (created.token, created.record.id)
}

async fn subscribe(
    relay: &TestRelay,
    token: &str,
    kind: &str,
    version: &str,
    condition: Value,
    session: &str,
) -> (u16, Value) {
    let response = relay
        .http
        .post(format!("{}/helix/eventsub/subscriptions", relay.base))
        .header("Authorization", format!("Bearer {token}"))
        .header("Client-Id", "any-client-id")
        .json(&json!({
            "type": kind,
            "version": version,
            "condition": condition,
            "transport": {"method": "websocket", "session_id": session},
        }))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn session_id(welcome: &Value) -> String {
    welcome["payload"]["session"]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The connected broadcaster's id, as `/oauth2/validate` names it (the
/// fake's broadcaster).
async fn validated_broadcaster(relay: &TestRelay) -> String {
    let validated: Value = relay
        .http
        .get(format!("{}/oauth2/validate", relay.base))
        .header("Authorization", format!("OAuth {}", relay.token))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        validated["login"],
        tau_fake_twitch::FakeTwitch::BROADCASTER_LOGIN
    );
    let broadcaster = validated["user_id"].as_str().unwrap().to_string();
    assert!(!broadcaster.is_empty());
    broadcaster
}

fn follow_condition(broadcaster: &str) -> Value {
    json!({"broadcaster_user_id": broadcaster, "moderator_user_id": broadcaster})
}

const FOLLOW: &str = r#"{"user_id":"1234","user_login":"cool_user","user_name":"Cool_User","broadcaster_user_id":"1337","broadcaster_user_login":"cooler_user","broadcaster_user_name":"Cooler_User","followed_at":"2020-07-15T18:16:11.17106713Z","extra":[1,2.50,"x"]}"#;

fn assert_twitch_error(body: &Value, status: u16, error: &str) {
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["error"], error, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
}

#[tokio::test]
async fn the_welcome_has_twitchs_shape_and_keepalive_window() {
    let relay = relay().await;
    let (_client, welcome) = connect(&relay, "?keepalive_timeout_seconds=30").await;
    let metadata = &welcome["metadata"];
    assert_eq!(metadata["message_type"], "session_welcome");
    assert!(metadata["message_id"].as_str().is_some());
    assert!(metadata["message_timestamp"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
    let session = &welcome["payload"]["session"];
    assert_eq!(session["status"], "connected");
    assert_eq!(session["keepalive_timeout_seconds"], 30);
    assert_eq!(session["reconnect_url"], Value::Null);
    assert!(session["connected_at"].as_str().is_some());
    assert!(!session_id(&welcome).is_empty());
    // Outside Twitch's 10..600: refused before the upgrade, in Twitch's shape.
    let refused = relay
        .http
        .get(format!(
            "{}/eventsub/ws?keepalive_timeout_seconds=5",
            relay.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
}

#[tokio::test]
async fn an_unused_session_closes_4003_and_a_keepalive_comes_inside_the_window() {
    let relay = relay().await;
    // Unused: the window is 2 s in this relay.
    let (mut client, _) = connect(&relay, "").await;
    match client.next(5).await {
        Frame::Closed(Some((code, reason))) => {
            assert_eq!(code, 4003);
            assert_eq!(reason, "connection unused");
        }
        other => panic!("expected 4003, got {other:?}"),
    }
    // Used: keepalives arrive before the 10 s window passes.
    let (mut client, welcome) = connect(&relay, "?keepalive_timeout_seconds=10").await;
    let (status, _) = subscribe(
        &relay,
        &relay.token,
        "channel.follow",
        "2",
        follow_condition("1337"),
        &session_id(&welcome),
    )
    .await;
    assert_eq!(status, 202);
    let start = std::time::Instant::now();
    let Frame::Json(keepalive, _) = client.next(10).await else {
        panic!("closed instead of a keepalive")
    };
    assert!(start.elapsed() < Duration::from_secs(10));
    assert_eq!(keepalive["metadata"]["message_type"], "session_keepalive");
    assert_eq!(keepalive["payload"], json!({}));
}

#[tokio::test]
async fn inbound_text_closes_4001() {
    let relay = relay().await;
    let (mut client, _) = connect(&relay, "").await;
    client.ws.send(Message::Text("hello".into())).await.unwrap();
    match client.next(5).await {
        Frame::Closed(Some((code, _))) => assert_eq!(code, 4001),
        other => panic!("expected 4001, got {other:?}"),
    }
}

#[tokio::test]
async fn subscribe_list_delete_with_twitchs_shapes_and_errors() {
    let relay = relay().await;
    let (_client, welcome) = connect(&relay, "").await;
    let session = session_id(&welcome);
    let (status, body) = subscribe(
        &relay,
        &relay.token,
        "channel.follow",
        "2",
        follow_condition("1337"),
        &session,
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let sub = &body["data"][0];
    assert_eq!(sub["status"], "enabled");
    assert_eq!(sub["type"], "channel.follow");
    assert_eq!(sub["version"], "2");
    assert_eq!(sub["condition"], follow_condition("1337"));
    assert_eq!(sub["transport"]["method"], "websocket");
    assert_eq!(sub["transport"]["session_id"], session.as_str());
    assert_eq!(sub["cost"], 0);
    assert!(sub["created_at"].as_str().is_some());
    assert_eq!(body["total"], 1);
    assert_eq!(body["total_cost"], 0);
    assert_eq!(body["max_total_cost"], 10);
    let id = sub["id"].as_str().unwrap().to_string();

    // Same type, version, condition and session: 409.
    let (status, body) = subscribe(
        &relay,
        &relay.token,
        "channel.follow",
        "2",
        follow_condition("1337"),
        &session,
    )
    .await;
    assert_eq!(status, 409);
    assert_twitch_error(&body, 409, "Conflict");
    // A session that does not exist: 400.
    let (status, body) = subscribe(
        &relay,
        &relay.token,
        "channel.follow",
        "2",
        follow_condition("1337"),
        "no-such-session",
    )
    .await;
    assert_eq!(status, 400);
    assert_twitch_error(&body, 400, "Bad Request");
    // An unknown type or version: 400.
    let (status, body) = subscribe(
        &relay,
        &relay.token,
        "channel.follow",
        "9",
        follow_condition("1337"),
        &session,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    // An overlay token limited to raids may not subscribe to follows: 403.
    let raids = Grant {
        role: Role::Overlay,
        event_types: Some(vec!["channel-raid".into()]),
    };
    let (overlay, _) = token(&relay, raids).await;
    let (status, body) = subscribe(
        &relay,
        &overlay,
        "channel.follow",
        "2",
        follow_condition("1337"),
        &session,
    )
    .await;
    assert_eq!(status, 403);
    assert_twitch_error(&body, 403, "Forbidden");
    // A bot token may not widen the relay's types (channel.ban is not received).
    let (bot, _) = token(&relay, Grant::role(Role::Bot)).await;
    let (status, body) = subscribe(
        &relay,
        &bot,
        "channel.ban",
        "1",
        json!({"broadcaster_user_id": "1337"}),
        &session,
    )
    .await;
    assert_eq!(status, 403);
    assert!(
        body["message"].as_str().unwrap().contains("admin"),
        "{body}"
    );
    // An admin may, but not without a connected Twitch account.
    let (status, body) = subscribe(
        &relay,
        &relay.token,
        "channel.ban",
        "1",
        json!({"broadcaster_user_id": "1337"}),
        &session,
    )
    .await;
    assert_eq!(status, 403);
    assert!(
        body["message"].as_str().unwrap().contains("not connected"),
        "{body}"
    );

    // The list: Twitch's shape, filters.
    let list = |query: &'static str| {
        let relay = relay.clone();
        async move {
            relay
                .http
                .get(format!(
                    "{}/helix/eventsub/subscriptions{query}",
                    relay.base
                ))
                .header("Authorization", format!("Bearer {}", relay.token))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let all = list("").await;
    assert_eq!(all["total"], 1);
    assert_eq!(all["data"][0]["id"], id.as_str());
    assert_eq!(all["pagination"], json!({}));
    assert_eq!(all["max_total_cost"], 10);
    assert_eq!(list("?type=channel.cheer").await["data"], json!([]));
    assert_eq!(list("?user_id=1337").await["data"][0]["id"], id.as_str());
    // The bot token sees none of the admin's.
    let bots = relay
        .http
        .get(format!("{}/helix/eventsub/subscriptions", relay.base))
        .header("Authorization", format!("Bearer {bot}"))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(bots["data"], json!([]));

    // Delete: 204, then 404.
    let delete = |id: String| {
        let relay = relay.clone();
        async move {
            let response = relay
                .http
                .delete(format!(
                    "{}/helix/eventsub/subscriptions?id={id}",
                    relay.base
                ))
                .header("Authorization", format!("Bearer {}", relay.token))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    assert_eq!(delete(id.clone()).await.0, 204);
    let (status, body) = delete(id).await;
    assert_eq!(status, 404);
    assert_twitch_error(&body, 404, "Not Found");
    assert_eq!(list("").await["total"], 0);
}

#[tokio::test]
async fn webhook_events_arrive_as_notifications_for_matching_conditions() {
    let relay = relay().await;
    let (mut client, welcome) = connect(&relay, "").await;
    let session = session_id(&welcome);
    let (_, body) = subscribe(
        &relay,
        &relay.token,
        "channel.follow",
        "2",
        follow_condition("1337"),
        &session,
    )
    .await;
    let sub = body["data"][0].clone();
    // Another broadcaster's follow is not this subscription's.
    let other = FOLLOW.replace(
        r#""broadcaster_user_id":"1337""#,
        r#""broadcaster_user_id":"999""#,
    );
    assert_eq!(
        relay
            .notify("msg-other", "channel.follow", "2", &other)
            .await
            .as_u16(),
        204
    );
    assert_eq!(
        relay
            .notify("msg-follow", "channel.follow", "2", FOLLOW)
            .await
            .as_u16(),
        204
    );
    let (notification, text) = loop {
        match client.next(5).await {
            Frame::Json(v, text) if v["metadata"]["message_type"] == "notification" => {
                break (v, text)
            }
            Frame::Json(_, _) => continue,
            Frame::Closed(close) => panic!("closed: {close:?}"),
        }
    };
    let metadata = &notification["metadata"];
    assert_eq!(metadata["message_id"], "msg-follow");
    assert_eq!(metadata["subscription_type"], "channel.follow");
    assert_eq!(metadata["subscription_version"], "2");
    assert!(metadata["message_timestamp"].as_str().is_some());
    assert_eq!(notification["payload"]["subscription"], sub);
    // The event object, byte for byte.
    assert!(text.contains(&format!(r#""event":{FOLLOW}"#)), "{text}");
    // Nothing else came (the other broadcaster's follow was filtered).
    assert!(client.quiet_for(500).await);
}

#[tokio::test]
async fn a_revoked_token_revokes_the_subscriptions_and_closes_the_session() {
    let relay = relay().await;
    let (bot, bot_id) = token(&relay, Grant::role(Role::Bot)).await;
    let (mut client, welcome) = connect(&relay, "").await;
    let (status, _) = subscribe(
        &relay,
        &bot,
        "channel.cheer",
        "1",
        json!({"broadcaster_user_id": "1337"}),
        &session_id(&welcome),
    )
    .await;
    assert_eq!(status, 202);
    // Another token may not add to a session the bot token owns.
    let (status, body) = subscribe(
        &relay,
        &relay.token,
        "channel.follow",
        "2",
        follow_condition("1337"),
        &session_id(&welcome),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    relay.state.store.revoke_token_id(&bot_id).await.unwrap();
    relay.state.token_watch.refresh().await;
    let Frame::Json(revocation, _) = client.next(5).await else {
        panic!("closed without a revocation")
    };
    assert_eq!(revocation["metadata"]["message_type"], "revocation");
    assert_eq!(
        revocation["payload"]["subscription"]["status"],
        "authorization_revoked"
    );
    match client.next(5).await {
        Frame::Closed(Some((code, _))) => assert_eq!(code, 4000),
        other => panic!("expected a close, got {other:?}"),
    }
}

#[tokio::test]
async fn validate_answers_in_twitchs_shape() {
    let relay = relay().await;
    let validate = |header: Option<String>| {
        let relay = relay.clone();
        async move {
            let mut request = relay.http.get(format!("{}/oauth2/validate", relay.base));
            if let Some(header) = header {
                request = request.header("Authorization", header);
            }
            let response = request.send().await.unwrap();
            (
                response.status().as_u16(),
                response.json::<Value>().await.unwrap(),
            )
        }
    };
    let (status, body) = validate(Some(format!("OAuth {}", relay.token))).await;
    assert_eq!(status, 200);
    for field in ["client_id", "login", "user_id"] {
        assert!(body[field].is_string(), "{field}: {body}");
    }
    assert!(body["scopes"]
        .as_array()
        .unwrap()
        .contains(&json!("moderator:read:followers")));
    assert!(body["expires_in"].as_u64().unwrap() > 3600);
    let (status, body) = validate(Some("OAuth not-a-token".into())).await;
    assert_eq!(status, 401);
    assert_eq!(
        body,
        json!({"status": 401, "message": "invalid access token"})
    );
}

#[tokio::test]
async fn a_draining_relay_hands_the_session_over_and_nothing_is_lost() {
    let relay = relay().await;
    let (mut client, welcome) = connect(&relay, "").await;
    let (_, body) = subscribe(
        &relay,
        &relay.token,
        "channel.follow",
        "2",
        follow_condition("1337"),
        &session_id(&welcome),
    )
    .await;
    let sub_id = body["data"][0]["id"].clone();
    // A successor relay on the same store (as in a rolling restart).
    let successor = TestRelay::start_on(
        tau_relay::config::Config::for_tests(),
        relay.state.store.clone(),
    )
    .await;
    relay.state.shutdown.cancel();
    let Frame::Json(reconnect, _) = client.next(5).await else {
        panic!("closed without session_reconnect")
    };
    assert_eq!(reconnect["metadata"]["message_type"], "session_reconnect");
    let url = reconnect["payload"]["session"]["reconnect_url"]
        .as_str()
        .unwrap()
        .to_string();
    // The old relay's public URL is not reachable now: follow its path on
    // the successor, as a load balancer would.
    let path = &url[url.find("/eventsub/ws").unwrap()..];
    // An event stored while the client moves over.
    assert_eq!(
        successor
            .notify("msg-during-handover", "channel.follow", "2", FOLLOW)
            .await
            .as_u16(),
        204
    );
    let (mut moved, welcome) = connect(&successor, &path["/eventsub/ws".len()..]).await;
    assert_eq!(welcome["metadata"]["message_type"], "session_welcome");
    let Frame::Json(notification, _) = moved.next(5).await else {
        panic!("closed")
    };
    assert_eq!(
        notification["metadata"]["message_id"],
        "msg-during-handover"
    );
    // Same subscription id: the library finds its callback.
    assert_eq!(notification["payload"]["subscription"]["id"], sub_id);
    // The handover id is used once.
    let (ws, _) =
        tokio_tungstenite::connect_async(ws_url(&successor, &path["/eventsub/ws".len()..]))
            .await
            .unwrap();
    let mut again = Client { ws };
    match again.next(5).await {
        Frame::Closed(Some((code, _))) => assert_eq!(code, 4007),
        other => panic!("expected 4007, got {other:?}"),
    }
}

/// With Twitch connected (the fake): an admin's subscription to a type TAU
/// does not receive adds it to the relay's types when the authorization
/// covers its scopes (the relay resubscribes at Twitch), and events from
/// Twitch's EventSub socket reach the session; a type whose scope is
/// missing is refused naming the scope.
#[tokio::test]
async fn an_admin_widens_the_relays_types_within_the_authorization() {
    use tau_fake_twitch::FakeTwitch;
    let fake = FakeTwitch::start().await;
    let relay = TestRelay::start_twitch(&fake, |c| {
        c.eventsub_types = vec![("channel.follow".into(), "2".into())]
    })
    .await;
    assert_eq!(common::authorize(&relay).await.status(), 200);
    let wait = Duration::from_secs(15);
    fake.wait_for_sessions(wait, |s| {
        s.iter()
            .any(|s| s.connected && !s.subscription_ids.is_empty())
    })
    .await
    .expect("the relay subscribed at Twitch");

    let broadcaster = validated_broadcaster(&relay).await;

    let (mut client, welcome) = connect(&relay, "").await;
    let session = session_id(&welcome);
    let condition = json!({ "broadcaster_user_id": broadcaster });
    // bits:read was not granted (only the follow's scope was asked for).
    let (status, body) = subscribe(
        &relay,
        &relay.token,
        "channel.cheer",
        "1",
        condition.clone(),
        &session,
    )
    .await;
    assert_eq!(status, 403);
    assert!(
        body["message"].as_str().unwrap().contains("bits:read"),
        "{body}"
    );
    // stream.online needs no scope: added, and TAU subscribes at Twitch.
    let (status, body) = subscribe(
        &relay,
        &relay.token,
        "stream.online",
        "1",
        condition,
        &session,
    )
    .await;
    assert_eq!(status, 202, "{body}");
    assert!(relay
        .state
        .twitch
        .event_types
        .current()
        .await
        .contains(&("stream.online".to_string(), "1".to_string())));
    let twitch_session = fake
        .wait_for_sessions(wait, |s| {
            s.iter()
                .any(|s| s.connected && s.subscription_ids.len() >= 2)
        })
        .await
        .expect("the relay resubscribed with stream.online")
        .into_iter()
        .rev()
        .find(|s| s.connected && s.subscription_ids.len() >= 2)
        .unwrap();
    let event = json!({"id": "9001", "broadcaster_user_id": broadcaster, "broadcaster_user_login": "x",
        "broadcaster_user_name": "X", "type": "live", "started_at": "2026-01-01T00:00:00Z"});
    let message_id = fake
        .send_notification(&twitch_session.id, "stream.online", "1", event.clone())
        .await
        .unwrap();
    let notification = loop {
        match client.next(10).await {
            Frame::Json(v, _) if v["metadata"]["message_type"] == "notification" => break v,
            Frame::Json(_, _) => continue,
            Frame::Closed(close) => panic!("closed: {close:?}"),
        }
    };
    assert_eq!(notification["metadata"]["message_id"], message_id.as_str());
    assert_eq!(
        notification["metadata"]["subscription_type"],
        "stream.online"
    );
    assert_eq!(notification["payload"]["event"], event);
}

/// With Twitch connected, a condition naming another channel (not the
/// broadcaster, no chat bot there) would subscribe to silence: refused
/// 403 in Twitch's shape, naming the channels TAU receives; the
/// broadcaster's own channel is accepted.
#[tokio::test]
async fn a_condition_for_a_channel_tau_receives_nothing_from_is_refused() {
    use tau_fake_twitch::FakeTwitch;
    let fake = FakeTwitch::start().await;
    let relay = TestRelay::start_twitch(&fake, |c| {
        c.eventsub_types = vec![("channel.follow".into(), "2".into())]
    })
    .await;
    assert_eq!(common::authorize(&relay).await.status(), 200);
    let broadcaster = validated_broadcaster(&relay).await;
    let (_client, welcome) = connect(&relay, "").await;
    let session = session_id(&welcome);

    let (status, body) = subscribe(
        &relay,
        &relay.token,
        "channel.follow",
        "2",
        follow_condition("999"),
        &session,
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"], "Forbidden");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("proper authorization"), "{message}");
    assert!(
        message.contains(&broadcaster) && message.contains("999"),
        "{message}"
    );

    let (status, body) = subscribe(
        &relay,
        &relay.token,
        "channel.follow",
        "2",
        follow_condition(&broadcaster),
        &session,
    )
    .await;
    assert_eq!(status, 202, "{body}");
}

/// Twitch's `Ratelimit-*` headers on every Helix answer, errors included:
/// twurple paces its calls by them and, without them, never sends a
/// second concurrent request.
#[tokio::test]
async fn helix_answers_carry_twitchs_rate_limit_headers() {
    let relay = relay().await;
    let (_client, welcome) = connect(&relay, "").await;
    let session = session_id(&welcome);
    let url = format!("{}/helix/eventsub/subscriptions", relay.base);
    let auth = format!("Bearer {}", relay.token);
    let check = |response: &reqwest::Response, what: &str| {
        let header = |name: &str| -> i64 {
            response
                .headers()
                .get(name)
                .unwrap_or_else(|| panic!("{what}: no {name}"))
                .to_str()
                .unwrap()
                .parse()
                .unwrap()
        };
        assert_eq!(header("ratelimit-limit"), 800, "{what}");
        assert_eq!(header("ratelimit-remaining"), 800, "{what}");
        let now = chrono::Utc::now().timestamp();
        let reset = header("ratelimit-reset");
        assert!(
            (now..=now + 61).contains(&reset),
            "{what}: reset {reset}, now {now}"
        );
    };
    let body = json!({
        "type": "channel.follow",
        "version": "2",
        "condition": follow_condition("1337"),
        "transport": {"method": "websocket", "session_id": session},
    });
    // Two at once, as twurple sends them: both answered, both with headers.
    let post = || {
        relay
            .http
            .post(&url)
            .header("Authorization", &auth)
            .json(&body)
            .send()
    };
    let (first, second) = tokio::join!(post(), post());
    let (first, second) = (first.unwrap(), second.unwrap());
    let mut statuses = [first.status().as_u16(), second.status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [202, 409]);
    check(&first, "POST");
    check(&second, "POST");
    let id = if first.status() == 202 { first } else { second }
        .json::<Value>()
        .await
        .unwrap()["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let list = relay
        .http
        .get(&url)
        .header("Authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), 200);
    check(&list, "GET");
    let bad = relay
        .http
        .delete(&url)
        .header("Authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400, "DELETE without an id");
    check(&bad, "DELETE 400");
    let gone = relay
        .http
        .delete(format!("{url}?id={id}"))
        .header("Authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 204);
    check(&gone, "DELETE");
}

/// TAU's resume beyond Twitch: a client that simply lost its socket
/// reconnects with `?resume=<its old session id>` and gets its
/// subscriptions back (same ids) and the events stored while it was
/// away, not older history nor what it already had; once only.
#[tokio::test]
async fn a_disconnected_session_resumes_with_its_subscriptions_and_what_it_missed() {
    let relay = relay().await;
    // Stored before the session existed: never part of its catch-up.
    assert_eq!(
        relay
            .notify("msg-before", "channel.follow", "2", FOLLOW)
            .await
            .as_u16(),
        204
    );
    let (mut client, welcome) = connect(&relay, "").await;
    let old_session = session_id(&welcome);
    let (status, body) = subscribe(
        &relay,
        &relay.token,
        "channel.follow",
        "2",
        follow_condition("1337"),
        &old_session,
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let sub_id = body["data"][0]["id"].clone();
    assert_eq!(
        relay
            .notify("msg-seen", "channel.follow", "2", FOLLOW)
            .await
            .as_u16(),
        204
    );
    let Frame::Json(seen, _) = client.next(5).await else {
        panic!("closed")
    };
    assert_eq!(seen["metadata"]["message_id"], "msg-seen");

    // A plain disconnect: the socket is dropped without a close frame.
    drop(client);
    let key = format!(
        "{}resume:{old_session}",
        tau_relay::eventsub_server::session::HANDOVER_PREFIX
    );
    for _ in 0..50 {
        if relay.state.store.setting(&key).await.unwrap().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        relay
            .notify("msg-missed", "channel.follow", "2", FOLLOW)
            .await
            .as_u16(),
        204
    );

    let (mut resumed, welcome) = connect(&relay, &format!("?resume={old_session}")).await;
    assert_eq!(welcome["metadata"]["message_type"], "session_welcome");
    let new_session = session_id(&welcome);
    assert_ne!(new_session, old_session);
    let Frame::Json(missed, _) = resumed.next(5).await else {
        panic!("closed")
    };
    assert_eq!(missed["metadata"]["message_id"], "msg-missed", "{missed}");
    assert_eq!(missed["payload"]["subscription"]["id"], sub_id);
    assert_eq!(
        missed["payload"]["subscription"]["transport"]["session_id"],
        new_session.as_str()
    );
    // Nothing older follows; live events keep coming on the resumed session.
    assert_eq!(
        relay
            .notify("msg-after", "channel.follow", "2", FOLLOW)
            .await
            .as_u16(),
        204
    );
    let Frame::Json(after, _) = resumed.next(5).await else {
        panic!("closed")
    };
    assert_eq!(after["metadata"]["message_id"], "msg-after", "{after}");
    // The subscription is listed on the new session.
    let list: Value = relay
        .http
        .get(format!("{}/helix/eventsub/subscriptions", relay.base))
        .header("Authorization", format!("Bearer {}", relay.token))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"][0]["id"], sub_id, "{list}");
    assert_eq!(
        list["data"][0]["transport"]["session_id"],
        new_session.as_str()
    );

    // Used once: the old id resumes nothing now.
    let (ws, _) =
        tokio_tungstenite::connect_async(ws_url(&relay, &format!("?resume={old_session}")))
            .await
            .unwrap();
    let mut again = Client { ws };
    match again.next(5).await {
        Frame::Closed(Some((code, _))) => assert_eq!(code, 4007),
        other => panic!("expected 4007, got {other:?}"),
    }

    // A session that saw no event before it dropped resumes from where it
    // began (the store's end then), not from the start of history.
    let (quiet, welcome) = connect(&relay, "").await;
    let quiet_session = session_id(&welcome);
    let (status, body) = subscribe(
        &relay,
        &relay.token,
        "channel.follow",
        "2",
        follow_condition("1337"),
        &quiet_session,
    )
    .await;
    assert_eq!(status, 202, "{body}");
    drop(quiet);
    let key = format!(
        "{}resume:{quiet_session}",
        tau_relay::eventsub_server::session::HANDOVER_PREFIX
    );
    for _ in 0..50 {
        if relay.state.store.setting(&key).await.unwrap().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (mut back, _) = connect(&relay, &format!("?resume={quiet_session}")).await;
    assert_eq!(
        relay
            .notify("msg-later", "channel.follow", "2", FOLLOW)
            .await
            .as_u16(),
        204
    );
    let Frame::Json(first, _) = back.next(5).await else {
        panic!("closed")
    };
    assert_eq!(first["metadata"]["message_id"], "msg-later", "{first}");
}
