//! EventSub WebSocket faults against the fake Twitch: keepalive silence
//! while pings keep flowing, a stalled connect and a stalled reconnect, and
//! a Postgres outage while events keep arriving over the socket.

mod common;

use std::{
    collections::HashSet,
    net::SocketAddr,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use common::{authorize, Frame, TestRelay};
use serde_json::{json, Value};
use tau_fake_twitch::{FakeTwitch, Options, SessionInfo};
use tau_relay::timings::Timings;
use tokio::net::{TcpListener, TcpStream};

const WAIT: Duration = Duration::from_secs(20);

fn timings(spec: &str) -> Timings {
    Timings::default().with_overrides(spec).unwrap()
}

/// The newest connected session holding a subscription, other than `not`.
async fn subscribed_session(fake: &FakeTwitch, not: Option<&str>, limit: Duration) -> SessionInfo {
    let usable = |s: &SessionInfo| {
        s.connected && !s.subscription_ids.is_empty() && Some(s.id.as_str()) != not
    };
    fake.wait_for_sessions(limit, |all| all.iter().any(usable))
        .await
        .unwrap_or_else(|e| panic!("no subscribed session other than {not:?}: {e}"))
        .into_iter()
        .rev()
        .find(usable)
        .unwrap()
}

/// A listener that accepts connections and never answers the first
/// `stall` of them (held open, so the client sees silence, not a close);
/// later ones are piped to `target`. Returns its address and the number of
/// connections accepted so far.
async fn stalling_proxy(target: SocketAddr, stall: usize) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut inbound, _)) = listener.accept().await {
            if count.fetch_add(1, Ordering::SeqCst) < stall {
                held.push(inbound);
                continue;
            }
            tokio::spawn(async move {
                let mut outbound = TcpStream::connect(target).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            });
        }
    });
    (addr, accepted)
}

async fn cheer_relay(fake: &FakeTwitch, spec: &str, url: Option<String>) -> TestRelay {
    let relay = TestRelay::start_twitch(fake, |c| {
        c.eventsub_types = vec![("channel.cheer".into(), "1".into())];
        c.timings = timings(spec);
        if let Some(url) = url {
            c.twitch.eventsub_ws_url = url.parse().unwrap();
        }
    })
    .await;
    assert_eq!(authorize(&relay).await.status(), 200);
    relay
}

/// Twitch keeps pinging a session whose EventSub messages stopped; pings
/// are no sign of EventSub life, so the relay starts a new session within
/// the keepalive window (10 s) plus the slack.
#[tokio::test]
async fn keepalive_silence_despite_pings_means_a_fresh_session() {
    let fake = FakeTwitch::start_with(Options {
        ping_interval: Some(Duration::from_millis(200)),
        ..Options::default()
    })
    .await;
    let _relay = cheer_relay(&fake, "keepalive_slack=1s", None).await;
    let first = subscribed_session(&fake, None, WAIT).await;
    fake.pause_keepalives(&first.id, true);
    let paused = tokio::time::Instant::now();
    let second = subscribed_session(&fake, Some(&first.id), Duration::from_secs(25)).await;
    let took = paused.elapsed();
    assert!(
        took <= Duration::from_secs(10 + 1 + 4),
        "new session {} only after {took:?}",
        second.id
    );
}

/// A connect that is accepted but never answered times out and is
/// retried; once the server answers, the session comes up.
#[tokio::test]
async fn a_stalled_connect_times_out_and_is_retried() {
    let fake = FakeTwitch::start().await;
    let (proxy, accepted) = stalling_proxy(fake.addr(), 2).await;
    let started = tokio::time::Instant::now();
    let _relay = cheer_relay(
        &fake,
        "connect_timeout=500ms,session_backoff_min=100ms,session_backoff_max=200ms",
        Some(format!("ws://{proxy}/ws")),
    )
    .await;
    let session = subscribed_session(&fake, None, WAIT).await;
    assert!(
        accepted.load(Ordering::SeqCst) >= 3,
        "two stalled attempts, then the working one"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "session {} after {:?}",
        session.id,
        started.elapsed()
    );
}

