//! Client sockets: handshake, filters, resume at the seam, slow and dead
//! clients, shutdown.

mod common;

use std::time::Duration;

use common::{Frame, TestRelay};
use futures_util::StreamExt;
use serde_json::{json, Value};

const FOLLOW: &str =
    r#"{"user_id":"1","user_login":"a","user_name":"A","broadcaster_user_id":"1337"}"#;

async fn expect_rejection(relay: &TestRelay, first_frame: &str, expected: &str) {
    let mut client = relay.client_raw(first_frame).await;
    match client.next(5).await {
        Frame::Json(value, _) => assert!(
            value["error"].as_str().unwrap().contains(expected),
            "{value}"
        ),
        other => panic!("expected an error frame, got {other:?}"),
    }
    match client.next(5).await {
        Frame::Closed(Some((code, _))) => assert_eq!(code, 1008),
        other => panic!("expected close 1008, got {other:?}"),
    }
}

#[tokio::test]
async fn bad_handshakes_get_an_error_and_close_1008() {
    let relay = TestRelay::start().await;
    expect_rejection(&relay, r#"{"token":"wrong"}"#, "invalid token").await;
    expect_rejection(&relay, "hello", "must be JSON").await;
    expect_rejection(&relay, r#"{"tok":"x"}"#, "missing token").await;
    let with = |extra: Value| {
        let mut hello = json!({ "token": relay.token });
        hello
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        hello.to_string()
    };
    expect_rejection(
        &relay,
        &with(json!({"events": ["channel.nope"]})),
        "unknown event type",
    )
    .await;
    expect_rejection(
        &relay,
        &with(json!({"since": "not-a-uuid"})),
        "must be an event id",
    )
    .await;
    expect_rejection(
        &relay,
        &with(json!({"since": uuid::Uuid::new_v4()})),
        "unknown \"since\"",
    )
    .await;
    assert_eq!(relay.state.metrics.clients_connected.get(), 0);
}

#[tokio::test]
async fn silent_clients_are_closed_after_ten_seconds() {
    let relay = TestRelay::start().await;
    let (ws, _) = tokio_tungstenite::connect_async(&relay.ws_url)
        .await
        .unwrap();
    let mut client = common::Client { ws };
    let started = std::time::Instant::now();
    match client.next(15).await {
        Frame::Json(value, _) => assert!(value["error"].as_str().unwrap().contains("10 seconds")),
        other => panic!("expected an error frame, got {other:?}"),
    }
    assert!(started.elapsed() >= Duration::from_secs(9));
    assert!(matches!(
        client.next(5).await,
        Frame::Closed(Some((1008, _)))
    ));
}

#[tokio::test]
async fn event_filter_delivers_only_the_chosen_types() {
    let relay = TestRelay::start().await;
    let mut filtered = relay
        .client(json!({"events": ["channel.cheer", "channel-follow"]}))
        .await;
    let mut everything = relay.client(json!({})).await;
    relay.wait_clients(2).await;
    relay
        .notify(
            "1",
            "channel.raid",
            "1",
            r#"{"from_broadcaster_user_id":"1","to_broadcaster_user_id":"2"}"#,
        )
        .await;
    relay.notify("2", "channel.follow", "2", FOLLOW).await;
    relay
        .notify("3", "channel.cheer", "1", r#"{"bits":5}"#)
        .await;
    assert_eq!(filtered.event().await.0["event_id"], "2");
    assert_eq!(filtered.event().await.0["event_id"], "3");
    for id in ["1", "2", "3"] {
        assert_eq!(everything.event().await.0["event_id"], id);
    }
}

/// Resume with `since` while events keep arriving: every event after the
/// cursor exactly once, in order, across the stored/live seam.
#[tokio::test]
async fn since_resumes_with_no_gap_and_no_duplicate_at_the_seam() {
    let relay = TestRelay::start().await;
    for i in 0..20 {
        assert_eq!(
            relay
                .notify(&format!("e{i:04}"), "channel.follow", "2", FOLLOW)
                .await,
            204
        );
    }
    let page: Value = relay
        .get("/api/v1/twitch-events?page_size=20")
        .await
        .json()
        .await
        .unwrap();
    let cursor_event = page["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event_id"] == "e0009")
        .unwrap()
        .clone();

    let producer_relay = relay.clone();
    let producer = tokio::spawn(async move {
        let relay = producer_relay;
        for i in 20..400 {
            assert_eq!(
                relay
                    .notify(&format!("e{i:04}"), "channel.follow", "2", FOLLOW)
                    .await,
                204
            );
        }
    });
    tokio::time::sleep(Duration::from_millis(30)).await;
    let mut client = relay.client(json!({"since": cursor_event["id"]})).await;
    producer.await.unwrap();
    let mut received = Vec::new();
    while received.len() < 390 {
        received.push(
            client.event().await.0["event_id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let expected: Vec<String> = (10..400).map(|i| format!("e{i:04}")).collect();
    assert_eq!(received, expected);
    assert!(client.quiet_for(300).await, "nothing after the last event");
}

/// A client that stops reading is cut off with 1013 naming the event to
/// resume after (it sees the close once it reads again), never slows a
/// reading client, and resuming from that id gives it the rest exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_client_gets_1013_with_its_resume_point_and_never_slows_the_others() {
    let relay = TestRelay::start_with(|c| {
        c.client_queue = 64;
        c.timings.client_write_timeout = Duration::from_secs(3);
    })
    .await;
    let mut fast = relay.client(json!({})).await;
    let mut slow = relay.client(json!({})).await;
    relay.wait_clients(2).await;
    let padding = "x".repeat(32 * 1024);
    let event =
        format!(r#"{{"user_id":"1","user_login":"a","user_name":"A","padding":"{padding}"}}"#);
    const N: usize = 600;
    let expected: Vec<String> = (0..N).map(|i| format!("s{i:04}")).collect();
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        while got.len() < N {
            got.push(
                fast.event().await.0["event_id"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
        got
    });
    // The stuck client reads again as soon as the relay cuts it off (it has
    // the write timeout to take the close frame): a prefix, then 1013.
    let metrics = relay.state.metrics.clone();
    let stuck = tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while metrics.slow_clients_disconnected.get() < 1 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "stuck client never cut off"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let mut received: Vec<(String, String)> = Vec::new();
        let reason = loop {
            match slow.next(10).await {
                Frame::Json(frame, _) => received.push((
                    frame["event_id"].as_str().unwrap().to_string(),
                    frame["id"].as_str().unwrap().to_string(),
                )),
                Frame::Closed(Some((1013, reason))) => break reason,
                other => panic!(
                    "expected close 1013, got {other:?} after {}",
                    received.len()
                ),
            }
        };
        (received, reason)
    });
    for id in &expected {
        assert_eq!(relay.notify(id, "channel.follow", "2", &event).await, 204);
    }
    assert_eq!(
        reader.await.unwrap(),
        expected,
        "the reading client got everything"
    );
    let (received, reason) = stuck.await.unwrap();
    assert!(received.len() < N, "the client was cut off before the end");
    let ids: Vec<_> = received.iter().map(|(e, _)| e.clone()).collect();
    assert_eq!(ids, expected[..ids.len()], "a prefix, in order");
    let (_, last_id) = received.last().expect("some events before the close");
    assert!(
        reason.ends_with(&format!("resume with since={last_id}")),
        "reason {reason:?} names the last event received ({last_id})"
    );
    let mut resumed = relay.client(json!({"since": last_id})).await;
    let mut rest = Vec::new();
    while ids.len() + rest.len() < N {
        rest.push(
            resumed.event().await.0["event_id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(rest, expected[ids.len()..]);
    assert!(resumed.quiet_for(300).await, "nothing twice");
}

#[tokio::test]
async fn clients_that_stop_answering_pings_are_dropped() {
    let relay = TestRelay::start_with(|c| c.ws_ping_interval = Duration::from_secs(1)).await;
    // Never polled: tungstenite answers pings only while reading.
    let _deaf = relay.client(json!({})).await;
    let mut alive = relay.client(json!({})).await;
    relay.wait_clients(2).await;
    // Keeps polling (which sends the pongs) and counts the pings seen.
    let keep_reading = tokio::spawn(async move {
        let mut pings = 0;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while let Ok(Some(Ok(message))) = tokio::time::timeout_at(deadline, alive.ws.next()).await {
            assert!(message.is_ping(), "only pings expected, got {message:?}");
            pings += 1;
        }
        pings
    });
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        relay.state.metrics.clients_connected.get(),
        1,
        "deaf client dropped, responsive one kept"
    );
    assert!(
        keep_reading.await.unwrap() >= 3,
        "the responsive client saw the pings"
    );
}

#[tokio::test]
async fn shutdown_closes_clients_with_1001() {
    let relay = TestRelay::start().await;
    let mut client = relay.client(json!({})).await;
    relay.wait_clients(1).await;
    relay.state.shutdown.cancel();
    match client.next(5).await {
        Frame::Closed(Some((code, reason))) => {
            assert_eq!(code, 1001);
            assert!(reason.contains("shutting down"));
        }
        other => panic!("expected close 1001, got {other:?}"),
    }
}

/// A client resuming after an event that was deleted since (REST delete or
/// retention) continues from the next stored event instead of being refused.
#[tokio::test]
async fn since_a_deleted_event_resumes_from_the_next_stored_one() {
    let relay = TestRelay::start().await;
    for id in ["k0", "k1", "k2", "k3"] {
        assert_eq!(relay.notify(id, "channel.follow", "2", FOLLOW).await, 204);
    }
    let page: Value = relay
        .get("/api/v1/twitch-events")
        .await
        .json()
        .await
        .unwrap();
    let id_of = |event_id: &str| {
        page["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["event_id"] == event_id)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (cursor, next) = (id_of("k1"), id_of("k2"));
    for id in [&cursor, &next] {
        let deleted = relay
            .http
            .delete(format!("{}/api/v1/twitch-events/{id}", relay.base))
            .header("Authorization", format!("Token {}", relay.token))
            .send()
            .await
            .unwrap();
        assert!(deleted.status().is_success(), "{}", deleted.status());
    }
    let mut client = relay.client(json!({"since": cursor})).await;
    assert_eq!(client.event().await.0["event_id"], "k3");
    assert!(client.quiet_for(300).await);
}

/// A client that resumed with `since` and is dropped as too slow before
/// anything newer reached it is told to resume from its own `since`: a
/// 1013 names a resume point whenever the client has one. (The fault suite
/// found this: after a Postgres outage the backlog flooded the ring before
/// resumed sessions read their first live event, and their 1013 named none.)
#[tokio::test]
async fn a_resumed_client_dropped_before_its_first_event_is_told_its_since() {
    let relay = TestRelay::start_with(|c| c.client_queue = 16).await;
    for i in 0..3 {
        let id = format!("r{i}");
        assert_eq!(relay.notify(&id, "channel.follow", "2", FOLLOW).await, 204);
    }
    let page: Value = relay
        .get("/api/v1/twitch-events?page_size=1")
        .await
        .json()
        .await
        .unwrap();
    let since = page["results"][0]["id"].as_str().unwrap().to_string();
    let mut client = relay.client(json!({ "since": since })).await;
    relay.wait_clients(1).await;
    // Let the session finish resuming (nothing newer) and wait on the ring.
    tokio::time::sleep(Duration::from_millis(500)).await;
    // More live events than the ring holds, all before the session reads one.
    for seq in 1_000_000..1_000_040 {
        relay
            .state
            .hub
            .dispatch(std::sync::Arc::new(tau_relay::event::EncodedEvent {
                seq: Some(seq),
                id: Some(uuid::Uuid::new_v4()),
                event_type: "channel-follow".into(),
                payload: "{}".into(),
            }));
    }
    let mut last = since.clone();
    let reason = loop {
        match client.next(10).await {
            // Only if the session was still resuming: then it names these.
            Frame::Json(frame, _) => last = frame["id"].as_str().unwrap_or_default().to_string(),
            Frame::Closed(Some((1013, reason))) => break reason,
            other => panic!("expected close 1013, got {other:?}"),
        }
    };
    assert!(
        reason.ends_with(&format!("resume with since={last}")),
        "reason {reason:?} names the client's resume point {last}"
    );
}
