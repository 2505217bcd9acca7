//! Several relay processes on real Postgres and Redis behave like one relay:
//! every event stored once and delivered once to every client, through
//! duplicate resends, a replica's SIGKILL, a Redis restart, a Postgres
//! outage, and the death of the replica holding the EventSub socket.
//!
//! Skipped (with a printed reason) when Postgres/Redis binaries are absent,
//! failed instead under `TAU_REQUIRE_SERVICES=1`.

mod fleet;

use std::time::Duration;

use fleet::{deliver, Recorder, Replica};

const WAIT: Duration = Duration::from_secs(30);

fn ids(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i:04}")).collect()
}

async fn services(test: &str) -> Option<(tau_test_services::Postgres, tau_test_services::Redis)> {
    let pg = tau_test_services::postgres(test).await?;
    let redis = tau_test_services::redis(test).await?;
    Some((pg, redis))
}

fn fleet(
    n: usize,
    pg: &tau_test_services::Postgres,
    redis: &tau_test_services::Redis,
) -> Vec<Replica> {
    (0..n)
        .map(|i| Replica::spawn(&format!("r{i}"), &pg.url(), &redis.url(), &[]))
        .collect()
}

/// Scenario 1: webhooks spread over 3 replicas, each resent to another
/// replica; two clients on every replica see every event exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_deliver_every_event_once_to_every_client() {
    let Some((pg, redis)) = services("three_replicas").await else {
        return;
    };
    let replicas = fleet(3, &pg, &redis);
    let mut clients = Vec::new();
    for replica in &replicas {
        for _ in 0..2 {
            clients.push(Recorder::connect(&replica.addr, None).await);
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let targets: Vec<String> = replicas.iter().map(Replica::base).collect();
    let http = reqwest::Client::new();
    let expected = ids("s1", 300);
    for (i, id) in expected.iter().enumerate() {
        deliver(&http, &targets, i, id).await;
        deliver(&http, &targets, i + 1, id).await; // Twitch-style resend, elsewhere
    }
    Recorder::assert_all(&clients.iter().collect::<Vec<_>>(), &expected).await;
}

/// Scenario 2: SIGKILL one replica mid-stream; its clients reconnect to
/// another replica with `since` and miss nothing, duplicate nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_of_a_killed_replica_resume_elsewhere() {
    let Some((pg, redis)) = services("killed_replica").await else {
        return;
    };
    let mut replicas = fleet(3, &pg, &redis);
    let victims = vec![
        Recorder::connect(&replicas[1].addr, None).await,
        Recorder::connect(&replicas[1].addr, None).await,
    ];
    let survivor = Recorder::connect(&replicas[0].addr, None).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let http = reqwest::Client::new();
    let expected = ids("s2", 300);
    let all: Vec<String> = replicas.iter().map(Replica::base).collect();
    for id in &expected[..100] {
        deliver(&http, &all, 0, id).await;
    }
    for v in &victims {
        v.wait_for(100, WAIT).await;
    }
    replicas[1].kill();
    let alive = vec![replicas[0].base(), replicas[2].base()];
    let mut moved = Vec::new();
    for victim in victims {
        let record = victim.stop();
        let since = record.lock().unwrap().last_id.clone();
        moved.push(Recorder::connect_into(&replicas[2].addr, since, record).await);
    }
    for (i, id) in expected[100..].iter().enumerate() {
        deliver(&http, &alive, i, id).await;
    }
    Recorder::assert_all(
        &moved.iter().chain([&survivor]).collect::<Vec<_>>(),
        &expected,
    )
    .await;
}

/// Scenario 3: Redis restarts mid-stream. Each replica keeps serving its
/// own clients; the others catch up from the database when it returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_loses_nothing() {
    let Some((pg, mut redis)) = services("redis_restart").await else {
        return;
    };
    let replicas = fleet(3, &pg, &redis);
    let clients: Vec<_> =
        futures_util::future::join_all(replicas.iter().map(|r| Recorder::connect(&r.addr, None)))
            .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let targets: Vec<String> = replicas.iter().map(Replica::base).collect();
    let http = reqwest::Client::new();
    let expected = ids("s3", 300);
    for (i, id) in expected[..100].iter().enumerate() {
        deliver(&http, &targets, i, id).await;
    }
    redis.stop().await;
    for (i, id) in expected[100..200].iter().enumerate() {
        deliver(&http, &targets, i, id).await;
    }
    redis.start().await;
    for (i, id) in expected[200..].iter().enumerate() {
        deliver(&http, &targets, i, id).await;
    }
    Recorder::assert_all(&clients.iter().collect::<Vec<_>>(), &expected).await;
}