/// A `session_reconnect` to a URL that never answers: the relay keeps the
/// old socket (it still delivers), and when Twitch closes that one it
/// starts a fresh session.
#[tokio::test]
async fn a_stalled_reconnect_keeps_the_old_socket_then_starts_over() {
    let fake = FakeTwitch::start().await;
    let (stall, accepted) = stalling_proxy(fake.addr(), usize::MAX).await;
    let relay = cheer_relay(&fake, "connect_timeout=500ms", None).await;
    let old = subscribed_session(&fake, None, WAIT).await;
    let mut client = relay.client(json!({})).await;
    relay.wait_clients(1).await;

    let reconnect = json!({
        "metadata": {"message_id": "reconnect-1", "message_type": "session_reconnect",
                     "message_timestamp": "2026-01-01T00:00:00Z"},
        "payload": {"session": {"id": old.id, "status": "reconnecting",
                     "keepalive_timeout_seconds": null, "connected_at": "2026-01-01T00:00:00Z",
                     "reconnect_url": format!("ws://{stall}/ws")}}
    });
    fake.send_raw(&old.id, reconnect).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        accepted.load(Ordering::SeqCst) >= 1,
        "the relay tried the new URL"
    );
    let still = fake
        .send_notification(&old.id, "channel.cheer", "1", json!({"bits": 1}))
        .await
        .expect("the old session is still open");
    assert_eq!(client.event().await.0["event_id"], still.as_str());

    fake.close_session(&old.id, 4004).await.unwrap();
    let fresh = subscribed_session(&fake, Some(&old.id), WAIT).await;
    let after = fake
        .send_notification(&fresh.id, "channel.cheer", "1", json!({"bits": 2}))
        .await
        .unwrap();
    assert_eq!(client.event().await.0["event_id"], after.as_str());
}

/// Postgres is down for 20 s while Twitch keeps sending over the socket:
/// the session stays up (the lease is not lost to a renewal failure), and
/// every event reaches a client once the database is back, once each, in
/// the order Twitch sent them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_events_survive_a_20s_postgres_outage() {
    let Some(mut pg) = tau_test_services::postgres("socket_20s_outage").await else {
        return;
    };
    let fake = FakeTwitch::start().await;
    let mut config = tau_relay::config::Config::for_tests();
    config.database_url = pg.url();
    config.database = tau_relay::config::DatabaseKind::Postgres;
    config.twitch.client_id = Some(FakeTwitch::CLIENT_ID.into());
    config.twitch.client_secret = Some(FakeTwitch::CLIENT_SECRET.into());
    config.twitch.api_url = fake.api_url().parse().unwrap();
    config.twitch.auth_url = fake.auth_url().parse().unwrap();
    config.twitch.eventsub_ws_url = fake.eventsub_ws_url().parse().unwrap();
    config.eventsub_types = vec![("channel.cheer".into(), "1".into())];
    // Short leases: the outage lasts many lease lifetimes.
    config.timings = timings("lease_ttl=2s,lease_renew=500ms,store_retry_max=1s");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    config.public_url = format!("http://{}", listener.local_addr().unwrap())
        .parse()
        .unwrap();
    let store = tau_relay::store::Store::open(&pg.url(), tau_relay::config::DatabaseKind::Postgres)
        .await
        .unwrap();
    let relay = TestRelay::start_on_listener(listener, config, store).await;
    tau_relay::app::spawn_twitch(&relay.state);
    assert_eq!(authorize(&relay).await.status(), 200);
    let session = subscribed_session(&fake, None, WAIT).await;
    let mut client = relay.client(json!({})).await;
    relay.wait_clients(1).await;

    let mut sent = Vec::new();
    let send = |n: usize| {
        let (fake, id) = (fake.clone(), session.id.clone());
        async move {
            fake.send_notification(&id, "channel.cheer", "1", json!({"bits": n}))
                .await
                .unwrap_or_else(|e| panic!("event {n}: the session did not survive: {e}"))
        }
    };
    for n in 0..5 {
        sent.push(send(n).await);
    }
    pg.stop().await;
    let down = tokio::time::Instant::now();
    let mut n = 5;
    while down.elapsed() < Duration::from_secs(20) {
        sent.push(send(n).await);
        n += 1;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    pg.start().await;
    for _ in 0..5 {
        sent.push(send(n).await);
        n += 1;
    }

    let mut received = Vec::new();
    while received.len() < sent.len() {
        match client.next(60).await {
            Frame::Json(frame, _) => received.push(frame["event_id"].as_str().unwrap().to_string()),
            Frame::Closed(close) => panic!("client closed: {close:?} after {}", received.len()),
        }
    }
    assert!(client.quiet_for(500).await, "nothing delivered twice");
    let unique: HashSet<_> = received.iter().collect();
    assert_eq!(unique.len(), received.len(), "no duplicates");
    assert_eq!(received, sent, "every event, in the order Twitch sent them");
    let sessions = fake.sessions().await;
    assert!(
        sessions.iter().filter(|s| s.welcomed).count() == 1,
        "one session throughout: {sessions:?}"
    );
    let metrics = relay
        .http
        .get(format!("{}/metrics", relay.base))
        .send()
        .await
        .unwrap();
    let metrics = metrics.text().await.unwrap();
    assert!(
        !metrics.contains("tau_events_lost_total{source=\"websocket\"} "),
        "{metrics}"
    );
    let stored: Value = relay.get("/api/v1/status").await.json().await.unwrap();
    assert_eq!(stored["events_stored"], sent.len());
    relay.state.shutdown.cancel();
}
