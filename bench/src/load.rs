//! The webhook load: Twitch-signed `channel.follow` / `channel.cheer`
//! notifications with unique message ids, each stamped with its sequence
//! number and send time in `user_name` (the relay keeps Twitch's `event`
//! object verbatim, so clients read the stamp back).
//!
//! Open loop sends on a fixed schedule and stamps the *scheduled* time, so
//! a stalled relay shows up as latency instead of silently slowing the
//! sender (no coordinated omission). Closed loop runs `senders` requests
//! back to back each, for the maximum rate.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use anyhow::Result;
use hdrhistogram::Histogram;
use tau_relay::ingest::signature::sign;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::clients::MAX_LATENCY_US;

/// Microseconds since the run began: the clock both sender and clients use.
#[derive(Debug, Clone, Copy)]
pub struct Clock(Instant);

impl Clock {
    /// Starts the clock.
    pub fn start() -> Clock {
        Clock(Instant::now())
    }

    /// Now, µs since the start.
    pub fn now_us(&self) -> u64 {
        self.0.elapsed().as_micros() as u64
    }
}

/// Open loop's schedule: `events` sequence numbers, `rate` per second,
/// each handed over with its due time (clock µs) when it falls due.
///
/// Why a thread of its own: Tokio's timer counts whole milliseconds, so a
/// sleep ends up to ~1 ms late, and open loop stamps the *scheduled* time:
/// that lateness was counted as the relay's latency (about half the 2 ms
/// p50 once seen at 50 ev/s). This thread sleeps on the OS's
/// high-resolution timer instead, without spinning, so the generator takes
/// no CPU an unpinned relay could use. Whatever lateness remains (the hop
/// to the runtime, a busy generator) is measured by the receiver.
pub fn schedule(clock: Clock, rate: u32, events: u64) -> UnboundedReceiver<(u64, u64)> {
    let (due_tx, due_rx) = tokio::sync::mpsc::unbounded_channel();
    let period_us = 1_000_000.0 / f64::from(rate.max(1));
    let start = clock.now_us();
    std::thread::spawn(move || {
        for seq in 0..events {
            let due = start + (seq as f64 * period_us) as u64;
            let now = clock.now_us();
            if due > now {
                std::thread::sleep(Duration::from_micros(due - now));
            }
            if due_tx.send((seq, due)).is_err() {
                return;
            }
        }
    });
    due_rx
}

/// Marker before the stamp in `user_name`.
const STAMP: &str = "\"user_name\":\"tb.";

/// Reads `(sequence, sent µs)` from an event frame.
pub fn parse_stamp(frame: &str) -> Option<(u64, u64)> {
    let start = frame.find(STAMP)? + STAMP.len();
    let rest = &frame[start..];
    let (seq, rest) = rest.split_once('.')?;
    let sent = rest.split('"').next()?;
    Some((seq.parse().ok()?, sent.parse().ok()?))
}

/// A notification body for sequence `seq` sent at `sent_us`.
pub fn body(seq: u64, sent_us: u64) -> String {
    if seq.is_multiple_of(2) {
        format!(
            r#"{{"subscription":{{"id":"f1c2a387-161a-49f9-a165-0f21d7a4e1c4","status":"enabled","type":"channel.follow","version":"2","condition":{{"broadcaster_user_id":"1337","moderator_user_id":"1337"}},"transport":{{"method":"webhook","callback":"https://example.com/webhooks/callback"}},"created_at":"2019-11-16T10:11:12.634234626Z","cost":0}},"event":{{"user_id":"{seq}","user_login":"cool_user","user_name":"tb.{seq}.{sent_us}","broadcaster_user_id":"1337","broadcaster_user_login":"cooler_user","broadcaster_user_name":"Cooler_User","followed_at":"2020-07-15T18:16:11.17106713Z"}}}}"#
        )
    } else {
        format!(
            r#"{{"subscription":{{"id":"f1c2a387-161a-49f9-a165-0f21d7a4e1c4","status":"enabled","type":"channel.cheer","version":"1","condition":{{"broadcaster_user_id":"1337"}},"transport":{{"method":"webhook","callback":"https://example.com/webhooks/callback"}},"created_at":"2019-11-16T10:11:12.634234626Z","cost":0}},"event":{{"is_anonymous":false,"user_id":"{seq}","user_login":"cool_user","user_name":"tb.{seq}.{sent_us}","broadcaster_user_id":"1337","broadcaster_user_login":"cooler_user","broadcaster_user_name":"Cooler_User","message":"pogchamp","bits":1000}}}}"#
        )
    }
}

/// Posts signed notifications to relays, round-robin.
#[derive(Clone)]
pub struct Webhooks {
    http: reqwest::Client,
    urls: Arc<Vec<String>>,
    secret: Arc<str>,
    /// Prefix of every message id, unique per run (a running relay at
    /// `--url` keeps earlier runs' ids and would drop repeats).
    run: Arc<str>,
    /// Notifications acknowledged with 2xx.
    pub acked: Arc<AtomicU64>,
    /// Sequence numbers refused or failed (not expected at any client).
    pub failed: Arc<std::sync::Mutex<Vec<u64>>>,
    /// Clock µs of the latest acknowledgement.
    pub last_ack_us: Arc<AtomicU64>,
    /// Open loop: how late each send started after its scheduled time, µs
    /// (the generator's own delay, inside every latency it stamps).
    pub send_lag: Arc<std::sync::Mutex<Histogram<u64>>>,
}

