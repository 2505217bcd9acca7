//! Chat bots against the hermetic fake Twitch: added through the real
//! OAuth flow (the fake's consent screen authorizes as the bot), listed
//! without tokens, put in channels, sending as themselves over REST and
//! their socket, refreshed, turned invalid when Twitch revokes them,
//! removed (revoked at Twitch), and followed live on
//! `/ws/chat-bots/status/`, also from another replica.

mod common;

use common::{authorize, oauth::no_redirects, Client, Frame, TestRelay};
use futures_util::SinkExt;
use serde_json::{json, Value};
use tau_fake_twitch::FakeTwitch;
use tau_relay::{
    access::{Grant, Role},
    secret::SecretKey,
    store::Store,
};
use tokio_tungstenite::tungstenite::Message;

const BOT_ID: &str = "9001";
const BOT_LOGIN: &str = "helper_bot";
const BOT_NAME: &str = "Helper_Bot";

/// A relay on `store` wired to `fake`, able to send chat, the broadcaster authorized.
async fn relay_on(fake: &FakeTwitch, store: Store, key: SecretKey) -> TestRelay {
    let relay = TestRelay::start_twitch_on(fake, store, key, |c| {
        c.eventsub_types = vec![("channel.chat.message".into(), "1".into())]
    })
    .await;
    relay
}

async fn relay(fake: &FakeTwitch) -> TestRelay {
    let relay = relay_on(fake, Store::in_memory().await, SecretKey::generate()).await;
    assert_eq!(authorize(&relay).await.status(), 200);
    relay
}

/// Walks the bot flow as a browser logged into Twitch as `(id, login)`:
/// the link (admin), Twitch's consent, the callback with the state cookie.
async fn add_bot(
    relay: &TestRelay,
    fake: &FakeTwitch,
    as_user: Option<(&str, &str)>,
) -> reqwest::Response {
    fake.set_authorize_as(as_user);
    let http = no_redirects();
    let link = http
        .get(format!("{}/api/v1/chat-bots/twitch-auth-link", relay.base))
        .header("Authorization", format!("Token {}", relay.token))
        .send()
        .await
        .unwrap();
    assert_eq!(link.status(), 200);
    let cookie = link.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("Path=/;"),
        "{cookie}"
    );
    let cookie = cookie.split(';').next().unwrap().to_string();
    let url = link.json::<Value>().await.unwrap()["url"]
        .as_str()
        .unwrap()
        .to_string();
    let parsed = url::Url::parse(&url).unwrap();
    let query: std::collections::HashMap<_, _> = parsed.query_pairs().into_owned().collect();
    assert_eq!(query["scope"], "user:read:chat user:write:chat user:bot");
    assert_eq!(query["force_verify"], "true");
    assert_eq!(
        query["redirect_uri"],
        format!("{}/twitch-callback/", relay.base),
        "the broadcaster flow's callback URL"
    );
    let consent = http.get(&url).send().await.unwrap();
    let back = consent.headers()["location"].to_str().unwrap().to_string();
    let response = http
        .get(&back)
        .header("Cookie", cookie)
        .send()
        .await
        .unwrap();
    fake.set_authorize_as(None);
    response
}

async fn add_helper_bot(relay: &TestRelay, fake: &FakeTwitch) {
    fake.add_user(BOT_NAME, BOT_ID);
    let response = add_bot(relay, fake, Some((BOT_ID, BOT_LOGIN))).await;
    assert_eq!(response.status(), 200);
    let page = response.text().await.unwrap();
    assert!(
        page.contains(&format!("The bot <b>{BOT_NAME}</b> is now authorized")),
        "{page}"
    );
    assert!(page.contains("href=\"/#/bots\""), "{page}");
}

async fn call(relay: &TestRelay, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    call_as(relay, &relay.token, method, path, body).await
}

