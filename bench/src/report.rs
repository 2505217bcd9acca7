//! Results: merged client histograms, loss and duplicates, server usage;
//! printed as a table and serialized as JSON so runs compare side by side.

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::{
    calibrate::Calibration,
    clients::{ClientLog, MAX_LATENCY_US},
    commits::Commits,
    load::Load,
    relay::Usage,
};

/// Everything one scenario collected.
pub struct Raw {
    pub name: String,
    pub backend: String,
    pub relays: usize,
    pub load: Load,
    pub logs: Vec<ClientLog>,
    pub failed: Vec<u64>,
    pub closed: u64,
    pub started_us: u64,
    pub last_ack_us: u64,
    pub server_before: Usage,
    pub server_after: Usage,
    pub measured_pids: bool,
    pub load_avg: String,
    /// The relays' event commits during the load (their `/metrics`).
    pub commits: Option<Commits>,
    /// Open loop: how late sends started (µs), if recorded.
    pub send_lag: Option<Histogram<u64>>,
}

/// Latency percentiles, milliseconds.
#[derive(Debug, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p99_9: f64,
    pub max: f64,
    pub samples: u64,
}

impl Latency {
    /// Percentiles of a histogram of microseconds.
    fn of(h: &Histogram<u64>) -> Latency {
        let ms = |us: u64| us as f64 / 1000.0;
        Latency {
            p50: ms(h.value_at_quantile(0.5)),
            p90: ms(h.value_at_quantile(0.9)),
            p99: ms(h.value_at_quantile(0.99)),
            p99_9: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
            samples: h.len(),
        }
    }
}

/// One scenario's figures.
#[derive(Debug, Serialize)]
pub struct ScenarioResult {
    pub name: String,
    pub backend: String,
    pub relays: usize,
    pub clients: usize,
    pub load: Load,
    /// Webhooks acknowledged per second (stored durably: the relay answers
    /// after the commit), from the first send to the last acknowledgement.
    pub stored_per_s: f64,
    /// Events per second fully delivered (to every client), from the first
    /// send to the last delivery.
    pub delivered_per_s: f64,
    /// Deliveries (event × client) per second over the same span.
    pub deliveries_per_s: f64,
    pub deliveries: u64,
    pub latency_ms: Latency,
    /// Acknowledged events some client never received, summed over clients.
    pub lost: u64,
    pub clients_with_loss: usize,
    /// Events a client received more than once, summed over clients.
    pub duplicates: u64,
    /// Webhooks the relay refused or that failed.
    pub refused: usize,
    /// Clients whose connection ended early.
    pub disconnected: u64,
    /// Frames that were not a stamped event.
    pub foreign_frames: u64,
    /// Server CPU seconds used during the load, and as cores (CPU s / wall s).
    pub server_cpu_s: Option<f64>,
    pub server_cores: Option<f64>,
    /// Server CPU µs per stored event: the figure that survives a busy
    /// machine (throughput there is capped by whoever else runs).
    pub server_cpu_us_per_event: Option<f64>,
    /// Server resident memory at the end, MiB.
    pub server_rss_mib: Option<f64>,
    /// (RSS with idle clients − RSS before) / clients (idle profile).
    pub idle_bytes_per_client: Option<f64>,
    /// `/proc/loadavg` before → after (other work on the machine).
    pub load_avg: String,
    /// The relays' event commits during the load: a floor under latency.
    pub commits: Option<Commits>,
    /// Open loop: how late the generator started sends after their
    /// scheduled (stamped) time; included in `latency_ms`.
    pub send_lag_ms: Option<Latency>,
}