/// Scenario 4: Postgres stops for 5 s mid-stream. Webhooks are answered
/// 503 meanwhile (nothing acknowledged unstored), resent afterwards as
/// Twitch would, and every event is delivered once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_outage_is_503_then_everything_arrives() {
    let Some((mut pg, redis)) = services("postgres_outage").await else {
        return;
    };
    let replicas = fleet(2, &pg, &redis);
    let clients: Vec<_> =
        futures_util::future::join_all(replicas.iter().map(|r| Recorder::connect(&r.addr, None)))
            .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let targets: Vec<String> = replicas.iter().map(Replica::base).collect();
    let http = reqwest::Client::new();
    let expected = ids("s4", 150);
    for (i, id) in expected[..50].iter().enumerate() {
        deliver(&http, &targets, i, id).await;
    }
    pg.stop().await;
    // During the outage the relay must refuse, not acknowledge.
    let probe = deliver_once(&http, &targets[0], "s4-probe").await;
    assert_eq!(
        probe, 503,
        "an event that cannot be stored is not acknowledged"
    );
    let restart = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(5)).await;
        pg.start().await;
        pg
    });
    let mut attempts = 0;
    for (i, id) in expected[50..].iter().enumerate() {
        attempts += deliver(&http, &targets, i, id).await;
    }
    let _pg = restart.await.unwrap();
    assert!(
        attempts > 100,
        "some deliveries had to be retried during the outage ({attempts} attempts)"
    );
    let mut all = expected.clone();
    all.push("s4-probe".into());
    deliver(&http, &targets, 0, "s4-probe").await;
    Recorder::assert_all(&clients.iter().collect::<Vec<_>>(), &all).await;
}

async fn deliver_once(http: &reqwest::Client, target: &str, message_id: &str) -> u16 {
    let body = fleet::follow_body(message_id);
    fleet::post_once(http, target, message_id, &body, Duration::from_secs(10))
        .await
        .map(|status| status.as_u16())
        .unwrap_or(0)
}

/// Connected sessions holding at least one subscription.
async fn live_sessions(fake: &tau_fake_twitch::FakeTwitch) -> Vec<String> {
    fake.sessions()
        .await
        .into_iter()
        .filter(|s| s.connected && !s.subscription_ids.is_empty())
        .map(|s| s.id)
        .collect()
}

