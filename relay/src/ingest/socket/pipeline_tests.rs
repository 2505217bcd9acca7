//! Tests of the socket pipeline against a real (SQLite) store whose
//! events table is renamed away and back to simulate an outage.

use std::sync::Mutex;

use super::*;
use crate::{
    bus::Bus,
    config::DatabaseKind,
    event::EncodedEvent,
    status::StatusBoard,
    store::{writer::EventWriter, Store},
};

/// Records the event ids the writer published, in order.
#[derive(Default)]
struct Published(Mutex<Vec<String>>);
impl Bus for Published {
    fn publish(&self, event: Arc<EncodedEvent>) {
        let frame: serde_json::Value = serde_json::from_str(&event.payload).unwrap();
        let id = frame["event_id"].as_str().unwrap().to_string();
        self.0.lock().unwrap().push(id);
    }
}

struct Rig {
    store: Store,
    published: Arc<Published>,
    metrics: Arc<Metrics>,
    pipeline: Option<Pipeline>,
    shutdown: CancellationToken,
    dir: std::path::PathBuf,
}

impl Rig {
    async fn new(patience: Duration) -> Rig {
        let dir = std::env::temp_dir().join(format!("tau-pipeline-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}", dir.join("tau.db").display());
        let store = Store::open(&url, DatabaseKind::Sqlite).await.unwrap();
        let published = Arc::new(Published::default());
        let metrics = Arc::new(Metrics::default());
        let ingest = Ingest {
            writer: EventWriter::spawn(store.clone(), published.clone(), metrics.commits.clone()),
            store: store.clone(),
            metrics: metrics.clone(),
            status: Arc::new(StatusBoard::default()),
            after_store: None,
        };
        let timings = Timings {
            socket_ingest_patience: patience,
            store_retry_min: Duration::from_millis(10),
            store_retry_max: Duration::from_millis(50),
            ..Timings::default()
        };
        let shutdown = CancellationToken::new();
        let pipeline = Pipeline::spawn(ingest, &timings, shutdown.clone(), "websocket");
        Rig {
            store,
            published,
            metrics,
            pipeline: Some(pipeline),
            shutdown,
            dir,
        }
    }

    fn push(&self, id: &str) {
        let body = crate::ingest::NotificationBody {
            subscription: serde_json::from_str(r#"{"type":"channel.cheer","version":"1"}"#)
                .unwrap(),
            event: serde_json::value::RawValue::from_string(r#"{"bits":1}"#.into()).unwrap(),
        };
        let pipeline = self.pipeline.as_ref().expect("pipeline open");
        pipeline.push(Item::Event {
            id: id.into(),
            body,
        });
    }

    fn published(&self) -> Vec<String> {
        self.published.0.lock().unwrap().clone()
    }

    fn lost(&self) -> u64 {
        self.metrics
            .events_lost
            .get_or_create(&SourceLabel {
                source: "websocket",
            })
            .get()
    }

    async fn store_down(&self) {
        // A missing table fails every write, like a database outage.
        self.store
            .execute_for_tests("ALTER TABLE events RENAME TO events_away")
            .await
            .unwrap();
    }

    async fn store_up(&self) {
        self.store
            .execute_for_tests("ALTER TABLE events_away RENAME TO events")
            .await
            .unwrap();
    }

    async fn wait(&self, what: &str, cond: impl Fn(&Rig) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !cond(self) {
            assert!(Instant::now() < deadline, "never: {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

#[tokio::test]
async fn events_wait_out_a_store_outage_and_keep_arrival_order() {
    let rig = Rig::new(Duration::from_secs(30)).await;
    let ids: Vec<String> = (0..300).map(|i| format!("m{i:03}")).collect();
    for id in &ids[..100] {
        rig.push(id);
    }
    rig.wait("first 100 stored", |r| r.published().len() == 100)
        .await;
    rig.store_down().await;
    for id in &ids[100..200] {
        rig.push(id);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rig.published().len(), 100, "nothing stored while down");
    rig.store_up().await;
    for id in &ids[200..] {
        rig.push(id);
    }
    // A resend of an early id is stored once.
    rig.push("m000");
    rig.wait("all 300 stored", |r| r.published().len() == 300)
        .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        rig.published(),
        ids,
        "stored and published in arrival order"
    );
    assert_eq!(rig.store.count_events().await.unwrap(), 300);
    assert_eq!(rig.lost(), 0);
}

#[tokio::test]
async fn events_past_their_patience_are_counted_as_lost() {
    let rig = Rig::new(Duration::from_millis(200)).await;
    rig.store_down().await;
    for i in 0..3 {
        rig.push(&format!("late{i}"));
    }
    rig.wait("three counted lost", |r| r.lost() == 3).await;
    rig.store_up().await;
    rig.push("after");
    rig.wait("the next one stored", |r| r.published() == ["after"])
        .await;
    assert!(rig
        .metrics
        .render()
        .contains("tau_events_lost_total{source=\"websocket\"} 3"));
}

#[tokio::test]
async fn shutdown_with_the_store_down_accounts_for_every_held_event() {
    let rig = Rig::new(Duration::from_secs(30)).await;
    rig.store_down().await;
    for i in 0..5 {
        rig.push(&format!("held{i}"));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(rig.lost(), 0, "held, not lost, while patience lasts");
    rig.shutdown.cancel();
    rig.wait("all five counted lost", |r| r.lost() == 5).await;
}

#[tokio::test]
async fn dropping_the_last_handle_drains_before_signalling() {
    let mut rig = Rig::new(Duration::from_secs(30)).await;
    let drained = rig.pipeline.as_ref().unwrap().drained();
    for i in 0..200 {
        rig.push(&format!("d{i}"));
    }
    rig.pipeline = None;
    tokio::time::timeout(Duration::from_secs(10), drained.cancelled())
        .await
        .expect("drained");
    assert_eq!(rig.published().len(), 200, "everything written first");
}

/// A burst far larger than one window is stored and published in arrival
/// order (writes must reach the batching writer in the order issued).
#[tokio::test]
async fn a_large_burst_keeps_arrival_order() {
    let rig = Rig::new(Duration::from_secs(30)).await;
    let ids: Vec<String> = (0..3_000).map(|i| format!("b{i:04}")).collect();
    for id in &ids {
        rig.push(id);
    }
    rig.wait("all stored", |r| r.published().len() == ids.len())
        .await;
    assert_eq!(rig.published(), ids, "published in arrival order");
    assert_eq!(rig.lost(), 0);
}