impl Webhooks {
    /// Senders to the relays at `addrs` (host:port).
    pub fn new(addrs: &[String], secret: &str, pool: usize) -> Result<Webhooks> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(pool)
            .tcp_nodelay(true)
            .build()?;
        let run = format!(
            "tb-{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_micros()
        );
        Ok(Webhooks {
            http,
            urls: Arc::new(
                addrs
                    .iter()
                    .map(|a| format!("http://{a}/twitch/eventsub"))
                    .collect(),
            ),
            secret: secret.into(),
            run: run.into(),
            acked: Arc::default(),
            failed: Arc::default(),
            last_ack_us: Arc::default(),
            send_lag: Arc::new(std::sync::Mutex::new(
                Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("valid bounds"),
            )),
        })
    }

    /// Sends notification `seq` stamped `sent_us` (its message id is
    /// derived from `seq`: sending a `seq` again is a Twitch retry).
    pub async fn send(&self, seq: u64, sent_us: u64, clock: Clock) {
        let id = format!("{}-{seq}", self.run);
        let body = body(seq, sent_us);
        let timestamp = chrono::Utc::now().to_rfc3339();
        let signature = sign(self.secret.as_bytes(), &id, &timestamp, body.as_bytes());
        let url = &self.urls[seq as usize % self.urls.len()];
        let result = self
            .http
            .post(url)
            .header("Twitch-Eventsub-Message-Id", &id)
            .header("Twitch-Eventsub-Message-Timestamp", &timestamp)
            .header("Twitch-Eventsub-Message-Signature", signature)
            .header("Twitch-Eventsub-Message-Type", "notification")
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await;
        match result {
            Ok(response) if response.status().is_success() => {
                self.acked.fetch_add(1, Ordering::Relaxed);
                self.last_ack_us
                    .fetch_max(clock.now_us(), Ordering::Relaxed);
            }
            Ok(response) => {
                eprintln!("webhook {seq}: HTTP {}", response.status());
                self.failed.lock().expect("failed list lock").push(seq);
            }
            Err(err) => {
                eprintln!("webhook {seq}: {err}");
                self.failed.lock().expect("failed list lock").push(seq);
            }
        }
    }
}

/// How events are driven.
#[derive(Debug, Clone, Copy, serde::Serialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Load {
    /// `rate` events per second on a fixed schedule.
    Open { rate: u32, events: u64 },
    /// `senders` back-to-back senders.
    Closed { senders: usize, events: u64 },
}

impl Load {
    /// Events this load sends.
    pub fn events(&self) -> u64 {
        match *self {
            Load::Open { events, .. } | Load::Closed { events, .. } => events,
        }
    }
}

/// Sends `load`; `resend_every` > 0 also resends every n-th message id
/// right after its first delivery (dedupe check). Returns when all are
/// answered.
pub async fn run(webhooks: &Webhooks, load: Load, clock: Clock, resend_every: u64) {
    match load {
        Load::Open { rate, events } => {
            let mut due_times = schedule(clock, rate, events);
            let mut tasks = tokio::task::JoinSet::new();
            while let Some((seq, due)) = due_times.recv().await {
                let late = clock.now_us().saturating_sub(due);
                webhooks
                    .send_lag
                    .lock()
                    .expect("send lag lock")
                    .saturating_record(late.max(1));
                let webhooks = webhooks.clone();
                tasks.spawn(async move {
                    webhooks.send(seq, due, clock).await;
                    if resend_every > 0 && seq % resend_every == 0 {
                        webhooks.send(seq, due, clock).await;
                    }
                });
                // Reap finished sends as we go: bounded memory on long runs.
                while tasks.try_join_next().is_some() {}
            }
            while tasks.join_next().await.is_some() {}
        }
        Load::Closed { senders, events } => {
            let next = Arc::new(AtomicU64::new(0));
            let mut tasks = tokio::task::JoinSet::new();
            for _ in 0..senders.max(1) {
                let (webhooks, next) = (webhooks.clone(), next.clone());
                tasks.spawn(async move {
                    loop {
                        let seq = next.fetch_add(1, Ordering::Relaxed);
                        if seq >= events {
                            return;
                        }
                        let sent = clock.now_us();
                        webhooks.send(seq, sent, clock).await;
                        if resend_every > 0 && seq % resend_every == 0 {
                            webhooks.send(seq, sent, clock).await;
                        }
                    }
                });
            }
            while tasks.join_next().await.is_some() {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every sequence number, in order, each handed over no earlier than
    /// its due time (a send before its stamped time would hide latency).
    #[tokio::test]
    async fn the_schedule_is_never_early_and_misses_nothing() {
        let clock = Clock::start();
        let mut due_times = schedule(clock, 2_000, 20);
        let mut seen = Vec::new();
        while let Some((seq, due)) = due_times.recv().await {
            let now = clock.now_us();
            assert!(now >= due, "{seq} handed over at {now} µs, due at {due} µs");
            seen.push((seq, due));
        }
        assert_eq!(
            seen.iter().map(|s| s.0).collect::<Vec<_>>(),
            (0..20).collect::<Vec<_>>()
        );
        assert!(seen.windows(2).all(|w| w[1].1 - w[0].1 >= 499), "{seen:?}");
    }

    #[test]
    fn the_stamp_survives_the_body_and_reads_back() {
        for seq in [0, 7, 123_456] {
            let body = body(seq, 987_654);
            let value: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert!(value["event"]["user_name"].is_string());
            assert_eq!(parse_stamp(&body), Some((seq, 987_654)));
        }
        assert_eq!(parse_stamp(r#"{"user_name":"someone"}"#), None);
    }
}
