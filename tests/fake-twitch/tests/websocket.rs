//! EventSub WebSocket: welcome, subscribe, notify, keepalives, 4003, 4001,
//! reconnect hand-over, closes and revocations.

mod common;

use std::time::Duration;

use common::{
    close_code, connect, connect_welcomed, fast, next_frame, next_of, subscribe, ws_sub, Frame,
    WAIT,
};
use futures_util::SinkExt;
use serde_json::json;
use tau_fake_twitch::{FakeError, FakeTwitch, Options};
use tokio_tungstenite::tungstenite::Message;

fn cheer_event() -> serde_json::Value {
    json!({
        "is_anonymous": false, "user_id": "1234", "user_login": "cool_user", "user_name": "Cool_User",
        "broadcaster_user_id": "1337", "broadcaster_user_login": "cooler_user",
        "broadcaster_user_name": "Cooler_User", "message": "pogchamp", "bits": 1000,
    })
}

#[tokio::test]
async fn welcome_subscribe_notification() {
    let fake = FakeTwitch::start().await;
    let (token, _) = fake.issue_user_token(&["bits:read"], 3600);
    let mut ws = connect(&format!(
        "{}?keepalive_timeout_seconds=30",
        fake.eventsub_ws_url()
    ))
    .await;
    let welcome = next_frame(&mut ws).await;
    let Frame::Json(welcome) = welcome else {
        panic!("{welcome:?}")
    };
    assert_eq!(welcome["metadata"]["message_type"], "session_welcome");
    let session = &welcome["payload"]["session"];
    assert_eq!(session["status"], "connected");
    assert_eq!(session["keepalive_timeout_seconds"], 30);
    assert!(session["reconnect_url"].is_null());
    let sid = session["id"].as_str().unwrap();

    let body = ws_sub(
        "channel.cheer",
        "1",
        json!({"broadcaster_user_id": "1337"}),
        sid,
    );
    let (status, created) = subscribe(&fake, &token, body.clone()).await;
    assert_eq!(status, 202, "{created}");
    let sub = &created["data"][0];
    assert_eq!(
        (sub["status"].as_str(), sub["cost"].as_u64()),
        (Some("enabled"), Some(0))
    );
    assert_eq!(sub["transport"]["session_id"], sid);
    assert_eq!(created["max_total_cost"], 10);
    assert_eq!(subscribe(&fake, &token, body).await.0, 409, "duplicate");

    let info = fake.wait_for_session(WAIT).await.unwrap();
    assert_eq!(info.id, sid);
    assert_eq!(info.subscription_ids, [sub["id"].as_str().unwrap()]);
    let message_id = fake
        .send_notification(sid, "channel.cheer", "1", cheer_event())
        .await
        .unwrap();
    let note = next_of(&mut ws, "notification").await;
    assert_eq!(note["metadata"]["message_id"], message_id.as_str());
    assert_eq!(note["metadata"]["subscription_type"], "channel.cheer");
    assert_eq!(note["metadata"]["subscription_version"], "1");
    assert_eq!(note["payload"]["event"], cheer_event());
    assert_eq!(note["payload"]["subscription"]["id"], sub["id"]);

    let err = fake
        .send_notification(sid, "channel.follow", "2", json!({}))
        .await
        .unwrap_err();
    assert!(
        matches!(err, FakeError::NoMatchingSubscription { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn unused_session_is_closed_with_4003() {
    let fake = FakeTwitch::start_with(fast()).await;
    let (mut ws, sid) = connect_welcomed(&fake).await;
    assert_eq!(close_code(&mut ws).await, 4003);
    let closed = |s: &[tau_fake_twitch::SessionInfo]| s.iter().all(|s| !s.connected);
    let sessions = fake.wait_for_sessions(WAIT, closed).await.unwrap();
    assert_eq!(
        (sessions[0].id.as_str(), sessions[0].close_code),
        (sid.as_str(), Some(4003))
    );
}

#[tokio::test]
async fn keepalives_flow_and_can_be_paused() {
    let opts = Options {
        subscribe_deadline: Some(Duration::from_secs(30)),
        ..fast()
    };
    let fake = FakeTwitch::start_with(opts).await;
    let (mut ws, sid) = connect_welcomed(&fake).await;
    let Frame::Json(keepalive) = next_frame(&mut ws).await else {
        panic!("closed")
    };
    assert_eq!(keepalive["metadata"]["message_type"], "session_keepalive");
    assert_eq!(keepalive["payload"], json!({}));
    fake.pause_keepalives(&sid, true);
    // At most one keepalive may already be in flight; then silence.
    let _ = tokio::time::timeout(Duration::from_millis(200), next_frame(&mut ws)).await;
    assert!(
        tokio::time::timeout(Duration::from_millis(500), next_frame(&mut ws))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn inbound_text_closes_with_4001() {
    let fake = FakeTwitch::start_with(fast()).await;
    let (token, _) = fake.issue_user_token(&[], 3600);
    let (mut ws, sid) = connect_welcomed(&fake).await;
    let (status, created) = subscribe(
        &fake,
        &token,
        ws_sub(
            "stream.online",
            "1",
            json!({"broadcaster_user_id": "1337"}),
            &sid,
        ),
    )
    .await;
    assert_eq!(status, 202);
    ws.send(Message::text("hello")).await.unwrap();
    assert_eq!(close_code(&mut ws).await, 4001);
    let id = created["data"][0]["id"].as_str().unwrap();
    let sub = fake
        .wait_for_subscription_status(id, "websocket_received_inbound_traffic", WAIT)
        .await
        .unwrap();
    assert!(matches!(
        sub.transport,
        tau_fake_twitch::Transport::WebSocket {
            disconnected_at: Some(_),
            ..
        }
    ));
}

#[tokio::test]
async fn close_session_disables_subscriptions_and_revocation_is_sent() {
    let fake = FakeTwitch::start_with(fast()).await;
    let (token, _) = fake.issue_user_token(&["bits:read"], 3600);
    let (mut ws, sid) = connect_welcomed(&fake).await;
    let (_, a) = subscribe(
        &fake,
        &token,
        ws_sub(
            "channel.cheer",
            "1",
            json!({"broadcaster_user_id": "1337"}),
            &sid,
        ),
    )
    .await;
    let (_, b) = subscribe(
        &fake,
        &token,
        ws_sub(
            "stream.online",
            "1",
            json!({"broadcaster_user_id": "1337"}),
            &sid,
        ),
    )
    .await;
    let a_id = a["data"][0]["id"].as_str().unwrap();
    fake.revoke(a_id, "authorization_revoked").await.unwrap();
    let revocation = next_of(&mut ws, "revocation").await;
    assert_eq!(
        revocation["payload"]["subscription"]["status"],
        "authorization_revoked"
    );
    assert_eq!(revocation["metadata"]["subscription_type"], "channel.cheer");

    fake.close_session(&sid, 4000).await.unwrap();
    assert_eq!(close_code(&mut ws).await, 4000);
    let b = fake
        .subscription(b["data"][0]["id"].as_str().unwrap())
        .unwrap();
    assert_eq!(b.status, "websocket_internal_error");
    assert_eq!(
        fake.subscription(a_id).unwrap().status,
        "authorization_revoked"
    );
    assert!(fake
        .send_notification(&sid, "stream.online", "1", json!({}))
        .await
        .is_err());
}

#[tokio::test]
async fn reconnect_handover_carries_subscriptions() {
    let fake = FakeTwitch::start_with(fast()).await;
    let (token, _) = fake.issue_user_token(&["bits:read"], 3600);
    let (mut old, old_id) = connect_welcomed(&fake).await;
    for (t, v) in [("channel.cheer", "1"), ("stream.online", "1")] {
        let (status, _) = subscribe(
            &fake,
            &token,
            ws_sub(t, v, json!({"broadcaster_user_id": "1337"}), &old_id),
        )
        .await;
        assert_eq!(status, 202);
    }

    fake.set_hold_reconnect_welcome(true);
    let url = fake.send_reconnect(&old_id).await.unwrap();
    let msg = next_of(&mut old, "session_reconnect").await;
    assert_eq!(msg["payload"]["session"]["reconnect_url"], url.as_str());
    assert_eq!(msg["payload"]["session"]["status"], "reconnecting");

    // Connected to the new URL, welcome held: the old socket still delivers.
    let mut new = connect(&url).await;
    let waiting = |s: &[tau_fake_twitch::SessionInfo]| {
        s.iter()
            .any(|s| s.reconnected_from.as_deref() == Some(&old_id) && !s.welcomed)
    };
    fake.wait_for_sessions(WAIT, waiting).await.unwrap();
    let during = fake
        .send_notification(&old_id, "channel.cheer", "1", cheer_event())
        .await
        .unwrap();
    assert_eq!(
        next_of(&mut old, "notification").await["metadata"]["message_id"],
        during.as_str()
    );

    fake.set_hold_reconnect_welcome(false);
    let welcome = next_of(&mut new, "session_welcome").await;
    let new_id = welcome["payload"]["session"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(new_id, old_id);
    let info = fake.wait_for_session(WAIT).await.unwrap();
    assert_eq!(
        (info.id.as_str(), info.subscription_ids.len()),
        (new_id.as_str(), 2)
    );
    assert!(fake
        .subscriptions()
        .iter()
        .all(|s| s.is_enabled() && s.transport.session_id() == Some(&new_id)));

    let after = fake
        .send_notification(
            &new_id,
            "stream.online",
            "1",
            json!({"broadcaster_user_id": "1337"}),
        )
        .await
        .unwrap();
    assert_eq!(
        next_of(&mut new, "notification").await["metadata"]["message_id"],
        after.as_str()
    );
    assert!(fake
        .send_notification(&old_id, "stream.online", "1", json!({}))
        .await
        .is_err());

    // The server closes the old socket after the grace period (client moved: 1000).
    assert_eq!(close_code(&mut old).await, 1000);
    assert!(fake.subscriptions().iter().all(|s| s.is_enabled()));
}

#[tokio::test]
async fn reconnect_ignored_closes_with_4004_and_bad_url_with_4007() {
    let fake = FakeTwitch::start_with(fast()).await;
    let (token, _) = fake.issue_user_token(&[], 3600);
    let (mut ws, sid) = connect_welcomed(&fake).await;
    let (_, created) = subscribe(
        &fake,
        &token,
        ws_sub(
            "stream.online",
            "1",
            json!({"broadcaster_user_id": "1337"}),
            &sid,
        ),
    )
    .await;
    let url = fake.send_reconnect(&sid).await.unwrap();
    next_of(&mut ws, "session_reconnect").await;
    assert_eq!(close_code(&mut ws).await, 4004);
    let id = created["data"][0]["id"].as_str().unwrap();
    fake.wait_for_subscription_status(id, "websocket_failed_to_reconnect", WAIT)
        .await
        .unwrap();

    let mut bogus = connect(&format!("{url}-nope")).await;
    assert_eq!(close_code(&mut bogus).await, 4007);
}

/// A load generator's bulk push: every event arrives once, in order, as its
/// own notification with the message id it was given back; a type the
/// session has no subscription for sends nothing.
#[tokio::test]
async fn many_notifications_arrive_in_order_with_their_ids() {
    const EVENTS: usize = 2_000;
    let fake = FakeTwitch::start().await;
    let (token, _) = fake.issue_user_token(&["bits:read"], 3600);
    let (mut ws, sid) = connect_welcomed(&fake).await;
    let body = ws_sub(
        "channel.cheer",
        "1",
        json!({"broadcaster_user_id": "1337"}),
        &sid,
    );
    assert_eq!(subscribe(&fake, &token, body).await.0, 202);

    let err = fake
        .send_notifications(&sid, "channel.follow", "2", [json!({})])
        .unwrap_err();
    assert!(
        matches!(err, FakeError::NoMatchingSubscription { .. }),
        "{err}"
    );
    let events = (0..EVENTS).map(|i| {
        let mut event = cheer_event();
        event["bits"] = json!(i);
        event
    });
    let ids = fake
        .send_notifications(&sid, "channel.cheer", "1", events)
        .unwrap();
    assert_eq!(ids.len(), EVENTS);
    assert_eq!(
        ids.iter().collect::<std::collections::HashSet<_>>().len(),
        EVENTS,
        "message ids are unique"
    );
    for (i, id) in ids.iter().enumerate() {
        let note = next_of(&mut ws, "notification").await;
        assert_eq!(note["metadata"]["message_id"], id.as_str());
        assert_eq!(note["payload"]["event"]["bits"], i);
        assert_eq!(note["metadata"]["subscription_type"], "channel.cheer");
    }
}
