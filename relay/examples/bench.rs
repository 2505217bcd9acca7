//! Benchmark: webhook ingest throughput and websocket fan-out latency of
//! one relay, printed as one JSON object. Not a test: numbers, no verdicts.
//!
//! ```sh
//! cargo run --release -p tau-relay --example bench -- [events] [clients] [concurrency]
//! ```
//! Defaults: 20000 events, 500 clients, 64 concurrent webhook senders. The
//! relay (SQLite file, in-process bus) and the load run in one process on
//! the same cores, so figures are a floor, not a ceiling.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use futures_util::{SinkExt, StreamExt};
use tau_relay::{app, config::Config, ingest::signature::sign, secret::SecretKey, store::Store};
use tokio_tungstenite::tungstenite::Message;

const SECRET: &str = "bench-webhook-secret";

fn arg(n: usize, default: usize) -> usize {
    std::env::args()
        .nth(n)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let (events, clients, concurrency) = (arg(1, 20_000), arg(2, 500), arg(3, 64));
    let dir = std::env::temp_dir().join(format!("tau-bench-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("bench.db").display());
    let mut config = Config::for_tests();
    config.twitch.webhook_secret = Some(SECRET.into());
    config.client_queue = 65_536;
    let store = Store::open(&url, config.database.clone()).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = app::build_with_store(config, SecretKey::generate(), store);
    let token = state
        .store
        .create_token(
            "bench",
            &tau_relay::access::Grant::role(tau_relay::access::Role::Admin),
        )
        .await
        .unwrap()
        .token;
    tokio::spawn(app::serve(listener, state.clone()));

    // Clients: each records receive time minus the send time in the event.
    let latencies = Arc::new(std::sync::Mutex::new(Vec::with_capacity(
        events * clients.min(50),
    )));
    let delivered = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for i in 0..clients {
        let (mut ws, _) =
            tokio_tungstenite::connect_async(format!("ws://{addr}/ws/twitch-events/"))
                .await
                .unwrap();
        ws.send(Message::Text(
            serde_json::json!({"token": token}).to_string().into(),
        ))
        .await
        .unwrap();
        let (latencies, delivered) = (latencies.clone(), delivered.clone());
        // Every client counts; 50 of them also record latency (bounded memory).
        let sample = i < 50;
        tasks.push(tokio::spawn(async move {
            let mut got = 0;
            while got < events {
                let Some(Ok(Message::Text(text))) = ws.next().await else {
                    break;
                };
                got += 1;
                delivered.fetch_add(1, Ordering::Relaxed);
                if sample {
                    let frame: serde_json::Value = serde_json::from_str(&text).unwrap();
                    let sent = frame["event_data"]["sent_us"].as_u64().unwrap();
                    let now = chrono::Utc::now().timestamp_micros() as u64;
                    latencies.lock().unwrap().push(now.saturating_sub(sent));
                }
            }
        }));
    }
    while state.metrics.clients_connected.get() < clients as i64 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // Ingest: signed webhooks from `concurrency` senders, closed loop.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap();
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut senders = Vec::new();
    for _ in 0..concurrency {
        let (http, next) = (http.clone(), next.clone());
        senders.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed) as usize;
                if n >= events {
                    return;
                }
                let sent_us = chrono::Utc::now().timestamp_micros();
                let body = format!(
                    r#"{{"subscription":{{"id":"s","status":"enabled","type":"channel.follow","version":"2","condition":{{}},"transport":{{"method":"webhook","callback":"https://x"}},"created_at":"2024-01-01T00:00:00Z","cost":0}},"event":{{"user_id":"{n}","user_login":"viewer{n}","user_name":"Viewer{n}","broadcaster_user_id":"1337","sent_us":{sent_us}}}}}"#
                );
                let id = format!("bench-{n}");
                let ts = chrono::Utc::now().to_rfc3339();
                let status = http
                    .post(format!("http://{addr}/twitch/eventsub"))
                    .header("Twitch-Eventsub-Message-Id", &id)
                    .header("Twitch-Eventsub-Message-Timestamp", &ts)
                    .header("Twitch-Eventsub-Message-Signature", sign(SECRET.as_bytes(), &id, &ts, body.as_bytes()))
                    .header("Twitch-Eventsub-Message-Type", "notification")
                    .body(body)
                    .send()
                    .await
                    .unwrap()
                    .status();
                assert_eq!(status, 204);
            }
        }));
    }
    for s in senders {
        s.await.unwrap();
    }
    let ingest_secs = started.elapsed().as_secs_f64();
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(60), t).await;
    }
    let total_secs = started.elapsed().as_secs_f64();
    let stored = state.store.count_events().await.unwrap();
    let mut lat = latencies.lock().unwrap().clone();
    lat.sort_unstable();
    let result = serde_json::json!({
        "events": events,
        "clients": clients,
        "webhook_concurrency": concurrency,
        "stored": stored,
        "ingest_events_per_s": (events as f64 / ingest_secs).round(),
        "deliveries": delivered.load(Ordering::Relaxed),
        "deliveries_per_s": (delivered.load(Ordering::Relaxed) as f64 / total_secs).round(),
        "latency_us": {"p50": percentile(&lat, 0.5), "p90": percentile(&lat, 0.9), "p99": percentile(&lat, 0.99),
                       "p999": percentile(&lat, 0.999), "max": lat.last().copied().unwrap_or(0), "samples": lat.len()},
        "dropped_slow_clients": state.metrics.slow_clients_disconnected.get(),
    });
    println!("{}", serde_json::to_string_pretty(&result).unwrap());
    std::fs::remove_dir_all(dir).ok();
}
