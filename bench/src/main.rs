//! `tau-bench`: the relay's load generator and benchmark suite (issue 15).
//!
//! It starts `tau-relay` processes itself (SQLite, or a Postgres + Redis
//! fleet from the test harness) or targets running relays (`--url`), opens
//! websocket clients, drives Twitch-signed webhooks open- or closed-loop,
//! and reports throughput, latency percentiles, loss, duplicates, server
//! CPU and memory as a table and as JSON. Numbers, not verdicts — except
//! `smoke`, which fails on any loss or duplicate (correctness only).
//! The `socket` profile instead feeds the relay over an EventSub WebSocket
//! from an in-process fake Twitch (see `socket.rs`), with the same client
//! accounting.
//!
//! ```sh
//! cargo build --release -p tau-relay -p tau-bench
//! target/release/tau-bench embedded --json embedded.json
//! target/release/tau-bench socket --json socket.json
//! ```

mod calibrate;
mod clients;
mod commits;
mod load;
mod relay;
mod report;
mod socket;

use std::{path::PathBuf, time::Duration};

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};

use load::{Clock, Load, Webhooks};
use relay::{Launch, Relay, Usage};
use report::{Report, ScenarioResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Profile {
    /// A few seconds, small numbers; fails on any loss or duplicate.
    Smoke,
    /// The issue's table on one relay with a SQLite file.
    Embedded,
    /// The issue's table on `--replicas` relays sharing Postgres + Redis.
    Fleet,
    /// Memory per idle client (`--clients`, default 50,000).
    Idle,
    /// Events arriving over an EventSub WebSocket (user-token transport,
    /// or a conduit shard) from the in-process fake Twitch, on SQLite.
    /// `--senders` is the window of events in flight (closed loop).
    Socket,
}

/// Load and measure TAU relays.
#[derive(Debug, Parser)]
#[command(name = "tau-bench", version)]
struct Cli {
    /// What to run.
    #[arg(value_enum)]
    profile: Profile,
    /// Target running relays (host:port, repeatable) instead of starting them.
    #[arg(long)]
    url: Vec<String>,
    /// Admin token of the relays at `--url`.
    #[arg(long, env = "TAU_BENCH_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Webhook secret of the relays at `--url`.
    #[arg(long, env = "TAU_BENCH_SECRET", hide_env_values = true)]
    secret: Option<String>,
    /// Relay replicas for `fleet`.
    #[arg(long, default_value_t = 1)]
    replicas: usize,
    /// Clients (one custom scenario instead of the profile's table).
    #[arg(long)]
    clients: Option<usize>,
    /// Open loop: events per second (custom scenario).
    #[arg(long, conflicts_with = "senders")]
    rate: Option<u32>,
    /// Closed loop: concurrent senders (custom scenario); for `socket`,
    /// events in flight (pushed, not yet received by every client).
    #[arg(long)]
    senders: Option<usize>,
    /// `socket`: the relay's transport for a custom scenario.
    #[arg(long, value_enum, default_value = "websocket")]
    transport: socket::Transport,
    /// Events to send (custom scenario).
    #[arg(long)]
    events: Option<u64>,
    /// New client connections per second at most.
    #[arg(long, default_value_t = 2000)]
    connect_rate: u32,
    /// Write the results as JSON here too.
    #[arg(long)]
    json: Option<PathBuf>,
    /// The `tau-relay` executable (default: next to this one).
    #[arg(long)]
    relay_bin: Option<PathBuf>,
    /// Pin started relays to these CPUs (`taskset -c` list, e.g. "1").
    #[arg(long)]
    relay_cpus: Option<String>,
}

/// One measured run: clients, load, and a name for the table.
#[derive(Debug, Clone)]
struct Scenario {
    name: String,
    clients: usize,
    load: Load,
    /// Resend every n-th message id (0: never), to check dedupe.
    resend_every: u64,
    /// `socket` profile: the relay's transport.
    transport: socket::Transport,
}

fn scenario(name: &str, clients: usize, load: Load) -> Scenario {
    Scenario {
        name: name.to_string(),
        clients,
        load,
        resend_every: 0,
        transport: socket::Transport::Websocket,
    }
}

/// The `socket` profile: maximum through either socket transport (a
/// window of 4,096 in flight stays under the relay's 10,000-event socket
/// buffer, so the push rate follows the relay instead of overrunning it),
/// then fixed rates for latency.
fn socket_table() -> Vec<Scenario> {
    let max = Load::Closed {
        senders: 4096,
        events: 100_000,
    };
    let mut conduit = scenario("conduit: max, 4,096 in flight, 1 client", 1, max);
    conduit.transport = socket::Transport::Conduit;
    vec![
        scenario("socket: max, 4,096 in flight, 1 client", 1, max),
        conduit,
        scenario(
            "socket: max, 4,096 in flight, 100 clients",
            100,
            Load::Closed {
                senders: 4096,
                events: 30_000,
            },
        ),
        scenario(
            "socket: 50 ev/s, 1 client",
            1,
            Load::Open {
                rate: 50,
                events: 500,
            },
        ),
        scenario(
            "socket: 1,000 ev/s, 100 clients",
            100,
            Load::Open {
                rate: 1000,
                events: 10_000,
            },
        ),
        scenario(
            "socket: 10,000 ev/s, 1 client",
            1,
            Load::Open {
                rate: 10_000,
                events: 100_000,
            },
        ),
    ]
}

/// The issue's table.
fn table() -> Vec<Scenario> {
    vec![
        scenario(
            "max ingest, 32 senders, 1 client",
            1,
            Load::Closed {
                senders: 32,
                events: 20_000,
            },
        ),
        scenario(
            "fan-out, 32 senders, 100 clients",
            100,
            Load::Closed {
                senders: 32,
                events: 10_000,
            },
        ),
        scenario(
            "fan-out, 32 senders, 1,000 clients",
            1000,
            Load::Closed {
                senders: 32,
                events: 3_000,
            },
        ),
        scenario(
            "50 ev/s, 1 client",
            1,
            Load::Open {
                rate: 50,
                events: 500,
            },
        ),
        scenario(
            "50 ev/s, 100 clients",
            100,
            Load::Open {
                rate: 50,
                events: 500,
            },
        ),
        scenario(
            "1,000 ev/s, 100 clients",
            100,
            Load::Open {
                rate: 1000,
                events: 10_000,
            },
        ),
        scenario(
            "1,000 ev/s, 1,000 clients",
            1000,
            Load::Open {
                rate: 1000,
                events: 10_000,
            },
        ),
    ]
}

fn smoke() -> Vec<Scenario> {
    let mut closed = scenario(
        "smoke: 8 senders, 10 clients, every 10th id resent",
        10,
        Load::Closed {
            senders: 8,
            events: 2_000,
        },
    );
    closed.resend_every = 10;
    vec![
        closed,
        scenario(
            "smoke: 500 ev/s, 10 clients",
            10,
            Load::Open {
                rate: 500,
                events: 500,
            },
        ),
    ]
}

impl Cli {
    /// The one scenario the flags describe, if any flag does.
    fn custom(&self) -> Option<Scenario> {
        if self.clients.is_none()
            && self.rate.is_none()
            && self.senders.is_none()
            && self.events.is_none()
        {
            return None;
        }
        let clients = self.clients.unwrap_or(1);
        let load = match (self.rate, self.senders) {
            (Some(rate), _) => Load::Open {
                rate,
                events: self.events.unwrap_or(u64::from(rate) * 10),
            },
            (None, senders) => Load::Closed {
                senders: senders.unwrap_or(32),
                events: self.events.unwrap_or(20_000),
            },
        };
        let name = match (self.profile, load) {
            (Profile::Socket, Load::Open { rate, .. }) => {
                format!("{:?}: {rate} ev/s, {clients} clients", self.transport)
            }
            (Profile::Socket, Load::Closed { senders, .. }) => {
                format!(
                    "{:?}: {senders} in flight, {clients} clients",
                    self.transport
                )
            }
            (_, Load::Open { rate, .. }) => format!("{rate} ev/s, {clients} clients"),
            (_, Load::Closed { senders, .. }) => format!("{senders} senders, {clients} clients"),
        };
        let mut one = scenario(&name.to_lowercase(), clients, load);
        one.transport = self.transport;
        Some(one)
    }
}

/// Relays under test, started or targeted, plus what they run on.
struct Target {
    addrs: Vec<String>,
    pids: Vec<u32>,
    token: String,
    secret: String,
    _relays: Vec<Relay>,
    backend: String,
    /// The SQLite file's directory, removed at the end.
    scratch: Option<PathBuf>,
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Some(dir) = &self.scratch {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Shared Postgres + Redis for a fleet (kept alive for the whole run).
struct Services {
    postgres: tau_test_services::Postgres,
    redis: tau_test_services::Redis,
}

/// How this run starts relays.
fn launch(cli: &Cli) -> Result<Launch> {
    Ok(Launch {
        binary: relay::find_binary(cli.relay_bin.as_deref())?,
        cpus: cli.relay_cpus.clone(),
        client_queue: 65_536,
        env: Vec::new(),
    })
}

async fn start_target(cli: &Cli, services: Option<&Services>, run: usize) -> Result<Target> {
    if !cli.url.is_empty() {
        return Ok(Target {
            addrs: cli.url.clone(),
            pids: vec![],
            token: cli
                .token
                .clone()
                .context("--url needs --token (or TAU_BENCH_TOKEN)")?,
            secret: cli
                .secret
                .clone()
                .context("--url needs --secret (or TAU_BENCH_SECRET)")?,
            _relays: vec![],
            backend: "running relay(s) at --url".into(),
            scratch: None,
        });
    }
    let launch = launch(cli)?;
    let mut scratch = None;
    let (relays, backend) = match services {
        None => {
            let dir = std::env::temp_dir().join(format!("tau-bench-{}-{run}", std::process::id()));
            std::fs::create_dir_all(&dir)?;
            scratch = Some(dir.clone());
            let url = format!("sqlite://{}?mode=rwc", dir.join("bench.db").display());
            let relay =
                tokio::task::spawn_blocking(move || Relay::spawn(&launch, "bench-0", &url, None))
                    .await??;
            (vec![relay], "SQLite file".to_string())
        }
        Some(services) => {
            let database = services
                .postgres
                .new_database(&format!("bench_{run}"))
                .await;
            let redis = services.redis.url();
            let replicas = cli.replicas.max(1);
            let relays = tokio::task::spawn_blocking(move || {
                (0..replicas)
                    .map(|i| Relay::spawn(&launch, &format!("bench-{i}"), &database, Some(&redis)))
                    .collect::<Result<Vec<_>>>()
            })
            .await??;
            (relays, format!("Postgres + Redis, {replicas} replica(s)"))
        }
    };
    Ok(Target {
        addrs: relays.iter().map(|r| r.addr.clone()).collect(),
        pids: relays.iter().map(Relay::pid).collect(),
        token: relay::TOKEN.into(),
        secret: relay::SECRET.into(),
        _relays: relays,
        backend,
        scratch,
    })
}

/// Runs one scenario against a fresh target.
async fn run_scenario(
    cli: &Cli,
    services: Option<&Services>,
    run: usize,
    s: &Scenario,
) -> Result<ScenarioResult> {
    let target = start_target(cli, services, run).await?;
    let clock = Clock::start();
    let events = s.load.events();
    let clients = clients::connect(
        &target.addrs,
        s.clients,
        cli.connect_rate,
        &target.token,
        events,
        clock,
    )
    .await?;
    // Let the relay register every client before the first event.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pool = match s.load {
        Load::Closed { senders, .. } => senders,
        Load::Open { .. } => 64,
    };
    let webhooks = Webhooks::new(&target.addrs, &target.secret, pool)?;
    let before = Usage::of(&target.pids);
    let commits_before = commits::Snapshot::take(&target.addrs).await;
    let load_avg_before = relay::loadavg();
    let started_us = clock.now_us();
    load::run(&webhooks, s.load, clock, s.resend_every).await;
    clients.settle(events, Duration::from_secs(5)).await;
    let after = Usage::of(&target.pids);
    let commits = commits::Snapshot::take(&target.addrs)
        .await
        .since(&commits_before);
    let failed = webhooks.failed.lock().expect("failed list lock").clone();
    let send_lag = webhooks.send_lag.lock().expect("send lag lock").clone();
    let last_ack_us = webhooks
        .last_ack_us
        .load(std::sync::atomic::Ordering::Relaxed);
    let closed = clients.closed.load(std::sync::atomic::Ordering::Relaxed);
    let logs = clients.finish();
    Ok(report::summarize(report::Raw {
        name: s.name.clone(),
        backend: target.backend.clone(),
        relays: target.addrs.len(),
        load: s.load,
        logs,
        failed,
        closed,
        started_us,
        last_ack_us,
        server_before: before,
        server_after: after,
        measured_pids: !target.pids.is_empty(),
        load_avg: format!("{load_avg_before} → {}", relay::loadavg()),
        commits,
        send_lag: Some(send_lag),
    }))
}

/// Runs one `socket` scenario against a fresh fake Twitch and relay.
async fn run_socket_scenario(cli: &Cli, run: usize, s: &Scenario) -> Result<ScenarioResult> {
    if !cli.url.is_empty() {
        bail!("the socket profile starts its own fake Twitch and relay: --url does not apply");
    }
    let target = socket::start(&launch(cli)?, s.transport, run).await?;
    let addrs = vec![target.relay.addr.clone()];
    let pids = vec![target.relay.pid()];
    let clock = Clock::start();
    let events = s.load.events();
    let clients = clients::connect(
        &addrs,
        s.clients,
        cli.connect_rate,
        relay::TOKEN,
        events,
        clock,
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = Usage::of(&pids);
    let commits_before = commits::Snapshot::take(&addrs).await;
    let load_avg_before = relay::loadavg();
    let stored = socket::StoredWatch::start(&addrs[0], clock);
    let started_us = clock.now_us();
    let failed = socket::push(
        &target.fake,
        &target.session_id,
        s.load,
        clock,
        &clients.delivered,
        s.clients,
    )
    .await;
    let sent = events - failed.len() as u64;
    clients.settle(sent, Duration::from_secs(5)).await;
    stored.settle(sent, Duration::from_secs(2)).await;
    let after = Usage::of(&pids);
    let commits = commits::Snapshot::take(&addrs).await.since(&commits_before);
    let closed = clients.closed.load(std::sync::atomic::Ordering::Relaxed);
    let stored_count = stored.stored.load(std::sync::atomic::Ordering::Relaxed);
    if stored_count < sent {
        eprintln!(
            "socket: the relay stored {stored_count} of {sent} events (see its log for lost ones)"
        );
    }
    let logs = clients.finish();
    Ok(report::summarize(report::Raw {
        name: s.name.clone(),
        backend: format!(
            "SQLite file, EventSub {:?} from the fake Twitch",
            s.transport
        )
        .to_lowercase(),
        relays: 1,
        load: s.load,
        logs,
        failed,
        closed,
        started_us,
        last_ack_us: stored
            .last_change_us
            .load(std::sync::atomic::Ordering::Relaxed),
        server_before: before,
        server_after: after,
        measured_pids: true,
        load_avg: format!("{load_avg_before} → {}", relay::loadavg()),
        commits,
        send_lag: None,
    }))
}

/// Idle clients: the relay's resident memory before and after connecting
/// them, then a few events to check every one of them still receives.
async fn run_idle(cli: &Cli, clients_wanted: usize) -> Result<ScenarioResult> {
    let target = start_target(cli, None, 0).await?;
    let clock = Clock::start();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = Usage::of(&target.pids);
    let events = 20;
    let clients = clients::connect(
        &target.addrs,
        clients_wanted,
        cli.connect_rate,
        &target.token,
        events,
        clock,
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle = Usage::of(&target.pids);
    let webhooks = Webhooks::new(&target.addrs, &target.secret, 4)?;
    let load_avg_before = relay::loadavg();
    let started_us = clock.now_us();
    let load = Load::Closed { senders: 2, events };
    load::run(&webhooks, load, clock, 0).await;
    clients.settle(events, Duration::from_secs(10)).await;
    let after = Usage::of(&target.pids);
    let failed = webhooks.failed.lock().expect("failed list lock").clone();
    let last_ack_us = webhooks
        .last_ack_us
        .load(std::sync::atomic::Ordering::Relaxed);
    let closed = clients.closed.load(std::sync::atomic::Ordering::Relaxed);
    let count = clients.len();
    let logs = clients.finish();
    let mut result = report::summarize(report::Raw {
        name: format!("idle: {count} clients, then 20 events to all"),
        backend: target.backend.clone(),
        relays: target.addrs.len(),
        load,
        logs,
        failed,
        closed,
        started_us,
        last_ack_us,
        server_before: before,
        server_after: after,
        measured_pids: !target.pids.is_empty(),
        load_avg: format!("{load_avg_before} → {}", relay::loadavg()),
        commits: None,
        send_lag: None,
    });
    if !target.pids.is_empty() {
        result.idle_bytes_per_client =
            Some(idle.rss.saturating_sub(before.rss) as f64 / count.max(1) as f64);
    }
    Ok(result)
}

/// Raises the open-file limit for `clients` connections (clients and
/// their relay need one descriptor each; started relays inherit the
/// limit): to the hard limit, and past it up to `fs.nr_open` when this
/// process may (root). Returns the limit in force.
fn raise_fd_limit(clients: usize) -> u64 {
    let wanted = 2 * clients as u64 + 1024;
    if let Ok((_, hard)) = rlimit::Resource::NOFILE.get() {
        if hard < wanted {
            // Refused without privileges: the soft raise below still applies.
            let _ = rlimit::Resource::NOFILE.set(wanted, wanted);
        }
    }
    rlimit::increase_nofile_limit(u64::MAX).unwrap_or(0)
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let fd_limit = raise_fd_limit(cli.clients.unwrap_or(50_000));
    let calibration = calibrate::run().context("calibration (temp dir)")?;
    eprintln!("{calibration}");
    let mut results = Vec::new();
    match cli.profile {
        Profile::Socket => {
            let scenarios = cli.custom().map_or_else(socket_table, |one| vec![one]);
            for (run, s) in scenarios.iter().enumerate() {
                let result = run_socket_scenario(&cli, run, s).await?;
                eprintln!("{}", report::row(&result));
                results.push(result);
            }
        }
        Profile::Idle => {
            let wanted = cli.clients.unwrap_or(50_000);
            if (fd_limit as usize) < 2 * wanted + 100 {
                eprintln!("warning: open-file limit {fd_limit} is below {wanted} clients");
            }
            results.push(run_idle(&cli, wanted).await?);
        }
        Profile::Smoke | Profile::Embedded | Profile::Fleet => {
            let scenarios = match (cli.custom(), cli.profile) {
                (Some(one), _) => vec![one],
                (None, Profile::Smoke) => smoke(),
                (None, _) => table(),
            };
            let services = if cli.profile == Profile::Fleet && cli.url.is_empty() {
                let postgres = tau_test_services::postgres("tau_bench_fleet")
                    .await
                    .context("Postgres binaries not found (run .ci/install-services.sh)")?;
                let redis = tau_test_services::redis("tau_bench_fleet")
                    .await
                    .context("redis-server not found (run .ci/install-services.sh)")?;
                Some(Services { postgres, redis })
            } else {
                None
            };
            for (run, s) in scenarios.iter().enumerate() {
                let result = run_scenario(&cli, services.as_ref(), run, s).await?;
                eprintln!("{}", report::row(&result));
                results.push(result);
            }
        }
    }
    let report = Report::new(
        format!("{:?}", cli.profile).to_lowercase(),
        calibration,
        results,
    );
    println!("{}", report.table());
    if let Some(path) = &cli.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if cli.profile == Profile::Smoke && !report.clean() {
        bail!("smoke: events were lost, duplicated or refused (see the table)");
    }
    Ok(())
}
