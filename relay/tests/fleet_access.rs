//! Token roles across replicas on real Postgres and Redis: a token revoked
//! on one replica has its sockets on another closed within a second, and
//! the seeded `TAU_API_TOKEN` is an admin everywhere.
//!
//! Skipped (with a printed reason) when Postgres/Redis binaries are absent,
//! failed instead under `TAU_REQUIRE_SERVICES=1`.

mod fleet;

use std::time::{Duration, Instant};

use fleet::{Replica, TOKEN};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_revoked_on_one_replica_loses_its_sockets_on_another() {
    let Some(pg) = tau_test_services::postgres("fleet_revoke").await else {
        return;
    };
    let Some(redis) = tau_test_services::redis("fleet_revoke").await else {
        return;
    };
    let r0 = Replica::spawn("r0", &pg.url(), &redis.url(), &[]);
    let r1 = Replica::spawn("r1", &pg.url(), &redis.url(), &[]);
    let http = reqwest::Client::new();
    let created: Value = http
        .post(format!("{}/api/v1/tokens", r0.base()))
        .header("Authorization", format!("Token {TOKEN}"))
        .json(&json!({"name": "bot", "role": "bot"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bot = created["token"].as_str().unwrap().to_string();
    let id = created["record"]["id"].as_str().unwrap().to_string();

    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/ws/twitch-events/", r1.addr))
            .await
            .unwrap();
    let hello = json!({ "token": bot }).to_string();
    ws.send(Message::Text(hello.into())).await.unwrap();
    // Accepted: nothing comes back.
    assert!(tokio::time::timeout(Duration::from_millis(700), ws.next())
        .await
        .is_err());
    // A bot may not manage tokens, on any replica.
    let refused = http
        .get(format!("{}/api/v1/tokens", r1.base()))
        .header("Authorization", format!("Token {bot}"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);

    let revoked_at = Instant::now();
    let response = http
        .delete(format!("{}/api/v1/tokens/{id}", r0.base()))
        .header("Authorization", format!("Token {TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let close = loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => break frame,
            Ok(Some(Ok(_))) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    let took = revoked_at.elapsed();
    let frame = close.expect("a close frame with a code");
    assert_eq!(u16::from(frame.code), 1008);
    assert_eq!(frame.reason.as_str(), "token revoked");
    assert!(took < Duration::from_millis(1500), "closed after {took:?}");
    eprintln!("socket on r1 closed {took:?} after the revocation on r0");
}
