//! Chat against the hermetic fake Twitch: the original's chat sockets
//! (`/ws/irc-messages/`, `/ws/chat-bots/<login>/`) fed by EventSub chat
//! events, and sending over those sockets and `POST /api/v1/irc` through
//! Helix `POST /chat/messages`, with Twitch's echo, drops, limits and
//! refusals.

mod common;

use std::time::Duration;

use common::{authorize, Client, Frame, TestRelay};
use futures_util::SinkExt;
use serde_json::{json, Value};
use tau_fake_twitch::FakeTwitch;
use tau_relay::{
    access::{Grant, Role},
    chat::queue::Limits,
};
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(10);
/// The five chat types with an IRC form.
const CHAT_TYPES: [&str; 5] = [
    "channel.chat.message",
    "channel.chat.notification",
    "channel.chat.message_delete",
    "channel.chat.clear",
    "channel.chat.clear_user_messages",
];

fn chat_types() -> Vec<(String, String)> {
    CHAT_TYPES
        .iter()
        .map(|t| (t.to_string(), "1".to_string()))
        .collect()
}

/// A relay reading chat from `fake`, authorized, its subscriptions made.
async fn chat_relay(fake: &FakeTwitch) -> TestRelay {
    let relay = TestRelay::start_twitch(fake, |c| c.eventsub_types = chat_types()).await;
    assert_eq!(authorize(&relay).await.status(), 200);
    fake.wait_for_sessions(WAIT, |s| {
        s.iter()
            .any(|s| s.connected && s.subscription_ids.len() >= CHAT_TYPES.len())
    })
    .await
    .expect("chat subscriptions made");
    relay
}

/// Opens `path` on the relay and sends `{"token": token}`.
async fn socket(relay: &TestRelay, path: &str, token: &str) -> Client {
    let url = format!("{}{path}", relay.base.replacen("http", "ws", 1));
    let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    ws.send(Message::Text(json!({ "token": token }).to_string().into()))
        .await
        .unwrap();
    Client { ws }
}

/// The next JSON frame that is not a keep-alive.
async fn frame(client: &mut Client) -> Value {
    loop {
        let (value, _) = client.event().await;
        if value != json!({"event": "keep_alive"}) {
            return value;
        }
    }
}

async fn send(client: &mut Client, frame: Value) {
    client
        .ws
        .send(Message::Text(frame.to_string().into()))
        .await
        .unwrap();
}

