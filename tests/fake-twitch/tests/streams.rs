//! Other channels: users besides the broadcaster, `GET /streams` and its
//! checks, and going live / offline.

mod common;

use common::helix;
use reqwest::Method;
use serde_json::Value;
use tau_fake_twitch::{FakeTwitch, StreamInfo};

async fn get(fake: &FakeTwitch, path: &str, token: &str) -> (u16, Value) {
    let resp = helix(fake, Method::GET, path, token).send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

#[tokio::test]
async fn other_users_go_live_and_offline_as_helix_lists_them() {
    let fake = FakeTwitch::start().await;
    let app = fake.issue_app_token();
    fake.add_user("Other_One", "5001");
    let (status, users) = get(&fake, "/users?login=other_one&login=cooler_user", &app).await;
    assert_eq!(status, 200);
    let logins: Vec<_> = users["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["login"].clone())
        .collect();
    assert_eq!(logins, ["cooler_user", "other_one"]);
    assert_eq!(
        get(&fake, "/users?id=5001", &app).await.1["data"][0]["display_name"],
        "Other_One"
    );

    // No subscription of that channel: nobody is notified, Helix lists it.
    let sent = fake
        .go_live("5001", StreamInfo::new("77", "hello"))
        .await
        .unwrap();
    assert!(sent.is_empty());
    for query in [
        "user_id=5001",
        "user_login=OTHER_ONE",
        "user_id=9&user_login=other_one",
        "",
    ] {
        let (status, body) = get(&fake, &format!("/streams?{query}"), &app).await;
        assert_eq!(status, 200, "{query}");
        let stream = &body["data"][0];
        assert_eq!(stream["id"], "77", "{query}: {body}");
        assert_eq!(stream["user_name"], "Other_One");
        assert_eq!(stream["title"], "hello");
        assert_eq!(stream["type"], "live");
        assert!(stream["started_at"].is_string() && stream["tags"].is_array());
    }
    assert_eq!(
        get(&fake, "/streams?user_id=9", &app).await.1["data"],
        serde_json::json!([])
    );

    // Twitch's checks.
    for query in ["first=0", "first=101", "first=x"] {
        assert_eq!(
            get(&fake, &format!("/streams?{query}"), &app).await.0,
            400,
            "{query}"
        );
    }
    let many: Vec<_> = (0..101).map(|i| format!("user_id={i}")).collect();
    assert_eq!(
        get(&fake, &format!("/streams?{}", many.join("&")), &app)
            .await
            .0,
        400
    );
    assert_eq!(
        reqwest::get(format!("{}/streams", fake.api_url()))
            .await
            .unwrap()
            .status(),
        401
    );

    // Offline, and a broadcast Helix does not list yet.
    fake.go_offline("5001").await.unwrap();
    assert_eq!(
        get(&fake, "/streams?user_id=5001", &app).await.1["data"],
        serde_json::json!([])
    );
    let mut lagging = StreamInfo::new("78", "soon");
    lagging.listed = false;
    fake.go_live("5001", lagging).await.unwrap();
    assert_eq!(
        get(&fake, "/streams?user_id=5001", &app).await.1["data"],
        serde_json::json!([])
    );
}
