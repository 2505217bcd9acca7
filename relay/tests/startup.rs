//! The `tau-relay` binary started before its Postgres is reachable (a
//! Kubernetes pod next to the chart's bundled Postgres, still initializing):
//! it neither exits nor pretends to be ready. `/healthz` answers 200 (no
//! restart), `/readyz` 503 (no traffic), one log line per attempt; once the
//! database accepts connections the relay starts and `/readyz` turns 200.
//!
//! Needs a real Postgres (skipped with a printed reason without one, failed
//! under `TAU_REQUIRE_SERVICES=1`).

use std::{
    io::{BufRead, BufReader},
    net::TcpListener,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

/// A relay process whose stderr lines are collected.
struct Relay {
    child: Child,
    base: String,
    log: Arc<Mutex<Vec<String>>>,
    dir: std::path::PathBuf,
}

impl Relay {
    fn spawn(database_url: &str) -> Relay {
        // A free port: the relay prints where it listens only once started.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(format!("tau-startup-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_tau-relay"))
            .current_dir(&dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "info")
            .env("TAU_LISTEN", format!("127.0.0.1:{port}"))
            .env("TAU_DATABASE_URL", database_url)
            .env("TAU_SECRET_KEY", "ab".repeat(32))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Relay {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
            dir,
        }
    }

    async fn status_of(&self, path: &str) -> Option<u16> {
        let response = reqwest::Client::new()
            .get(format!("{}{path}", self.base))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .ok()?;
        Some(response.status().as_u16())
    }

    /// Waits until `path` answers `status`.
    async fn wait_for(&self, path: &str, status: u16, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let got = self.status_of(path).await;
            if got == Some(status) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{path} did not answer {status} within {limit:?} (last: {got:?}); log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    fn attempts_logged(&self) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("database not reachable yet"))
            .count()
    }

    /// SIGTERM; the exit status (within 10 s).
    fn terminate(&mut self) -> std::process::ExitStatus {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waits_unready_for_a_postgres_that_comes_up_later() {
    let Some(mut pg) = tau_test_services::postgres("startup_waits").await else {
        return;
    };
    let url = pg.url();
    pg.stop().await;

    let mut relay = Relay::spawn(&url);
    relay
        .wait_for("/healthz", 200, Duration::from_secs(20))
        .await;
    assert_eq!(
        relay.status_of("/readyz").await,
        Some(503),
        "not ready without its database"
    );
    assert_eq!(
        relay.status_of("/api/v1/status").await,
        Some(503),
        "nothing else is served yet"
    );
    // Still trying after a few attempts (1 s, 2 s backoff), one line each.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        relay.child.try_wait().unwrap().is_none(),
        "the relay exited instead of waiting:\n{}",
        relay.log()
    );
    let logged = relay.attempts_logged();
    assert!(
        (2..=4).contains(&logged),
        "one line per attempt, {logged} lines:\n{}",
        relay.log()
    );
    assert_eq!(relay.status_of("/readyz").await, Some(503));

    pg.start().await;
    // The next attempt is at most 10 s away (the backoff's cap).
    relay
        .wait_for("/readyz", 200, Duration::from_secs(20))
        .await;
    assert!(
        relay.log().contains("database reachable; starting"),
        "{}",
        relay.log()
    );
    let status = relay.terminate();
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_waiting_stops_at_once() {
    let Some(mut pg) = tau_test_services::postgres("startup_sigterm").await else {
        return;
    };
    let url = pg.url();
    pg.stop().await;
    let mut relay = Relay::spawn(&url);
    relay
        .wait_for("/healthz", 200, Duration::from_secs(20))
        .await;
    let asked = Instant::now();
    let status = relay.terminate();
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");
    assert!(
        asked.elapsed() < Duration::from_secs(3),
        "{:?}",
        asked.elapsed()
    );
}

#[test]
fn a_sqlite_file_that_cannot_be_opened_still_fails_fast() {
    let start = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_tau-relay"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "warn")
        .env("TAU_LISTEN", "127.0.0.1:0")
        .env("TAU_SECRET_KEY", "ab".repeat(32))
        .env("TAU_DATABASE_URL", "sqlite:///nonexistent-dir/sub/tau.db")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "waiting is only for Postgres"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot start"), "{stderr}");
}
