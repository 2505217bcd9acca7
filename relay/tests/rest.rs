//! REST API: history, pagination, filters, replay, test events, tokens, ops.

mod common;

use common::{assert_tau_frame, TestRelay};
use serde_json::Value;

async fn seed(relay: &TestRelay) {
    for i in 0..5 {
        let follow = format!(
            r#"{{"user_id":"{i}","user_login":"viewer{i}","user_name":"Viewer{i}","broadcaster_user_id":"1337"}}"#
        );
        assert_eq!(
            relay
                .notify(&format!("f{i}"), "channel.follow", "2", &follow)
                .await,
            204
        );
    }
    let raid = r#"{"from_broadcaster_user_id":"77","from_broadcaster_user_login":"raider","from_broadcaster_user_name":"Raider","to_broadcaster_user_id":"1337","to_broadcaster_user_login":"me","to_broadcaster_user_name":"Me","viewers":9}"#;
    relay.notify("r1", "channel.raid", "1", raid).await;
    let redemption = r#"{"id":"x","user_id":"5","user_login":"viewer5","user_name":"Viewer5","reward":{"id":"reward-1","title":"t","cost":1,"prompt":""}}"#;
    relay
        .notify(
            "p1",
            "channel.channel_points_custom_reward_redemption.add",
            "1",
            redemption,
        )
        .await;
}