async fn call_as(
    relay: &TestRelay,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = relay
        .http
        .request(method.parse().unwrap(), format!("{}{path}", relay.base))
        .header("Authorization", format!("Token {token}"));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn token_of(relay: &TestRelay, role: Role) -> String {
    relay
        .state
        .store
        .create_token(
            &format!("{role}-{}", uuid::Uuid::new_v4()),
            &Grant::role(role),
        )
        .await
        .unwrap()
        .token
}

/// The bot's stored token pair, opened with the relay's key: `(access, refresh)`.
async fn bot_tokens(relay: &TestRelay) -> (String, String) {
    let row = relay
        .state
        .store
        .chat_bot(BOT_LOGIN)
        .await
        .unwrap()
        .unwrap();
    let json: Value =
        serde_json::from_str(&relay.state.secret_key.open(&row.token).unwrap()).unwrap();
    (
        json["access_token"].as_str().unwrap().to_string(),
        json["refresh_token"].as_str().unwrap().to_string(),
    )
}

async fn socket(relay: &TestRelay, path: &str, token: &str) -> Client {
    let url = format!("{}{path}", relay.base.replacen("http", "ws", 1));
    let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    ws.send(Message::Text(json!({ "token": token }).to_string().into()))
        .await
        .unwrap();
    Client { ws }
}

/// The next frame that is not a keep-alive.
async fn frame(client: &mut Client) -> Value {
    loop {
        let (value, _) = client.event().await;
        if value != json!({"event": "keep_alive"}) {
            return value;
        }
    }
}

async fn send_as_bot(relay: &TestRelay, channel: &str, message: &str) -> (u16, Value) {
    call(
        relay,
        "POST",
        "/api/v1/irc",
        Some(json!({"irc_username": BOT_LOGIN, "irc_channel": channel, "message": message})),
    )
    .await
}

#[tokio::test]
async fn a_bot_is_added_through_twitch_listed_without_tokens_and_sends_as_itself() {
    let fake = FakeTwitch::start().await;
    let relay = relay(&fake).await;
    add_helper_bot(&relay, &fake).await;

    let (access, refresh) = bot_tokens(&relay).await;
    let row = relay
        .state
        .store
        .chat_bot(BOT_LOGIN)
        .await
        .unwrap()
        .unwrap();
    assert!(
        !row.token.contains(&access) && !row.token.contains(&refresh),
        "tokens are sealed at rest"
    );
    assert_eq!(fake.token_scopes(&access).unwrap().len(), 3);

    let (status, list) = call(&relay, "GET", "/api/v1/chat-bots", None).await;
    assert_eq!(status, 200);
    assert_eq!(list["next"], Value::Null);
    assert_eq!(list["previous"], Value::Null);
    let bot = &list["results"][0];
    assert_eq!(list["results"].as_array().unwrap().len(), 1);
    assert_eq!(bot["user_login"], BOT_LOGIN);
    assert_eq!(bot["user_name"], BOT_NAME);
    assert_eq!(bot["user_id"], BOT_ID);
    assert_eq!(bot["status"], "ready");
    assert_eq!(bot["connected"], true);
    assert_eq!(bot["reason"], Value::Null);
    assert_eq!(bot["channels"], json!([]));
    assert_eq!(
        bot["scopes"],
        json!(["user:read:chat", "user:write:chat", "user:bot"])
    );
    let text = list.to_string();
    assert!(
        !text.contains(&access) && !text.contains(&refresh) && !text.contains("token\""),
        "no token in {text}"
    );
    let id = bot["id"].as_str().unwrap().to_string();
    for key in [id.as_str(), BOT_LOGIN, "Helper_Bot"] {
        let (status, one) = call(&relay, "GET", &format!("/api/v1/chat-bots/{key}"), None).await;
        assert_eq!((status, &one), (200, bot), "{key}");
    }
    let (status, missing) = call(&relay, "GET", "/api/v1/chat-bots/nobody", None).await;
    assert_eq!(status, 404);
    assert_eq!(missing["detail"], "no chat bot named \"nobody\"");

    let (_, senders) = call(&relay, "GET", "/api/v1/chat/senders", None).await;
    let as_bot = senders
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "bot")
        .unwrap();
    assert_eq!(as_bot["login"], BOT_LOGIN);
    assert_eq!(as_bot["display_name"], BOT_NAME);
    assert_eq!(as_bot["can_send"], true);

    // Over REST: Twitch sees the bot's id as sender, in the broadcaster's channel.
    let (status, sent) = send_as_bot(&relay, "#cooler_user", "hi from the bot").await;
    assert_eq!(status, 200, "{sent}");
    assert_eq!(sent["is_sent"], true);
    assert_eq!(sent["irc_username"], BOT_LOGIN);
    let last = fake.sent_chat().pop().unwrap();
    assert_eq!(
        (last.sender_id.as_str(), last.broadcaster_id.as_str()),
        (BOT_ID, FakeTwitch::BROADCASTER_ID)
    );

    // Over its socket.
    let mut ws = socket(&relay, &format!("/ws/chat-bots/{BOT_LOGIN}/"), &relay.token).await;
    relay.wait_clients(1).await;
    ws.ws
        .send(Message::Text(
            json!({"irc_channel": "#cooler_user", "message": "and from its socket"})
                .to_string()
                .into(),
        ))
        .await
        .unwrap();
    let answer = loop {
        let value = frame(&mut ws).await;
        if value.get("event") == Some(&json!("chat_message_sent")) || value.get("error").is_some() {
            break value;
        }
    };
    assert_eq!(answer["is_sent"], true, "{answer}");
    assert_eq!(answer["irc_username"], BOT_LOGIN);
    let last = fake.sent_chat().pop().unwrap();
    assert_eq!(last.sender_id, BOT_ID);
    assert_eq!(last.message, "and from its socket");

    // Authorizing the same account again replaces its tokens, same bot.
    let again = add_bot(&relay, &fake, Some((BOT_ID, BOT_LOGIN))).await;
    assert_eq!(again.status(), 200);
    assert!(again.text().await.unwrap().contains("again"));
    let (_, list) = call(&relay, "GET", "/api/v1/chat-bots", None).await;
    assert_eq!(list["results"].as_array().unwrap().len(), 1);
    assert_eq!(list["results"][0]["id"], id.as_str());
    assert_ne!(bot_tokens(&relay).await.0, access, "new tokens");
}