async fn post_irc(relay: &TestRelay, body: Value) -> (u16, Value) {
    let response = relay
        .http
        .post(format!("{}/api/v1/irc", relay.base))
        .header("Authorization", format!("Token {}", relay.token))
        .json(&body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn token_of(relay: &TestRelay, role: Role) -> (String, String) {
    let created = relay
        .state
        .store
        .create_token(
            &format!("{role}-{}", uuid::Uuid::new_v4()),
            &Grant::role(role),
        )
        .await
        .unwrap();
    (created.token, created.record.id)
}

#[tokio::test]
async fn a_viewers_message_arrives_in_the_originals_frame_on_every_chat_socket() {
    let fake = FakeTwitch::start().await;
    let relay = chat_relay(&fake).await;
    let mut irc = socket(&relay, "/ws/irc-messages/", &relay.token).await;
    let mut bot = socket(&relay, "/ws/chat-bots/Cooler_User/", &relay.token).await;
    let mut events = relay.client(json!({})).await;
    relay.wait_clients(3).await;

    let mut event = FakeTwitch::chat_message_event("7734", "viewer", "hé Kappa there");
    event["message"]["fragments"] = json!([
        {"type": "text", "text": "hé ", "cheermote": null, "emote": null, "mention": null},
        {"type": "emote", "text": "Kappa", "cheermote": null, "mention": null,
         "emote": {"id": "25", "emote_set_id": "0", "owner_id": "0", "format": ["static"]}},
        {"type": "text", "text": " there", "cheermote": null, "emote": null, "mention": null}
    ]);
    event["badges"] = json!([
        {"set_id": "moderator", "id": "1", "info": ""},
        {"set_id": "subscriber", "id": "12", "info": "14"}
    ]);
    fake.send_chat_event("channel.chat.message", event.clone())
        .await
        .unwrap();

    let got = frame(&mut irc).await;
    let keys: Vec<&str> = got
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys.len(), 4, "{got}");
    assert_eq!(got["irc_username"], FakeTwitch::BROADCASTER_LOGIN);
    assert_eq!(got["event_type"], "channel-chat-message");
    assert_eq!(got["event_data"], event, "the EventSub event verbatim");
    let data = &got["data"];
    assert_eq!(data["command"], "PRIVMSG");
    assert_eq!(data["prefix"], ":viewer!viewer@viewer.tmi.twitch.tv");
    assert_eq!(
        data["params"],
        json!(["PRIVMSG", "#cooler_user", ":hé Kappa there\r\n"])
    );
    assert_eq!(data["message-text"], "hé Kappa there");
    assert!(data["raw"]
        .as_str()
        .unwrap()
        .starts_with("@badge-info=subscriber/14;badges=moderator/1,subscriber/12;"));
    let tags = &data["tags"];
    assert_eq!(tags["emotes"], json!([{"id": "25", "positions": [[3, 7]]}]));
    assert_eq!(tags["display-name"], "viewer");
    assert_eq!(tags["mod"], "1");
    assert_eq!(tags["subscriber"], "1");
    assert_eq!(tags["user-type"], "mod");
    assert_eq!(tags["room-id"], FakeTwitch::BROADCASTER_ID);
    assert_eq!(tags["user-id"], "7734");
    assert_eq!(tags["id"], event["message_id"]);
    assert!(
        tags["tmi-sent-ts"]
            .as_str()
            .unwrap()
            .parse::<i64>()
            .unwrap()
            > 1_600_000_000_000
    );

    assert_eq!(
        frame(&mut bot).await,
        got,
        "the bot socket gets the same frame"
    );
    let (tau, _) = events.event().await;
    common::assert_tau_frame(&tau);
    assert_eq!(tau["event_type"], "channel-chat-message");
    assert_eq!(tau["event_data"], event);

    // Moderation maps to the IRC commands clients knew.
    let mut delete = json!({
        "broadcaster_user_id": FakeTwitch::BROADCASTER_ID,
        "broadcaster_user_login": FakeTwitch::BROADCASTER_LOGIN,
        "broadcaster_user_name": FakeTwitch::BROADCASTER_NAME,
        "target_user_id": "7734", "target_user_login": "viewer", "target_user_name": "viewer",
    });
    delete["message_id"] = event["message_id"].clone();
    fake.send_chat_event("channel.chat.message_delete", delete)
        .await
        .unwrap();
    let got = frame(&mut irc).await;
    assert_eq!(got["event_type"], "channel-chat-message_delete");
    assert_eq!(got["data"]["command"], "CLEARMSG");
    assert_eq!(got["data"]["tags"]["target-msg-id"], event["message_id"]);
    assert_eq!(got["data"]["tags"]["login"], "viewer");
}

#[tokio::test]
async fn messages_sent_over_the_socket_and_rest_reach_twitch_and_come_back() {
    let fake = FakeTwitch::start().await;
    let relay = chat_relay(&fake).await;
    let scopes = fake
        .token_scopes(
            relay.stored_user_token().await["access_token"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    assert!(
        scopes.iter().any(|s| s == "user:write:chat"),
        "choosing chat types asks for user:write:chat: {scopes:?}"
    );
    let mut irc = socket(&relay, "/ws/irc-messages/", &relay.token).await;
    relay.wait_clients(1).await;

    send(
        &mut irc,
        json!({"irc_channel": "#Cooler_User", "message": "hello from a socket"}),
    )
    .await;
    let (mut answer, mut echo) = (None, None);
    while answer.is_none() || echo.is_none() {
        let got = frame(&mut irc).await;
        match got["event"].as_str() {
            Some("chat_message_sent") => answer = Some(got),
            _ => echo = Some(got),
        }
    }
    let (answer, echo) = (answer.unwrap(), echo.unwrap());
    assert_eq!(answer["is_sent"], true, "{answer}");
    assert_eq!(answer["drop_reason"], Value::Null);
    assert_eq!(answer["irc_channel"], "cooler_user");
    assert_eq!(answer["irc_username"], "cooler_user");
    assert_eq!(echo["data"]["tags"]["id"], answer["message_id"]);
    assert_eq!(echo["data"]["message-text"], "hello from a socket");
    assert_eq!(echo["data"]["tags"]["badges"], "broadcaster/1");
    let sent = fake.sent_chat();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].broadcaster_id, FakeTwitch::BROADCASTER_ID);
    assert_eq!(sent[0].sender_id, FakeTwitch::BROADCASTER_ID);
    assert_eq!(sent[0].message, "hello from a socket");

    let (status, body) = post_irc(
        &relay,
        json!({"message": "hello from REST", "reply_parent_message_id": "parent-1"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["is_sent"], true);
    assert_eq!(body["irc_channel"], "cooler_user");
    assert_eq!(body["irc_username"], "cooler_user");
    let echo = frame(&mut irc).await;
    assert_eq!(echo["data"]["tags"]["id"], body["message_id"]);
    assert_eq!(echo["data"]["tags"]["reply-parent-msg-id"], "parent-1");
    assert_eq!(
        fake.sent_chat()[1].reply_parent_message_id.as_deref(),
        Some("parent-1")
    );

    fake.drop_next_chat("msg_duplicate", "This message is a duplicate.");
    let (status, body) = post_irc(&relay, json!({"message": "again"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["is_sent"], false);
    assert_eq!(
        body["drop_reason"],
        json!({"code": "msg_duplicate", "message": "This message is a duplicate."})
    );

    let senders: Value = relay
        .get("/api/v1/chat/senders")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        senders,
        json!([{"login": "cooler_user", "user_id": FakeTwitch::BROADCASTER_ID,
                "display_name": FakeTwitch::BROADCASTER_NAME, "kind": "broadcaster",
                "can_send": true, "reason": null}])
    );
}

#[tokio::test]
async fn bad_sends_are_refused_before_twitch_sees_them() {
    let fake = FakeTwitch::start().await;
    let relay = chat_relay(&fake).await;
    let cases = [
        (json!({"message": "a".repeat(501)}), 400, "at most 500"),
        (json!({"message": "  "}), 400, "empty"),
        (json!({"irc_channel": "#x"}), 400, "message is required"),
        (
            json!({"irc_username": "tau_bot", "data": {"command": "PRIVMSG"}}),
            400,
            "EventSub",
        ),
        (
            json!({"message": "hi", "irc_channel": "not a login"}),
            400,
            "not a Twitch login",
        ),
        (
            json!({"message": "hi", "irc_username": "nobody"}),
            404,
            "no chat bot named \"nobody\"",
        ),
        (
            json!({"message": "hi", "irc_channel": "#someone_else"}),
            404,
            "Twitch has no channel \"someone_else\"",
        ),
    ];
    for (body, status, words) in cases {
        let (got, answer) = post_irc(&relay, body.clone()).await;
        assert_eq!(got, status, "{body}: {answer}");
        let detail = answer["detail"].as_str().unwrap();
        assert!(detail.contains(words), "{body}: {detail}");
    }
    let response = relay.post("/api/v1/irc", "{").await;
    assert_eq!(response.status(), 400);
    assert!(fake.sent_chat().is_empty(), "Twitch saw none of them");
}

#[tokio::test]
async fn a_flood_waits_for_the_rate_limit_and_overflows_with_429() {
    let fake = FakeTwitch::start().await;
    let relay = chat_relay(&fake).await;
    relay.state.chat.set_limits(Limits {
        own_channel: 2,
        other_channel: 2,
        window: Duration::from_millis(1500),
        queue: 1,
    });
    let started = tokio::time::Instant::now();
    let posts = (0..4).map(|i| {
        let relay = relay.clone();
        async move { post_irc(&relay, json!({"message": format!("flood {i}")})).await }
    });
    let answers = futures_util::future::join_all(posts).await;
    let mut statuses: Vec<u16> = answers.iter().map(|(s, _)| *s).collect();
    statuses.sort();
    assert_eq!(statuses, [200, 200, 200, 429], "{answers:?}");
    let (_, refused) = answers.iter().find(|(s, _)| *s == 429).unwrap();
    let detail = refused["detail"].as_str().unwrap();
    assert!(
        detail.contains("cooler_user") && detail.contains("2 messages per 1s 500ms"),
        "names the sender and the limit: {detail}"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(1400),
        "the third waited for the window"
    );
    assert_eq!(fake.sent_chat().len(), 3);
}

#[tokio::test]
async fn chat_sockets_refuse_unknown_bots_tokens_and_overlay_sends() {
    let fake = FakeTwitch::start().await;
    let relay = chat_relay(&fake).await;

    let mut nobody = socket(&relay, "/ws/chat-bots/nobody/", &relay.token).await;
    assert_eq!(
        frame(&mut nobody).await,
        json!({"error": "no chat bot named \"nobody\""})
    );
    match nobody.next(5).await {
        Frame::Closed(Some((code, reason))) => {
            assert_eq!(code, 1008);
            assert_eq!(reason, "no chat bot named \"nobody\"");
        }
        other => panic!("expected a close: {other:?}"),
    }

    let mut stranger = socket(&relay, "/ws/irc-messages/", "not-a-token").await;
    assert_eq!(
        frame(&mut stranger).await,
        json!({"error": "the provided token does not match any users."})
    );

    let (overlay, overlay_id) = token_of(&relay, Role::Overlay).await;
    let mut reader = socket(&relay, "/ws/irc-messages/", &overlay).await;
    relay.wait_clients(1).await;
    send(
        &mut reader,
        json!({"irc_channel": "#cooler_user", "message": "hi"}),
    )
    .await;
    let refused = frame(&mut reader).await;
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("needs a bot token"),
        "{refused}"
    );
    send(&mut reader, json!("not an object")).await;
    assert!(frame(&mut reader).await["error"].is_string());
    assert!(fake.sent_chat().is_empty());

    // The overlay still reads chat, until its token is revoked.
    fake.send_chat_event(
        "channel.chat.message",
        FakeTwitch::chat_message_event("7", "viewer", "hello"),
    )
    .await
    .unwrap();
    assert_eq!(frame(&mut reader).await["data"]["message-text"], "hello");
    relay
        .state
        .store
        .revoke_token_id(&overlay_id)
        .await
        .unwrap();
    match reader.next(5).await {
        Frame::Closed(Some((code, _))) => assert_eq!(code, 1008),
        other => panic!("expected a close: {other:?}"),
    }
}

#[tokio::test]
async fn keep_alives_arrive_and_test_events_reach_chat_sockets() {
    let fake = FakeTwitch::start().await;
    let relay = TestRelay::start_twitch(&fake, |c| {
        c.eventsub_types = chat_types();
        c.timings.chat_keepalive = Duration::from_millis(200);
    })
    .await;
    let mut bot_reader = socket(&relay, "/ws/irc-messages/", &relay.token).await;
    relay.wait_clients(1).await;
    assert_eq!(bot_reader.event().await.0, json!({"event": "keep_alive"}));
    // Without Twitch connected, test events still show what clients get.
    let response = relay
        .post("/api/v1/twitch-events/channel-chat-message/test", "")
        .await;
    assert!(response.status().is_success(), "{}", response.status());
    let got = frame(&mut bot_reader).await;
    assert_eq!(got["data"]["command"], "PRIVMSG");
    assert_eq!(got["data"]["message-text"], "Hi chat");
}

#[tokio::test]
async fn sending_without_twitch_or_without_the_write_scope_says_what_to_do() {
    let fake = FakeTwitch::start().await;
    // Not connected yet.
    let relay = TestRelay::start_twitch(&fake, |_| {}).await;
    let (status, body) = post_irc(&relay, json!({"message": "hi"})).await;
    assert_eq!(status, 503, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("Setup"), "{body}");
    let senders: Value = relay
        .get("/api/v1/chat/senders")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(senders[0]["can_send"], false);
    assert_eq!(senders[0]["kind"], "broadcaster");
    let mut bot = socket(&relay, "/ws/chat-bots/cooler_user/", &relay.token).await;
    assert!(frame(&mut bot).await["error"]
        .as_str()
        .unwrap()
        .contains("not connected"));

    // Connected for the default types only: no chat scope was asked for.
    assert_eq!(authorize(&relay).await.status(), 200);
    let (status, body) = post_irc(&relay, json!({"message": "hi"})).await;
    assert_eq!(status, 503, "{body}");
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("user:write:chat") && detail.contains("Setup"),
        "{detail}"
    );
    let senders: Value = relay
        .get("/api/v1/chat/senders")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(senders[0]["login"], "cooler_user");
    assert_eq!(senders[0]["can_send"], false);
    assert!(senders[0]["reason"]
        .as_str()
        .unwrap()
        .contains("user:write:chat"));
    assert!(fake.sent_chat().is_empty());

    // Choosing a chat type makes the status ask for the write scope.
    let response = relay
        .http
        .put(format!("{}/api/v1/twitch/event-types", relay.base))
        .header("Authorization", format!("Token {}", relay.token))
        .json(&json!({"event_types": ["channel.chat.message"]}))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let status: Value = relay.get("/api/v1/status").await.json().await.unwrap();
    let missing = &status["twitch"]["user_token"]["scopes_missing"];
    assert!(
        missing
            .as_array()
            .unwrap()
            .contains(&json!("user:write:chat")),
        "{missing}"
    );
}