#[tokio::test]
async fn history_pages_newest_first_with_working_links() {
    let relay = TestRelay::start().await;
    seed(&relay).await;
    let first: Value = relay
        .get("/api/v1/twitch-events/?page_size=3")
        .await
        .json()
        .await
        .unwrap();
    let ids = |page: &Value| {
        page["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["event_id"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&first), ["p1", "r1", "f4"]);
    assert!(first["previous"].is_null());
    for event in first["results"].as_array().unwrap() {
        assert_tau_frame(event);
    }
    let next = first["next"]
        .as_str()
        .unwrap()
        .replace("http://127.0.0.1:8000", &relay.base);
    let second: Value = relay
        .get(next.trim_start_matches(&relay.base))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ids(&second), ["f3", "f2", "f1"]);
    let prev = second["previous"]
        .as_str()
        .unwrap()
        .replace("http://127.0.0.1:8000", "");
    let back: Value = relay.get(&prev).await.json().await.unwrap();
    assert_eq!(ids(&back), ["p1", "r1", "f4"]);
    // Garbage, and a cursor whose first character is multibyte (it once panicked).
    for cursor in ["garbage", "w6kx", "8J-YgA"] {
        let path = format!("/api/v1/twitch-events?cursor={cursor}");
        assert_eq!(relay.get(&path).await.status(), 400, "{cursor}");
    }
}

#[tokio::test]
async fn history_filters_match_the_original_tau() {
    let relay = TestRelay::start().await;
    seed(&relay).await;
    let count = |path: String| {
        let relay = &relay;
        async move {
            let page: Value = relay.get(&path).await.json().await.unwrap();
            page["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["event_id"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    let cases: &[(&str, &[&str])] = &[
        ("event_type=channel-raid", &["r1"]),
        ("event_type=channel.raid", &["r1"]),
        ("user_id=3", &["f3"]),
        ("user_name=VIEWER2", &["f2"]),
        ("user_name=raider", &["r1"]),
        ("reward_id=reward-1", &["p1"]),
        ("raid_from=Raider", &["r1"]),
        ("raid_to=1337", &["r1"]),
        ("raid_to=nobody", &[]),
    ];
    for (query, expected) in cases {
        let found = count(format!("/api/v1/twitch-events?{query}")).await;
        assert_eq!(found, *expected, "{query}");
    }
}

#[tokio::test]
async fn auth_is_required_except_for_the_heartbeat() {
    let relay = TestRelay::start().await;
    let heartbeat: Value = relay
        .http
        .get(format!("{}/api/v1/heartbeat/", relay.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(heartbeat, serde_json::json!({"message": "pong"}));
    for path in [
        "/api/v1/twitch-events",
        "/api/v1/status",
        "/api/v1/twitch/eventsub-subscriptions",
        "/api/v1/tau-user-token/",
    ] {
        let anonymous = relay
            .http
            .get(format!("{}{path}", relay.base))
            .send()
            .await
            .unwrap();
        assert_eq!(anonymous.status(), 401, "{path}");
        let body: Value = anonymous.json().await.unwrap();
        assert!(body["detail"].is_string());
        let wrong = relay
            .http
            .get(format!("{}{path}", relay.base))
            .header("Authorization", "Token nope")
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 401, "{path}");
    }
    let test = relay
        .http
        .post(format!(
            "{}/api/v1/twitch-events/channel-follow/test",
            relay.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        test.status(),
        401,
        "test events need auth (the original did not)"
    );
}

#[tokio::test]
async fn replay_rebroadcasts_the_stored_event_without_storing_anything() {
    let relay = TestRelay::start().await;
    seed(&relay).await;
    let page: Value = relay
        .get("/api/v1/twitch-events?event_type=channel-raid")
        .await
        .json()
        .await
        .unwrap();
    let original = page["results"][0].clone();
    let mut client = relay.client(serde_json::json!({})).await;
    relay.wait_clients(1).await;
    let id = original["id"].as_str().unwrap();
    let response: Value = relay
        .post(&format!("/api/v1/twitch-events/{id}/replay/"), "")
        .await
        .json()
        .await
        .unwrap();
    let (frame, _) = client.event().await;
    assert_eq!(frame, response);
    assert_eq!(frame["origin"], "replay");
    for field in [
        "id",
        "event_id",
        "event_type",
        "event_source",
        "event_data",
        "created",
    ] {
        assert_eq!(frame[field], original[field], "{field}");
    }
    assert_eq!(
        relay
            .get(&format!("/api/v1/twitch-events/{id}/replay"))
            .await
            .status(),
        200,
        "GET replays too"
    );
    assert_eq!(relay.state.store.count_events().await.unwrap(), 7);
    let missing = relay
        .post(
            &format!("/api/v1/twitch-events/{}/replay", uuid::Uuid::new_v4()),
            "",
        )
        .await;
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn test_events_are_generated_broadcast_and_never_stored() {
    let relay = TestRelay::start().await;
    let mut client = relay.client(serde_json::json!({})).await;
    relay.wait_clients(1).await;
    for kind in [
        "channel-hype_train-begin",
        "channel.chat.message",
        "channel-follow",
    ] {
        let response = relay
            .post(&format!("/api/v1/twitch-events/{kind}/test/"), "")
            .await;
        assert_eq!(response.status(), 200, "{kind}");
        let (frame, _) = client.event().await;
        assert_tau_frame(&frame);
        assert!(frame["id"].is_null());
        assert_eq!(frame["origin"], "test");
        assert_eq!(frame["event_source"], "TestCall");
        assert_eq!(frame["event_type"], kind.replace('.', "-"));
        assert!(!frame["event_data"].as_object().unwrap().is_empty());
    }
    let custom = relay
        .post(
            "/api/v1/twitch-events/channel-cheer/test",
            r#"{"bits":1000,"user_name":"Me"}"#,
        )
        .await;
    assert_eq!(custom.status(), 200);
    let (frame, _) = client.event().await;
    assert_eq!(
        frame["event_data"],
        serde_json::json!({"bits": 1000, "user_name": "Me"})
    );
    assert_eq!(relay.state.store.count_events().await.unwrap(), 0);

    let unknown = relay
        .post("/api/v1/twitch-events/channel-nonsense/test", "")
        .await;
    assert_eq!(unknown.status(), 400);
    let body: Value = unknown.json().await.unwrap();
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("channel-follow") && detail.contains("channel-hype_train-begin"),
        "{detail}"
    );
    assert_eq!(
        relay
            .post("/api/v1/twitch-events/channel-cheer/test", "[1]")
            .await
            .status(),
        400
    );
}

#[tokio::test]
async fn catalog_lists_every_known_type() {
    let relay = TestRelay::start().await;
    let catalog: Vec<Value> = relay
        .get("/api/v1/twitch/eventsub-subscriptions/")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(catalog.len(), 80);
    let follow = catalog
        .iter()
        .find(|e| e["name"] == "channel.follow")
        .unwrap();
    assert_eq!(follow["version"], "2");
    assert_eq!(follow["scope_required"], "moderator:read:followers");
    assert_eq!(follow["event_type"], "channel-follow");
    assert_eq!(follow["active"], true);
}

#[tokio::test]
async fn tokens_rotate_and_are_never_listed() {
    let relay = TestRelay::start().await;
    let current: Value = relay
        .get("/api/v1/tau-user-token/")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(current["token"], relay.token.as_str());
    let list = relay.get("/api/v1/tokens").await.text().await.unwrap();
    assert!(
        !list.contains(&relay.token),
        "token values are never listed"
    );
    let refreshed: Value = relay
        .post("/api/v1/tau-user-token/refresh/", "")
        .await
        .json()
        .await
        .unwrap();
    let new = refreshed["token"].as_str().unwrap();
    assert_ne!(new, relay.token);
    assert_eq!(
        relay.get("/api/v1/status").await.status(),
        401,
        "old token revoked"
    );
    let ok = relay
        .http
        .get(format!("{}/api/v1/status", relay.base))
        .header("Authorization", format!("Token {new}"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn ops_endpoints_answer() {
    let relay = TestRelay::start().await;
    let get = |p: &str| relay.http.get(format!("{}{p}", relay.base)).send();
    assert_eq!(get("/healthz").await.unwrap().status(), 200);
    assert_eq!(get("/readyz").await.unwrap().status(), 200);
    let metrics = get("/metrics").await.unwrap().text().await.unwrap();
    for name in [
        "tau_events_delivered_total",
        "tau_clients_connected",
        "tau_events_dropped_total",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }
    let page = get("/").await.unwrap();
    assert!(page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("script-src 'self'"));
    assert!(page.text().await.unwrap().contains("/app.js"));
    relay.state.store.close().await;
    assert_eq!(get("/readyz").await.unwrap().status(), 503);
}