/// Folds a scenario's logs into its figures.
pub fn summarize(raw: Raw) -> ScenarioResult {
    let events = raw.load.events();
    let failed: std::collections::HashSet<u64> = raw.failed.iter().copied().collect();
    let expected: Vec<u64> = (0..events).filter(|s| !failed.contains(s)).collect();
    let mut merged = Histogram::<u64>::new_with_bounds(1, MAX_LATENCY_US, 3).expect("valid bounds");
    let (mut lost, mut with_loss, mut duplicates, mut deliveries, mut foreign, mut last) =
        (0, 0, 0, 0, 0, 0);
    for log in &raw.logs {
        merged.add(&log.latency).expect("same bounds");
        let missing = log.lost(&expected);
        lost += missing;
        with_loss += usize::from(missing > 0);
        duplicates += log.duplicates;
        deliveries += log.received;
        foreign += log.foreign;
        last = last.max(log.last_us);
    }
    let secs = |end_us: u64| end_us.saturating_sub(raw.started_us).max(1) as f64 / 1e6;
    let wall = secs(last.max(raw.last_ack_us));
    let cpu = raw.server_after.cpu_s - raw.server_before.cpu_s;
    ScenarioResult {
        name: raw.name,
        backend: raw.backend,
        relays: raw.relays,
        clients: raw.logs.len(),
        load: raw.load,
        stored_per_s: (expected.len() as f64 / secs(raw.last_ack_us)).round(),
        delivered_per_s: (expected.len() as f64 / secs(last)).round(),
        deliveries_per_s: (deliveries as f64 / secs(last)).round(),
        deliveries,
        latency_ms: Latency::of(&merged),
        lost,
        clients_with_loss: with_loss,
        duplicates,
        refused: failed.len(),
        disconnected: raw.closed,
        foreign_frames: foreign,
        server_cpu_s: raw.measured_pids.then_some(cpu),
        server_cores: raw.measured_pids.then_some(cpu / wall),
        server_cpu_us_per_event: raw
            .measured_pids
            .then_some((cpu * 1e6 / expected.len().max(1) as f64).round()),
        server_rss_mib: raw
            .measured_pids
            .then_some(raw.server_after.rss as f64 / (1024.0 * 1024.0)),
        idle_bytes_per_client: None,
        load_avg: raw.load_avg,
        commits: raw.commits,
        send_lag_ms: raw
            .send_lag
            .filter(|h| !h.is_empty())
            .map(|h| Latency::of(&h)),
    }
}

/// A whole run.
#[derive(Debug, Serialize)]
pub struct Report {
    pub profile: String,
    pub machine: Machine,
    pub scenarios: Vec<ScenarioResult>,
}

/// What the numbers were taken on.
#[derive(Debug, Serialize)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub kernel: String,
    /// Its speed on the day, timed before the load.
    pub calibration: Calibration,
}

impl Report {
    pub fn new(
        profile: String,
        calibration: Calibration,
        scenarios: Vec<ScenarioResult>,
    ) -> Report {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        Report {
            profile,
            machine: Machine {
                cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
                cpu_model: cpuinfo
                    .lines()
                    .find_map(|l| l.strip_prefix("model name"))
                    .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
                    .unwrap_or_default(),
                kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                    .unwrap_or_default()
                    .trim()
                    .to_string(),
                calibration,
            },
            scenarios,
        }
    }

    /// True when nothing was lost, duplicated, refused or cut off.
    pub fn clean(&self) -> bool {
        self.scenarios.iter().all(|s| {
            s.lost == 0
                && s.duplicates == 0
                && s.refused == 0
                && s.disconnected == 0
                && s.foreign_frames == 0
        })
    }

    /// The human table.
    pub fn table(&self) -> String {
        let m = &self.machine;
        let mut out = format!(
            "tau-bench {} on {} CPUs ({}), Linux {}\n{}\n{}\n",
            self.profile, m.cpus, m.cpu_model, m.kernel, m.calibration, HEADER
        );
        for s in &self.scenarios {
            out.push_str(&row(s));
            out.push('\n');
        }
        out
    }
}

const HEADER: &str = "scenario                                           | stored/s | delivered/s | deliveries/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | lost | dup | refused | server cores | CPU µs/event | RSS MiB | B/idle client | commit ms mean / p99 ≤ / max ≤ | events/commit | send lag p99 ms | loadavg";

/// One table row.
pub fn row(s: &ScenarioResult) -> String {
    let opt =
        |v: Option<f64>, digits: usize| v.map_or("-".to_string(), |v| format!("{v:.digits$}"));
    let l = &s.latency_ms;
    let (commit_ms, per_commit) = s.commits.as_ref().map_or(("-".into(), "-".into()), |c| {
        (
            format!(
                "{:.2} / {} / {}",
                c.mean_ms, c.p99_ms_at_most, c.max_ms_at_most
            ),
            format!("{:.1}", c.events_per_batch),
        )
    });
    format!(
        "{:<50} | {:>8} | {:>11} | {:>12} | {:>6.2} | {:>6.2} | {:>6.2} | {:>8.2} | {:>6.1} | {:>4} | {:>3} | {:>7} | {:>12} | {:>12} | {:>7} | {:>13} | {:>29} | {:>13} | {:>15} | {}",
        s.name,
        s.stored_per_s,
        s.delivered_per_s,
        s.deliveries_per_s,
        l.p50,
        l.p90,
        l.p99,
        l.p99_9,
        l.max,
        s.lost,
        s.duplicates,
        s.refused,
        opt(s.server_cores, 2),
        opt(s.server_cpu_us_per_event, 0),
        opt(s.server_rss_mib, 1),
        opt(s.idle_bytes_per_client, 0),
        commit_ms,
        per_commit,
        opt(s.send_lag_ms.as_ref().map(|l| l.p99), 3),
        s.load_avg,
    )
}
