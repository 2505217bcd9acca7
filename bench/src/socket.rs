//! The `socket` profile: events arriving over an EventSub WebSocket (the
//! user-token transport, or a conduit shard) from the in-repo fake Twitch.
//!
//! The fake runs in this process (it is a library): it is the cheapest way
//! to push tens of thousands of notifications a second, and the relay under
//! test stays a separate process whose CPU is read from `/proc`. The relay
//! is pointed at the fake's Helix, OAuth and WebSocket URLs, authorized
//! through the real OAuth redirect dance (user-token transport) or with the
//! app token alone (conduit), and subscribes by itself; the load then goes
//! through [`FakeTwitch::send_notifications`] on the session it opened.
//!
//! A socket has no acknowledgement, so "stored" is read from the relay's
//! own `tau_events_ingested_total` counter (`/metrics`, polled), and the
//! clients do the same loss, duplicate and latency accounting as for
//! webhooks. Closed loop keeps a window of events in flight (pushed, not
//! yet received by the clients), so the push rate follows what the relay
//! sustains instead of overrunning its bounded socket buffer.

use std::{
    path::PathBuf,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use tau_fake_twitch::{FakeTwitch, Transport as FakeTransport};

use crate::{
    load::{schedule, Clock, Load},
    relay::{self, Launch, Relay},
};

/// The EventSub type pushed (one subscription: one candidate to route to).
pub const TYPE: (&str, &str) = ("channel.cheer", "1");
/// How long the relay gets to authorize, subscribe and open its session.
const READY_WAIT: Duration = Duration::from_secs(30);
/// How often the relay's stored counter is read while loading.
const STORED_POLL: Duration = Duration::from_millis(20);

/// Which of the relay's socket transports receives the events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// `TAU_TRANSPORT=websocket`: a user token, WebSocket subscriptions.
    Websocket,
    /// `TAU_TRANSPORT=conduit`: an app token, the session is a conduit shard.
    Conduit,
}

impl Transport {
    fn env(self) -> &'static str {
        match self {
            Transport::Websocket => "websocket",
            Transport::Conduit => "conduit",
        }
    }
}

/// A relay fed by the fake Twitch over one EventSub WebSocket session.
pub struct SocketTarget {
    pub fake: FakeTwitch,
    pub relay: Relay,
    /// The fake's session the relay's events go through.
    pub session_id: String,
    /// The SQLite file's directory, removed at the end.
    scratch: PathBuf,
}

