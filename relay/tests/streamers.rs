//! Watched streamers against the fake Twitch: the REST contract and its
//! every refusal, subscriptions that follow the list on the websocket and
//! webhook transports (and on another replica), a broadcast delivered to
//! clients and recorded (from Helix, or from the event when Helix lags),
//! Twitch's own `max_total_cost` shown in the status, and `TAU_STREAMERS`.

mod common;

use std::{collections::BTreeSet, time::Duration};

use common::{authorize, TestRelay};
use serde_json::{json, Value};
use tau_fake_twitch::{FakeTwitch, StreamInfo};
use tau_relay::{
    access::{Grant, Role},
    config::{Config, Transport},
    store::StreamerSource,
};

const WAIT: Duration = Duration::from_secs(15);
const PATH: &str = "/api/v1/streamers";

/// Only `channel.cheer` for the channel itself: sessions stay small.
fn cheer_only(c: &mut Config) {
    c.eventsub_types = vec![("channel.cheer".into(), "1".into())];
}

async fn send(relay: &TestRelay, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    send_as(relay, method, path, body, &relay.token).await
}

async fn send_as(
    relay: &TestRelay,
    method: &str,
    path: &str,
    body: Option<Value>,
    token: &str,
) -> (u16, Value) {
    let url = if path.starts_with("http") {
        path.to_string()
    } else {
        format!("{}{path}", relay.base)
    };
    let mut request = relay
        .http
        .request(method.parse().unwrap(), url)
        .header("Authorization", format!("Token {token}"));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn watch(relay: &TestRelay, login: &str) -> Value {
    let (status, body) = send(
        relay,
        "POST",
        PATH,
        Some(json!({ "twitch_username": login })),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body
}

fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<_> = value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    keys
}

/// Polls `path` until `ready` holds for its body; returns that body.
async fn until(relay: &TestRelay, path: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let mut body = Value::Null;
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::time::Instant::now() < deadline {
        body = send(relay, "GET", path, None).await.1;
        if ready(&body) {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{path} never got ready: {body}");
}

/// `(type, broadcaster)` of the enabled subscriptions of the newest
/// connected session holding exactly `count`, once there is one other
/// than `after`.
async fn session_with(fake: &FakeTwitch, after: &str, count: usize) -> (String, BTreeSet<String>) {
    let wanted = |s: &tau_fake_twitch::SessionInfo| {
        s.id != after && s.connected && s.subscription_ids.len() == count
    };
    let sessions = fake
        .wait_for_sessions(WAIT, |all| all.iter().any(wanted))
        .await
        .unwrap_or_else(|_| panic!("no session with {count} subscriptions"));
    let session = sessions.into_iter().rev().find(wanted).unwrap();
    let subs = fake
        .subscriptions()
        .into_iter()
        .filter(|s| session.subscription_ids.contains(&s.id))
        .map(|s| {
            let who = s.condition["broadcaster_user_id"]
                .as_str()
                .unwrap_or("")
                .to_string();
            format!("{}:{who}", s.sub_type)
        })
        .collect();
    (session.id, subs)
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn the_rest_contract_and_every_refusal() {
    let fake = FakeTwitch::start().await;
    for (i, login) in ["Watched_One", "two", "three", "four", "five", "six"]
        .iter()
        .enumerate()
    {
        fake.add_user(login, &format!("700{i}"));
    }
    let relay = TestRelay::start_twitch(&fake, cheer_only).await;

    // Bad input and unknown users: 400, nothing stored.
    for (body, needle) in [
        (
            json!({"twitch_username": "not a login"}),
            "not a Twitch login",
        ),
        (
            json!({"twitch_username": "x".repeat(26)}),
            "not a Twitch login",
        ),
        (
            json!({"twitch_username": "nobody_here"}),
            "Twitch has no user \"nobody_here\"",
        ),
        (json!({"twitch_username": 5}), ""),
        (json!({"login": "two"}), ""),
        (json!({"twitch_username": "two", "extra": 1}), ""),
    ] {
        let (status, answer) = send(&relay, "POST", PATH, Some(body.clone())).await;
        assert_eq!(status, 400, "{body}: {answer}");
        let detail = answer["detail"].as_str().unwrap();
        assert!(detail.contains(needle), "{body}: {detail}");
    }
    let (status, _) = relay
        .http
        .post(format!("{}{PATH}", relay.base))
        .header("Authorization", format!("Token {}", relay.token))
        .body(r#"{"twitch_username":"two"}"#)
        .send()
        .await
        .map(|r| (r.status().as_u16(), ()))
        .unwrap();
    assert_eq!(status, 415, "not sent as JSON");

    // Added: the original's shape plus `source`.
    let one = watch(&relay, "Watched_One").await;
    assert_eq!(
        keys(&one),
        [
            "created",
            "disabled",
            "id",
            "source",
            "streaming",
            "twitch_id",
            "twitch_username",
            "updated"
        ]
    );
    assert_eq!(one["twitch_username"], "watched_one");
    assert_eq!(one["twitch_id"], "7000");
    assert_eq!(
        (one["streaming"].clone(), one["disabled"].clone()),
        (json!(false), json!(false))
    );
    assert_eq!(one["source"], "api");
    chrono::DateTime::parse_from_rfc3339(one["created"].as_str().unwrap()).unwrap();
    let (status, answer) = send(
        &relay,
        "POST",
        PATH,
        Some(json!({"twitch_username": "WATCHED_ONE"})),
    )
    .await;
    assert_eq!(status, 409, "{answer}");
    assert!(
        answer["detail"].as_str().unwrap().contains("already"),
        "{answer}"
    );

    // Read by id or login, any case; unknown: 404 naming it.
    let id = one["id"].as_str().unwrap();
    for key in [id, "watched_one", "Watched_One"] {
        let (status, got) = send(&relay, "GET", &format!("{PATH}/{key}/"), None).await;
        assert_eq!((status, &got), (200, &one), "{key}");
    }
    let (status, answer) = send(&relay, "GET", &format!("{PATH}/ghost"), None).await;
    assert_eq!(status, 404);
    assert_eq!(answer["detail"], "no watched streamer \"ghost\"");

    // Disable / enable with PATCH or PUT; malformed bodies: 400.
    let (status, off) = send(
        &relay,
        "PATCH",
        &format!("{PATH}/{id}"),
        Some(json!({"disabled": true})),
    )
    .await;
    assert_eq!((status, off["disabled"].clone()), (200, json!(true)));
    let (status, on) = send(
        &relay,
        "PUT",
        &format!("{PATH}/watched_one"),
        Some(json!({"disabled": false})),
    )
    .await;
    assert_eq!((status, on["disabled"].clone()), (200, json!(false)));
    for bad in [
        json!({}),
        json!({"disabled": "yes"}),
        json!({"disabled": true, "twitch_id": "1"}),
    ] {
        let (status, answer) =
            send(&relay, "PATCH", &format!("{PATH}/{id}"), Some(bad.clone())).await;
        assert_eq!(status, 400, "{bad}: {answer}");
    }
    let (status, _) = send(
        &relay,
        "PATCH",
        &format!("{PATH}/ghost"),
        Some(json!({"disabled": true})),
    )
    .await;
    assert_eq!(status, 404);

    // No streams yet; paging parameters are checked.
    let (status, page) = send(&relay, "GET", &format!("{PATH}/{id}/streams"), None).await;
    assert_eq!(
        (status, page),
        (200, json!({"next": null, "previous": null, "results": []}))
    );
    let (status, latest) = send(&relay, "GET", &format!("{PATH}/{id}/streams/latest"), None).await;
    assert_eq!((status, latest), (200, json!({})));
    for query in ["limit=0", "limit=101", "limit=x", "cursor=garbage"] {
        let (status, answer) =
            send(&relay, "GET", &format!("{PATH}/{id}/streams?{query}"), None).await;
        assert_eq!(status, 400, "{query}: {answer}");
        assert!(answer["detail"].is_string());
    }
    for path in [
        format!("{PATH}/ghost/streams"),
        format!("{PATH}/ghost/streams/latest"),
    ] {
        assert_eq!(send(&relay, "GET", &path, None).await.0, 404, "{path}");
    }

    // The websocket transport's cap: 5 watched. A disabled one does not count.
    for login in ["two", "three", "four", "five"] {
        watch(&relay, login).await;
    }
    let (status, answer) = send(
        &relay,
        "POST",
        PATH,
        Some(json!({"twitch_username": "six"})),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    let detail = answer["detail"].as_str().unwrap();
    assert!(
        detail.contains("at most 5") && detail.contains("webhook or conduit"),
        "{detail}"
    );
    send(
        &relay,
        "PATCH",
        &format!("{PATH}/two"),
        Some(json!({"disabled": true})),
    )
    .await;
    watch(&relay, "six").await;
    let (status, answer) = send(
        &relay,
        "PATCH",
        &format!("{PATH}/two"),
        Some(json!({"disabled": false})),
    )
    .await;
    assert_eq!(status, 400, "enabling past the cap: {answer}");

    // Newest first, all on one page.
    let (_, list) = send(&relay, "GET", PATH, None).await;
    assert_eq!(
        (list["next"].clone(), list["previous"].clone()),
        (Value::Null, Value::Null)
    );
    let logins: Vec<_> = list["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["twitch_username"].as_str().unwrap())
        .collect();
    assert_eq!(
        logins,
        ["six", "five", "four", "three", "two", "watched_one"]
    );

    // Overlay tokens read, only admins change.
    let overlay = relay
        .state
        .store
        .create_token("overlay", &Grant::role(Role::Overlay))
        .await
        .unwrap()
        .token;
    let bot = relay
        .state
        .store
        .create_token("bot", &Grant::role(Role::Bot))
        .await
        .unwrap()
        .token;
    assert_eq!(send_as(&relay, "GET", PATH, None, &overlay).await.0, 200);
    assert_eq!(
        send_as(
            &relay,
            "GET",
            &format!("{PATH}/six/streams/latest"),
            None,
            &overlay
        )
        .await
        .0,
        200
    );
    for token in [&overlay, &bot] {
        assert_eq!(
            send_as(
                &relay,
                "POST",
                PATH,
                Some(json!({"twitch_username": "x"})),
                token
            )
            .await
            .0,
            403
        );
        assert_eq!(
            send_as(
                &relay,
                "PATCH",
                &format!("{PATH}/six"),
                Some(json!({"disabled": true})),
                token
            )
            .await
            .0,
            403
        );
        assert_eq!(
            send_as(&relay, "DELETE", &format!("{PATH}/six"), None, token)
                .await
                .0,
            403
        );
    }
    assert_eq!(send_as(&relay, "GET", PATH, None, "tau_nope").await.0, 401);

    // Removed, once.
    assert_eq!(
        send(&relay, "DELETE", &format!("{PATH}/{id}"), None)
            .await
            .0,
        204
    );
    assert_eq!(
        send(&relay, "DELETE", &format!("{PATH}/{id}"), None)
            .await
            .0,
        404
    );
}

#[tokio::test]
async fn without_twitch_or_with_the_operator_owning_subscriptions_adding_is_refused() {
    let relay = TestRelay::start().await;
    let (status, answer) = send(
        &relay,
        "POST",
        PATH,
        Some(json!({"twitch_username": "someone"})),
    )
    .await;
    assert_eq!(status, 503, "{answer}");
    assert!(
        answer["detail"]
            .as_str()
            .unwrap()
            .contains("TWITCH_CLIENT_ID"),
        "{answer}"
    );

    let fake = FakeTwitch::start().await;
    fake.add_user("someone", "9");
    let managed = TestRelay::start_twitch(&fake, |c| {
        c.transport = Transport::Webhook;
        c.manage_subscriptions = false;
    })
    .await;
    let (status, answer) = send(
        &managed,
        "POST",
        PATH,
        Some(json!({"twitch_username": "someone"})),
    )
    .await;
    assert_eq!(status, 409, "{answer}");
    assert!(
        answer["detail"]
            .as_str()
            .unwrap()
            .contains("spec.streamers"),
        "{answer}"
    );
}

#[tokio::test]
async fn a_watched_streamer_is_subscribed_delivered_and_recorded_on_the_websocket() {
    let fake = FakeTwitch::start().await;
    fake.add_user("Watched", "7001");
    let relay = TestRelay::start_twitch(&fake, cheer_only).await;
    assert_eq!(authorize(&relay).await.status(), 200);
    let (first, subs) = session_with(&fake, "", 1).await;
    assert_eq!(subs, set(&["channel.cheer:1337"]));
    let mut client = relay.client(json!({})).await;
    relay.wait_clients(1).await;

    let watched = watch(&relay, "watched").await;
    let (second, subs) = session_with(&fake, &first, 3).await;
    assert_eq!(
        subs,
        set(&[
            "channel.cheer:1337",
            "stream.online:7001",
            "stream.offline:7001"
        ])
    );

    // Live: an ordinary stored event for clients, and a stream record with Helix's details.
    let mut info = StreamInfo::new("9001", "Any% speedrun");
    info.viewer_count = 1234;
    info.tags = vec!["English".into(), "Speedrun".into()];
    assert_eq!(fake.go_live("7001", info).await.unwrap().len(), 1);
    let (frame, _) = client.event().await;
    common::assert_tau_frame(&frame);
    assert_eq!(frame["event_type"], "stream-online");
    assert_eq!(frame["event_data"]["broadcaster_user_id"], "7001");
    let path = format!("{PATH}/{}", watched["id"].as_str().unwrap());
    until(&relay, &path, |s| s["streaming"] == true).await;
    let latest = until(&relay, &format!("{path}/streams/latest"), |s| {
        s["stream_id"] == "9001"
    })
    .await;
    assert_eq!(
        keys(&latest),
        [
            "ended_at",
            "game_id",
            "game_name",
            "id",
            "is_mature",
            "language",
            "started_at",
            "stream_id",
            "tag_ids",
            "tags",
            "thumbnail_url",
            "title",
            "type",
            "user_id",
            "user_login",
            "user_name",
            "viewer_count"
        ]
    );
    assert_eq!(latest["title"], "Any% speedrun");
    assert_eq!(latest["game_name"], "Just Chatting");
    assert_eq!(latest["viewer_count"], 1234);
    assert_eq!(latest["tags"], json!(["English", "Speedrun"]));
    assert_eq!(latest["tag_ids"], Value::Null);
    assert_eq!(latest["ended_at"], Value::Null);
    assert_eq!(latest["user_id"], "7001");
    assert_eq!(latest["user_login"], "watched");
    let (_, history) = send(
        &relay,
        "GET",
        "/api/v1/twitch-events?event_type=stream-online",
        None,
    )
    .await;
    assert_eq!(history["results"].as_array().unwrap().len(), 1, "stored");

    // Offline: the stream ends.
    fake.go_offline("7001").await.unwrap();
    let (frame, _) = client.event().await;
    assert_eq!(frame["event_type"], "stream-offline");
    until(&relay, &path, |s| s["streaming"] == false).await;
    let ended = until(&relay, &format!("{path}/streams/latest"), |s| {
        s["ended_at"].is_string()
    })
    .await;
    assert_eq!(ended["stream_id"], "9001");

    // Helix does not list the next broadcast yet: recorded from the event.
    let mut unlisted = StreamInfo::new("9002", "not listed yet");
    unlisted.listed = false;
    unlisted.started_at = Some("2030-01-02T03:04:05Z".into());
    fake.go_live("7001", unlisted).await.unwrap();
    assert_eq!(client.event().await.0["event_type"], "stream-online");
    let latest = until(&relay, &format!("{path}/streams/latest"), |s| {
        s["stream_id"] == "9002"
    })
    .await;
    assert_eq!(latest["title"], "");
    assert_eq!(latest["type"], "live");
    assert_eq!(latest["started_at"], "2030-01-02T03:04:05+00:00");
    assert_eq!(latest["user_name"], "Watched");
    // Twitch's list catches up: the re-fetch fills the same record.
    assert!(fake.list_stream("7001"));
    let filled = until(&relay, &format!("{path}/streams/latest"), |s| {
        s["title"] == "not listed yet"
    })
    .await;
    assert_eq!(filled["stream_id"], "9002");
    assert_eq!(filled["id"], latest["id"], "the same record, filled");
    assert_eq!(filled["game_name"], "Just Chatting");
    assert_eq!(filled["viewer_count"], 42);
    assert_eq!(filled["ended_at"], Value::Null);

    // Two streams, one per page, linked.
    let (_, page) = send(&relay, "GET", &format!("{path}/streams?limit=1"), None).await;
    assert_eq!(page["results"][0]["stream_id"], "9002");
    let next = page["next"].as_str().expect("a next link").to_string();
    assert!(next.starts_with(&relay.base), "{next}");
    let (status, page) = send(&relay, "GET", &next, None).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["results"][0]["stream_id"], "9001");
    assert_eq!(page["next"], Value::Null);

    // Disabled: a session without its subscriptions; none left at Twitch.
    let (status, _) = send(&relay, "PATCH", &path, Some(json!({"disabled": true}))).await;
    assert_eq!(status, 200);
    let (_, subs) = session_with(&fake, &second, 1).await;
    assert_eq!(subs, set(&["channel.cheer:1337"]));
    let live_for_7001 = fake
        .subscriptions()
        .into_iter()
        .filter(|s| s.is_enabled() && s.condition["broadcaster_user_id"] == "7001")
        .count();
    assert_eq!(live_for_7001, 0);
    assert!(fake
        .go_live("7001", StreamInfo::new("9003", "unwatched"))
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn twitchs_max_total_cost_shows_in_the_status() {
    let fake = FakeTwitch::start().await;
    let relay = TestRelay::start_twitch(&fake, cheer_only).await;
    // Six streamers (a list made on another transport): 12 cost, Twitch allows 10.
    for i in 0..6 {
        relay
            .state
            .store
            .insert_streamer(&format!("s{i}"), &format!("80{i}"), StreamerSource::Api)
            .await
            .unwrap();
    }
    assert_eq!(authorize(&relay).await.status(), 200);
    session_with(&fake, "", 11).await;
    let status = until(&relay, "/api/v1/status", |s| {
        s["twitch"]["eventsub"]["subscriptions"]
            .as_array()
            .is_some_and(|a| a.len() == 13)
    })
    .await;
    let subs = status["twitch"]["eventsub"]["subscriptions"]
        .as_array()
        .unwrap();
    let refused: Vec<_> = subs
        .iter()
        .filter(|s| s["status"].as_str().unwrap().contains("max_total_cost"))
        .collect();
    assert_eq!(refused.len(), 2, "{subs:?}");
    assert!(
        refused[0]["status"].as_str().unwrap().contains("429"),
        "{refused:?}"
    );
    assert!(
        refused[0]["condition"]["broadcaster_user_id"].is_string(),
        "{refused:?}"
    );
}

#[tokio::test]
async fn the_webhook_transport_adds_and_removes_their_subscriptions() {
    app_token_transport_adds_and_removes_their_subscriptions(Transport::Webhook).await;
}

#[tokio::test]
async fn the_conduit_transport_adds_and_removes_their_subscriptions() {
    app_token_transport_adds_and_removes_their_subscriptions(Transport::Conduit).await;
}

async fn app_token_transport_adds_and_removes_their_subscriptions(transport: Transport) {
    let fake = FakeTwitch::start().await;
    fake.add_user("hooked", "7100");
    let relay = TestRelay::start_twitch(&fake, |c| {
        cheer_only(c);
        c.transport = transport;
        c.twitch.broadcaster = Some(FakeTwitch::BROADCASTER_LOGIN.into());
    })
    .await;
    let for_7100 = |fake: &FakeTwitch| {
        fake.subscriptions()
            .into_iter()
            .filter(|s| s.is_enabled() && s.condition["broadcaster_user_id"] == "7100")
            .map(|s| s.sub_type)
            .collect::<BTreeSet<_>>()
    };
    let streamer = watch(&relay, "hooked").await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while for_7100(&fake).len() < 2 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(for_7100(&fake), set(&["stream.offline", "stream.online"]));
    // A conduit delivers through a shard: wait for this replica's.
    let shard_ready = |fake: &FakeTwitch| {
        transport != Transport::Conduit
            || fake
                .conduits()
                .iter()
                .any(|c| c.shards.iter().any(|s| s.status == "enabled"))
    };
    while !shard_ready(&fake) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Delivered (a signed POST, or a shard's socket), stored, tracked.
    fake.go_live("7100", StreamInfo::new("9100", "hooked live"))
        .await
        .unwrap();
    let path = format!("{PATH}/{}", streamer["id"].as_str().unwrap());
    let latest = until(&relay, &format!("{path}/streams/latest"), |s| {
        s["stream_id"] == "9100"
    })
    .await;
    assert_eq!(latest["title"], "hooked live");

    // Removed: its subscriptions are deleted at Twitch, its streams go.
    assert_eq!(send(&relay, "DELETE", &path, None).await.0, 204);
    let deadline = tokio::time::Instant::now() + WAIT;
    while !for_7100(&fake).is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(for_7100(&fake).is_empty());
    assert!(
        fake.subscriptions()
            .iter()
            .any(|s| s.sub_type == "channel.cheer"),
        "the channel's own stay"
    );
}

#[tokio::test]
async fn tau_streamers_are_followed_at_start_and_owned_by_the_spec() {
    let fake = FakeTwitch::start().await;
    fake.add_user("Specced", "7200");
    let store = tau_relay::store::Store::in_memory().await;
    // Left over from an earlier TAU_STREAMERS, and one added through REST.
    store
        .upsert_spec_streamer("departed", "7201")
        .await
        .unwrap();
    store
        .insert_streamer("specced", "7200", StreamerSource::Api)
        .await
        .unwrap();
    let relay = TestRelay::start_twitch_on(
        &fake,
        store,
        tau_relay::secret::SecretKey::generate(),
        |c| {
            cheer_only(c);
            c.streamers = vec!["specced".into(), "ghost_login".into()];
        },
    )
    .await;
    let list = until(&relay, PATH, |l| {
        l["results"]
            .as_array()
            .is_some_and(|r| r.len() == 1 && r[0]["source"] == "spec")
    })
    .await;
    assert_eq!(list["results"][0]["twitch_username"], "specced");

    let (status, answer) = send(&relay, "DELETE", &format!("{PATH}/specced"), None).await;
    assert_eq!(status, 409, "{answer}");
    assert!(
        answer["detail"]
            .as_str()
            .unwrap()
            .contains("spec.streamers"),
        "{answer}"
    );
    let (status, off) = send(
        &relay,
        "PATCH",
        &format!("{PATH}/specced"),
        Some(json!({"disabled": true})),
    )
    .await;
    assert_eq!(
        (status, off["disabled"].clone()),
        (200, json!(true)),
        "may be disabled"
    );

    // Subscribed once authorized (enabled again).
    send(
        &relay,
        "PATCH",
        &format!("{PATH}/specced"),
        Some(json!({"disabled": false})),
    )
    .await;
    assert_eq!(authorize(&relay).await.status(), 200);
    let (_, subs) = session_with(&fake, "", 3).await;
    assert!(subs.contains("stream.online:7200"), "{subs:?}");
}

#[tokio::test]
async fn a_change_on_one_replica_resubscribes_the_socket_holder() {
    let fake = FakeTwitch::start().await;
    fake.add_user("elsewhere", "7300");
    let holder = TestRelay::start_twitch(&fake, cheer_only).await;
    assert_eq!(authorize(&holder).await.status(), 200);
    let (first, _) = session_with(&fake, "", 1).await;
    let other = TestRelay::start_twitch_on(
        &fake,
        holder.state.store.clone(),
        holder.state.secret_key.clone(),
        |c| {
            cheer_only(c);
            c.replica_id = "another-replica".into();
        },
    )
    .await;
    watch(&other, "elsewhere").await;
    let (_, subs) = session_with(&fake, &first, 3).await;
    assert!(subs.contains("stream.offline:7300"), "{subs:?}");
}
