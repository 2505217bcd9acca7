//! The supervisor and the per-target delivery loop (see the module docs
//! of [`super`] for the guarantees).
//!
//! The supervisor re-reads the targets on every change made here and
//! every `lease_renew`, and starts a worker for each live target that has
//! none; a worker that cannot take its target's lease (another replica
//! delivers) ends, and is tried again on the next round, which is how a
//! standby takes over from a dead replica within a lease lifetime.

use std::{collections::VecDeque, time::Duration};

use rand::Rng;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{target, wire::Message, Forwarder, LEASE_PREFIX};
use crate::{
    event::eventsub_type,
    metrics::{DeliveryLabel, TargetLabel},
    store::{now_us, StoredRow, WebhookTarget},
};

/// Events read ahead per store query.
const PAGE: i64 = 100;

/// Keeps one worker per live target until `shutdown`.
pub(super) async fn supervise(fwd: Forwarder, shutdown: CancellationToken) {
    let mut changes = fwd.inner.changes.subscribe();
    loop {
        reconcile(&fwd, &shutdown).await;
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = changes.changed() => {}
            _ = tokio::time::sleep(fwd.inner.timings.lease_renew) => {}
        }
    }
}

async fn reconcile(fwd: &Forwarder, shutdown: &CancellationToken) {
    let targets = match fwd.inner.store.webhook_targets().await {
        Ok(targets) => targets,
        Err(err) => {
            tracing::warn!(error = %err, "reading webhook targets failed");
            return;
        }
    };
    let paused = targets.iter().filter(|t| t.paused_reason.is_some()).count();
    fwd.inner.metrics.forward_paused_targets.set(paused as i64);
    let mut workers = fwd.inner.workers.lock().unwrap_or_else(|e| e.into_inner());
    workers.retain(|id, token| {
        let live = targets
            .iter()
            .any(|t| &t.id == id && t.paused_reason.is_none() && !t.pending);
        if !live {
            token.cancel();
        }
        live && !token.is_cancelled()
    });
    for t in targets {
        if t.paused_reason.is_some() || t.pending || workers.contains_key(&t.id) {
            continue;
        }
        let token = shutdown.child_token();
        workers.insert(t.id.clone(), token.clone());
        tokio::spawn(run(fwd.clone(), t.id, token));
    }
}

/// `min · 2^(failures-1)`, capped, then a random part of its second half
/// (jitter: targets that failed together do not retry together).
fn backoff(min: Duration, max: Duration, failures: u32) -> Duration {
    let full = min
        .saturating_mul(2u32.saturating_pow(failures.saturating_sub(1).min(30)))
        .min(max);
    let half = full / 2;
    half + half.mul_f64(rand::thread_rng().gen::<f64>())
}

/// Delivers for target `id` while this replica holds its lease.
async fn run(fwd: Forwarder, id: String, token: CancellationToken) {
    let lease = format!("{LEASE_PREFIX}{id}");
    let inner = &fwd.inner;
    let ttl_us = inner.timings.lease_ttl.as_micros() as i64;
    let held = inner
        .store
        .acquire_lease(&lease, &inner.replica_id, ttl_us)
        .await;
    let Ok(Some(held)) = held else {
        token.cancel();
        return;
    };
    let mut worker = Worker {
        fwd: fwd.clone(),
        id,
        lease,
        fencing: held.fencing,
        renewed: Instant::now(),
        failures: 0,
        backlog_at: None,
        gauge: None,
        ahead: VecDeque::new(),
        token: token.clone(),
    };
    worker.deliver().await;
    let _ = inner
        .store
        .release_lease(&worker.lease, &inner.replica_id)
        .await;
    token.cancel();
}

struct Worker {
    fwd: Forwarder,
    id: String,
    lease: String,
    fencing: i64,
    renewed: Instant,
    /// Failures of the current event in this run (the retry header).
    failures: u32,
    /// When the backlog gauge was last computed, and under which name.
    backlog_at: Option<Instant>,
    gauge: Option<TargetLabel>,
    /// Stored rows after the cursor, read ahead in pages of [`PAGE`].
    ahead: VecDeque<StoredRow>,
    token: CancellationToken,
}

