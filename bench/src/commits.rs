//! The relays' own account of their event commits, from `/metrics`
//! (`tau_event_commit_seconds`, `tau_event_commit_events`).
//!
//! Why: a relay publishes an event only after the batch holding it has
//! committed (SQLite's fsync of the WAL, a Postgres round trip), so the
//! commit time is a floor under the latency the clients measure. Printing
//! both side by side tells the disk's share of a latency from the relay's
//! own path, and the batch size shows how far commits were shared.
//!
//! Histograms are cumulative, so a scenario takes a [`Snapshot`] before its
//! load and one after, and reports the difference.

use serde::Serialize;

/// Summed `tau_event_commit_*` histograms of some relays at one moment.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Snapshot {
    /// Cumulative bucket counts of the commit time: (upper bound s, count).
    buckets: Vec<(f64, f64)>,
    seconds_sum: f64,
    batches: f64,
    events: f64,
}

/// The commits made between two snapshots.
#[derive(Debug, Clone, Serialize)]
pub struct Commits {
    /// Batches committed.
    pub batches: u64,
    /// Mean commit time, milliseconds.
    pub mean_ms: f64,
    /// Upper bound of the histogram bucket holding the median commit time
    /// (buckets double from 0.125 ms), milliseconds.
    pub p50_ms_at_most: f64,
    /// The same for the 99th percentile.
    pub p99_ms_at_most: f64,
    /// The same for the slowest commit.
    pub max_ms_at_most: f64,
    /// Mean events per batch.
    pub events_per_batch: f64,
}

impl Snapshot {
    /// Reads and sums the histograms of every relay at `addrs`; relays
    /// that do not answer count as empty.
    pub async fn take(addrs: &[String]) -> Snapshot {
        let http = reqwest::Client::new();
        let mut total = Snapshot::default();
        for addr in addrs {
            let text = async {
                http.get(format!("http://{addr}/metrics"))
                    .send()
                    .await?
                    .text()
                    .await
            }
            .await
            .unwrap_or_default();
            total.add(&Snapshot::parse(&text));
        }
        total
    }

    /// Picks the commit histograms out of a Prometheus text exposition.
    pub fn parse(text: &str) -> Snapshot {
        let mut snapshot = Snapshot::default();
        for line in text.lines() {
            let Some((name, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            if let Some(labels) = name.strip_prefix("tau_event_commit_seconds_bucket") {
                let bound = labels
                    .trim_start_matches("{le=\"")
                    .trim_end_matches("\"}")
                    .parse::<f64>()
                    .unwrap_or(f64::INFINITY);
                snapshot.buckets.push((bound, value));
            }
            match name {
                "tau_event_commit_seconds_sum" => snapshot.seconds_sum = value,
                "tau_event_commit_seconds_count" => snapshot.batches = value,
                "tau_event_commit_events_sum" => snapshot.events = value,
                _ => {}
            }
        }
        snapshot
    }

    fn add(&mut self, other: &Snapshot) {
        if self.buckets.is_empty() {
            self.buckets = other.buckets.clone();
        } else {
            for (mine, theirs) in self.buckets.iter_mut().zip(&other.buckets) {
                mine.1 += theirs.1;
            }
        }
        self.seconds_sum += other.seconds_sum;
        self.batches += other.batches;
        self.events += other.events;
    }

    /// The commits since `before`; `None` if there were none (or the
    /// relays export no commit histograms).
    pub fn since(&self, before: &Snapshot) -> Option<Commits> {
        let batches = self.batches - before.batches;
        if batches < 1.0 {
            return None;
        }
        let bucket = |i: usize| {
            let earlier = before.buckets.get(i).map_or(0.0, |b| b.1);
            (self.buckets[i].0, self.buckets[i].1 - earlier)
        };
        let at_most_ms = |quantile: f64| {
            (0..self.buckets.len())
                .map(bucket)
                .find(|(_, count)| *count >= quantile * batches)
                .map_or(f64::INFINITY, |(bound, _)| bound * 1e3)
        };
        Some(Commits {
            batches: batches as u64,
            mean_ms: (self.seconds_sum - before.seconds_sum) / batches * 1e3,
            p50_ms_at_most: at_most_ms(0.5),
            p99_ms_at_most: at_most_ms(0.99),
            max_ms_at_most: at_most_ms(1.0),
            events_per_batch: (self.events - before.events) / batches,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exposition(counts: [u64; 4], sum: f64, events: u64) -> String {
        format!(
            "# TYPE tau_event_commit_seconds histogram\n\
             tau_event_commit_seconds_sum {sum}\n\
             tau_event_commit_seconds_count {}\n\
             tau_event_commit_seconds_bucket{{le=\"0.001\"}} {}\n\
             tau_event_commit_seconds_bucket{{le=\"0.002\"}} {}\n\
             tau_event_commit_seconds_bucket{{le=\"0.004\"}} {}\n\
             tau_event_commit_seconds_bucket{{le=\"+Inf\"}} {}\n\
             tau_event_commit_events_sum {events}\n\
             tau_event_commit_events_count {}\n\
             tau_events_ingested_total{{source=\"webhook\"}} 9\n",
            counts[3], counts[0], counts[1], counts[2], counts[3], counts[3]
        )
    }

    #[test]
    fn commits_are_the_difference_between_snapshots() {
        let before = Snapshot::parse(&exposition([5, 5, 5, 5], 0.004, 5));
        // 100 more batches: 90 within 1 ms, 9 within 2 ms, 1 within 4 ms.
        let after = Snapshot::parse(&exposition([95, 104, 105, 105], 0.104, 405));
        let commits = after.since(&before).unwrap();
        assert_eq!(commits.batches, 100);
        assert!((commits.mean_ms - 1.0).abs() < 1e-9, "{commits:?}");
        assert_eq!(commits.p50_ms_at_most, 1.0);
        assert_eq!(commits.p99_ms_at_most, 2.0);
        assert_eq!(commits.max_ms_at_most, 4.0);
        assert!((commits.events_per_batch - 4.0).abs() < 1e-9);
        assert!(after.since(&after).is_none());
    }

    #[test]
    fn relays_are_summed() {
        let one = exposition([1, 2, 2, 2], 0.003, 2);
        let mut total = Snapshot::default();
        total.add(&Snapshot::parse(&one));
        total.add(&Snapshot::parse(&one));
        let commits = total.since(&Snapshot::default()).unwrap();
        assert_eq!(commits.batches, 4);
        assert_eq!(commits.p50_ms_at_most, 1.0);
        assert_eq!(commits.p99_ms_at_most, 2.0);
        assert!(Snapshot::parse("").since(&Snapshot::default()).is_none());
    }
}
