//! The webhook path end to end: signed POST → store → websocket frame.

mod common;

use common::{assert_tau_frame, notification_body, TestRelay, SECRET};
use serde_json::Value;

const FOLLOW: &str = r#"{"user_id":"1234","user_login":"cool_user","user_name":"Cool_User","broadcaster_user_id":"1337","broadcaster_user_login":"cooler_user","broadcaster_user_name":"Cooler_User","followed_at":"2020-07-15T18:16:11.17106713Z"}"#;

#[tokio::test]
async fn signed_notification_reaches_client_in_tau_format() {
    let relay = TestRelay::start().await;
    let mut client = relay.client(serde_json::json!({})).await;
    relay.wait_clients(1).await;
    assert_eq!(
        relay.notify("msg-1", "channel.follow", "2", FOLLOW).await,
        204
    );
    let (frame, text) = client.event().await;
    assert_tau_frame(&frame);
    assert_eq!(frame["event_id"], "msg-1");
    assert_eq!(frame["event_type"], "channel-follow");
    assert_eq!(frame["event_source"], "EventSub");
    assert_eq!(frame["origin"], "twitch");
    assert!(
        text.contains(FOLLOW),
        "event_data must be Twitch's bytes verbatim: {text}"
    );
    let id = frame["id"].as_str().unwrap();
    let stored: Value = relay
        .get(&format!("/api/v1/twitch-events/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(stored, frame);
}

/// Every example Twitch documents (80 type@version pairs) is accepted,
/// stored, and delivered with its event bytes unchanged.
#[tokio::test]
async fn every_twitch_example_is_accepted_stored_and_delivered() {
    let relay = TestRelay::start().await;
    let mut client = relay.client(serde_json::json!({})).await;
    relay.wait_clients(1).await;
    let examples: serde_json::Map<String, Value> =
        serde_json::from_str(include_str!("../../eventsub/src/data/examples.json")).unwrap();
    let mut sent = Vec::new();
    for (key, list) in &examples {
        let (kind, version) = key.split_once('@').unwrap();
        for (i, example) in list.as_array().unwrap().iter().enumerate() {
            // Post the example exactly as Twitch's docs show it.
            let body = serde_json::to_string(example).unwrap();
            let event_text = serde_json::to_string(&example["event"]).unwrap();
            let id = format!("{key}#{i}");
            let status = relay
                .post_webhook("notification", &id, &body)
                .await
                .status();
            assert_eq!(status, 204, "{key}");
            sent.push((id, kind.replace('.', "-"), version.to_string(), event_text));
        }
    }
    assert!(sent.len() >= 80);
    for (id, tau_type, _version, event_text) in &sent {
        let (frame, text) = client.event().await;
        assert_tau_frame(&frame);
        assert_eq!(frame["event_id"], id.as_str());
        assert_eq!(frame["event_type"], tau_type.as_str());
        assert!(
            text.contains(&format!(r#""event_data":{event_text}"#)),
            "{id}: {text}"
        );
    }
    assert_eq!(
        relay.state.store.count_events().await.unwrap(),
        sent.len() as i64
    );
}

#[tokio::test]
async fn duplicate_message_ids_are_acknowledged_but_delivered_once() {
    let relay = TestRelay::start().await;
    let mut client = relay.client(serde_json::json!({})).await;
    relay.wait_clients(1).await;
    for _ in 0..3 {
        assert_eq!(
            relay.notify("same-id", "channel.follow", "2", FOLLOW).await,
            204
        );
    }
    relay
        .notify("other-id", "channel.follow", "2", FOLLOW)
        .await;
    assert_eq!(client.event().await.0["event_id"], "same-id");
    assert_eq!(client.event().await.0["event_id"], "other-id");
    assert!(client.quiet_for(200).await);
    assert_eq!(relay.state.store.count_events().await.unwrap(), 2);
}

#[tokio::test]
async fn verification_challenge_is_answered_as_plain_text() {
    let relay = TestRelay::start().await;
    let body = r#"{"challenge":"pogchamp-kappa-360noscope-vohiyo","subscription":{"id":"x","status":"webhook_callback_verification_pending","type":"channel.follow","version":"2","condition":{},"transport":{"method":"webhook"}}}"#;
    let response = relay
        .post_webhook("webhook_callback_verification", "v-1", body)
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/plain");
    assert_eq!(
        response.text().await.unwrap(),
        "pogchamp-kappa-360noscope-vohiyo"
    );
}

#[tokio::test]
async fn bad_signatures_stale_messages_and_missing_headers_are_403() {
    let relay = TestRelay::start().await;
    let body = notification_body("channel.follow", "2", FOLLOW);
    let now = chrono::Utc::now().to_rfc3339();
    let wrong = relay
        .post_webhook_at("notification", "a", &body, &now, "another-secret")
        .await;
    assert_eq!(wrong.status(), 403);
    let old = (chrono::Utc::now() - chrono::Duration::minutes(11)).to_rfc3339();
    assert_eq!(
        relay
            .post_webhook_at("notification", "b", &body, &old, SECRET)
            .await
            .status(),
        403
    );
    let bare = relay
        .http
        .post(format!("{}/twitch/eventsub", relay.base))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), 403);
    // A valid signature over other bytes: tampered body.
    let sig = tau_relay::ingest::signature::sign(SECRET.as_bytes(), "c", &now, b"{}");
    let tampered = relay
        .http
        .post(format!("{}/twitch/eventsub", relay.base))
        .header("Twitch-Eventsub-Message-Id", "c")
        .header("Twitch-Eventsub-Message-Timestamp", &now)
        .header("Twitch-Eventsub-Message-Signature", sig)
        .header("Twitch-Eventsub-Message-Type", "notification")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(tampered.status(), 403);
    assert_eq!(relay.state.store.count_events().await.unwrap(), 0);
    let metrics = relay
        .http
        .get(format!("{}/metrics", relay.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"tau_webhook_verification_failures_total{reason="bad_signature"} 2"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"tau_webhook_verification_failures_total{reason="stale_timestamp"} 1"#)
    );
    assert!(
        metrics.contains(r#"tau_webhook_verification_failures_total{reason="missing_headers"} 1"#)
    );
}

#[tokio::test]
async fn webhooks_are_refused_when_no_secret_is_configured() {
    let relay = TestRelay::start_with(|c| c.twitch.webhook_secret = None).await;
    assert_eq!(relay.notify("a", "channel.follow", "2", FOLLOW).await, 403);
}

#[tokio::test]
async fn oversize_bodies_are_413() {
    let relay = TestRelay::start().await;
    let huge = format!(r#"{{"pad":"{}"}}"#, "x".repeat(1024 * 1024 + 10));
    let body = notification_body("channel.follow", "2", &huge);
    assert_eq!(
        relay
            .post_webhook("notification", "big", &body)
            .await
            .status(),
        413
    );
}

#[tokio::test]
async fn signed_but_malformed_json_is_400_and_not_stored() {
    let relay = TestRelay::start().await;
    for body in [
        "{not json",
        r#"{"subscription":{"type":"channel.follow"}}"#,
        r#"{"event":{}}"#,
    ] {
        assert_eq!(
            relay.post_webhook("notification", "m", body).await.status(),
            400,
            "{body}"
        );
    }
    assert_eq!(
        relay.post_webhook("mystery", "m2", "{}").await.status(),
        400
    );
    assert_eq!(relay.state.store.count_events().await.unwrap(), 0);
}

#[tokio::test]
async fn revocations_are_recorded_once_and_shown_in_status() {
    let relay = TestRelay::start().await;
    let body = r#"{"subscription":{"id":"sub-9","status":"authorization_revoked","type":"channel.follow","version":"2","cost":1,"condition":{"broadcaster_user_id":"1337"},"transport":{"method":"webhook","callback":"https://example.com/cb"},"created_at":"2019-11-16T10:11:12.634234626Z"}}"#;
    for _ in 0..2 {
        assert_eq!(
            relay
                .post_webhook("revocation", "rev-1", body)
                .await
                .status(),
            204
        );
    }
    let status: Value = relay.get("/api/v1/status").await.json().await.unwrap();
    let revocations = status["revocations"].as_array().unwrap();
    assert_eq!(revocations.len(), 1);
    assert_eq!(revocations[0]["subscription_id"], "sub-9");
    assert_eq!(revocations[0]["status"], "authorization_revoked");
    assert_eq!(revocations[0]["transport"], "webhook");
}

#[tokio::test]
async fn database_outage_answers_503_so_twitch_retries() {
    let relay = TestRelay::start().await;
    assert_eq!(
        relay.notify("before", "channel.follow", "2", FOLLOW).await,
        204
    );
    relay.state.store.close().await;
    let response = relay
        .post_webhook(
            "notification",
            "during",
            &notification_body("channel.follow", "2", FOLLOW),
        )
        .await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
}

/// `drop.entitlement.grant` batches entitlements in `events`: one TAU event each.
#[tokio::test]
async fn batched_notifications_become_one_event_per_entry() {
    let relay = TestRelay::start().await;
    let mut client = relay.client(serde_json::json!({})).await;
    relay.wait_clients(1).await;
    let body = r#"{"subscription":{"id":"s","status":"enabled","type":"drop.entitlement.grant","version":"1","condition":{"organization_id":"o"},"transport":{"method":"webhook","callback":"https://x"},"created_at":"2024-01-01T00:00:00Z","cost":0},"events":[{"id":"a","data":{"benefit_id":"b1"}},{"id":"b","data":{"benefit_id":"b2"}}]}"#;
    for _ in 0..2 {
        assert_eq!(
            relay
                .post_webhook("notification", "batch-1", body)
                .await
                .status(),
            204
        );
    }
    let (first, _) = client.event().await;
    let (second, _) = client.event().await;
    assert_eq!(first["event_id"], "batch-1:0");
    assert_eq!(first["event_data"]["data"]["benefit_id"], "b1");
    assert_eq!(second["event_id"], "batch-1:1");
    assert_eq!(first["event_type"], "drop-entitlement-grant");
    assert!(
        client.quiet_for(200).await,
        "the resent batch is not delivered again"
    );
}

/// `/ws/tau-status/` needs a token, then pushes the status on change.
#[tokio::test]
async fn status_socket_authenticates_and_pushes_changes() {
    use futures_util::{SinkExt, StreamExt};
    let relay = TestRelay::start().await;
    let status_url = relay.ws_url.replace("twitch-events", "tau-status");
    let (mut anonymous, _) = tokio_tungstenite::connect_async(&status_url).await.unwrap();
    anonymous.send(r#"{"token":"wrong"}"#.into()).await.unwrap();
    let error = anonymous
        .next()
        .await
        .unwrap()
        .unwrap()
        .into_text()
        .unwrap();
    assert!(error.contains("error"), "{error}");

    let (mut socket, _) = tokio_tungstenite::connect_async(&status_url).await.unwrap();
    socket
        .send(serde_json::json!({"token": relay.token}).to_string().into())
        .await
        .unwrap();
    let first: Value =
        serde_json::from_str(&socket.next().await.unwrap().unwrap().into_text().unwrap()).unwrap();
    assert_eq!(first["events_stored"], 0);
    assert!(first["twitch"]["eventsub"]["state"].is_string());
    let body = r#"{"subscription":{"id":"sub-1","status":"user_removed","type":"channel.follow","version":"2","condition":{},"transport":{"method":"webhook"}}}"#;
    relay.post_webhook("revocation", "rev-9", body).await;
    let pushed = tokio::time::timeout(std::time::Duration::from_secs(5), socket.next())
        .await
        .unwrap();
    let pushed: Value =
        serde_json::from_str(&pushed.unwrap().unwrap().into_text().unwrap()).unwrap();
    assert_eq!(pushed["revocations"][0]["status"], "user_removed");
    let text = pushed.to_string();
    assert!(!text.contains(&relay.token), "no token in status");
}