/// What a step decided.
enum Step {
    /// Go on at once.
    Next,
    /// Wait up to this long for news (an event, a change).
    Wait(Duration),
    /// Stop: deleted, paused, lease lost, shutdown.
    Stop,
}

impl Worker {
    async fn deliver(&mut self) {
        let mut live = self.fwd.inner.hub.subscribe();
        let mut changes = self.fwd.inner.changes.subscribe();
        loop {
            if self.token.is_cancelled() || !self.renew().await {
                return;
            }
            let wait = match self.step().await {
                Step::Next => continue,
                Step::Stop => return,
                Step::Wait(wait) => wait.min(self.fwd.inner.timings.lease_renew),
            };
            tokio::select! {
                _ = self.token.cancelled() => return,
                _ = live.recv() => {}
                _ = changes.changed() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Renews the lease when due; false if it was lost.
    async fn renew(&mut self) -> bool {
        let inner = self.fwd.inner.clone();
        if self.renewed.elapsed() < inner.timings.lease_renew {
            return true;
        }
        let ttl_us = inner.timings.lease_ttl.as_micros() as i64;
        match inner
            .store
            .acquire_lease(&self.lease, &inner.replica_id, ttl_us)
            .await
        {
            Ok(Some(lease)) if lease.fencing == self.fencing => {
                self.renewed = Instant::now();
                true
            }
            Ok(_) => false,
            // The store is down: keep trying until the lease would expire.
            Err(err) => {
                tracing::warn!(error = %err, "renewing a webhook target's lease failed");
                self.renewed.elapsed() < inner.timings.lease_ttl
            }
        }
    }

    async fn step(&mut self) -> Step {
        let inner = self.fwd.inner.clone();
        let retry = inner.timings.store_retry_max;
        let target = match inner.store.webhook_target(&self.id).await {
            Ok(Some(t)) if t.paused_reason.is_none() && !t.pending => t,
            Ok(None) => {
                self.forget_gauge();
                return Step::Stop;
            }
            Ok(Some(_)) => return Step::Stop,
            Err(err) => {
                tracing::warn!(error = %err, "reading a webhook target failed");
                return Step::Wait(retry);
            }
        };
        if let Some(next) = target.next_attempt_us {
            let wait = next - now_us();
            if wait > 0 {
                return Step::Wait(Duration::from_micros(wait as u64));
            }
        }
        // Rows read ahead: a page is read once, not once per delivery.
        while self.ahead.front().is_some_and(|r| r.seq <= target.cursor) {
            self.ahead.pop_front();
        }
        if self.ahead.is_empty() {
            match inner.store.events_after(target.cursor, PAGE).await {
                Ok(rows) => self.ahead = rows.into(),
                Err(err) => {
                    tracing::warn!(error = %err, "reading events to forward failed");
                    return Step::Wait(retry);
                }
            }
        }
        self.update_backlog(&target).await;
        let Some(last) = self.ahead.back().map(|r| r.seq) else {
            return Step::Wait(inner.timings.catch_up_interval);
        };
        let Some(row) = self
            .ahead
            .iter()
            .find(|row| target::wants(&target, row))
            .cloned()
        else {
            if let Err(err) = inner.store.skip_webhook_events(&self.id, last).await {
                tracing::warn!(error = %err, "moving a webhook target's cursor failed");
                return Step::Wait(retry);
            }
            return Step::Next;
        };
        self.attempt(&target, &row).await
    }

    /// One attempt at `row`.
    async fn attempt(&mut self, target: &WebhookTarget, row: &StoredRow) -> Step {
        let inner = self.fwd.inner.clone();
        let secret = match inner.key.open(&target.sealed_secret) {
            Ok(secret) => secret,
            Err(err) => return self.failed(target, &err.to_string()).await,
        };
        match inner
            .store
            .lease_holds(&self.lease, &inner.replica_id, self.fencing)
            .await
        {
            Ok(true) => {}
            Ok(false) => return Step::Stop,
            Err(_) => return Step::Wait(inner.timings.store_retry_max),
        }
        let event = &row.event;
        let message = Message::notification(
            target,
            &event.event_id,
            &eventsub_type(&event.event_type),
            &event.version,
            &event.event_data,
        );
        let sent = tokio::select! {
            _ = self.token.cancelled() => return Step::Stop,
            sent = inner.sender.send(&target.url, &message, &secret, self.failures) => sent,
        };
        match sent {
            Ok(_) => {
                self.count(target, "success");
                self.failures = 0;
                if let Err(err) = inner.store.webhook_delivered(&self.id, row.seq).await {
                    // Delivered but not recorded: it will be sent again
                    // (at-least-once, same message id).
                    tracing::warn!(error = %err, "recording a webhook delivery failed");
                    return Step::Wait(inner.timings.store_retry_max);
                }
                Step::Next
            }
            Err(err) => self.failed(target, &err.to_string()).await,
        }
    }

    async fn failed(&mut self, target: &WebhookTarget, error: &str) -> Step {
        let inner = self.fwd.inner.clone();
        self.count(target, "failure");
        self.failures = self.failures.saturating_add(1);
        let wait = backoff(
            inner.timings.forward_backoff_min,
            inner.timings.forward_backoff_max,
            self.failures,
        );
        tracing::info!(target = %target.name, error, retry_in = ?wait, "webhook delivery failed");
        let pause_after = inner.timings.forward_pause_after.as_micros() as i64;
        let next = now_us() + wait.as_micros() as i64;
        match inner
            .store
            .webhook_failed(&self.id, error, next, pause_after)
            .await
        {
            Ok(true) => {
                tracing::warn!(target = %target.name, "webhook target paused: failing for too long");
                self.fwd.changed();
                Step::Stop
            }
            Ok(false) => Step::Wait(wait),
            Err(err) => {
                tracing::warn!(error = %err, "recording a webhook failure failed");
                Step::Wait(wait)
            }
        }
    }

    fn count(&self, target: &WebhookTarget, result: &'static str) {
        self.fwd
            .inner
            .metrics
            .forward_deliveries
            .get_or_create(&DeliveryLabel {
                target: target.name.clone(),
                result,
            })
            .inc();
    }

    /// Recomputes the backlog gauge at most once per `lease_renew`.
    async fn update_backlog(&mut self, target: &WebhookTarget) {
        let every = self.fwd.inner.timings.lease_renew;
        if self.backlog_at.is_some_and(|at| at.elapsed() < every) {
            return;
        }
        self.backlog_at = Some(Instant::now());
        let label = TargetLabel {
            target: target.name.clone(),
        };
        if self.gauge.as_ref() != Some(&label) {
            self.forget_gauge();
        }
        if let Ok(n) = target::backlog(&self.fwd.inner.store, target).await {
            self.fwd
                .inner
                .metrics
                .forward_backlog
                .get_or_create(&label)
                .set(n);
            self.gauge = Some(label);
        }
    }

    /// Drops the backlog series of a deleted (or renamed) target.
    fn forget_gauge(&mut self) {
        if let Some(label) = self.gauge.take() {
            self.fwd.inner.metrics.forward_backlog.remove(&label);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_jitter_and_caps() {
        let (min, max) = (Duration::from_secs(1), Duration::from_secs(300));
        for failures in 1..=12u32 {
            let full = Duration::from_secs(1u64 << (failures - 1)).min(max);
            let got = backoff(min, max, failures);
            assert!(got >= full / 2 && got <= full, "{failures}: {got:?}");
        }
        assert!(backoff(min, max, 100) <= max);
    }
}
