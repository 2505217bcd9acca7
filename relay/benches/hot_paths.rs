//! Micro-benchmarks of the ingest → store → fan-out hot path, one stage
//! each: webhook verify + decode, normalize, encode once, hand one encoded
//! event to N client queues, and a store batch insert (SQLite file).
//! `cargo bench -p tau-relay`; `tau-bench` measures the whole relay.

use std::sync::Arc;

use axum::http::HeaderMap;
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use serde_json::value::RawValue;
use tau_relay::{
    config::DatabaseKind,
    event::{tau_event_type, EventIndex, Origin, TauEvent, SOURCE_EVENTSUB},
    hub::Hub,
    ingest::{
        signature::sign,
        webhook::{verify_and_parse, Message},
    },
    store::Store,
};

const SECRET: &[u8] = b"bench-secret";
const FOLLOW: &str = r#"{"subscription":{"id":"f1c2a387-161a-49f9-a165-0f21d7a4e1c4","status":"enabled","type":"channel.follow","version":"2","condition":{"broadcaster_user_id":"1337","moderator_user_id":"1337"},"transport":{"method":"webhook","callback":"https://example.com/webhooks/callback"},"created_at":"2019-11-16T10:11:12.634234626Z","cost":0},"event":{"user_id":"1234","user_login":"cool_user","user_name":"Cool_User","broadcaster_user_id":"1337","broadcaster_user_login":"cooler_user","broadcaster_user_name":"Cooler_User","followed_at":"2020-07-15T18:16:11.17106713Z"}}"#;
const EVENT: &str = r#"{"user_id":"1234","user_login":"cool_user","user_name":"Cool_User","broadcaster_user_id":"1337","broadcaster_user_login":"cooler_user","broadcaster_user_name":"Cooler_User","followed_at":"2020-07-15T18:16:11.17106713Z"}"#;

fn event(n: usize) -> TauEvent {
    TauEvent {
        id: Some(uuid::Uuid::new_v4()),
        event_id: format!("bench-{n}-{}", uuid::Uuid::new_v4()),
        event_type: "channel-follow".into(),
        version: "2".into(),
        event_source: SOURCE_EVENTSUB.into(),
        event_data: RawValue::from_string(EVENT.into()).expect("valid JSON"),
        created: chrono::Utc::now(),
        origin: Origin::Twitch,
    }
}

fn verify_decode(c: &mut Criterion) {
    let timestamp = chrono::Utc::now().to_rfc3339();
    let mut headers = HeaderMap::new();
    headers.insert("Twitch-Eventsub-Message-Id", "m-1".parse().unwrap());
    headers.insert(
        "Twitch-Eventsub-Message-Timestamp",
        timestamp.parse().unwrap(),
    );
    let signature = sign(SECRET, "m-1", &timestamp, FOLLOW.as_bytes());
    headers.insert(
        "Twitch-Eventsub-Message-Signature",
        signature.parse().unwrap(),
    );
    headers.insert(
        "Twitch-Eventsub-Message-Type",
        "notification".parse().unwrap(),
    );
    let now = chrono::Utc::now();
    c.bench_function("webhook verify + decode", |b| {
        b.iter(|| {
            let verified = verify_and_parse(SECRET, &headers, FOLLOW.as_bytes(), now).unwrap();
            assert!(matches!(verified.message, Message::Notification(_)));
            verified
        })
    });
}

fn normalize(c: &mut Criterion) {
    let data = RawValue::from_string(EVENT.into()).unwrap();
    c.bench_function("normalize (index + TAU event)", |b| {
        b.iter_batched(
            || data.clone(),
            |data| {
                let index = EventIndex::from_event_data(&data);
                let event = TauEvent {
                    id: Some(uuid::Uuid::new_v4()),
                    event_id: "m-1".into(),
                    event_type: tau_event_type("channel.follow"),
                    version: "2".into(),
                    event_source: SOURCE_EVENTSUB.into(),
                    event_data: data,
                    created: chrono::Utc::now(),
                    origin: Origin::Twitch,
                };
                (index, event)
            },
            BatchSize::SmallInput,
        )
    });
}

fn encode(c: &mut Criterion) {
    let e = event(0);
    c.bench_function("encode once", |b| b.iter(|| e.encode(Some(42))));
}

fn per_client_send(c: &mut Criterion) {
    let mut group = c.benchmark_group("hand one event to N client queues");
    for clients in [1usize, 100, 1000] {
        let hub = Hub::new(1024);
        let mut receivers: Vec<_> = (0..clients).map(|_| hub.subscribe()).collect();
        let encoded = event(0).encode(Some(1));
        group.throughput(Throughput::Elements(clients as u64));
        group.bench_with_input(BenchmarkId::from_parameter(clients), &clients, |b, _| {
            b.iter(|| {
                hub.dispatch(Arc::clone(&encoded));
                for rx in &mut receivers {
                    rx.try_recv().expect("each queue got the event");
                }
            })
        });
    }
    group.finish();
}

fn store_batch(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = std::env::temp_dir().join(format!("tau-criterion-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.join("bench.db").display());
    let store = runtime
        .block_on(Store::open(&url, DatabaseKind::Sqlite))
        .unwrap();
    let mut group = c.benchmark_group("store batch insert (SQLite file)");
    group.sample_size(20);
    for size in [1usize, 64, 512] {
        group.throughput(Throughput::Elements(size as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, &size| {
            b.iter_batched(
                || {
                    let events: Vec<_> = (0..size).map(event).collect();
                    let indexes: Vec<_> = events
                        .iter()
                        .map(|e| EventIndex::from_event_data(&e.event_data))
                        .collect();
                    (events, indexes)
                },
                |(events, indexes)| {
                    let rows: Vec<_> = events.iter().zip(&indexes).collect();
                    runtime.block_on(store.insert_batch(&rows)).unwrap()
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
    std::fs::remove_dir_all(dir).ok();
}

criterion_group!(
    hot_paths,
    verify_decode,
    normalize,
    encode,
    per_client_send,
    store_batch
);
criterion_main!(hot_paths);