#[tokio::test]
async fn the_broadcasters_own_account_is_refused_as_a_bot() {
    let fake = FakeTwitch::start().await;
    let relay = relay(&fake).await;
    let revokes_before = fake
        .requests()
        .iter()
        .filter(|r| r.path == "/oauth2/revoke")
        .count();
    let response = add_bot(&relay, &fake, None).await;
    assert_eq!(response.status(), 403);
    assert!(response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .starts_with("default-src 'none'"));
    let page = response.text().await.unwrap();
    assert!(page.contains("That is the broadcaster"), "{page}");
    assert!(page.contains("private browser window"), "{page}");
    assert!(page.contains("<b>cooler_user</b>"), "{page}");
    let (_, list) = call(&relay, "GET", "/api/v1/chat-bots", None).await;
    assert_eq!(list["results"], json!([]));
    let revokes = fake
        .requests()
        .iter()
        .filter(|r| r.path == "/oauth2/revoke")
        .count();
    assert_eq!(
        revokes,
        revokes_before + 1,
        "that authorization was revoked"
    );
    // The broadcaster's own authorization is untouched.
    let (status, _) = call(
        &relay,
        "POST",
        "/api/v1/irc",
        Some(json!({"message": "still here"})),
    )
    .await;
    assert_eq!(status, 200);

    // A used or foreign state is refused on the alias path too.
    let expired = no_redirects()
        .get(format!(
            "{}/api/v1/chat-bots/twitch-callback/?code=x&state=nope",
            relay.base
        ))
        .header("Cookie", "tau_oauth_state=nope")
        .send()
        .await
        .unwrap();
    assert_eq!(expired.status(), 403);
    assert!(expired.text().await.unwrap().contains("expired"));
}

#[tokio::test]
async fn channels_are_added_listed_refused_and_removed() {
    let fake = FakeTwitch::start().await;
    let relay = relay(&fake).await;
    add_helper_bot(&relay, &fake).await;
    fake.add_user("Other_Channel", "555");
    let bot_id = relay
        .state
        .store
        .chat_bot(BOT_LOGIN)
        .await
        .unwrap()
        .unwrap()
        .id;

    let join = |channel: &str, bot: &str| json!({"channel": channel, "chat_bot": bot});
    let (status, joined) = call(
        &relay,
        "POST",
        "/api/v1/chat-bots/channels",
        Some(join("#Other_Channel", BOT_LOGIN)),
    )
    .await;
    assert_eq!(status, 201, "{joined}");
    assert_eq!(joined["channel"], "#other_channel");
    assert_eq!(joined["chat_bot"], bot_id.as_str());
    assert_eq!(joined["status"], "joined");
    assert_eq!(joined["reason"], Value::Null);

    for (body, want, words) in [
        (
            join("other_channel", &bot_id),
            409,
            "already in #other_channel",
        ),
        (
            join("#other_channel", "nobody"),
            404,
            "no chat bot named \"nobody\"",
        ),
        (join("#no spaces", BOT_LOGIN), 400, "not a Twitch login"),
        (
            join("nobody_here", BOT_LOGIN),
            400,
            "Twitch has no channel \"nobody_here\"",
        ),
        (json!({"channel": "x"}), 400, "chat_bot"),
    ] {
        let (status, error) = call(
            &relay,
            "POST",
            "/api/v1/chat-bots/channels",
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, want, "{body}: {error}");
        assert!(error["detail"].as_str().unwrap().contains(words), "{error}");
    }
    let bot_token = token_of(&relay, Role::Bot).await;
    let (status, _) = call_as(
        &relay,
        &bot_token,
        "POST",
        "/api/v1/chat-bots/channels",
        Some(join("#cooler_user", BOT_LOGIN)),
    )
    .await;
    assert_eq!(status, 403, "changing channels takes an admin token");
    let (status, channels) = call_as(
        &relay,
        &bot_token,
        "GET",
        "/api/v1/chat-bots/channels",
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(channels, json!([joined.clone()]), "a plain array");
    let (_, bot) = call(
        &relay,
        "GET",
        &format!("/api/v1/chat-bots/{BOT_LOGIN}"),
        None,
    )
    .await;
    assert_eq!(bot["channels"], json!(["other_channel"]));

    // Twitch refuses the bot there: the words say why; the channel shows it.
    fake.refuse_bot_chat("555", true);
    let (status, error) = send_as_bot(&relay, "#other_channel", "may I?").await;
    assert_eq!(status, 403, "{error}");
    let detail = error["detail"].as_str().unwrap();
    assert!(
        detail.contains("helper_bot may not chat in #other_channel")
            && detail.contains("moderator")
            && detail.contains("channel:bot"),
        "{detail}"
    );
    let (_, channels) = call(&relay, "GET", "/api/v1/chat-bots/channels", None).await;
    assert_eq!(channels[0]["status"], "failed");
    assert!(channels[0]["reason"]
        .as_str()
        .unwrap()
        .contains("moderator"));
    fake.refuse_bot_chat("555", false);
    let (status, _) = send_as_bot(&relay, "#other_channel", "now?").await;
    assert_eq!(status, 200);
    let (_, channels) = call(&relay, "GET", "/api/v1/chat-bots/channels", None).await;
    assert_eq!(channels[0]["status"], "joined");

    let path = format!(
        "/api/v1/chat-bots/channels/{}",
        joined["id"].as_str().unwrap()
    );
    assert_eq!(call(&relay, "DELETE", &path, None).await.0, 204);
    assert_eq!(call(&relay, "DELETE", &path, None).await.0, 404);
    let (_, channels) = call(&relay, "GET", "/api/v1/chat-bots/channels", None).await;
    assert_eq!(channels, json!([]));
}

#[tokio::test]
async fn tokens_refresh_and_a_revoked_bot_turns_invalid_while_the_broadcaster_sends() {
    let fake = FakeTwitch::start().await;
    let relay = relay(&fake).await;
    add_helper_bot(&relay, &fake).await;

    // The bot's own token, not the app token (the badge path needs none).
    fake.set_channel_bot(FakeTwitch::BROADCASTER_ID, Some(false));
    // Twitch stops accepting the access token: one refresh, a new pair stored.
    let (access, refresh) = bot_tokens(&relay).await;
    fake.expire_access_token(&access);
    let (status, sent) = send_as_bot(&relay, "#cooler_user", "after a refresh").await;
    assert_eq!(status, 200, "{sent}");
    let (new_access, new_refresh) = bot_tokens(&relay).await;
    assert_ne!(new_access, access);
    assert_ne!(new_refresh, refresh, "the rotated refresh token is stored");
    assert_eq!(fake.sent_chat().pop().unwrap().sender_id, BOT_ID);

    // The bot disconnects TAU at twitch.tv: the refresh is refused.
    fake.revoke_user(BOT_ID);
    let (status, error) = send_as_bot(&relay, "#cooler_user", "still?").await;
    let words = format!("Twitch no longer accepts {BOT_NAME}'s authorization: add the bot again");
    assert_eq!(status, 503, "{error}");
    assert_eq!(error["detail"], words.as_str());
    let (_, bot) = call(
        &relay,
        "GET",
        &format!("/api/v1/chat-bots/{BOT_LOGIN}"),
        None,
    )
    .await;
    assert_eq!(bot["status"], "token_invalid");
    assert_eq!(bot["connected"], false);
    assert_eq!(bot["reason"], words.as_str());
    let (_, senders) = call(&relay, "GET", "/api/v1/chat/senders", None).await;
    let as_bot = senders
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "bot")
        .unwrap();
    assert_eq!(as_bot["can_send"], false);
    assert_eq!(as_bot["reason"], words.as_str());

    // The broadcaster is unaffected.
    let (status, sent) = call(
        &relay,
        "POST",
        "/api/v1/irc",
        Some(json!({"message": "I'm fine"})),
    )
    .await;
    assert_eq!(status, 200, "{sent}");
    assert_eq!(
        fake.sent_chat().pop().unwrap().sender_id,
        FakeTwitch::BROADCASTER_ID
    );
    // Authorizing the bot again makes it ready.
    assert_eq!(
        add_bot(&relay, &fake, Some((BOT_ID, BOT_LOGIN)))
            .await
            .status(),
        200
    );
    let (_, bot) = call(
        &relay,
        "GET",
        &format!("/api/v1/chat-bots/{BOT_LOGIN}"),
        None,
    )
    .await;
    assert_eq!(bot["status"], "ready");
    assert_eq!(send_as_bot(&relay, "#cooler_user", "back").await.0, 200);
}

