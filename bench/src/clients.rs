//! Websocket clients speaking TAU's protocol: connect, send the token,
//! then record every event frame: its latency (receive time − the send time
//! stamped into it), and whether its sequence number was seen before
//! (duplicate) or never arrives (lost).

use std::{
    net::{Ipv4Addr, SocketAddr},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use anyhow::{Context, Result};
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use tokio::{net::TcpSocket, task::JoinHandle};
use tokio_tungstenite::tungstenite::{protocol::WebSocketConfig, Message};

use crate::load::{parse_stamp, Clock};

/// Highest latency the histograms hold, µs (a minute: anything slower is
/// a failure to keep up, reported as an error rather than a percentile).
pub const MAX_LATENCY_US: u64 = 60_000_000;

/// What one client saw.
#[derive(Debug)]
pub struct ClientLog {
    /// Latency of every event, µs.
    pub latency: Histogram<u64>,
    /// One bit per sequence number received.
    seen: Vec<u64>,
    /// Events received whose sequence number was already seen.
    pub duplicates: u64,
    /// Frames that were not a stamped event (should stay 0).
    pub foreign: u64,
    /// Events received.
    pub received: u64,
    /// Clock µs of the latest event received.
    pub last_us: u64,
}

impl ClientLog {
    fn new(capacity: u64) -> ClientLog {
        ClientLog {
            latency: Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("valid bounds"),
            seen: vec![0; (capacity as usize).div_ceil(64)],
            duplicates: 0,
            foreign: 0,
            received: 0,
            last_us: 0,
        }
    }

    fn record(&mut self, seq: u64, now_us: u64, sent_us: u64) {
        self.last_us = now_us;
        let latency_us = now_us.saturating_sub(sent_us);
        let (word, bit) = ((seq / 64) as usize, 1u64 << (seq % 64));
        if word >= self.seen.len() {
            self.seen.resize(word + 1, 0);
        }
        if self.seen[word] & bit != 0 {
            self.duplicates += 1;
            return;
        }
        self.seen[word] |= bit;
        self.received += 1;
        // Clamped into the bounds: a latency over a minute is still counted.
        let _ = self.latency.record(latency_us.clamp(1, MAX_LATENCY_US));
    }

    /// Sequence numbers in `expected` this client never received.
    pub fn lost(&self, expected: &[u64]) -> u64 {
        expected
            .iter()
            .filter(|&&seq| {
                let (word, bit) = ((seq / 64) as usize, 1u64 << (seq % 64));
                self.seen.get(word).is_none_or(|w| w & bit == 0)
            })
            .count() as u64
    }
}

/// Small buffers (tungstenite's default read buffer is 128 KiB, eagerly
/// allocated): tens of thousands of clients must fit in this process.
fn client_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .write_buffer_size(0)
}

/// The connected clients of one scenario.
pub struct Clients {
    logs: Vec<Arc<Mutex<ClientLog>>>,
    tasks: Vec<JoinHandle<()>>,
    /// Events received by all clients together.
    pub delivered: Arc<AtomicU64>,
    /// Clients whose connection ended before the scenario did.
    pub closed: Arc<AtomicU64>,
}

/// Connects `count` clients, spread round-robin over `relays`, at most
/// `rate` new connections per second. Each uses its own loopback source
/// address per 20,000 clients (127.0.0.x), so more than one address's
/// worth of ephemeral ports can connect.
pub async fn connect(
    relays: &[String],
    count: usize,
    rate: u32,
    token: &str,
    capacity: u64,
    clock: Clock,
) -> Result<Clients> {
    let delivered = Arc::new(AtomicU64::new(0));
    let closed = Arc::new(AtomicU64::new(0));
    let mut logs = Vec::with_capacity(count);
    let mut tasks = Vec::with_capacity(count);
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let hello = Message::Text(serde_json::json!({ "token": token }).to_string().into());
    for i in 0..count {
        ticker.tick().await;
        let relay = &relays[i % relays.len()];
        let target: SocketAddr = relay
            .parse()
            .with_context(|| format!("relay address {relay} is not ip:port"))?;
        let source = Ipv4Addr::new(127, 0, 0, 1 + (i / 20_000) as u8);
        let socket = TcpSocket::new_v4()?;
        if target.ip().is_loopback() {
            socket.bind(SocketAddr::new(source.into(), 0))?;
        }
        let stream = socket
            .connect(target)
            .await
            .with_context(|| format!("client {i} cannot connect to {relay}"))?;
        stream.set_nodelay(true)?;
        let (mut ws, _) = tokio_tungstenite::client_async_with_config(
            format!("ws://{relay}/ws/twitch-events/"),
            stream,
            Some(client_config()),
        )
        .await
        .with_context(|| format!("client {i}: websocket handshake"))?;
        ws.send(hello.clone()).await?;
        let log = Arc::new(Mutex::new(ClientLog::new(capacity)));
        logs.push(log.clone());
        let (delivered, closed) = (delivered.clone(), closed.clone());
        tasks.push(tokio::spawn(async move {
            while let Some(Ok(frame)) = ws.next().await {
                let Message::Text(text) = frame else {
                    continue;
                };
                let now = clock.now_us();
                let mut log = log.lock().expect("client log lock");
                match parse_stamp(&text) {
                    Some((seq, sent_us)) => {
                        log.record(seq, now, sent_us);
                        delivered.fetch_add(1, Ordering::Relaxed);
                    }
                    None => log.foreign += 1,
                }
            }
            closed.fetch_add(1, Ordering::Relaxed);
        }));
    }
    Ok(Clients {
        logs,
        tasks,
        delivered,
        closed,
    })
}

impl Clients {
    /// Number of clients.
    pub fn len(&self) -> usize {
        self.logs.len()
    }

    /// Waits until every client received `per_client` events, or nothing
    /// arrived for `quiet`.
    pub async fn settle(&self, per_client: u64, quiet: Duration) {
        let want = per_client * self.logs.len() as u64;
        let mut last = u64::MAX;
        let mut still = tokio::time::Instant::now();
        loop {
            let now = self.delivered.load(Ordering::Relaxed);
            if now >= want {
                return;
            }
            if now != last {
                last = now;
                still = tokio::time::Instant::now();
            } else if still.elapsed() > quiet {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Stops the clients and returns their logs.
    pub fn finish(self) -> Vec<ClientLog> {
        for task in &self.tasks {
            task.abort();
        }
        self.logs
            .into_iter()
            .map(|log| {
                let log = log.lock().expect("client log lock");
                ClientLog {
                    latency: log.latency.clone(),
                    seen: log.seen.clone(),
                    duplicates: log.duplicates,
                    foreign: log.foreign,
                    received: log.received,
                    last_us: log.last_us,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_counts_duplicates_and_names_what_never_came() {
        let mut log = ClientLog::new(4);
        log.record(0, 10, 5);
        log.record(2, 20, 5);
        log.record(2, 30, 5);
        // Past the capacity given up front: still tracked.
        log.record(130, 40, 5);
        assert_eq!((log.received, log.duplicates, log.last_us), (3, 1, 40));
        assert_eq!(log.lost(&[0, 1, 2, 3, 130, 131]), 3);
        assert_eq!(log.latency.len(), 3);
    }
}
