//! A fleet of relay processes on shared Postgres + Redis, for the
//! multi-replica scenarios: spawn, SIGKILL, clients that record every
//! event they receive, and a webhook sender that retries like Twitch.

#![allow(dead_code)]

#[path = "../support/oauth.rs"]
pub mod oauth;

use std::{
    collections::HashMap,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

/// Token every replica accepts (seeded with TAU_API_TOKEN).
pub const TOKEN: &str = "tau_fleet_test_token_0123456789abcdef0123";
/// Webhook secret shared by the fleet.
pub const SECRET: &str = "fleet-webhook-secret";

/// One relay process.
pub struct Replica {
    pub name: String,
    pub addr: String,
    child: Child,
    database: String,
    redis: String,
    extra: Vec<(String, String)>,
    /// Where the relay's stderr goes (appended across restarts); inherited when `None`.
    log: Option<PathBuf>,
}

impl Replica {
    /// Starts `tau-relay` with the shared database and Redis plus `extra` env.
    pub fn spawn(name: &str, database: &str, redis: &str, extra: &[(&str, String)]) -> Replica {
        let extra = extra.iter().map(|(k, v)| (k.to_string(), v.clone()));
        Replica::launch(name, database, redis, extra.collect(), "127.0.0.1:0", None)
    }

    /// Like [`Replica::spawn`], with the relay's stderr appended to `log`.
    pub fn spawn_logged(
        name: &str,
        database: &str,
        redis: &str,
        extra: &[(&str, String)],
        log: &Path,
    ) -> Replica {
        let extra = extra.iter().map(|(k, v)| (k.to_string(), v.clone()));
        Replica::launch(
            name,
            database,
            redis,
            extra.collect(),
            "127.0.0.1:0",
            Some(log.to_path_buf()),
        )
    }

    /// Starts the process again (after [`Replica::kill`]) with the same
    /// environment on the same address, so clients and senders find it
    /// where it was (the listener sets SO_REUSEADDR).
    pub fn restart(&mut self) {
        self.kill();
        let again = Replica::launch(
            &self.name,
            &self.database,
            &self.redis,
            self.extra.clone(),
            &self.addr,
            self.log.clone(),
        );
        *self = again;
    }

    fn launch(
        name: &str,
        database: &str,
        redis: &str,
        extra: Vec<(String, String)>,
        listen: &str,
        log: Option<PathBuf>,
    ) -> Replica {
        let stderr = match &log {
            Some(path) => Stdio::from(
                std::fs::File::options()
                    .create(true)
                    .append(true)
                    .open(path)
                    .unwrap_or_else(|e| panic!("open {}: {e}", path.display())),
            ),
            None => Stdio::inherit(),
        };
        let mut command = Command::new(env!("CARGO_BIN_EXE_tau-relay"));
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "warn")
            .env("TAU_LISTEN", listen)
            .env("TAU_DATABASE_URL", database)
            .env("TAU_REDIS_URL", redis)
            .env("TAU_REPLICA_ID", name)
            .env("TAU_API_TOKEN", TOKEN)
            .env("TAU_SECRET_KEY", "ab".repeat(32))
            .env("TWITCH_WEBHOOK_SECRET", SECRET)
            .stdout(Stdio::piped())
            .stderr(stderr);
        for (key, value) in &extra {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("tau-relay starts");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let addr = loop {
            let line = lines.next().expect("relay printed its address").unwrap();
            if let Some(rest) = line.split("listening on http://").nth(1) {
                break rest.split_whitespace().next().unwrap().to_string();
            }
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Replica {
            name: name.to_string(),
            addr,
            child,
            database: database.to_string(),
            redis: redis.to_string(),
            extra,
            log,
        }
    }

    /// SIGKILL: no shutdown, no lease release, sockets dropped.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The process id (of the current incarnation).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGSTOP: the process freezes with its sockets open (the kernel
    /// still accepts connections; nothing answers), like a long GC pause
    /// or a throttled container.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// SIGCONT after [`Replica::freeze`].
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} {} failed", self.pid());
    }

    /// CPU time (user + system) the process has used so far, from
    /// /proc/<pid>/stat.
    pub fn cpu_time(&self) -> Duration {
        cpu_time(self.pid())
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn status(&self) -> serde_json::Value {
        reqwest::Client::new()
            .get(format!("{}/api/v1/status", self.base()))
            .header("Authorization", format!("Token {TOKEN}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}

/// CPU time (user + system) process `pid` has used so far, from
/// /proc/<pid>/stat.
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/<pid>/stat");
    // Fields after "(comm)": state is field 3, utime 14, stime 15.
    let after = &stat[stat.rfind(')').expect("stat has (comm)") + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_secs_f64(ticks as f64 / clock_ticks_per_second() as f64)
}

/// `getconf CLK_TCK` (the unit of /proc/<pid>/stat times), once.
fn clock_ticks_per_second() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100)
    })
}

/// What one client received: Twitch event ids in arrival order, and the
/// last TAU id (for resuming elsewhere).
#[derive(Default, Debug)]
pub struct Received {
    pub event_ids: Vec<String>,
    pub last_id: Option<String>,
    pub closed: bool,
}

/// A websocket client recording everything into shared state.
pub struct Recorder {
    pub received: Arc<Mutex<Received>>,
    task: tokio::task::JoinHandle<()>,
}

impl Recorder {
    /// Connects to `replica` (resuming after `since` if given).
    pub async fn connect(addr: &str, since: Option<String>) -> Recorder {
        Recorder::connect_into(addr, since, Arc::new(Mutex::new(Received::default()))).await
    }

    /// Connects and appends into an existing record (a client that moved).
    pub async fn connect_into(
        addr: &str,
        since: Option<String>,
        received: Arc<Mutex<Received>>,
    ) -> Recorder {
        let (mut ws, _) =
            tokio_tungstenite::connect_async(format!("ws://{addr}/ws/twitch-events/"))
                .await
                .unwrap();
        let mut hello = serde_json::json!({ "token": TOKEN });
        if let Some(since) = since {
            hello["since"] = since.into();
        }
        ws.send(Message::Text(hello.to_string().into()))
            .await
            .unwrap();
        received.lock().unwrap().closed = false;
        let record = received.clone();
        let task = tokio::spawn(async move {
            while let Some(Ok(message)) = ws.next().await {
                if let Message::Text(text) = message {
                    let frame: serde_json::Value = serde_json::from_str(&text).unwrap();
                    assert!(frame.get("error").is_none(), "rejected: {frame}");
                    let mut r = record.lock().unwrap();
                    r.event_ids
                        .push(frame["event_id"].as_str().unwrap().to_string());
                    r.last_id = frame["id"].as_str().map(str::to_string);
                }
            }
            record.lock().unwrap().closed = true;
        });
        Recorder { received, task }
    }

    pub fn count(&self) -> usize {
        self.received.lock().unwrap().event_ids.len()
    }

    /// Waits until `n` events arrived (or panics after `limit`).
    pub async fn wait_for(&self, n: usize, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while self.count() < n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "only {} of {n} events arrived",
                self.count()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Asserts exactly `expected` (as a set) arrived, each once.
    pub fn assert_exactly(&self, expected: &[String], who: &str) {
        let r = self.received.lock().unwrap();
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for id in &r.event_ids {
            *counts.entry(id.as_str()).or_default() += 1;
        }
        let dupes: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
        assert!(dupes.is_empty(), "{who}: duplicates {dupes:?}");
        let missing: Vec<_> = expected
            .iter()
            .filter(|id| !counts.contains_key(id.as_str()))
            .collect();
        assert!(
            missing.is_empty(),
            "{who}: {} missing, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        );
        assert_eq!(
            r.event_ids.len(),
            expected.len(),
            "{who}: unexpected extra events"
        );
    }

    /// Waits for `expected`, lets stragglers arrive, then asserts each came once.
    pub async fn assert_all(clients: &[&Recorder], expected: &[String]) {
        for (n, client) in clients.iter().enumerate() {
            client
                .wait_for(expected.len(), Duration::from_secs(30))
                .await;
            tokio::time::sleep(Duration::from_millis(200)).await;
            client.assert_exactly(expected, &format!("client {n}"));
        }
    }

    pub fn stop(self) -> Arc<Mutex<Received>> {
        self.task.abort();
        self.received
    }
}

/// A `channel.follow` notification body carrying `message_id` in its event.
pub fn follow_body(message_id: &str) -> String {
    let event = format!(
        r#"{{"user_id":"1","user_login":"viewer","user_name":"Viewer","broadcaster_user_id":"1337","message_id":"{message_id}"}}"#
    );
    format!(
        r#"{{"subscription":{{"id":"s","status":"enabled","type":"channel.follow","version":"2","condition":{{}},"transport":{{"method":"webhook","callback":"https://x"}},"created_at":"2024-01-01T00:00:00Z","cost":0}},"event":{event}}}"#
    )
}

/// One signed webhook POST of `body` to `target` (a base URL), signed
/// afresh as Twitch signs every attempt: the HTTP status, or the transport
/// error (refused, reset, timed out).
pub async fn post_once(
    http: &reqwest::Client,
    target: &str,
    message_id: &str,
    body: &str,
    timeout: Duration,
) -> Result<reqwest::StatusCode, reqwest::Error> {
    let timestamp = chrono::Utc::now().to_rfc3339();
    let signature = tau_relay::ingest::signature::sign(
        SECRET.as_bytes(),
        message_id,
        &timestamp,
        body.as_bytes(),
    );
    http.post(format!("{target}/twitch/eventsub"))
        .header("Twitch-Eventsub-Message-Id", message_id)
        .header("Twitch-Eventsub-Message-Timestamp", &timestamp)
        .header("Twitch-Eventsub-Message-Signature", signature)
        .header("Twitch-Eventsub-Message-Type", "notification")
        .body(body.to_string())
        .timeout(timeout)
        .send()
        .await
        .map(|r| r.status())
}

/// Posts a signed notification, retrying (as Twitch does) on errors and
/// non-2xx answers, rotating through `targets`. Returns attempts made.
pub async fn deliver(
    http: &reqwest::Client,
    targets: &[String],
    start: usize,
    message_id: &str,
) -> usize {
    let body = follow_body(message_id);
    let mut attempt = 0;
    loop {
        let target = &targets[(start + attempt) % targets.len()];
        attempt += 1;
        let sent = post_once(http, target, message_id, &body, Duration::from_secs(5)).await;
        match sent {
            Ok(status) if status.is_success() => return attempt,
            _ => {
                assert!(attempt < 200, "{message_id} never accepted");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}
