//! The Twitch side against the hermetic fake Twitch: OAuth code flow,
//! EventSub WebSocket sessions (subscribe, reconnect handover, keepalive
//! loss, every close code, revocation), token refresh and its failure, and
//! the Helix passthrough.

mod common;

use std::time::Duration;

use common::{authorize, oauth::no_redirects, TestRelay};
use serde_json::{json, Value};
use tau_fake_twitch::FakeTwitch;

const WAIT: Duration = Duration::from_secs(15);

async fn connected(fake: &FakeTwitch, expected_subs: usize) -> tau_fake_twitch::SessionInfo {
    let sessions = fake
        .wait_for_sessions(WAIT, |s| {
            s.iter()
                .any(|s| s.connected && s.subscription_ids.len() >= expected_subs)
        })
        .await
        .expect("relay subscribed on a session");
    sessions
        .into_iter()
        .rev()
        .find(|s| s.connected && s.subscription_ids.len() >= expected_subs)
        .unwrap()
}

/// The relay's current user access token, unsealed with its own key.
async fn current_access_token(relay: &TestRelay) -> String {
    relay.stored_user_token().await["access_token"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A relay subscribed to `channel.cheer` only, authorized, with its session.
async fn cheer_relay(fake: &FakeTwitch) -> (TestRelay, tau_fake_twitch::SessionInfo) {
    let relay = TestRelay::start_twitch(fake, |c| {
        c.eventsub_types = vec![("channel.cheer".into(), "1".into())]
    })
    .await;
    assert_eq!(authorize(&relay).await.status(), 200);
    let session = connected(fake, 1).await;
    (relay, session)
}

/// Default set: 26 types, raids counted twice.
const DEFAULT_SUBS: usize = 27;

#[tokio::test]
async fn authorize_subscribe_and_deliver_a_websocket_event() {
    let fake = FakeTwitch::start().await;
    let relay = TestRelay::start_twitch(&fake, |_| {}).await;
    let response = authorize(&relay).await;
    assert_eq!(response.status(), 200);
    let scopes = fake
        .token_scopes(&current_access_token(&relay).await)
        .unwrap();
    for scope in [
        "moderator:read:followers",
        "channel:read:subscriptions",
        "bits:read",
        "channel:read:hype_train",
    ] {
        assert!(
            scopes.iter().any(|s| s == scope),
            "scopes requested for the default set: {scope} in {scopes:?}"
        );
    }
    assert!(response
        .text()
        .await
        .unwrap()
        .contains(FakeTwitch::BROADCASTER_LOGIN));
    let session = connected(&fake, DEFAULT_SUBS).await;
    assert_eq!(session.subscription_ids.len(), DEFAULT_SUBS);

    let mut client = relay.client(json!({})).await;
    relay.wait_clients(1).await;
    let event = json!({"user_id": "9", "user_login": "v", "user_name": "V", "broadcaster_user_id": "1337",
        "broadcaster_user_login": "cooler_user", "broadcaster_user_name": "Cooler_User", "followed_at": "2026-01-01T00:00:00Z"});
    let message_id = fake
        .send_notification(&session.id, "channel.follow", "2", event.clone())
        .await
        .unwrap();
    let (frame, _) = client.event().await;
    common::assert_tau_frame(&frame);
    assert_eq!(frame["event_id"], message_id.as_str());
    assert_eq!(frame["event_type"], "channel-follow");
    assert_eq!(frame["event_data"], event);

    // Tokens are stored encrypted and never shown.
    let sealed = relay
        .state
        .store
        .setting("twitch_user_token")
        .await
        .unwrap()
        .unwrap();
    assert!(!sealed.contains("refresh") && !sealed.contains("access"));
    let status = relay.get("/api/v1/status").await.text().await.unwrap();
    let parsed: Value = serde_json::from_str(&status).unwrap();
    assert_eq!(parsed["twitch"]["eventsub"]["state"], "connected");
    assert_eq!(parsed["twitch"]["user_token"]["state"], "valid");
    assert_eq!(
        parsed["twitch"]["eventsub"]["subscriptions"]
            .as_array()
            .unwrap()
            .len(),
        DEFAULT_SUBS
    );
    let key_material = relay
        .state
        .store
        .setting("twitch_user_token")
        .await
        .unwrap()
        .unwrap();
    assert!(!status.contains(&key_material));
}

#[tokio::test]
async fn callback_rejects_a_forged_or_missing_state() {
    let fake = FakeTwitch::start().await;
    let relay = TestRelay::start_twitch(&fake, |_| {}).await;
    let http = no_redirects();
    let forged = http
        .get(format!(
            "{}/twitch-callback/?code=x&state=forged",
            relay.base
        ))
        .header("Cookie", "tau_oauth_state=forged")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let no_cookie = http
        .get(format!("{}/twitch-callback/?code=x&state=abc", relay.base))
        .send()
        .await
        .unwrap();
    assert_eq!(no_cookie.status(), 403);
    let anonymous = http
        .get(format!("{}/twitch/authorize", relay.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        anonymous.status(),
        401,
        "starting the flow needs a TAU token"
    );
}

#[tokio::test]
async fn reconnect_handover_loses_and_duplicates_nothing() {
    let fake = FakeTwitch::start().await;
    let relay = TestRelay::start_twitch(&fake, |_| {}).await;
    authorize(&relay).await;
    let old = connected(&fake, DEFAULT_SUBS).await;
    let mut client = relay.client(json!({})).await;
    relay.wait_clients(1).await;

    fake.set_hold_reconnect_welcome(true);
    fake.send_reconnect(&old.id).await.unwrap();
    // The old socket still delivers while the new one waits for its welcome.
    let during = fake
        .send_notification(&old.id, "channel.cheer", "1", json!({"bits": 1}))
        .await
        .unwrap();
    fake.set_hold_reconnect_welcome(false);
    let new = fake
        .wait_for_sessions(WAIT, |s| {
            s.iter().any(|s| {
                s.id != old.id && s.connected && s.welcomed && !s.subscription_ids.is_empty()
            })
        })
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.id != old.id && s.connected && s.welcomed)
        .unwrap();
    assert_eq!(
        new.subscription_ids.len(),
        DEFAULT_SUBS,
        "subscriptions carried over, none created again"
    );
    let after = fake
        .send_notification(&new.id, "channel.cheer", "1", json!({"bits": 2}))
        .await
        .unwrap();
    assert_eq!(client.event().await.0["event_id"], during.as_str());
    assert_eq!(client.event().await.0["event_id"], after.as_str());
    assert!(client.quiet_for(300).await);
    assert_eq!(
        fake.subscriptions().len(),
        DEFAULT_SUBS,
        "no duplicate subscriptions at Twitch"
    );
}

#[tokio::test]
async fn every_close_code_leads_to_a_working_new_session() {
    let fake = FakeTwitch::start().await;
    let relay = TestRelay::start_twitch(&fake, |c| {
        c.eventsub_types = vec![("channel.cheer".into(), "1".into())]
    })
    .await;
    authorize(&relay).await;
    let mut client = relay.client(json!({})).await;
    relay.wait_clients(1).await;
    let mut session = connected(&fake, 1).await;
    for code in 4000..=4007u16 {
        fake.close_session(&session.id, code).await.unwrap();
        let previous = session.id.clone();
        session = fake
            .wait_for_sessions(WAIT, |s| {
                s.iter()
                    .any(|s| s.id != previous && s.connected && !s.subscription_ids.is_empty())
            })
            .await
            .unwrap_or_else(|e| panic!("no new session after {code}: {e}"))
            .into_iter()
            .rev()
            .find(|s| s.connected && !s.subscription_ids.is_empty())
            .unwrap();
        let id = fake
            .send_notification(&session.id, "channel.cheer", "1", json!({"bits": code}))
            .await
            .unwrap();
        let (frame, _) = client.event().await;
        assert_eq!(frame["event_id"], id.as_str(), "after close {code}");
    }
}

#[tokio::test]
async fn keepalive_silence_means_a_fresh_session() {
    let fake = FakeTwitch::start().await;
    let relay = TestRelay::start_twitch(&fake, |c| {
        c.eventsub_types = vec![("stream.online".into(), "1".into())]
    })
    .await;
    authorize(&relay).await;
    let first = connected(&fake, 1).await;
    fake.pause_keepalives(&first.id, true);
    let second = fake
        .wait_for_sessions(Duration::from_secs(40), |s| {
            s.iter()
                .any(|s| s.id != first.id && s.connected && !s.subscription_ids.is_empty())
        })
        .await
        .expect("relay noticed the silence and started over");
    assert!(second.iter().any(|s| s.id != first.id));
}

#[tokio::test]
async fn revocations_are_recorded_and_shown() {
    let fake = FakeTwitch::start().await;
    let (relay, session) = cheer_relay(&fake).await;
    fake.revoke(&session.subscription_ids[0], "authorization_revoked")
        .await
        .unwrap();
    let mut status = Value::Null;
    for _ in 0..100 {
        status = relay.get("/api/v1/status").await.json().await.unwrap();
        if !status["revocations"].as_array().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status["revocations"][0]["status"], "authorization_revoked");
    assert_eq!(status["revocations"][0]["transport"], "websocket");
    assert_eq!(
        status["twitch"]["eventsub"]["subscriptions"][0]["status"],
        "authorization_revoked"
    );
}

#[tokio::test]
async fn helix_passthrough_forwards_and_refreshes_once_on_401() {
    let fake = FakeTwitch::start().await;
    let (relay, _) = cheer_relay(&fake).await;
    let users = relay.get("/api/twitch/helix/users?login=cooler_user").await;
    assert_eq!(users.status(), 200);
    assert!(users.headers().contains_key("ratelimit-remaining"));
    let body: Value = users.json().await.unwrap();
    assert_eq!(body["data"][0]["id"], FakeTwitch::BROADCASTER_ID);

    // Expire the current access token: the relay refreshes and retries once.
    let before: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/token"))
        .collect();
    fake.expire_access_token(&current_access_token(&relay).await);
    let again = relay.get("/api/twitch/helix/users?login=cooler_user").await;
    assert_eq!(again.status(), 200);
    let after: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/token"))
        .collect();
    assert_eq!(after.len(), before.len() + 1, "exactly one refresh");

    let missing = relay.get("/api/twitch/helix/nothing-here").await;
    assert_eq!(
        missing.status(),
        404,
        "Twitch's status comes back unchanged"
    );
}

#[tokio::test]
async fn a_refused_refresh_means_authorization_needed_not_a_crash() {
    let fake = FakeTwitch::start().await;
    let (relay, _) = cheer_relay(&fake).await;
    fake.revoke_refresh_tokens();
    fake.expire_access_token(&current_access_token(&relay).await);
    let response = relay.get("/api/twitch/helix/users?login=cooler_user").await;
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert!(body["detail"]
        .as_str()
        .unwrap()
        .contains("authorization needed"));
    let status: Value = relay.get("/api/v1/status").await.json().await.unwrap();
    assert_eq!(
        status["twitch"]["user_token"]["state"],
        "authorization_needed"
    );
    // The relay keeps serving.
    assert_eq!(
        relay
            .post("/api/v1/twitch-events/channel-follow/test", "")
            .await
            .status(),
        200
    );
    // Authorizing again recovers.
    assert_eq!(authorize(&relay).await.status(), 200);
    let status: Value = relay.get("/api/v1/status").await.json().await.unwrap();
    assert_eq!(status["twitch"]["user_token"]["state"], "valid");
}

/// Many requests find the token expired at once: one refresh, no moment of
/// "authorization needed", every request served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_401s_share_one_refresh() {
    let fake = FakeTwitch::start().await;
    let (relay, _) = cheer_relay(&fake).await;
    let refreshes = |fake: &FakeTwitch| {
        fake.requests()
            .into_iter()
            .filter(|r| r.path.ends_with("/token"))
            .count()
    };
    let before = refreshes(&fake);
    fake.expire_access_token(&current_access_token(&relay).await);
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let relay = relay.clone();
            tokio::spawn(async move {
                relay
                    .get("/api/twitch/helix/users?login=cooler_user")
                    .await
                    .status()
            })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap(), 200);
    }
    assert_eq!(refreshes(&fake), before + 1, "exactly one refresh");
    let status: Value = relay.get("/api/v1/status").await.json().await.unwrap();
    assert_eq!(status["twitch"]["user_token"]["state"], "valid");
}

