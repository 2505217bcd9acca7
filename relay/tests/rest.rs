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
        "tau_event_commit_seconds_bucket",
        "tau_event_commit_events_sum",
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

/// `whoami` answers with the calling token's name, role and types, for
/// every role (never the token's value).
#[tokio::test]
async fn whoami_names_the_calling_token() {
    use tau_relay::access::{Grant, Role};
    let relay = TestRelay::start().await;
    let overlay = relay
        .state
        .store
        .create_token(
            "follow-overlay",
            &Grant {
                role: Role::Overlay,
                event_types: Some(vec!["channel-follow".into()]),
            },
        )
        .await
        .unwrap();
    let response = relay
        .http
        .get(format!("{}/api/v1/whoami", relay.base))
        .header("Authorization", format!("Token {}", overlay.token))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let me: Value = response.json().await.unwrap();
    assert_eq!(
        me,
        serde_json::json!({"name": "follow-overlay", "role": "overlay", "event_types": ["channel-follow"]})
    );
    let admin: Value = relay.get("/api/v1/whoami/").await.json().await.unwrap();
    assert_eq!(admin["role"], "admin");
    assert!(admin["name"].as_str().unwrap().starts_with("test-"));
    assert!(admin["event_types"].is_null());
    assert!(!admin.to_string().contains(&relay.token), "no token value");
}

/// `GET …/test` shows the payload `POST` would generate, and sends nothing.
#[tokio::test]
async fn a_test_sample_is_generated_but_not_sent() {
    let relay = TestRelay::start().await;
    let mut client = relay.client(serde_json::json!({})).await;
    relay.wait_clients(1).await;
    for (key, tau, kind, version) in [
        ("channel-follow", "channel-follow", "channel.follow", "2"),
        (
            "channel.hype_train.begin",
            "channel-hype_train-begin",
            "channel.hype_train.begin",
            "2",
        ),
    ] {
        let response = relay
            .get(&format!("/api/v1/twitch-events/{key}/test"))
            .await;
        assert_eq!(response.status(), 200, "{key}");
        let sample: Value = response.json().await.unwrap();
        assert_eq!(sample["event_type"], tau, "{sample}");
        assert_eq!(sample["subscription_type"], kind);
        assert_eq!(sample["version"], version);
        let data = sample["event_data"].as_object().unwrap();
        assert!(data.contains_key("broadcaster_user_id"), "{sample}");
        // What the dashboard does next: edit a field and send it.
        let mut edited = sample["event_data"].clone();
        edited["user_name"] = "Edited".into();
        let sent = relay
            .post(
                &format!("/api/v1/twitch-events/{key}/test"),
                &edited.to_string(),
            )
            .await;
        assert_eq!(sent.status(), 200);
        let (frame, _) = client.event().await;
        assert_eq!(frame["event_type"], tau);
        assert_eq!(frame["event_data"]["user_name"], "Edited");
    }
    // The samples themselves reached no client and no store.
    assert!(client.quiet_for(300).await, "a sample is not broadcast");
    assert_eq!(relay.state.store.count_events().await.unwrap(), 0);
    let unknown = relay
        .get("/api/v1/twitch-events/channel-nonsense/test")
        .await;
    assert_eq!(unknown.status(), 400);
    let body: Value = unknown.json().await.unwrap();
    assert!(body["detail"].as_str().unwrap().contains("channel-follow"));
}

/// `created_after` (inclusive) and `created_before` (exclusive) bound the
/// history, survive into the page links, and a bad one is a 400 detail.
#[tokio::test]
async fn history_is_bounded_by_a_time_range() {
    use tau_relay::event::{EventIndex, Origin, TauEvent, SOURCE_EVENTSUB};
    let relay = TestRelay::start().await;
    let base = chrono::DateTime::from_timestamp(chrono::Utc::now().timestamp() - 3600, 0).unwrap();
    for minute in 0..4 {
        let event = TauEvent {
            id: Some(uuid::Uuid::new_v4()),
            event_id: format!("t{minute}"),
            event_type: "channel-follow".into(),
            version: "2".into(),
            event_source: SOURCE_EVENTSUB.into(),
            event_data: serde_json::value::RawValue::from_string("{}".into()).unwrap(),
            created: base + chrono::Duration::minutes(minute),
            origin: Origin::Twitch,
        };
        let index = EventIndex::from_event_data(&event.event_data);
        relay
            .state
            .store
            .insert_batch(&[(&event, &index)])
            .await
            .unwrap();
    }
    let at = |minute: i64| {
        (base + chrono::Duration::minutes(minute))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
            .replace('+', "%2B")
    };
    let ids = |page: &Value| -> Vec<String> {
        page["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["event_id"].as_str().unwrap().to_string())
            .collect()
    };
    let path = format!(
        "/api/v1/twitch-events?page_size=1&created_after={}&created_before={}",
        at(1),
        at(3)
    );
    let first: Value = relay.get(&path).await.json().await.unwrap();
    assert_eq!(ids(&first), ["t2"], "{first}");
    let next = first["next"].as_str().expect("a second page").to_string();
    assert!(
        next.contains("created_after=") && next.contains("created_before="),
        "{next}"
    );
    let next = next.replace("http://127.0.0.1:8000", "");
    let second: Value = relay.get(&next).await.json().await.unwrap();
    assert_eq!(ids(&second), ["t1"], "{second}");
    assert!(second["next"].is_null(), "{second}");
    let after: Value = relay
        .get(&format!("/api/v1/twitch-events?created_after={}", at(2)))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ids(&after), ["t3", "t2"]);
    for bad in [
        "created_after=yesterday",
        "created_before=2026-02-30T00:00:00Z",
    ] {
        let response = relay.get(&format!("/api/v1/twitch-events?{bad}")).await;
        assert_eq!(response.status(), 400, "{bad}");
        let body: Value = response.json().await.unwrap();
        assert!(
            body["detail"].as_str().unwrap().contains("RFC 3339"),
            "{body}"
        );
    }
}

/// A token request without a JSON body is refused in TAU's error shape.
#[tokio::test]
async fn token_creation_errors_are_json_details() {
    let relay = TestRelay::start().await;
    let cases: [(Option<&str>, &str, u16); 4] = [
        (None, "", 415),
        (Some("text/plain"), r#"{"name":"x","role":"bot"}"#, 415),
        (Some("application/json"), "", 400),
        (Some("application/json"), "{not json", 400),
    ];
    for (content_type, body, status) in cases {
        let mut request = relay
            .http
            .post(format!("{}/api/v1/tokens", relay.base))
            .header("Authorization", format!("Token {}", relay.token))
            .body(body.to_string());
        if let Some(content_type) = content_type {
            request = request.header("Content-Type", content_type);
        }
        let response = request.send().await.unwrap();
        assert_eq!(
            response.status().as_u16(),
            status,
            "{content_type:?} {body:?}"
        );
        assert_eq!(
            response.headers()["content-type"],
            "application/json",
            "{content_type:?} {body:?}"
        );
        let detail: Value = response.json().await.unwrap();
        assert!(detail["detail"].is_string(), "{detail}");
    }
}
