//! The relays under test: `tau-relay` processes this tool starts (on a
//! SQLite file, or a fleet on Postgres + Redis from the test harness), or
//! one already running at `--url`.
//!
//! Relays run as separate processes, not in this one, so their CPU time and
//! memory can be read from `/proc/<pid>` without counting the load
//! generator, and so they can be pinned to other cores than it.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
};

use anyhow::{bail, Context, Result};

/// Token every started relay accepts (seeded with `TAU_API_TOKEN`).
pub const TOKEN: &str = "tau_bench_token_0123456789abcdef0123456789";
/// Webhook secret of every started relay.
pub const SECRET: &str = "tau-bench-webhook-secret";

/// How to start relays.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The `tau-relay` executable.
    pub binary: PathBuf,
    /// `taskset` CPU list for the relays (e.g. "1"), if any.
    pub cpus: Option<String>,
    /// `TAU_CLIENT_QUEUE` (events a slow client may lag behind).
    pub client_queue: usize,
    /// More environment, set last (overrides the defaults above it).
    pub env: Vec<(String, String)>,
}

/// One relay process.
pub struct Relay {
    /// `host:port` it listens on.
    pub addr: String,
    child: Child,
}

impl Relay {
    /// Starts a relay on `database` (and `redis`, for a fleet) and waits
    /// until it prints the address it listens on.
    pub fn spawn(
        launch: &Launch,
        name: &str,
        database: &str,
        redis: Option<&str>,
    ) -> Result<Relay> {
        let mut command = match &launch.cpus {
            Some(cpus) => {
                let mut c = Command::new("taskset");
                c.args(["-c", cpus]).arg(&launch.binary);
                c
            }
            None => Command::new(&launch.binary),
        };
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "warn")
            .env("TAU_LISTEN", "127.0.0.1:0")
            .env("TAU_DATABASE_URL", database)
            .env("TAU_REPLICA_ID", name)
            .env("TAU_API_TOKEN", TOKEN)
            .env("TAU_SECRET_KEY", "ab".repeat(32))
            .env("TAU_MANAGE_SUBSCRIPTIONS", "false")
            .env("TAU_CLIENT_QUEUE", launch.client_queue.to_string())
            .env("TWITCH_WEBHOOK_SECRET", SECRET)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(redis) = redis {
            command.env("TAU_REDIS_URL", redis);
        }
        command.envs(launch.env.iter().map(|(k, v)| (k, v)));
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start {}", launch.binary.display()))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut lines = BufReader::new(stdout).lines();
        let addr = loop {
            let Some(line) = lines.next() else {
                let _ = child.wait();
                bail!("relay {name} exited before listening");
            };
            if let Some(rest) = line?.split("listening on http://").nth(1) {
                break rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_string();
            }
        };
        // Keep draining stdout so the relay never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Ok(Relay { addr, child })
    }

    /// The process id (of `taskset`'s exec'd relay: the same process).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `tau-relay` next to this executable (same cargo profile), unless
/// `explicit` names one.
pub fn find_binary(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = explicit {
        return Ok(path.to_path_buf());
    }
    let here = std::env::current_exe()?;
    let sibling = here.with_file_name("tau-relay");
    if sibling.exists() {
        return Ok(sibling);
    }
    bail!(
        "no tau-relay next to {}; build it in the same profile \
         (cargo build --release -p tau-relay -p tau-bench) or pass --relay-bin",
        here.display()
    )
}

/// CPU time and resident memory of a set of processes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    /// User + system CPU seconds.
    pub cpu_s: f64,
    /// Resident set size, bytes.
    pub rss: u64,
}

impl Usage {
    /// Summed over `pids` (this process when empty: nothing to read).
    pub fn of(pids: &[u32]) -> Usage {
        let mut total = Usage::default();
        for pid in pids {
            if let Some(u) = read_proc(*pid) {
                total.cpu_s += u.cpu_s;
                total.rss += u.rss;
            }
        }
        total
    }
}

fn read_proc(pid: u32) -> Option<Usage> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 (1-based), i.e. 11 and 12 after ")" + state.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let hz = clock_ticks();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(Usage {
        cpu_s: ticks as f64 / hz,
        rss: rss_kib * 1024,
    })
}

/// Kernel clock ticks per second (`getconf CLK_TCK`); 100 on every Linux
/// this runs on, read once from `getconf` to be sure.
fn clock_ticks() -> f64 {
    static HZ: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *HZ.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// The machine's load average (1, 5, 15 minutes), as `/proc/loadavg` says.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}