/// The hourly validation racing a refresh never writes the older token back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_racing_a_refresh_keeps_the_newer_token() {
    let fake = FakeTwitch::start().await;
    let (relay, _) = cheer_relay(&fake).await;
    let tokens = relay.state.twitch.tokens.clone();
    for round in 0..10 {
        let stale = current_access_token(&relay).await;
        let validating = {
            let tokens = tokens.clone();
            tokio::spawn(async move { tokens.validate_user().await })
        };
        let refreshed = tokens.refresh_user(&stale).await.unwrap();
        validating.await.unwrap().unwrap();
        assert_ne!(refreshed, stale);
        assert_eq!(
            current_access_token(&relay).await,
            refreshed,
            "round {round}: the stored token is the refreshed one"
        );
    }
}

/// `POST /api/v1/twitch/resubscribe` closes the EventSub session; a new
/// session makes the subscriptions again. Without Twitch: 409.
#[tokio::test]
async fn resubscribe_starts_a_new_session_with_new_subscriptions() {
    let fake = FakeTwitch::start().await;
    let (relay, first) = cheer_relay(&fake).await;
    let response = relay.post("/api/v1/twitch/resubscribe", "").await;
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("session"),
        "{body}"
    );
    let sessions = fake
        .wait_for_sessions(WAIT, |s| {
            s.iter()
                .any(|s| s.id != first.id && s.connected && !s.subscription_ids.is_empty())
        })
        .await
        .expect("a new session with subscriptions");
    let old = sessions.iter().find(|s| s.id == first.id).unwrap();
    assert!(!old.connected, "the old session was closed");
    let new = sessions.iter().rev().find(|s| s.connected).unwrap();
    assert!(
        new.subscription_ids
            .iter()
            .all(|id| !first.subscription_ids.contains(id)),
        "subscriptions made anew"
    );
    // The status shows the new session.
    let mut status = Value::Null;
    for _ in 0..100 {
        status = relay.get("/api/v1/status").await.json().await.unwrap();
        if status["twitch"]["eventsub"]["session_id"] == new.id.as_str() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status["twitch"]["eventsub"]["session_id"], new.id.as_str());
    assert_eq!(status["twitch"]["eventsub"]["state"], "connected");

    // Asked of a standby replica: passed on, and the holder starts anew.
    let standby = TestRelay::start_twitch_on(
        &fake,
        relay.state.store.clone(),
        relay.state.secret_key.clone(),
        |c| {
            c.eventsub_types = vec![("channel.cheer".into(), "1".into())];
            c.replica_id = "standby-replica".into();
        },
    )
    .await;
    let mut standby_status = Value::Null;
    for _ in 0..100 {
        standby_status = standby.get("/api/v1/status").await.json().await.unwrap();
        if standby_status["twitch"]["eventsub"]["state"] == "standby" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        standby_status["twitch"]["eventsub"]["state"], "standby",
        "{standby_status}"
    );
    let response = standby.post("/api/v1/twitch/resubscribe", "").await;
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("another replica"),
        "{body}"
    );
    fake.wait_for_sessions(WAIT, |s| {
        s.iter().any(|s| {
            s.id != new.id && s.id != first.id && s.connected && !s.subscription_ids.is_empty()
        })
    })
    .await
    .expect("the holder started a third session");

    let unconfigured = TestRelay::start().await;
    let response = unconfigured.post("/api/v1/twitch/resubscribe", "").await;
    assert_eq!(response.status(), 409);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("TWITCH_CLIENT_ID"),
        "{body}"
    );
}