impl Drop for SocketTarget {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

/// Starts a fake Twitch and a relay on a fresh SQLite file using
/// `transport`, and waits until the relay's session holds its subscription.
pub async fn start(launch: &Launch, transport: Transport, run: usize) -> Result<SocketTarget> {
    let fake = FakeTwitch::start().await;
    let scratch = std::env::temp_dir().join(format!("tau-bench-{}-{run}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    let database = format!("sqlite://{}?mode=rwc", scratch.join("bench.db").display());
    let mut launch = launch.clone();
    launch.env = vec![
        ("TAU_TRANSPORT".into(), transport.env().into()),
        ("TAU_MANAGE_SUBSCRIPTIONS".into(), "true".into()),
        (
            "TAU_EVENTSUB_TYPES".into(),
            format!("{}@{}", TYPE.0, TYPE.1),
        ),
        ("TWITCH_CLIENT_ID".into(), FakeTwitch::CLIENT_ID.into()),
        (
            "TWITCH_CLIENT_SECRET".into(),
            FakeTwitch::CLIENT_SECRET.into(),
        ),
        (
            "TWITCH_BROADCASTER".into(),
            FakeTwitch::BROADCASTER_LOGIN.into(),
        ),
        ("TWITCH_API_URL".into(), fake.api_url()),
        ("TWITCH_AUTH_URL".into(), fake.auth_url()),
        ("TWITCH_EVENTSUB_WS_URL".into(), fake.eventsub_ws_url()),
    ];
    let relay =
        tokio::task::spawn_blocking(move || Relay::spawn(&launch, "bench-0", &database, None))
            .await??;
    if transport == Transport::Websocket {
        authorize(&relay.addr, relay::TOKEN).await?;
    }
    let session_id = subscribed_session(&fake, transport).await?;
    Ok(SocketTarget {
        fake,
        relay,
        session_id,
        scratch,
    })
}

/// Walks Twitch's authorization-code flow as a browser would: the relay's
/// `/twitch/authorize` redirects to the fake's consent page, which approves
/// at once and redirects back to the relay's callback (built from its
/// public URL, `127.0.0.1:0` for a relay listening on port 0: the path is
/// sent to the real address).
async fn authorize(addr: &str, token: &str) -> Result<()> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let start = http
        .get(format!("http://{addr}/twitch/authorize"))
        .header("Authorization", format!("Token {token}"))
        .send()
        .await?;
    let location = |r: &reqwest::Response| -> Result<String> {
        Ok(r.headers()
            .get("location")
            .context("no redirect")?
            .to_str()?
            .to_string())
    };
    let cookie = start
        .headers()
        .get("set-cookie")
        .context("authorize set no state cookie")?
        .to_str()?
        .split(';')
        .next()
        .unwrap_or_default()
        .to_string();
    let consent = http.get(location(&start)?).send().await?;
    let back = reqwest::Url::parse(&location(&consent)?)?;
    let callback = format!(
        "http://{addr}{}?{}",
        back.path(),
        back.query().unwrap_or_default()
    );
    let done = http.get(callback).header("Cookie", cookie).send().await?;
    if !done.status().is_success() {
        bail!("OAuth callback answered {}", done.status());
    }
    Ok(())
}

/// The session the relay's subscription is delivered on: its WebSocket
/// session, or the conduit shard's session.
async fn subscribed_session(fake: &FakeTwitch, transport: Transport) -> Result<String> {
    let deadline = tokio::time::Instant::now() + READY_WAIT;
    loop {
        let subs = fake.subscriptions();
        let enabled = |t: &dyn Fn(&FakeTransport) -> bool| {
            subs.iter()
                .any(|s| s.sub_type == TYPE.0 && s.is_enabled() && t(&s.transport))
        };
        let session = match transport {
            Transport::Websocket => fake
                .sessions()
                .await
                .into_iter()
                .rev()
                .find(|s| {
                    s.connected
                        && enabled(&|t| {
                            matches!(t, FakeTransport::WebSocket { session_id, .. } if *session_id == s.id)
                        })
                })
                .map(|s| s.id),
            Transport::Conduit => {
                let shard_session = fake.conduits().iter().find_map(|c| {
                    c.shards.iter().find_map(|shard| match &shard.transport {
                        Some(FakeTransport::WebSocket { session_id, .. })
                            if shard.status == "enabled" =>
                        {
                            Some(session_id.clone())
                        }
                        _ => None,
                    })
                });
                shard_session.filter(|_| enabled(&|t| matches!(t, FakeTransport::Conduit { .. })))
            }
        };
        if let Some(id) = session {
            return Ok(id);
        }
        if tokio::time::Instant::now() > deadline {
            bail!(
                "the relay never got a {} session subscribed to {} within {READY_WAIT:?}",
                transport.env(),
                TYPE.0
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Twitch's `channel.cheer` event for sequence `seq` sent at `sent_us`,
/// stamped in `user_name` as the webhook load stamps it.
pub fn event(seq: u64, sent_us: u64) -> Value {
    json!({
        "is_anonymous": false, "user_id": seq.to_string(), "user_login": "cool_user",
        "user_name": format!("tb.{seq}.{sent_us}"),
        "broadcaster_user_id": FakeTwitch::BROADCASTER_ID,
        "broadcaster_user_login": FakeTwitch::BROADCASTER_LOGIN,
        "broadcaster_user_name": FakeTwitch::BROADCASTER_NAME,
        "message": "pogchamp", "bits": 1000,
    })
}

/// Pushes `load` through the fake on `session_id`. Open loop: every event
/// at its scheduled time, stamped with it (events that fell due together
/// go in one push). Closed loop: at most `senders` events in flight, i.e.
/// pushed but not yet received by every client (`delivered` counts
/// receipts over `clients` clients). Returns sequence numbers the fake
/// refused to send.
pub async fn push(
    fake: &FakeTwitch,
    session_id: &str,
    load: Load,
    clock: Clock,
    delivered: &AtomicU64,
    clients: usize,
) -> Vec<u64> {
    let mut failed = Vec::new();
    let mut send = |from: u64, stamps: Vec<u64>| {
        let count = stamps.len() as u64;
        let events = stamps
            .into_iter()
            .enumerate()
            .map(|(i, sent)| event(from + i as u64, sent));
        if let Err(err) = fake.send_notifications(session_id, TYPE.0, TYPE.1, events) {
            eprintln!("socket: events {from}..{}: {err}", from + count);
            failed.extend(from..from + count);
        }
    };
    match load {
        Load::Open { rate, events } => {
            let mut due_times = schedule(clock, rate, events);
            while let Some((seq, due)) = due_times.recv().await {
                let mut stamps = vec![due];
                while let Ok((_, due)) = due_times.try_recv() {
                    stamps.push(due);
                }
                send(seq, stamps);
            }
        }
        Load::Closed { senders, events } => {
            let window = senders.max(1) as u64;
            let clients = clients.max(1) as u64;
            let mut seq = 0;
            while seq < events {
                let done = delivered.load(Ordering::Relaxed) / clients;
                let room = (done + window).saturating_sub(seq).min(events - seq);
                if room == 0 {
                    // Tokio's timer resolution: 1 ms; the window covers it.
                    tokio::time::sleep(Duration::from_micros(500)).await;
                    continue;
                }
                let now = clock.now_us();
                send(seq, vec![now; room as usize]);
                seq += room;
                tokio::task::yield_now().await;
            }
        }
    }
    failed
}

/// The relay's `tau_events_ingested_total` (all sources) and when it last
/// changed, read every [`STORED_POLL`] until stopped.
pub struct StoredWatch {
    /// Clock µs of the last change.
    pub last_change_us: Arc<AtomicU64>,
    /// The count then.
    pub stored: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl StoredWatch {
    /// Starts polling `addr`'s `/metrics`.
    pub fn start(addr: &str, clock: Clock) -> StoredWatch {
        let (last_change_us, stored) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let url = format!("http://{addr}/metrics");
        let (at, count) = (last_change_us.clone(), stored.clone());
        let task = tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut tick = tokio::time::interval(STORED_POLL);
            loop {
                tick.tick().await;
                let Ok(text) = async { http.get(&url).send().await?.text().await }.await else {
                    continue;
                };
                let now = ingested(&text);
                if now != count.load(Ordering::Relaxed) {
                    count.store(now, Ordering::Relaxed);
                    at.store(clock.now_us(), Ordering::Relaxed);
                }
            }
        });
        StoredWatch {
            last_change_us,
            stored,
            task,
        }
    }

    /// Waits until `want` are stored or nothing changed for `quiet`, then
    /// stops polling.
    pub async fn settle(&self, want: u64, quiet: Duration) {
        let mut seen = (u64::MAX, tokio::time::Instant::now());
        loop {
            let now = self.stored.load(Ordering::Relaxed);
            if now >= want {
                break;
            }
            if now != seen.0 {
                seen = (now, tokio::time::Instant::now());
            } else if seen.1.elapsed() > quiet {
                break;
            }
            tokio::time::sleep(STORED_POLL).await;
        }
        self.task.abort();
    }
}

/// Sums `tau_events_ingested_total` over its label sets in a Prometheus
/// text exposition.
pub fn ingested(metrics: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("tau_events_ingested_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::parse_stamp;

    #[test]
    fn the_socket_event_carries_the_stamp() {
        let text = event(42, 1_234).to_string();
        assert_eq!(parse_stamp(&text), Some((42, 1_234)));
    }

    #[test]
    fn the_stored_count_sums_every_source() {
        let metrics = "# HELP tau_events_ingested_total x\n\
            tau_events_ingested_total{source=\"websocket\"} 1200\n\
            tau_events_ingested_total{source=\"webhook\"} 3\n\
            tau_events_lost_total{source=\"websocket\"} 7\n";
        assert_eq!(ingested(metrics), 1203);
        assert_eq!(ingested(""), 0);
    }
}
