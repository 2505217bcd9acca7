//! Conduit transport against the fake Twitch: replicas share one conduit,
//! each session is a shard, subscriptions belong to the conduit and
//! survive a replica's restart.

mod common;

use std::{collections::HashSet, time::Duration};

use common::TestRelay;
use serde_json::{json, Value};
use tau_fake_twitch::{FakeTwitch, Transport as FakeTransport};
use tau_relay::{config::Transport, store::Store};

async fn replica(fake: &FakeTwitch, db: &str, name: &str) -> TestRelay {
    let mut config = tau_relay::config::Config::for_tests();
    config.twitch.client_id = Some(FakeTwitch::CLIENT_ID.into());
    config.twitch.client_secret = Some(FakeTwitch::CLIENT_SECRET.into());
    config.twitch.api_url = fake.api_url().parse().unwrap();
    config.twitch.auth_url = fake.auth_url().parse().unwrap();
    config.twitch.eventsub_ws_url = fake.eventsub_ws_url().parse().unwrap();
    config.twitch.broadcaster = Some(FakeTwitch::BROADCASTER_LOGIN.into());
    config.transport = Transport::Conduit;
    config.replica_id = name.into();
    config.eventsub_types = vec![("channel.follow".into(), "2".into())];
    let store = Store::open(db, tau_relay::config::DatabaseKind::Sqlite)
        .await
        .unwrap();
    let relay = TestRelay::start_on(config, store).await;
    tau_relay::app::spawn_twitch(&relay.state);
    relay
}

