//! Prometheus metrics, served at `/metrics`.

use prometheus_client::{
    encoding::{text::encode, EncodeLabelSet},
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{exponential_buckets, Histogram},
    },
    registry::Registry,
};

/// Label naming where an event or failure came from.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabel {
    /// `webhook`, `websocket`, `test`, `replay`.
    pub source: &'static str,
}

/// Label naming why a webhook was rejected.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// `missing_headers`, `bad_signature`, `stale_timestamp`, `no_secret`.
    pub reason: &'static str,
}

/// Label naming a webhook forwarding target.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TargetLabel {
    /// The target's name.
    pub target: String,
}

/// Label of one webhook delivery attempt.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeliveryLabel {
    /// The target's name.
    pub target: String,
    /// `success` (2xx) or `failure` (retried).
    pub result: &'static str,
}

/// Every metric the relay exports.
#[derive(Debug, Default)]
pub struct Metrics {
    /// New events stored and published, by source.
    pub events_ingested: Family<SourceLabel, Counter>,
    /// Events received from Twitch but never stored (socket buffer full,
    /// store down past the patience, shutdown), by source; each is also
    /// logged with its message id.
    pub events_lost: Family<SourceLabel, Counter>,
    /// Twitch resends recognised by message id and dropped.
    pub events_duplicate: Counter,
    /// Frames written to client sockets.
    pub events_delivered: Counter,
    /// Frames a client never got because it was too slow (it was disconnected).
    pub events_dropped: Counter,
    /// Clients disconnected for being too slow.
    pub slow_clients_disconnected: Counter,
    /// Authenticated websocket clients connected now.
    pub clients_connected: Gauge,
    /// Webhook messages rejected before ingest, by reason.
    pub webhook_verification_failures: Family<ReasonLabel, Counter>,
    /// Webhook forwarding attempts, by target and result.
    pub forward_deliveries: Family<DeliveryLabel, Counter>,
    /// Events a webhook target wants and has not received yet (computed
    /// by the replica delivering for it).
    pub forward_backlog: Family<TargetLabel, Gauge>,
    /// Webhook targets paused (by hand or for failing too long).
    pub forward_paused_targets: Gauge,
    /// Event batch commits: how long each took and how many events it held.
    pub commits: CommitMetrics,
}

/// Event batch commits, observed by the batching writer.
///
/// Why: an event is published only after the batch holding it commits, so
/// the commit time (SQLite's fsync of the WAL, or a Postgres round trip)
/// is a floor under every event's latency, and the batch size shows how
/// far commits are shared under load. Cheap to clone: clones observe into
/// the same histograms.
#[derive(Debug, Clone)]
pub struct CommitMetrics {
    /// Seconds from handing a batch to the store to its answer.
    pub seconds: Histogram,
    /// Events in the batch (after in-batch duplicates are dropped).
    pub events: Histogram,
}

impl Default for CommitMetrics {
    fn default() -> CommitMetrics {
        CommitMetrics {
            // 125 µs .. ~2 s, doubling.
            seconds: Histogram::new(exponential_buckets(0.000_125, 2.0, 15)),
            // 1 .. 1,024 events (the writer's largest batch is 512).
            events: Histogram::new(exponential_buckets(1.0, 2.0, 11)),
        }
    }
}

impl Metrics {
    /// Renders the Prometheus text format.
    pub fn render(&self) -> String {
        let mut registry = Registry::with_prefix("tau");
        registry.register(
            "events_ingested",
            "Events stored and published",
            self.events_ingested.clone(),
        );
        registry.register(
            "events_lost",
            "Events received from Twitch but never stored",
            self.events_lost.clone(),
        );
        registry.register(
            "events_duplicate",
            "Twitch resends dropped by message id",
            self.events_duplicate.clone(),
        );
        registry.register(
            "events_delivered",
            "Event frames written to clients",
            self.events_delivered.clone(),
        );
        registry.register(
            "events_dropped",
            "Event frames lost by clients too slow to keep up",
            self.events_dropped.clone(),
        );
        registry.register(
            "slow_clients_disconnected",
            "Clients disconnected for falling behind",
            self.slow_clients_disconnected.clone(),
        );
        registry.register(
            "clients_connected",
            "Authenticated websocket clients",
            self.clients_connected.clone(),
        );
        registry.register(
            "webhook_verification_failures",
            "Webhook messages rejected by verification",
            self.webhook_verification_failures.clone(),
        );
        registry.register(
            "forward_deliveries",
            "Webhook forwarding attempts by target and result",
            self.forward_deliveries.clone(),
        );
        registry.register(
            "forward_backlog",
            "Events a webhook target has yet to receive",
            self.forward_backlog.clone(),
        );
        registry.register(
            "forward_paused_targets",
            "Webhook targets paused",
            self.forward_paused_targets.clone(),
        );
        registry.register(
            "event_commit_seconds",
            "Time to commit one batch of events",
            self.commits.seconds.clone(),
        );
        registry.register(
            "event_commit_events",
            "Events in one committed batch",
            self.commits.events.clone(),
        );
        let mut out = String::new();
        encode(&mut out, &registry).expect("writing to a String cannot fail");
        out
    }
}
