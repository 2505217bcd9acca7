//! Helix: credentials and error bodies, rate-limit headers, authorization,
//! limits, pagination and conduits.

mod common;

use std::time::Duration;

use common::{connect_welcomed, fast, helix, next_of, subscribe, ws_sub};
use reqwest::Method;
use serde_json::{json, Value};
use tau_fake_twitch::{FakeTwitch, Options};

#[tokio::test]
async fn errors_look_like_twitch_and_carry_ratelimit_headers() {
    let fake = FakeTwitch::start().await;
    let resp = reqwest::Client::new()
        .get(format!("{}/users?id=1337", fake.api_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    for h in ["ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"] {
        assert!(resp.headers().contains_key(h), "{h}");
    }
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"error": "Unauthorized", "status": 401, "message": "OAuth token is missing"})
    );

    let app = fake.issue_app_token();
    let resp = helix(&fake, Method::GET, "/no/such/thing", &app)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(resp.json::<Value>().await.unwrap()["status"], 404);

    fake.set_ratelimit_remaining(0);
    let resp = helix(&fake, Method::GET, "/users?id=1337", &app)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["ratelimit-remaining"], "0");
}

#[tokio::test]
async fn transport_token_and_authorization_rules() {
    let fake = FakeTwitch::start_with(Options {
        subscribe_deadline: Some(Duration::from_secs(30)),
        auto_verify_webhooks: false,
        ..fast()
    })
    .await;
    let app = fake.issue_app_token();
    let (user, _) = fake.issue_user_token(&["bits:read"], 3600);
    let (_ws, sid) = connect_welcomed(&fake).await;
    let cheer = json!({"broadcaster_user_id": "1337"});

    let (status, err) = subscribe(
        &fake,
        &app,
        ws_sub("channel.cheer", "1", cheer.clone(), &sid),
    )
    .await;
    assert_eq!(
        (status, err["message"].as_str()),
        (400, Some("invalid transport and auth combination"))
    );
    let (status, _) = subscribe(
        &fake,
        &user,
        ws_sub("channel.cheer", "1", cheer.clone(), "nope"),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = subscribe(
        &fake,
        &user,
        ws_sub("channel.hype_train.begin", "1", cheer.clone(), &sid),
    )
    .await;
    assert_eq!(status, 400, "hype train v1 no longer exists");
    let (status, _) = subscribe(
        &fake,
        &user,
        ws_sub("channel.subscribe", "1", cheer.clone(), &sid),
    )
    .await;
    assert_eq!(status, 403, "missing channel:read:subscriptions");

    let hook = |t: &str| {
        json!({"type": t, "version": "1", "condition": cheer,
        "transport": {"method": "webhook", "callback": "https://example.com/cb", "secret": "0123456789"}})
    };
    let (status, _) = subscribe(&fake, &user, hook("channel.cheer")).await;
    assert_eq!(status, 400, "webhook needs an app token");
    fake.set_authorized(false);
    let (status, err) = subscribe(&fake, &app, hook("channel.cheer")).await;
    assert_eq!(
        (status, err["message"].as_str()),
        (403, Some("subscription missing proper authorization"))
    );
    let (status, ok) = subscribe(&fake, &app, hook("stream.online")).await;
    assert_eq!((status, ok["data"][0]["cost"].as_u64()), (202, Some(1)));
    fake.set_authorized(true);
    let (status, ok) = subscribe(&fake, &app, hook("channel.cheer")).await;
    assert_eq!((status, ok["data"][0]["cost"].as_u64()), (202, Some(0)));
    assert_eq!(subscribe(&fake, &app, hook("channel.cheer")).await.0, 409);
}

#[tokio::test]
async fn per_session_limit_and_pagination() {
    let fake = FakeTwitch::start_with(fast()).await;
    let (user, _) = fake.issue_user_token(&["channel:read:redemptions"], 3600);
    let (_ws, sid) = connect_welcomed(&fake).await;
    let t = "channel.channel_points_custom_reward_redemption.add";
    for i in 0..300 {
        let (status, body) = subscribe(
            &fake,
            &user,
            ws_sub(
                t,
                "1",
                json!({"broadcaster_user_id": "1337", "reward_id": i.to_string()}),
                &sid,
            ),
        )
        .await;
        assert_eq!(status, 202, "{i}: {body}");
    }
    let (status, _) = subscribe(
        &fake,
        &user,
        ws_sub(
            t,
            "1",
            json!({"broadcaster_user_id": "1337", "reward_id": "x"}),
            &sid,
        ),
    )
    .await;
    assert_eq!(status, 429);

    let mut seen = 0;
    let mut path = "/eventsub/subscriptions?status=enabled".to_string();
    loop {
        let page: Value = helix(&fake, Method::GET, &path, &user)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(page["total"], 300);
        seen += page["data"].as_array().unwrap().len();
        match page["pagination"]["cursor"].as_str() {
            Some(c) => path = format!("/eventsub/subscriptions?status=enabled&after={c}"),
            None => break,
        }
    }
    assert_eq!(seen, 300);
    let resp = helix(
        &fake,
        Method::GET,
        "/eventsub/subscriptions?status=enabled&type=x",
        &user,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(resp.status(), 400, "only one filter");

    let id = fake.subscriptions()[0].id.clone();
    let del = |id: String| {
        helix(
            &fake,
            Method::DELETE,
            &format!("/eventsub/subscriptions?id={id}"),
            &user,
        )
        .send()
    };
    assert_eq!(del(id.clone()).await.unwrap().status(), 204);
    assert_eq!(del(id).await.unwrap().status(), 404);
}

#[tokio::test]
async fn conduit_with_websocket_shard_delivers() {
    let fake = FakeTwitch::start_with(fast()).await;
    let app = fake.issue_app_token();
    let created: Value = helix(&fake, Method::POST, "/eventsub/conduits", &app)
        .json(&json!({"shard_count": 2}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let conduit_id = created["data"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(created["data"][0]["shard_count"], 2);

    let (mut ws, sid) = connect_welcomed(&fake).await;
    let shards = json!({"conduit_id": conduit_id, "shards": [
        {"id": "0", "transport": {"method": "websocket", "session_id": sid}},
        {"id": "7", "transport": {"method": "websocket", "session_id": sid}},
    ]});
    let resp = helix(&fake, Method::PATCH, "/eventsub/conduits/shards", &app)
        .json(&shards)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["data"][0]["status"], "enabled");
    assert_eq!(body["errors"][0]["id"], "7");

    let sub = json!({"type": "channel.cheer", "version": "1", "condition": {"broadcaster_user_id": "1337"},
        "transport": {"method": "conduit", "conduit_id": conduit_id}});
    assert_eq!(subscribe(&fake, &app, sub).await.0, 202);
    let listed: Value = helix(
        &fake,
        Method::GET,
        &format!("/eventsub/conduits/shards?conduit_id={conduit_id}"),
        &app,
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(listed["data"].as_array().unwrap().len(), 2);

    // Shard 1 is unassigned, so routing falls back to shard 0 either way;
    // the shard keeps the session alive past the subscribe deadline.
    tokio::time::sleep(fast().subscribe_deadline.unwrap()).await;
    let mid = fake
        .send_conduit_notification(&conduit_id, "channel.cheer", "1", json!({"bits": 5}))
        .await
        .unwrap();
    let note = next_of(&mut ws, "notification").await;
    assert_eq!(note["metadata"]["message_id"], mid.as_str());
    assert_eq!(
        note["payload"]["subscription"]["transport"]["method"],
        "conduit"
    );
    let direct = fake
        .send_notification(&sid, "channel.cheer", "1", json!({"bits": 6}))
        .await
        .unwrap();
    assert_eq!(
        next_of(&mut ws, "notification").await["metadata"]["message_id"],
        direct.as_str()
    );

    // A second session takes shard 1 and listens for conduit.shard.disabled.
    let (mut ws_b, sid_b) = connect_welcomed(&fake).await;
    let shards = json!({"conduit_id": conduit_id, "shards": [{"id": "1", "transport": {"method": "websocket", "session_id": sid_b}}]});
    let resp = helix(&fake, Method::PATCH, "/eventsub/conduits/shards", &app)
        .json(&shards)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let disabled = json!({"type": "conduit.shard.disabled", "version": "1", "condition": {"client_id": FakeTwitch::CLIENT_ID},
        "transport": {"method": "conduit", "conduit_id": conduit_id}});
    assert_eq!(subscribe(&fake, &app, disabled).await.0, 202);

    fake.close_session(&sid, 4006).await.unwrap();
    assert_eq!(
        fake.conduits()[0].shards[0].status,
        "websocket_network_error"
    );
    let note = next_of(&mut ws_b, "notification").await;
    assert_eq!(
        note["metadata"]["subscription_type"],
        "conduit.shard.disabled"
    );
    assert_eq!(note["payload"]["event"]["shard_id"], "0");
    assert_eq!(
        note["payload"]["event"]["status"],
        "websocket_network_error"
    );
    fake.send_conduit_notification(&conduit_id, "channel.cheer", "1", json!({"bits": 7}))
        .await
        .unwrap();
    assert_eq!(
        next_of(&mut ws_b, "notification").await["payload"]["event"]["bits"],
        7
    );

    fake.close_session(&sid_b, 4000).await.unwrap();
    let err = fake
        .send_conduit_notification(&conduit_id, "channel.cheer", "1", json!({}))
        .await;
    assert!(
        matches!(err, Err(tau_fake_twitch::FakeError::NoEnabledShard(_))),
        "{err:?}"
    );
}