/// Scenario 5: exactly one replica holds the EventSub WebSocket session;
/// when it dies, another holds a subscribed session within Twitch's 10 s
/// keepalive window, and two replicas never hold one at the same time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_socket_holder_is_replaced_within_the_keepalive_window() {
    let Some((pg, redis)) = services("socket_holder").await else {
        return;
    };
    let fake = tau_fake_twitch::FakeTwitch::start().await;
    let twitch = |public: &str| {
        vec![
            (
                "TWITCH_CLIENT_ID",
                tau_fake_twitch::FakeTwitch::CLIENT_ID.to_string(),
            ),
            (
                "TWITCH_CLIENT_SECRET",
                tau_fake_twitch::FakeTwitch::CLIENT_SECRET.to_string(),
            ),
            ("TWITCH_API_URL", fake.api_url()),
            ("TWITCH_AUTH_URL", fake.auth_url()),
            ("TWITCH_EVENTSUB_WS_URL", fake.eventsub_ws_url()),
            ("TAU_EVENTSUB_TYPES", "channel.cheer".to_string()),
            ("TAU_PUBLIC_URL", public.to_string()),
        ]
    };
    // One public URL for the fleet, as behind a load balancer.
    let public = "http://127.0.0.1:8000";
    let env = twitch(public);
    let env: Vec<(&str, String)> = env.iter().map(|(k, v)| (*k, v.clone())).collect();
    let mut replicas: Vec<Replica> = (0..3)
        .map(|i| Replica::spawn(&format!("h{i}"), &pg.url(), &redis.url(), &env))
        .collect();
    // Start on one replica; the consent page sends the browser to the public
    // URL, which we route to another replica (the state is in the shared store).
    let done = fleet::oauth::walk(&replicas[0].base(), fleet::TOKEN, |back| {
        back.replace(public, &replicas[2].base())
    })
    .await;
    assert_eq!(
        done.status(),
        200,
        "callback on another replica than the start"
    );

    // Wait for the first holder; check no second session appears meanwhile.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let holder = loop {
        let live = live_sessions(&fake).await;
        assert!(live.len() <= 1, "two replicas hold sessions: {live:?}");
        if live.len() == 1 {
            let mut holders = Vec::new();
            for (i, r) in replicas.iter().enumerate() {
                if r.status().await["twitch"]["eventsub"]["state"] == "connected" {
                    holders.push(i);
                }
            }
            if holders.len() == 1 {
                break holders[0];
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no replica took the socket"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let first = live_sessions(&fake).await;
    // Let the standbys settle, still one session.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        live_sessions(&fake).await,
        first,
        "standbys must not open sessions"
    );

    replicas[holder].kill();
    let killed_at = std::time::Instant::now();
    let replacement = loop {
        let live = live_sessions(&fake).await;
        assert!(live.len() <= 1, "two sessions at once: {live:?}");
        if let Some(id) = live.into_iter().find(|id| !first.contains(id)) {
            break id;
        }
        assert!(
            killed_at.elapsed() < Duration::from_secs(20),
            "no successor took the socket"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let took = killed_at.elapsed();
    eprintln!("successor session {replacement} subscribed {took:?} after the holder's SIGKILL");
    assert!(
        took <= Duration::from_secs(10),
        "successor needed {took:?}, more than the 10 s keepalive window"
    );
}

/// Scenario 4b: with the WebSocket transport there is no ack to withhold,
/// so the relay holds the event and retries until Postgres is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_event_survives_a_postgres_outage() {
    let Some(mut pg) = tau_test_services::postgres("socket_pg_outage").await else {
        return;
    };
    let fake = tau_fake_twitch::FakeTwitch::start().await;
    let mut config = tau_relay::config::Config::for_tests();
    config.database_url = pg.url();
    config.database = tau_relay::config::DatabaseKind::Postgres;
    config.twitch.client_id = Some(tau_fake_twitch::FakeTwitch::CLIENT_ID.into());
    config.twitch.client_secret = Some(tau_fake_twitch::FakeTwitch::CLIENT_SECRET.into());
    config.twitch.api_url = fake.api_url().parse().unwrap();
    config.twitch.auth_url = fake.auth_url().parse().unwrap();
    config.twitch.eventsub_ws_url = fake.eventsub_ws_url().parse().unwrap();
    config.eventsub_types = vec![("channel.cheer".into(), "1".into())];
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    config.public_url = format!("http://{addr}").parse().unwrap();
    let store = tau_relay::store::Store::open(&pg.url(), tau_relay::config::DatabaseKind::Postgres)
        .await
        .unwrap();
    let state = tau_relay::app::build_on(config, tau_relay::secret::SecretKey::generate(), store)
        .await
        .unwrap();
    let token = state
        .store
        .create_token(
            "t",
            &tau_relay::access::Grant::role(tau_relay::access::Role::Admin),
        )
        .await
        .unwrap()
        .token;
    tokio::spawn(tau_relay::app::serve(listener, state.clone()));
    tau_relay::app::spawn_twitch(&state);
    // Authorize through the fake (same flow as a browser).
    let done = fleet::oauth::walk(&format!("http://{addr}"), &token, str::to_string).await;
    assert_eq!(done.status(), 200);
    let session = fake.wait_for_session(WAIT).await.unwrap();

    pg.stop().await;
    let message_id = fake
        .send_notification(
            &session.id,
            "channel.cheer",
            "1",
            serde_json::json!({"bits": 7}),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    pg.start().await;
    let mut stored = None;
    for _ in 0..200 {
        if let Ok(page) = state.store.page(&Default::default(), None, 10).await {
            stored = page
                .rows
                .into_iter()
                .find(|r| r.event.event_id == message_id);
            if stored.is_some() {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        stored.is_some(),
        "the event Twitch sent during the outage was stored once Postgres returned"
    );
    state.shutdown.cancel();
}

/// Two channels (instances) on one Postgres and one Redis never see each
/// other's events: separate schemas and bus channels.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_servers_but_not_events() {
    let Some((pg, redis)) = services("two_instances").await else {
        return;
    };
    let a = Replica::spawn(
        "a0",
        &pg.url(),
        &redis.url(),
        &[("TAU_INSTANCE", "chan_a".into())],
    );
    let a2 = Replica::spawn(
        "a1",
        &pg.url(),
        &redis.url(),
        &[("TAU_INSTANCE", "chan_a".into())],
    );
    let b = Replica::spawn(
        "b0",
        &pg.url(),
        &redis.url(),
        &[("TAU_INSTANCE", "chan_b".into())],
    );
    let on_a2 = Recorder::connect(&a2.addr, None).await;
    let on_b = Recorder::connect(&b.addr, None).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let http = reqwest::Client::new();
    let expected = ids("iso", 20);
    for id in &expected {
        deliver(&http, &[a.base()], 0, id).await;
    }
    on_a2.wait_for(expected.len(), WAIT).await;
    on_a2.assert_exactly(&expected, "same instance, other replica");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(on_b.count(), 0, "the other instance saw nothing");
    assert_eq!(b.status().await["events_stored"], 0);
    assert_eq!(a.status().await["events_stored"], 20);
}
