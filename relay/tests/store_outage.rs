//! A webhook answers within Twitch's patience even when the database hangs
//! (not refuses: a frozen Postgres keeps connections open and answers
//! nothing): 503 after the ack deadline, so Twitch retries, and the retry
//! once the database is back is stored and delivered exactly once.
//!
//! Needs a real Postgres (skipped with a printed reason without one, failed
//! under `TAU_REQUIRE_SERVICES=1`).

mod common;

use std::time::Duration;

use common::TestRelay;
use serde_json::json;
use tau_relay::{
    config::{Config, DatabaseKind},
    store::Store,
};

const FOLLOW: &str =
    r#"{"user_id":"1","user_login":"a","user_name":"A","broadcaster_user_id":"1337"}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_database_gets_a_prompt_503_and_the_retry_is_stored_once() {
    let Some(pg) = tau_test_services::postgres("webhook_deadline").await else {
        return;
    };
    let mut config = Config::for_tests();
    config.database = DatabaseKind::Postgres;
    config.database_url = pg.url();
    config.timings.webhook_ack_deadline = Duration::from_millis(500);
    let store = Store::open(&pg.url(), DatabaseKind::Postgres)
        .await
        .unwrap();
    let relay = TestRelay::start_on(config, store).await;
    let mut client = relay.client(json!({})).await;
    relay.wait_clients(1).await;
    // The precondition, not the point: a loaded machine can miss the short
    // deadline even with a healthy database; Twitch would retry, and so do we.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !relay
        .notify("before", "channel.follow", "2", FOLLOW)
        .await
        .is_success()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "a healthy database never stored it"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(client.event().await.0["event_id"], "before");

    pg.freeze();
    // Well within Twitch's patience (the pool alone would wait 5 s for a
    // connection health check before failing).
    let answer = tokio::time::timeout(
        Duration::from_secs(3),
        relay.notify("during", "channel.follow", "2", FOLLOW),
    )
    .await;
    pg.thaw();
    let status = answer.expect("the webhook answered while the database hung");
    assert_eq!(status, 503, "not acknowledged: it was not stored in time");

    // Twitch retries until a 2xx; the event is stored and delivered once.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let status = relay.notify("during", "channel.follow", "2", FOLLOW).await;
        if status.is_success() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never stored: {status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(client.event().await.0["event_id"], "during");
    assert!(client.quiet_for(500).await, "delivered once");
    assert_eq!(relay.state.store.count_events().await.unwrap(), 2);
}
