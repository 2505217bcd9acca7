//! The delivery fault suite: three relay replicas on real Postgres and
//! Redis, fed by Twitch-like webhook senders at a steady rate, read by
//! resuming clients on every replica, while the fleet suffers the faults a
//! production fleet does: a replica SIGKILLed and restarted, a Redis
//! restart, Postgres outages of 5 s and 20 s, clients resuming during an
//! outage, and a replica frozen (SIGSTOP) for 3 s while a burst arrives.
//!
//! Why a stream rather than one scenario per fault: the bugs that matter
//! live in the interaction of load and faults. A sequencer that loops on a
//! gap query, or skips a gap it could not read, passes every quiet
//! single-fault test and only shows under a few hundred events a second
//! with holes in `seq` (rolled-back and duplicate inserts) and a backlog to
//! catch up. So the senders never pause, and each fault lands on a fleet
//! still digesting the previous one.
//!
//! What is asserted, and why each is the contract:
//! - every webhook answered 2xx is stored (Twitch forgets what we ack);
//! - every client receives every stored event exactly once, in store
//!   (`seq`) order, across its reconnects with `since` (bots count on it);
//! - a 1013 ("too slow") close names the client's true resume point;
//! - afterwards, at idle, no replica spins: little CPU, and Postgres sees
//!   only a handful of transactions per second more than before the stream
//!   (a sequencer looping on a gap read shows up as a busy core and tens to
//!   hundreds of extra commits a second).
//!
//! Every wait is bounded; a failure names the client, what it missed (with
//! store positions) and where its order diverged. Relay logs go to a temp
//! directory printed on failure (kept after a pass too with
//! `TAU_FAULTS_KEEP_LOGS=1`). Both profiles run under
//! `TAU_REQUIRE_SERVICES=1` in `cargo test --workspace` (CI's `.ci/run`),
//! one at a time (together they take about three minutes);
//! without Postgres/Redis binaries they skip with a printed reason.

mod fleet;

use std::{
    collections::{HashMap, HashSet},
    io::Write,
    path::PathBuf,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use futures_util::{SinkExt, StreamExt};
use sqlx::{Connection, PgConnection};
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::{protocol::frame::coding::CloseCode, Message};
use tokio_util::sync::CancellationToken;

use fleet::{follow_body, post_once, Replica, TOKEN};

/// Postgres schema and Redis channel prefix of the fleet.
const INSTANCE: &str = "faults";
const REPLICAS: usize = 3;
const CLIENTS_PER_REPLICA: usize = 2;
/// Short fault-handling timings, so recovery fits a test's budget.
const TIMINGS: &str = "lease_ttl=3s,lease_renew=1s,catch_up_interval=500ms,\
                       store_retry_min=50ms,store_retry_max=1s,client_write_timeout=5s";
/// A sender gives up on a message this long after its first attempt.
const DELIVERY_DEADLINE: Duration = Duration::from_secs(90);
/// One webhook attempt's limit. Longer than the 3 s freeze, so requests
/// a frozen replica took are answered after SIGCONT (the relay then stores
/// events whose resends other replicas stored meanwhile).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// First and longest backoff between a message's attempts. Twitch backs
/// off too; a sender that retries fast on timeouts turns a slow fleet on a
/// loaded machine into an overloaded one (every abandoned request is still
/// processed), and recovery then takes a minute.
const MIN_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How long clients may take to receive everything once senders are done.
const CONVERGE: Duration = Duration::from_secs(60);
/// Quiet time before the idle window (see the comment where it is used).
const IDLE_SETTLE: Duration = Duration::from_secs(11);
/// The idle window in which replicas must not spin.
const IDLE_WINDOW: Duration = Duration::from_secs(3);
/// Most CPU a replica may burn in the idle window (10 % of a core).
const IDLE_CPU_MAX: Duration = Duration::from_millis(300);
/// Most Postgres commits per second the idle fleet may add to what it
/// made when idle before the stream (the baseline: catch-up reads every
/// 500 ms, token and lease polls; measured 7-14/s for three replicas). A
/// sequencer looping on a read adds 30 to a few hundred.
const IDLE_COMMITS_MARGIN: f64 = 10.0;

/// The two profiles share one machine's cores: run one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A load level and the fault plan run under it.
struct Profile {
    name: &'static str,
    /// Steady webhooks per second, spread over the replicas.
    rate: u32,
    /// Pause between faults (the fleet is never idle: senders keep going).
    gap: Duration,
    /// Postgres outages, in order; clients resume during the last one.
    outages: Vec<Duration>,
    /// Webhooks arriving at once while a replica is frozen.
    burst: usize,
}

/// Steady ~150/s with both outages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_under_steady_load_loses_nothing() {
    run(Profile {
        name: "steady",
        rate: 150,
        gap: Duration::from_secs(3),
        outages: vec![Duration::from_secs(5), Duration::from_secs(20)],
        burst: 500,
    })
    .await;
}