/// Waits until the conduit has `n` shards, each enabled on its own session.
async fn wait_shards(fake: &FakeTwitch, n: usize) -> (String, Vec<String>) {
    for _ in 0..300 {
        if let Some(conduit) = fake.conduits().first() {
            let sessions: Vec<String> = conduit
                .shards
                .iter()
                .filter(|s| s.status == "enabled")
                .filter_map(|s| match &s.transport {
                    Some(FakeTransport::WebSocket { session_id, .. }) => Some(session_id.clone()),
                    _ => None,
                })
                .collect();
            let distinct: HashSet<_> = sessions.iter().collect();
            if conduit.shards.len() == n && sessions.len() == n && distinct.len() == n {
                return (conduit.id.clone(), sessions);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "conduit never had {n} enabled shards: {:?}",
        fake.conduits()
    );
}

fn conduit_subscriptions(fake: &FakeTwitch) -> Vec<(String, String)> {
    let mut subs: Vec<_> = fake
        .subscriptions()
        .into_iter()
        .filter(|s| matches!(s.transport, FakeTransport::Conduit { .. }) && s.status == "enabled")
        .map(|s| (s.id, s.sub_type))
        .collect();
    subs.sort();
    subs
}

/// The `twitch` part of `relay`'s status, once `ready` holds (5 s at most).
async fn conduit_status(relay: &TestRelay, ready: impl Fn(&Value) -> bool) -> Value {
    let mut twitch = Value::Null;
    for _ in 0..50 {
        let status: Value = relay.get("/api/v1/status").await.json().await.unwrap();
        twitch = status["twitch"].clone();
        if ready(&twitch) {
            return twitch;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the relay's status never got there: {twitch}");
}

/// Twitch refusing the app credentials is visible in the status (what the
/// operator reports as Authorized=False): no conduit, and why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_client_secret_shows_in_the_status() {
    let fake = FakeTwitch::start().await;
    let mut config = tau_relay::config::Config::for_tests();
    config.twitch.client_id = Some(FakeTwitch::CLIENT_ID.into());
    config.twitch.client_secret = Some("not-the-secret".into());
    config.twitch.api_url = fake.api_url().parse().unwrap();
    config.twitch.auth_url = fake.auth_url().parse().unwrap();
    config.twitch.eventsub_ws_url = fake.eventsub_ws_url().parse().unwrap();
    config.twitch.broadcaster = Some(FakeTwitch::BROADCASTER_LOGIN.into());
    config.transport = Transport::Conduit;
    let relay = TestRelay::start_on(config, Store::in_memory().await).await;
    tau_relay::app::spawn_twitch(&relay.state);
    let status = conduit_status(&relay, |s| {
        s["app_token"]["state"] == "rejected" && s["conduit"]["last_error"].is_string()
    })
    .await;
    assert_eq!(status["app_token"]["error"], "invalid client secret");
    assert_eq!(status["conduit"]["id"], Value::Null);
    let error = status["conduit"]["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("invalid client secret"), "{status}");
    assert!(!status.to_string().contains("not-the-secret"));
    assert!(fake.conduits().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_are_shards_and_subscriptions_survive_a_restart() {
    let fake = FakeTwitch::start().await;
    let dir = std::env::temp_dir().join(format!("tau-conduit-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = format!("sqlite://{}", dir.join("tau.db").display());
    let mut replicas = Vec::new();
    for name in ["c0", "c1", "c2"] {
        replicas.push(replica(&fake, &db, name).await);
    }
    let (conduit_id, _) = wait_shards(&fake, 3).await;
    let mut subs = Vec::new();
    for _ in 0..100 {
        subs = conduit_subscriptions(&fake);
        if subs.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let kinds: Vec<_> = subs.iter().map(|(_, k)| k.as_str()).collect();
    assert!(
        kinds.contains(&"channel.follow") && kinds.contains(&"conduit.shard.disabled"),
        "{subs:?}"
    );

    // Every replica's status shows the fleet's conduit (the manager's view,
    // from the shared store), whichever one is asked.
    for r in &replicas {
        let status = conduit_status(r, |s| {
            s["conduit"]["subscriptions"]
                .as_array()
                .is_some_and(|subs| subs.len() == 2)
        })
        .await;
        assert_eq!(status["conduit"]["id"], conduit_id.as_str(), "{status}");
        assert!(
            status["conduit"]["subscriptions"]
                .as_array()
                .unwrap()
                .iter()
                .all(|s| s["status"] == "enabled"),
            "{status}"
        );
        assert_eq!(status["conduit"]["last_error"], Value::Null);
        assert_eq!(status["app_token"]["state"], "valid", "{status}");
        assert_eq!(status["eventsub"]["transport"], "conduit");
    }

    // Twitch routes each event to one shard; each is stored once.
    let mut clients = Vec::new();
    for r in &replicas {
        clients.push(r.client(json!({"events": ["channel.follow"]})).await);
    }
    for r in &replicas {
        r.wait_clients(1).await;
    }
    let mut sent = HashSet::new();
    for i in 0..30 {
        let event = json!({"user_id": i.to_string(), "user_login": format!("u{i}"), "broadcaster_user_id": "1337"});
        sent.insert(
            fake.send_conduit_notification(&conduit_id, "channel.follow", "2", event)
                .await
                .unwrap(),
        );
    }
    let mut received = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while received.len() < sent.len() && tokio::time::Instant::now() < deadline {
        for client in clients.iter_mut() {
            if let Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Text(text)))) =
                tokio::time::timeout(
                    Duration::from_millis(50),
                    futures_util::StreamExt::next(&mut client.ws),
                )
                .await
            {
                let frame: serde_json::Value = serde_json::from_str(&text).unwrap();
                received.push(frame["event_id"].as_str().unwrap().to_string());
            }
        }
    }
    let unique: HashSet<_> = received.iter().cloned().collect();
    assert_eq!(unique, sent, "every routed event delivered");
    assert_eq!(received.len(), sent.len(), "and only once");
    assert_eq!(replicas[0].state.store.count_events().await.unwrap(), 30);

    // A replica goes away and another comes: the conduit's subscriptions stay.
    replicas[2].state.shutdown.cancel();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let replacement = replica(&fake, &db, "c3").await;
    wait_shards(&fake, 3).await;
    assert_eq!(
        conduit_subscriptions(&fake),
        subs,
        "subscriptions survived the restart untouched"
    );
    assert_eq!(fake.conduits().len(), 1, "one conduit for the fleet");
    drop(replacement);
    std::fs::remove_dir_all(dir).ok();
}

/// `POST /api/v1/twitch/resubscribe` on a replica that is not the conduit
/// manager reaches the manager through the database (the manager is found
/// in the status's `replicas`, the same list an operator reads), which then
/// reconciles at once; the conduit's subscriptions stay enabled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resubscribe_on_any_replica_reaches_the_conduit_manager() {
    let fake = FakeTwitch::start().await;
    let dir = std::env::temp_dir().join(format!("tau-conduit-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = format!("sqlite://{}", dir.join("tau.db").display());
    let replicas = [
        replica(&fake, &db, "m0").await,
        replica(&fake, &db, "m1").await,
    ];
    wait_shards(&fake, 2).await;

    // Both replicas are listed; exactly one holds the manager lease.
    let mut listed = Value::Null;
    for _ in 0..100 {
        let status: Value = replicas[0]
            .get("/api/v1/status")
            .await
            .json()
            .await
            .unwrap();
        listed = status["replicas"].clone();
        let managers = listed
            .as_array()
            .map(|l| {
                l.iter()
                    .filter(|r| r["holds"].to_string().contains("conduit-manager"))
                    .count()
            })
            .unwrap_or(0);
        if listed.as_array().is_some_and(|l| l.len() == 2) && managers == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let list = listed.as_array().expect("replicas listed");
    assert_eq!(list.len(), 2, "{listed}");
    assert_eq!(list[0]["id"], "m0", "the answering replica first: {listed}");
    assert_eq!(list[0]["this_replica"], true);
    let manager_id = list
        .iter()
        .find(|r| r["holds"].to_string().contains("conduit-manager"))
        .unwrap_or_else(|| panic!("no manager listed: {listed}"))["id"]
        .as_str()
        .unwrap()
        .to_string();
    for r in list {
        let holds = r["holds"].to_string();
        assert!(
            holds.contains("conduit-shard:"),
            "every replica is a shard: {listed}"
        );
    }
    let (manager, other) = if manager_id == "m0" {
        (&replicas[0], &replicas[1])
    } else {
        (&replicas[1], &replicas[0])
    };

    let mut requests = manager.state.twitch.resubscribe_requests();
    requests.borrow_and_update();
    let response = other.post("/api/v1/twitch/resubscribe", "").await;
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("conduit"),
        "{body}"
    );
    tokio::time::timeout(Duration::from_secs(10), requests.changed())
        .await
        .expect("the manager heard the other replica's request")
        .unwrap();
    let status = conduit_status(manager, |s| {
        s["conduit"]["subscriptions"]
            .as_array()
            .is_some_and(|subs| subs.len() == 2 && subs.iter().all(|s| s["status"] == "enabled"))
    })
    .await;
    assert_eq!(status["conduit"]["last_error"], Value::Null, "{status}");
    std::fs::remove_dir_all(dir).ok();
}