#[tokio::test]
async fn the_hourly_validation_refreshes_a_rejected_token_and_marks_a_revoked_bot() {
    let fake = FakeTwitch::start().await;
    let relay = relay(&fake).await;
    add_helper_bot(&relay, &fake).await;
    let bots = &relay.state.chat_bots;

    let (access, _) = bot_tokens(&relay).await;
    bots.validate_all().await;
    assert_eq!(bot_tokens(&relay).await.0, access, "a valid token is kept");
    fake.expire_access_token(&access);
    bots.validate_all().await;
    let (refreshed, _) = bot_tokens(&relay).await;
    assert_ne!(refreshed, access, "Twitch's 401 made it refresh");
    assert!(fake.token_scopes(&refreshed).is_some());

    fake.revoke_user(BOT_ID);
    bots.validate_all().await;
    let bot = bots.get(BOT_LOGIN).await.unwrap().unwrap();
    assert_eq!(bot.status, tau_relay::chat_bots::BotStatus::TokenInvalid);
    assert!(bot.reason.unwrap().contains("add the bot again"));
    // The broadcaster's token was never touched.
    assert_eq!(
        relay.state.twitch.tokens.state(),
        tau_relay::twitch::tokens::UserTokenState::Valid
    );
}

#[tokio::test]
async fn removing_a_bot_revokes_it_closes_its_socket_and_every_replica_sees_it() {
    let fake = FakeTwitch::start().await;
    let store = Store::in_memory().await;
    let key = SecretKey::generate();
    let relay = relay_on(&fake, store.clone(), key.clone()).await;
    assert_eq!(authorize(&relay).await.status(), 200);
    // A second replica on the same store.
    let other = relay_on(&fake, store, key).await;
    let overlay = token_of(&relay, Role::Overlay).await;

    let mut refused = socket(&relay, "/ws/chat-bots/status/", "nope").await;
    assert_eq!(
        frame(&mut refused).await,
        json!({"error": "the provided token does not match any users."})
    );
    let mut here = socket(&relay, "/ws/chat-bots/status/", &overlay).await;
    let mut there = socket(&other, "/ws/chat-bots/status/", &overlay).await;
    relay.wait_clients(1).await;
    other.wait_clients(1).await;
    assert!(here.quiet_for(300).await, "no bots, no frames");

    add_helper_bot(&relay, &fake).await;
    for status in [&mut here, &mut there] {
        let created = frame(status).await;
        assert_eq!(created["event"], "Created", "{created}");
        assert_eq!(created["chatBot"]["user_login"], BOT_LOGIN);
        assert!(!created.to_string().contains("access_token"));
    }
    fake.add_user("Other_Channel", "555");
    let (status, _) = call(
        &other,
        "POST",
        "/api/v1/chat-bots/channels",
        Some(json!({"channel": "other_channel", "chat_bot": BOT_LOGIN})),
    )
    .await;
    assert_eq!(status, 201);
    for status in [&mut here, &mut there] {
        let updated = frame(status).await;
        assert_eq!(updated["event"], "Updated", "{updated}");
        assert_eq!(updated["chatBot"]["channels"], json!(["other_channel"]));
    }
    // A new status socket starts with the bots as they are.
    let mut late = socket(&other, "/ws/chat-bots/status/", &overlay).await;
    let first = frame(&mut late).await;
    assert_eq!(first["event"], "Updated");
    assert_eq!(first["chatBot"]["user_login"], BOT_LOGIN);

    let (access, _) = bot_tokens(&relay).await;
    let mut chat = socket(&other, &format!("/ws/chat-bots/{BOT_LOGIN}/"), &relay.token).await;
    other.wait_clients(3).await;
    let (status, _) = call(
        &relay,
        "DELETE",
        &format!("/api/v1/chat-bots/{BOT_LOGIN}"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(fake.token_scopes(&access), None, "revoked at Twitch");
    for status in [&mut here, &mut there, &mut late] {
        // Its chat session's progress may come first, as updates.
        let deleted = loop {
            let got = frame(status).await;
            if got["event"] != "Updated" {
                break got;
            }
        };
        assert_eq!(deleted["event"], "Deleted", "{deleted}");
        assert_eq!(deleted["chatBot"]["user_login"], BOT_LOGIN);
    }
    // Its chat socket on the other replica closes.
    loop {
        match chat.next(10).await {
            Frame::Json(..) => continue,
            Frame::Closed(Some((code, reason))) => {
                assert_eq!(code, 1008);
                assert!(reason.contains("removed"), "{reason}");
                break;
            }
            other => panic!("expected a close: {other:?}"),
        }
    }
    assert_eq!(
        call(
            &relay,
            "DELETE",
            &format!("/api/v1/chat-bots/{BOT_LOGIN}"),
            None
        )
        .await
        .0,
        404
    );
    assert!(store_is_empty(&relay).await);
}

#[tokio::test]
async fn a_bot_reads_its_channels_and_each_socket_shows_a_message_once() {
    let chat_types = [
        "channel.chat.message",
        "channel.chat.notification",
        "channel.chat.message_delete",
        "channel.chat.clear",
        "channel.chat.clear_user_messages",
    ];
    let fake = FakeTwitch::start().await;
    let relay = TestRelay::start_twitch(&fake, |c| {
        c.eventsub_types = chat_types
            .iter()
            .map(|t| (t.to_string(), "1".to_string()))
            .collect()
    })
    .await;
    assert_eq!(authorize(&relay).await.status(), 200);
    add_helper_bot(&relay, &fake).await;
    fake.add_user("Other_Channel", "555");
    for channel in ["#cooler_user", "#other_channel"] {
        let (status, _) = call(
            &relay,
            "POST",
            "/api/v1/chat-bots/channels",
            Some(json!({"channel": channel, "chat_bot": BOT_LOGIN})),
        )
        .await;
        assert_eq!(status, 201);
    }
    // The bot's own session subscribes to both channels' chat, as the bot.
    let bot_subscriptions = |fake: &FakeTwitch| {
        fake.subscriptions()
            .iter()
            .filter(|s| s.is_enabled() && s.condition["user_id"] == BOT_ID)
            .count()
    };
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while bot_subscriptions(&fake) < 2 * chat_types.len() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "bot subscriptions made"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let mut bot = socket(&relay, &format!("/ws/chat-bots/{BOT_LOGIN}/"), &relay.token).await;
    let mut irc = socket(&relay, "/ws/irc-messages/", &relay.token).await;
    relay.wait_clients(2).await;

    // In the broadcaster's channel: Twitch sends it to the broadcaster's
    // subscription and to the bot's; each socket shows it once.
    let event = FakeTwitch::chat_message_event("7734", "viewer", "hello bots");
    let sent = fake
        .send_chat_event("channel.chat.message", event.clone())
        .await
        .unwrap();
    assert_eq!(sent.len(), 2, "two subscriptions");
    for (socket, name) in [
        (&mut bot, BOT_LOGIN),
        (&mut irc, FakeTwitch::BROADCASTER_LOGIN),
    ] {
        let got = frame(socket).await;
        assert_eq!(got["irc_username"], name);
        assert_eq!(got["event_data"]["message_id"], event["message_id"]);
        assert_eq!(got["data"]["message-text"], "hello bots");
        assert!(socket.quiet_for(500).await, "shown once");
    }

    // In the bot's other channel: only the bot's socket.
    let mut elsewhere = FakeTwitch::chat_message_event("7734", "viewer", "over here");
    elsewhere["broadcaster_user_id"] = json!("555");
    elsewhere["broadcaster_user_login"] = json!("other_channel");
    let sent = fake
        .send_chat_event("channel.chat.message", elsewhere.clone())
        .await
        .unwrap();
    assert_eq!(sent.len(), 1);
    let got = frame(&mut bot).await;
    assert_eq!(got["event_data"]["message_id"], elsewhere["message_id"]);
    assert!(irc.quiet_for(500).await, "not the broadcaster's chat");

    // Stored like every event.
    let (_, history) = call(
        &relay,
        "GET",
        "/api/v1/twitch-events?event_type=channel-chat-message",
        None,
    )
    .await;
    assert_eq!(history["results"].as_array().unwrap().len(), 3);
    let (_, channels) = call(&relay, "GET", "/api/v1/chat-bots/channels", None).await;
    assert!(channels
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["status"] == "joined"));

    // A channel that refuses the bot: its subscriptions fail, the channel
    // says why, the others keep working.
    fake.add_user("Strict_Channel", "777");
    fake.refuse_bot_chat("777", true);
    let (status, _) = call(
        &relay,
        "POST",
        "/api/v1/chat-bots/channels",
        Some(json!({"channel": "strict_channel", "chat_bot": BOT_LOGIN})),
    )
    .await;
    assert_eq!(status, 201);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let strict = loop {
        let (_, channels) = call(&relay, "GET", "/api/v1/chat-bots/channels", None).await;
        let strict = channels
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["channel"] == "#strict_channel")
            .unwrap()
            .clone();
        if strict["status"] == "failed" {
            break strict;
        }
        assert!(tokio::time::Instant::now() < deadline, "{strict}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let reason = strict["reason"].as_str().unwrap();
    assert!(
        reason.contains("helper_bot read #strict_channel") && reason.contains("moderator"),
        "{reason}"
    );
    while bot_subscriptions(&fake) < 2 * chat_types.len() {
        assert!(tokio::time::Instant::now() < deadline, "resubscribed");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let again = FakeTwitch::chat_message_event("7734", "viewer", "still reading");
    fake.send_chat_event("channel.chat.message", again.clone())
        .await
        .unwrap();
    loop {
        let got = frame(&mut bot).await;
        if got["event_data"]["message_id"] == again["message_id"] {
            break;
        }
    }
}

#[tokio::test]
async fn with_webhooks_a_bot_reads_through_app_token_subscriptions() {
    let fake = FakeTwitch::start().await;
    let relay = TestRelay::start_twitch(&fake, |c| {
        c.transport = tau_relay::config::Transport::Webhook;
        c.twitch.broadcaster = Some(FakeTwitch::BROADCASTER_LOGIN.into());
        c.eventsub_types = vec![("channel.follow".into(), "2".into())];
    })
    .await;
    add_helper_bot(&relay, &fake).await;
    fake.add_user("Other_Channel", "555");
    for channel in ["#cooler_user", "#other_channel"] {
        let (status, _) = call(
            &relay,
            "POST",
            "/api/v1/chat-bots/channels",
            Some(json!({"channel": channel, "chat_bot": BOT_LOGIN})),
        )
        .await;
        assert_eq!(status, 201);
    }
    // The broadcaster authorized the app: its channel's subscriptions are
    // made; the other channel did not (no channel:bot): refused, in words.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let other = loop {
        let enabled = fake
            .subscriptions()
            .iter()
            .filter(|s| s.is_enabled() && s.condition["user_id"] == BOT_ID)
            .count();
        let (_, channels) = call(&relay, "GET", "/api/v1/chat-bots/channels", None).await;
        let other = channels
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["channel"] == "#other_channel")
            .unwrap()
            .clone();
        if enabled == 5 && other["status"] == "failed" {
            break other;
        }
        assert!(tokio::time::Instant::now() < deadline, "{enabled} {other}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert!(
        other["reason"].as_str().unwrap().contains("channel:bot"),
        "{other}"
    );
    let mut bot = socket(&relay, &format!("/ws/chat-bots/{BOT_LOGIN}/"), &relay.token).await;
    relay.wait_clients(1).await;
    let event = FakeTwitch::chat_message_event("7734", "viewer", "via webhook");
    fake.send_chat_event("channel.chat.message", event.clone())
        .await
        .unwrap();
    let got = frame(&mut bot).await;
    assert_eq!(got["event_data"]["message_id"], event["message_id"]);

    // Removing the bot removes its subscriptions at Twitch.
    let (status, _) = call(
        &relay,
        "DELETE",
        &format!("/api/v1/chat-bots/{BOT_LOGIN}"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    while fake
        .subscriptions()
        .iter()
        .any(|s| s.is_enabled() && s.condition["user_id"] == BOT_ID)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "bot subscriptions deleted"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

async fn store_is_empty(relay: &TestRelay) -> bool {
    relay.state.store.chat_bots().await.unwrap().is_empty()
        && relay
            .state
            .store
            .chat_bot_channels()
            .await
            .unwrap()
            .is_empty()
}

/// The five chat types a bot reads.
const CHAT_TYPES: [&str; 5] = [
    "channel.chat.message",
    "channel.chat.notification",
    "channel.chat.message_delete",
    "channel.chat.clear",
    "channel.chat.clear_user_messages",
];

/// A relay reading every chat type, the broadcaster authorized, the
/// helper bot in the broadcaster's own channel with its subscriptions
/// enabled at Twitch.
async fn bot_in_own_channel(fake: &FakeTwitch) -> TestRelay {
    let relay = TestRelay::start_twitch(fake, |c| {
        c.eventsub_types = CHAT_TYPES
            .iter()
            .map(|t| (t.to_string(), "1".to_string()))
            .collect()
    })
    .await;
    assert_eq!(authorize(&relay).await.status(), 200);
    add_helper_bot(&relay, fake).await;
    let (status, _) = call(
        &relay,
        "POST",
        "/api/v1/chat-bots/channels",
        Some(json!({"channel": "#cooler_user", "chat_bot": BOT_LOGIN})),
    )
    .await;
    assert_eq!(status, 201);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while fake
        .subscriptions()
        .iter()
        .filter(|s| s.is_enabled() && s.condition["user_id"] == BOT_ID)
        .count()
        < CHAT_TYPES.len()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "bot subscriptions made"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    relay
}

/// A clear carries no message id: Twitch's two deliveries (the
/// broadcaster's subscription and the bot's) must still show once.
#[tokio::test]
async fn a_clear_delivered_to_the_broadcaster_and_a_bot_shows_once_per_socket() {
    let fake = FakeTwitch::start().await;
    let relay = bot_in_own_channel(&fake).await;
    let mut bot = socket(&relay, &format!("/ws/chat-bots/{BOT_LOGIN}/"), &relay.token).await;
    let mut irc = socket(&relay, "/ws/irc-messages/", &relay.token).await;
    relay.wait_clients(2).await;

    let channel = json!({
        "broadcaster_user_id": FakeTwitch::BROADCASTER_ID,
        "broadcaster_user_login": FakeTwitch::BROADCASTER_LOGIN,
        "broadcaster_user_name": FakeTwitch::BROADCASTER_NAME,
    });
    let mut user_clear = channel.clone();
    user_clear["target_user_id"] = json!("7734");
    user_clear["target_user_login"] = json!("viewer");
    user_clear["target_user_name"] = json!("Viewer");
    for (kind, event, tau_type) in [
        ("channel.chat.clear", channel.clone(), "channel-chat-clear"),
        (
            "channel.chat.clear_user_messages",
            user_clear,
            "channel-chat-clear_user_messages",
        ),
    ] {
        let sent = fake.send_chat_event(kind, event).await.unwrap();
        assert_eq!(sent.len(), 2, "{kind}: the broadcaster's and the bot's");
        for (socket, name) in [
            (&mut bot, BOT_LOGIN),
            (&mut irc, FakeTwitch::BROADCASTER_LOGIN),
        ] {
            let got = frame(socket).await;
            assert_eq!(got["irc_username"], name);
            assert_eq!(got["event_type"], tau_type);
            assert_eq!(got["data"]["command"], "CLEARCHAT", "{kind}");
            assert!(socket.quiet_for(700).await, "{kind} shown once to {name}");
        }
    }
    // Both deliveries are stored, as every event is.
    let (_, history) = call(
        &relay,
        "GET",
        "/api/v1/twitch-events?event_type=channel-chat-clear",
        None,
    )
    .await;
    assert_eq!(history["results"].as_array().unwrap().len(), 2);
}

/// `(auth kind, status)` of every `POST /helix/chat/messages` so far.
fn chat_posts(fake: &FakeTwitch) -> Vec<(tau_fake_twitch::AuthKind, u16)> {
    fake.requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path == "/helix/chat/messages")
        .map(|r| (r.auth, r.status))
        .collect()
}

#[tokio::test]
async fn a_bot_sends_with_the_badge_where_the_channel_allows_it_and_falls_back_where_not() {
    use tau_fake_twitch::AuthKind::{App, User};
    let fake = FakeTwitch::start().await;
    let relay = relay(&fake).await;
    let (_, status) = call(&relay, "GET", "/api/v1/status", None).await;
    assert!(
        status["twitch"]["user_token"]["scopes"]
            .as_array()
            .unwrap()
            .contains(&json!("channel:bot")),
        "choosing chat asks the broadcaster for channel:bot: {status}"
    );
    add_helper_bot(&relay, &fake).await;

    // The broadcaster granted channel:bot (its authorization has it): the
    // bot's message goes out with the app token, badge and all.
    let (status, sent) = send_as_bot(&relay, "#cooler_user", "with the badge").await;
    assert_eq!(status, 200, "{sent}");
    assert_eq!(
        (sent["is_sent"].clone(), sent["badge"].clone()),
        (json!(true), json!(true))
    );
    let last = fake.sent_chat().pop().unwrap();
    assert_eq!((last.sender_id.as_str(), last.app_token), (BOT_ID, true));
    assert_eq!(chat_posts(&fake), [(App, 200)]);

    // Over the bot's socket too, the answer says so.
    let mut ws = socket(&relay, &format!("/ws/chat-bots/{BOT_LOGIN}/"), &relay.token).await;
    relay.wait_clients(1).await;
    ws.ws
        .send(Message::Text(
            json!({"irc_channel": "#cooler_user", "message": "badge over the socket"})
                .to_string()
                .into(),
        ))
        .await
        .unwrap();
    let answer = loop {
        let value = frame(&mut ws).await;
        if value.get("event") == Some(&json!("chat_message_sent")) || value.get("error").is_some() {
            break value;
        }
    };
    assert_eq!(answer["badge"], true, "{answer}");
    assert_eq!(answer["is_sent"], true, "{answer}");

    // The broadcaster withdraws channel:bot: Twitch refuses the app token,
    // the message still goes out with the bot's own token, without badge.
    fake.set_channel_bot(FakeTwitch::BROADCASTER_ID, Some(false));
    let (status, sent) = send_as_bot(&relay, "#cooler_user", "no badge now").await;
    assert_eq!(status, 200, "{sent}");
    assert_eq!(
        (sent["is_sent"].clone(), sent["badge"].clone()),
        (json!(true), json!(false))
    );
    let last = fake.sent_chat().pop().unwrap();
    assert_eq!(
        (
            last.sender_id.as_str(),
            last.message.as_str(),
            last.app_token
        ),
        (BOT_ID, "no badge now", false)
    );
    assert_eq!(
        chat_posts(&fake)[2..],
        [(App, 403), (User, 200)],
        "one refused app-token attempt, then the user token"
    );
    // The refusal is remembered: the next message costs one request.
    fake.set_channel_bot(FakeTwitch::BROADCASTER_ID, None);
    let (_, sent) = send_as_bot(&relay, "#cooler_user", "still remembered").await;
    assert_eq!(sent["badge"], false, "{sent}");
    assert_eq!(chat_posts(&fake)[4..], [(User, 200)]);

    // The broadcaster in its own channel always sends with its user token.
    let (status, sent) = call(
        &relay,
        "POST",
        "/api/v1/irc",
        Some(json!({"irc_channel": "#cooler_user", "message": "from the broadcaster"})),
    )
    .await;
    assert_eq!(status, 200, "{sent}");
    assert_eq!(sent["badge"], false);
    let last = fake.sent_chat().pop().unwrap();
    assert_eq!(
        (last.sender_id.as_str(), last.app_token),
        (FakeTwitch::BROADCASTER_ID, false)
    );
    assert_eq!(chat_posts(&fake)[5..], [(User, 200)]);
}

/// The helper bot's `session` from `GET /api/v1/chat-bots`, once `ready` holds.
async fn bot_session_until(relay: &TestRelay, what: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let (_, list) = call(relay, "GET", "/api/v1/chat-bots", None).await;
        let session = list["results"][0]["session"].clone();
        if ready(&session) {
            return session;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}: {session}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn each_bots_session_state_is_shown_and_follows_a_reconnect() {
    let fake = FakeTwitch::start().await;
    let relay = bot_in_own_channel(&fake).await;
    let mut status = socket(&relay, "/ws/chat-bots/status/", &relay.token).await;

    let enabled = |s: &Value| {
        s["state"] == "connected"
            && s["subscriptions"].as_array().is_some_and(|subs| {
                subs.len() == CHAT_TYPES.len() && subs.iter().all(|x| x["status"] == "enabled")
            })
    };
    let first = bot_session_until(&relay, "connected", enabled).await;
    let session_id = first["session_id"].as_str().unwrap().to_string();
    let at_twitch = fake
        .subscriptions()
        .into_iter()
        .filter(|s| s.is_enabled() && s.condition["user_id"] == BOT_ID)
        .map(|s| s.id)
        .collect::<std::collections::BTreeSet<_>>();
    let shown = first["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect::<std::collections::BTreeSet<_>>();
    assert_eq!(shown, at_twitch, "Twitch's subscriptions, by id");
    let kinds: Vec<_> = first["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, CHAT_TYPES);
    assert_eq!(first["subscriptions"][0]["condition"]["user_id"], BOT_ID);
    assert!(first["connected_at"].is_string());
    // The status socket shows it too.
    loop {
        let got = frame(&mut status).await;
        if got["chatBot"]["session"]["state"] == "connected" {
            assert_eq!(got["event"], "Updated");
            assert_eq!(got["chatBot"]["session"]["session_id"], session_id.as_str());
            break;
        }
    }

    // Twitch drops the bot's socket: the state says so, then reconnects
    // with a new session and its subscriptions made again.
    fake.close_session(&session_id, 4003).await.unwrap();
    let down = bot_session_until(&relay, "backoff", |s| s["state"] == "backoff").await;
    assert!(
        down["last_error"].as_str().unwrap().contains("4003"),
        "{down}"
    );
    assert!(down["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["status"] == "websocket_disconnected"));
    let again = bot_session_until(&relay, "reconnected", |s| {
        enabled(s) && s["session_id"] != session_id.as_str()
    })
    .await;
    assert!(
        again["last_error"].as_str().unwrap().contains("4003"),
        "the last problem stays readable: {again}"
    );
    loop {
        let got = frame(&mut status).await;
        let session = &got["chatBot"]["session"];
        if session["state"] == "connected" && session["session_id"] == again["session_id"] {
            break;
        }
    }
}