/// Heavier and shorter: 400/s, one 5 s outage, a bigger burst.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_under_heavy_load_loses_nothing() {
    run(Profile {
        name: "heavy",
        rate: 400,
        gap: Duration::from_secs(2),
        outages: vec![Duration::from_secs(5)],
        burst: 1000,
    })
    .await;
}

/// Prints straight to stderr: libtest hides a passing test's `println!`,
/// but the numbers this suite sees are worth reading on every run.
macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

async fn run(profile: Profile) {
    let _serial = SERIAL.lock().await;
    let test = format!("faults_{}", profile.name);
    let Some(mut pg) = tau_test_services::postgres(&test).await else {
        return;
    };
    let Some(mut redis) = tau_test_services::redis(&test).await else {
        return;
    };
    let started = Instant::now();
    let logs = LogDir::new(&test);
    let env = [
        ("TAU_INSTANCE", INSTANCE.to_string()),
        ("TAU_TIMINGS", TIMINGS.replace(' ', "")),
    ];
    let mut replicas: Vec<Replica> = (0..REPLICAS)
        .map(|i| {
            let name = format!("r{i}");
            let log = logs.path.join(format!("{name}.log"));
            Replica::spawn_logged(&name, &pg.url(), &redis.url(), &env, &log)
        })
        .collect();
    let addrs: Arc<Vec<String>> = Arc::new(replicas.iter().map(|r| r.addr.clone()).collect());
    let targets: Arc<Vec<String>> = Arc::new(replicas.iter().map(Replica::base).collect());
    let stop_clients = CancellationToken::new();
    let clients: Vec<Client> = (0..REPLICAS * CLIENTS_PER_REPLICA)
        .map(|n| Client::start(n % REPLICAS, n, addrs.clone(), stop_clients.clone()))
        .collect();
    let senders = Senders::new(targets.clone());

    // Warm-up: every client holds a TAU id to resume from before any fault.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !clients.iter().all(|c| c.log.lock().unwrap().greeted) {
        assert!(Instant::now() < deadline, "clients could not connect");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The relay subscribes a client right after checking its token.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    senders.send(format!("{}-warmup", profile.name));
    senders.wait_idle(Duration::from_secs(30)).await;
    for client in &clients {
        client.wait_for(1, Duration::from_secs(30)).await;
    }

    // Baseline: what the idle fleet commits per second before any fault.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let baseline = commits_per_second(&pg.url(), IDLE_WINDOW).await;
    say!(
        "[{}] idle fleet before the stream: Postgres commits {baseline:.1}/s",
        profile.name
    );

    let t0 = Instant::now();
    let at = || format!("{:5.1}s", t0.elapsed().as_secs_f64());
    let stream = senders.steady(profile.name, profile.rate);
    let quiet = CancellationToken::new();
    senders.progress(
        profile.name.to_string(),
        Duration::from_secs(5),
        quiet.clone(),
    );
    // A panic anywhere below still stops the pacer and the progress lines.
    let _stop_threads = (stream.clone().drop_guard(), quiet.clone().drop_guard());
    let gap = profile.gap;
    tokio::time::sleep(gap).await;

    say!("[{}] {} SIGKILL r1", profile.name, at());
    replicas[1].kill();
    tokio::time::sleep(Duration::from_secs(1)).await;
    replicas[1].restart();
    say!(
        "[{}] {} r1 restarted (pid {})",
        profile.name,
        at(),
        replicas[1].pid()
    );
    tokio::time::sleep(gap).await;
    // Its clients fled elsewhere; send them home (a resume on a fresh process).
    kick(&clients, 1);
    tokio::time::sleep(gap).await;

    say!("[{}] {} Redis stopped", profile.name, at());
    redis.stop().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    redis.start().await;
    say!("[{}] {} Redis started", profile.name, at());
    tokio::time::sleep(gap).await;

    for (n, outage) in profile.outages.iter().enumerate() {
        let last = n + 1 == profile.outages.len();
        say!(
            "[{}] {} Postgres stopped for {outage:?}",
            profile.name,
            at()
        );
        pg.stop().await;
        let down = Instant::now();
        if last {
            // Clients resuming while the store is down are refused until it returns.
            tokio::time::sleep(*outage / 4).await;
            say!(
                "[{}] {} clients of r0 reconnect (outage)",
                profile.name,
                at()
            );
            kick(&clients, 0);
            tokio::time::sleep(*outage / 4).await;
            say!(
                "[{}] {} clients of r1 reconnect (outage)",
                profile.name,
                at()
            );
            kick(&clients, 1);
        }
        tokio::time::sleep(outage.saturating_sub(down.elapsed())).await;
        pg.start().await;
        say!("[{}] {} Postgres started", profile.name, at());
        tokio::time::sleep(gap).await;
    }

    say!(
        "[{}] {} SIGSTOP r2, burst of {}",
        profile.name,
        at(),
        profile.burst
    );
    replicas[2].freeze();
    for i in 0..profile.burst {
        senders.send(format!("{}-burst-{i:05}", profile.name));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    replicas[2].thaw();
    say!("[{}] {} SIGCONT r2", profile.name, at());
    tokio::time::sleep(gap).await;
    stream.cancel();
    let streamed = t0.elapsed();

    // Every message is eventually acknowledged (or the sender gave up).
    senders
        .wait_idle(DELIVERY_DEADLINE + Duration::from_secs(10))
        .await;
    quiet.cancel();
    let stats = senders.stats();
    say!(
        "[{}] {} senders done: {} messages ({:.0}/s steady over {:.1}s), {} acked, \
         {} attempts: {} x 503, {} other status, {} refused/reset, {} timed out; \
         {} never acked",
        profile.name,
        at(),
        stats.messages,
        stats.steady as f64 / streamed.as_secs_f64(),
        streamed.as_secs_f64(),
        stats.acked.len(),
        stats.attempts,
        stats.unavailable,
        stats.other_status,
        stats.refused,
        stats.timed_out,
        stats.gave_up.len(),
    );
    let mut failures = Vec::new();
    if !stats.gave_up.is_empty() {
        failures.push(format!(
            "{} messages never got a 2xx within {DELIVERY_DEADLINE:?}, e.g. {:?}",
            stats.gave_up.len(),
            &stats.gave_up[..stats.gave_up.len().min(5)]
        ));
    }

    // The store's order is the truth every client must reproduce.
    let stored = stored_event_ids(&pg.url()).await;
    let stored_set: HashSet<&str> = stored.iter().map(String::as_str).collect();
    let not_stored: Vec<&String> = stats
        .acked
        .iter()
        .filter(|id| !stored_set.contains(id.as_str()))
        .collect();
    if !not_stored.is_empty() {
        failures.push(format!(
            "{} acknowledged messages are not stored, e.g. {:?}",
            not_stored.len(),
            &not_stored[..not_stored.len().min(5)]
        ));
    }
    if stored.len() != stored_set.len() {
        failures.push(format!(
            "the store holds {} rows but {} distinct event ids",
            stored.len(),
            stored_set.len()
        ));
    }
    say!(
        "[{}] {} store holds {} events",
        profile.name,
        at(),
        stored.len()
    );

    // Every client converges on exactly the store's sequence.
    let deadline = tokio::time::Instant::now() + CONVERGE;
    for client in &clients {
        client.wait_until(stored.len(), deadline).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await; // stragglers, i.e. duplicates
    say!(
        "[{}] {} clients converged (or gave up) after {:.1}s",
        profile.name,
        at(),
        (tokio::time::Instant::now() + CONVERGE - deadline).as_secs_f64()
    );
    let position: HashMap<&str, usize> = stored
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    for client in &clients {
        let report = client.report();
        say!("[{}] {} {}", profile.name, client.name, report.summary());
        failures.extend(report.check(&client.name, &stored, &position));
    }

    // Idle: nothing sends, every client stays connected; nobody should spin.
    // Postgres publishes a backend's commit counts up to 10 s late when it
    // went idle right after a flush: wait that out, so the window counts
    // idle commits only.
    tokio::time::sleep(IDLE_SETTLE).await;
    let before_cpu: Vec<Duration> = replicas.iter().map(Replica::cpu_time).collect();
    let window = Instant::now();
    let idle_commits = commits_per_second(&pg.url(), IDLE_WINDOW).await;
    let seconds = window.elapsed().as_secs_f64();
    for (replica, before) in replicas.iter().zip(before_cpu) {
        let used = replica.cpu_time().saturating_sub(before);
        say!(
            "[{}] idle {seconds:.1}s: {} used {:?} CPU",
            profile.name,
            replica.name,
            used
        );
        if used > IDLE_CPU_MAX {
            failures.push(format!(
                "{} spins when idle: {used:?} CPU in {seconds:.1}s (limit {IDLE_CPU_MAX:?})",
                replica.name
            ));
        }
    }
    say!(
        "[{}] idle {seconds:.1}s: Postgres commits {idle_commits:.1}/s (before the stream \
         {baseline:.1}/s)",
        profile.name
    );
    if idle_commits > baseline + IDLE_COMMITS_MARGIN {
        failures.push(format!(
            "the idle fleet commits {idle_commits:.1} transactions/s, {baseline:.1}/s before \
             the stream (margin {IDLE_COMMITS_MARGIN}/s): something polls in a loop"
        ));
    }
    stop_clients.cancel();
    say!(
        "[{}] done in {:.1}s",
        profile.name,
        started.elapsed().as_secs_f64()
    );

    if failures.is_empty() {
        if std::env::var_os("TAU_FAULTS_KEEP_LOGS").is_none() {
            logs.remove();
        }
    } else {
        panic!(
            "{} failure(s) in profile {} (relay logs in {}):\n- {}",
            failures.len(),
            profile.name,
            logs.path.display(),
            failures.join("\n- ")
        );
    }
}

/// Drops every connection of the clients whose home is `replica`; they
/// reconnect (home first) with `since`.
fn kick(clients: &[Client], replica: usize) {
    for client in clients.iter().filter(|c| c.home == replica) {
        client.kick.notify_one();
    }
}

/// `SELECT event_id FROM faults.events ORDER BY seq`.
async fn stored_event_ids(url: &str) -> Vec<String> {
    let mut conn = PgConnection::connect(url)
        .await
        .expect("connect to Postgres");
    let ids = sqlx::query_scalar(&format!(
        "SELECT event_id FROM \"{INSTANCE}\".events ORDER BY seq"
    ))
    .fetch_all(&mut conn)
    .await
    .expect("read the stored order");
    let _ = conn.close().await;
    ids
}

/// Transactions committed per second in the test database over `window`
/// (`xact_commit` from `pg_stat_database`; includes the two reads).
async fn commits_per_second(url: &str, window: Duration) -> f64 {
    async fn commits(url: &str) -> i64 {
        let mut conn = PgConnection::connect(url)
            .await
            .expect("connect to Postgres");
        let n = sqlx::query_scalar(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()",
        )
        .fetch_one(&mut conn)
        .await
        .expect("read pg_stat_database");
        let _ = conn.close().await;
        n
    }
    let begun = Instant::now();
    let before = commits(url).await;
    tokio::time::sleep(window).await;
    let after = commits(url).await;
    (after - before) as f64 / begun.elapsed().as_secs_f64()
}

/// A temp directory for the relays' stderr, kept when the test fails.
struct LogDir {
    path: PathBuf,
}

impl LogDir {
    fn new(test: &str) -> LogDir {
        let path = std::env::temp_dir().join(format!("tau-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create log dir");
        LogDir { path }
    }

    fn remove(&self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

// ---------------------------------------------------------------- senders

/// What the senders did, for the report and the assertions.
#[derive(Default)]
struct SenderStats {
    /// Distinct messages sent.
    messages: usize,
    /// Of which by the steady stream.
    steady: usize,
    /// Message ids answered 2xx, in the order they were.
    acked: Vec<String>,
    /// Messages given up after [`DELIVERY_DEADLINE`].
    gave_up: Vec<String>,
    attempts: usize,
    unavailable: usize,
    other_status: usize,
    refused: usize,
    timed_out: usize,
}

/// Twitch, as far as a relay can tell: signed notifications with unique
/// message ids, each resent (signed afresh, backing off, to the next
/// replica as a load balancer would) until answered 2xx.
#[derive(Clone)]
struct Senders {
    http: reqwest::Client,
    targets: Arc<Vec<String>>,
    stats: Arc<Mutex<SenderStats>>,
    in_flight: Arc<AtomicUsize>,
    next_target: Arc<AtomicUsize>,
}

impl Senders {
    fn new(targets: Arc<Vec<String>>) -> Senders {
        Senders {
            http: reqwest::Client::builder()
                .pool_idle_timeout(Duration::from_secs(5))
                .build()
                .unwrap(),
            targets,
            stats: Arc::default(),
            in_flight: Arc::default(),
            next_target: Arc::default(),
        }
    }

    /// Starts delivering one message in the background.
    fn send(&self, message_id: String) {
        self.stats.lock().unwrap().messages += 1;
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let start = self.next_target.fetch_add(1, Ordering::Relaxed);
        let this = self.clone();
        tokio::spawn(async move {
            this.deliver(start, message_id).await;
            this.in_flight.fetch_sub(1, Ordering::SeqCst);
        });
    }

    async fn deliver(&self, start: usize, message_id: String) {
        let body = follow_body(&message_id);
        let first = Instant::now();
        let mut backoff = MIN_BACKOFF;
        for attempt in 0.. {
            let target = &self.targets[(start + attempt) % self.targets.len()];
            let sent = post_once(&self.http, target, &message_id, &body, ATTEMPT_TIMEOUT).await;
            {
                let mut stats = self.stats.lock().unwrap();
                stats.attempts += 1;
                match sent {
                    Ok(status) if status.is_success() => {
                        stats.acked.push(message_id);
                        return;
                    }
                    Ok(status) if status.as_u16() == 503 => stats.unavailable += 1,
                    Ok(_) => stats.other_status += 1,
                    Err(e) if e.is_timeout() => stats.timed_out += 1,
                    Err(_) => stats.refused += 1,
                }
                if first.elapsed() > DELIVERY_DEADLINE {
                    stats.gave_up.push(message_id);
                    return;
                }
            }
            let jitter = Duration::from_millis(rand::random::<u64>() % 250);
            tokio::time::sleep(backoff + jitter).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// Sends `rate` new messages a second until the returned token is
    /// cancelled. The pacer has a thread of its own: on a loaded machine the
    /// runtime's workers may not poll a task for seconds, and a starved
    /// pacer would send in bursts (and past its end).
    fn steady(&self, prefix: &str, rate: u32) -> CancellationToken {
        let stop = CancellationToken::new();
        let this = self.clone();
        let prefix = prefix.to_string();
        let cancelled = stop.clone();
        let runtime = tokio::runtime::Handle::current();
        std::thread::spawn(move || {
            let _guard = runtime.enter();
            let begun = Instant::now();
            let mut sent = 0u64;
            while !cancelled.is_cancelled() {
                std::thread::sleep(Duration::from_millis(10));
                let due = (begun.elapsed().as_secs_f64() * f64::from(rate)) as u64;
                while sent < due && !cancelled.is_cancelled() {
                    this.send(format!("{prefix}-{sent:06}"));
                    this.stats.lock().unwrap().steady += 1;
                    sent += 1;
                }
            }
        });
        stop
    }

    /// One line of progress every `every` until `stop`: acknowledged so far,
    /// in flight, attempts (how fast the fleet digests each fault).
    fn progress(&self, label: String, every: Duration, stop: CancellationToken) {
        let this = self.clone();
        std::thread::spawn(move || {
            let begun = Instant::now();
            let mut last_acked = 0;
            let mut last_cpu = fleet::cpu_time(std::process::id());
            while !stop.is_cancelled() {
                std::thread::sleep(every);
                let cpu = fleet::cpu_time(std::process::id());
                let busy = (cpu - last_cpu).as_secs_f64() / every.as_secs_f64() * 100.0;
                last_cpu = cpu;
                let (acked, attempts, timed_out) = {
                    let stats = this.stats.lock().unwrap();
                    (stats.acked.len(), stats.attempts, stats.timed_out)
                };
                say!(
                    "[{label}] {:5.1}s acked {acked} (+{:.0}/s), in flight {}, attempts {attempts}, \
                     timed out {timed_out}; test process CPU {busy:.0}%",
                    begun.elapsed().as_secs_f64(),
                    acked.saturating_sub(last_acked) as f64 / every.as_secs_f64(),
                    this.in_flight.load(Ordering::SeqCst),
                );
                last_acked = acked;
            }
        });
    }

    /// Waits until no message is in flight (bounded).
    async fn wait_idle(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.in_flight.load(Ordering::SeqCst) > 0 {
            assert!(
                Instant::now() < deadline,
                "{} webhook deliveries still running after {limit:?}",
                self.in_flight.load(Ordering::SeqCst)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn stats(&self) -> SenderStats {
        std::mem::take(&mut *self.stats.lock().unwrap())
    }
}

// ---------------------------------------------------------------- clients

/// What a client saw over all its sessions.
#[derive(Default)]
struct Log {
    /// (Twitch event id, TAU id) in arrival order.
    events: Vec<(String, String)>,
    /// Sessions that got past the handshake, per replica index.
    sessions: Vec<usize>,
    /// Handshakes refused with an `{"error": ...}` frame (store down).
    refused: usize,
    /// Connection attempts that failed before a websocket existed.
    unreachable: usize,
    /// 1013 "too slow" closes.
    too_slow: usize,
    /// 1013 closes whose `since` hint differs from the last id received.
    bad_hints: Vec<String>,
    /// Frames that are not events or errors.
    odd_frames: Vec<String>,
    /// Kicks by the test.
    kicked: usize,
    /// Whether a handshake was ever sent (the first session is up).
    greeted: bool,
}

/// A TAU websocket client homed on one replica: connects there (or, when
/// it is down, to the next one up), records every event, and after any
/// disconnect resumes with `{"token", "since": <last TAU id>}`.
struct Client {
    name: String,
    home: usize,
    log: Arc<Mutex<Log>>,
    kick: Arc<Notify>,
}

impl Client {
    fn start(home: usize, n: usize, addrs: Arc<Vec<String>>, stop: CancellationToken) -> Client {
        let client = Client {
            name: format!("client{n}@r{home}"),
            home,
            log: Arc::default(),
            kick: Arc::new(Notify::new()),
        };
        let log = client.log.clone();
        let kick = client.kick.clone();
        tokio::spawn(async move {
            let mut candidate = home;
            while !stop.is_cancelled() {
                let addr = &addrs[candidate];
                let pause = session(addr, candidate, &log, &kick, &stop).await;
                // Home first, then the others in turn.
                candidate = match pause {
                    Pause::Reconnect => home,
                    Pause::Unreachable => (candidate + 1) % addrs.len(),
                };
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
        });
        client
    }

    fn count(&self) -> usize {
        self.log.lock().unwrap().events.len()
    }

    async fn wait_for(&self, n: usize, limit: Duration) {
        self.wait_until(n, tokio::time::Instant::now() + limit)
            .await;
        assert!(
            self.count() >= n,
            "{}: only {} of {n} events",
            self.name,
            self.count()
        );
    }

    /// Waits until `n` events arrived or `deadline` passed (no panic).
    async fn wait_until(&self, n: usize, deadline: tokio::time::Instant) {
        while self.count() < n && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn report(&self) -> Report {
        let log = self.log.lock().unwrap();
        Report {
            received: log.events.iter().map(|(e, _)| e.clone()).collect(),
            sessions: log.sessions.clone(),
            refused: log.refused,
            unreachable: log.unreachable,
            too_slow: log.too_slow,
            bad_hints: log.bad_hints.clone(),
            odd_frames: log.odd_frames.clone(),
            kicked: log.kicked,
        }
    }
}

/// What to do after a session ends.
enum Pause {
    /// Try home again.
    Reconnect,
    /// This replica is not reachable: try the next.
    Unreachable,
}

/// One connection: handshake (resuming after the last id seen), then
/// record frames until the server, the test or the network ends it.
async fn session(
    addr: &str,
    replica: usize,
    log: &Mutex<Log>,
    kick: &Notify,
    stop: &CancellationToken,
) -> Pause {
    let url = format!("ws://{addr}/ws/twitch-events/");
    let connected = tokio::time::timeout(
        Duration::from_secs(2),
        tokio_tungstenite::connect_async(url),
    )
    .await;
    let Ok(Ok((mut ws, _))) = connected else {
        log.lock().unwrap().unreachable += 1;
        return Pause::Unreachable;
    };
    let since = log.lock().unwrap().events.last().map(|(_, id)| id.clone());
    let mut hello = serde_json::json!({ "token": TOKEN });
    if let Some(since) = &since {
        hello["since"] = since.clone().into();
    }
    if ws
        .send(Message::Text(hello.to_string().into()))
        .await
        .is_err()
    {
        log.lock().unwrap().unreachable += 1;
        return Pause::Unreachable;
    }
    log.lock().unwrap().greeted = true;
    let mut counted = false;
    loop {
        let frame = tokio::select! {
            _ = stop.cancelled() => return Pause::Reconnect,
            _ = kick.notified() => {
                log.lock().unwrap().kicked += 1;
                let _ = ws.close(None).await;
                return Pause::Reconnect;
            }
            frame = ws.next() => frame,
        };
        let mut log = log.lock().unwrap();
        match frame {
            Some(Ok(Message::Text(text))) => {
                let value: serde_json::Value = match serde_json::from_str(&text) {
                    Ok(v) => v,
                    Err(_) => {
                        log.odd_frames.push(text.to_string());
                        continue;
                    }
                };
                if value.get("error").is_some() {
                    // Store down while checking the token or `since`: retry later.
                    log.refused += 1;
                    return Pause::Reconnect;
                }
                match (value["event_id"].as_str(), value["id"].as_str()) {
                    (Some(event_id), Some(id)) => {
                        if !counted {
                            log.sessions.push(replica);
                            counted = true;
                        }
                        log.events.push((event_id.to_string(), id.to_string()));
                    }
                    _ => log.odd_frames.push(text.to_string()),
                }
            }
            Some(Ok(Message::Close(close))) => {
                if let Some(close) = close {
                    if close.code == CloseCode::Again {
                        log.too_slow += 1;
                        let last = log.events.last().map(|(_, id)| id.clone());
                        let hint = close.reason.split("since=").nth(1);
                        if hint != last.as_deref() {
                            log.bad_hints
                                .push(format!("1013 named since={hint:?}, last received {last:?}"));
                        }
                    }
                }
                return Pause::Reconnect;
            }
            Some(Ok(_)) => continue,
            // Reset, refused mid-stream, process gone: its replica may be down.
            Some(Err(_)) | None => return Pause::Unreachable,
        }
    }
}

/// One client's record, checked against the store's order.
struct Report {
    received: Vec<String>,
    sessions: Vec<usize>,
    refused: usize,
    unreachable: usize,
    too_slow: usize,
    bad_hints: Vec<String>,
    odd_frames: Vec<String>,
    kicked: usize,
}

impl Report {
    fn summary(&self) -> String {
        format!(
            "received {}, sessions {} (on replicas {:?}), kicked {}, handshakes refused {}, \
             unreachable {}, 1013 closes {}",
            self.received.len(),
            self.sessions.len(),
            self.sessions,
            self.kicked,
            self.refused,
            self.unreachable,
            self.too_slow
        )
    }

    /// Lost, duplicated, foreign and out-of-order events, each a failure line.
    fn check(&self, who: &str, stored: &[String], position: &HashMap<&str, usize>) -> Vec<String> {
        let mut failures = Vec::new();
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for id in &self.received {
            *seen.entry(id.as_str()).or_default() += 1;
        }
        let missing: Vec<(usize, &String)> = stored
            .iter()
            .enumerate()
            .filter(|(_, id)| !seen.contains_key(id.as_str()))
            .collect();
        if !missing.is_empty() {
            // Skipped (a hole before events that did arrive) or stalled (a tail).
            let newest = self
                .received
                .iter()
                .filter_map(|id| position.get(id.as_str()).copied())
                .max();
            let skipped = missing
                .iter()
                .filter(|(p, _)| newest.is_some_and(|n| *p < n))
                .count();
            failures.push(format!(
                "{who} lost {} of {} stored events ({skipped} skipped before its newest \
                 received, store position {newest:?}; {} never arrived after it); \
                 first (store position, id): {:?}; last: {:?}",
                missing.len(),
                stored.len(),
                missing.len() - skipped,
                &missing[..missing.len().min(8)],
                missing.last().unwrap()
            ));
        }
        let duplicated: Vec<(&&str, &usize)> = seen.iter().filter(|(_, n)| **n > 1).collect();
        if !duplicated.is_empty() {
            failures.push(format!(
                "{who} received {} events more than once, e.g. {:?}",
                duplicated.len(),
                &duplicated[..duplicated.len().min(5)]
            ));
        }
        let foreign: Vec<&String> = self
            .received
            .iter()
            .filter(|id| !position.contains_key(id.as_str()))
            .collect();
        if !foreign.is_empty() {
            failures.push(format!(
                "{who} received {} events that are not stored, e.g. {:?}",
                foreign.len(),
                &foreign[..foreign.len().min(5)]
            ));
        }
        // Order: store positions must only grow along the arrival order.
        let positions: Vec<usize> = self
            .received
            .iter()
            .filter_map(|id| position.get(id.as_str()).copied())
            .collect();
        if let Some(i) = positions.windows(2).position(|w| w[0] >= w[1]) {
            failures.push(format!(
                "{who} out of store order at arrival #{}: store position {} ({}) came after {} ({})",
                i + 1,
                positions[i + 1],
                stored[positions[i + 1]],
                positions[i],
                stored[positions[i]],
            ));
        }
        if !self.bad_hints.is_empty() {
            failures.push(format!(
                "{who}: {} 1013 closes named a wrong resume point, e.g. {}",
                self.bad_hints.len(),
                self.bad_hints[0]
            ));
        }
        if !self.odd_frames.is_empty() {
            failures.push(format!(
                "{who}: {} frames that are neither events nor errors, e.g. {}",
                self.odd_frames.len(),
                self.odd_frames[0]
            ));
        }
        failures
    }
}
