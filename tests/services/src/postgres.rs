//! Throwaway Postgres: `initdb` into a temp dir, `pg_ctl` on a free port.

use crate::{find_on_path, is_root, kill9, log_tail, make_temp_dir, reap_stale, skip};
use sqlx::{Connection, PgConnection};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Once, OnceLock};
use std::time::{Duration, Instant};

/// A private Postgres server (superuser `tau`, trust auth on 127.0.0.1 only),
/// with a database `tau` created for the test. Dropping it stops the server
/// and deletes its directory.
pub struct Postgres {
    dir: PathBuf,
    bindir: PathBuf,
    run_as: Option<String>,
    port: u16,
    running: bool,
}

/// Starts a fresh server for `test_name` (initdb + start + CREATE DATABASE:
/// about a second). Returns `None` after printing `SKIPPED <test>: <reason>` when
/// `initdb`/`pg_ctl` are not installed and [`crate::require_services`] is
/// false; panics when it is true, or when the server fails to start.
pub async fn postgres(test_name: &str) -> Option<Postgres> {
    let Some(bindir) = bindir() else {
        return skip(
            test_name,
            "postgres binaries (initdb, pg_ctl) not found on PATH, in $TAU_PG_BINDIR or \
             under /usr/lib/postgresql/*/bin; run .ci/install-services.sh",
        );
    };
    let run_as = run_as_user();
    static REAP: Once = Once::new();
    REAP.call_once(|| reap_stale("pg", |dir| stop_dir(bindir, run_as.as_deref(), dir)));

    let dir = make_temp_dir("pg", test_name);
    if let Some(user) = &run_as {
        let (uid, gid) = user_ids(user).unwrap_or_else(|| panic!("no uid for user {user}"));
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).expect("chown temp dir");
    }
    let mut pg = Postgres {
        dir,
        bindir: bindir.clone(),
        run_as,
        port: 0,
        running: false,
    };
    let data = pg.data_dir();
    let out = tokio::process::Command::from(pg.command("initdb"))
        .arg("-D")
        .arg(&data)
        .args(["-U", "tau", "--auth=trust", "-E", "UTF8", "--locale=C"])
        .args(["--no-sync", "--no-instructions"])
        .output()
        .await
        .expect("run initdb");
    assert!(
        out.status.success(),
        "{test_name}: initdb failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(
        data.join("pg_hba.conf"),
        "local all all trust\nhost all all 127.0.0.1/32 trust\n",
    )
    .expect("write pg_hba.conf");
    let conf = format!(
        "\n# tau-test-services: throwaway server\nlisten_addresses = '127.0.0.1'\n\
         unix_socket_directories = '{}'\nmax_connections = 200\nfsync = off\n\
         synchronous_commit = off\nfull_page_writes = off\n",
        pg.dir.display()
    );
    let conf_path = data.join("postgresql.conf");
    let mut text = std::fs::read_to_string(&conf_path).expect("read postgresql.conf");
    text.push_str(&conf);
    std::fs::write(&conf_path, text).expect("write postgresql.conf");

    for attempt in 1.. {
        pg.port = crate::free_port();
        match pg.try_start().await {
            Ok(()) => break,
            // Lost the race for the free port to another process: new port.
            Err(e) if attempt < 5 && e.contains("Address already in use") => continue,
            Err(e) => panic!("{test_name}: postgres did not start: {e}"),
        }
    }
    pg.new_database("tau").await;
    Some(pg)
}

impl Postgres {
    /// `postgres://tau:tau@127.0.0.1:PORT/tau`: the test's own database.
    pub fn url(&self) -> String {
        self.url_for("tau")
    }

    /// The server's loopback port (a free one, never 5432).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's temp directory (data in `data/`, log in `postgres.log`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stops the server (`pg_ctl stop -m fast`), simulating an outage: new
    /// connections are refused, open ones are closed. No-op when stopped.
    pub async fn stop(&mut self) {
        if !self.running {
            return;
        }
        let out = tokio::process::Command::from(self.command("pg_ctl"))
            .arg("stop")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-m", "fast", "-w", "-t", "60"])
            .output()
            .await
            .expect("run pg_ctl stop");
        assert!(
            out.status.success(),
            "pg_ctl stop failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.running = false;
    }

    /// Freezes the server (SIGSTOP to the postmaster and every backend):
    /// connections stay open but nothing answers, as on a hung host.
    pub fn freeze(&self) {
        self.signal_all("STOP");
    }

    /// Undoes [`Postgres::freeze`].
    pub fn thaw(&self) {
        self.signal_all("CONT");
    }

    fn signal_all(&self, signal: &str) {
        let pid_file = self.data_dir().join("postmaster.pid");
        let text = std::fs::read_to_string(&pid_file).expect("postmaster.pid readable");
        let postmaster = text
            .lines()
            .next()
            .expect("postmaster pid")
            .trim()
            .to_string();
        let children = Command::new("pgrep")
            .args(["-P", &postmaster])
            .output()
            .expect("run pgrep");
        let mut pids = vec![postmaster];
        pids.extend(
            String::from_utf8_lossy(&children.stdout)
                .split_whitespace()
                .map(str::to_string),
        );
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .args(&pids)
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {pids:?} failed");
    }

    /// Starts the server again: same data, same port; returns once it
    /// accepts connections. Panics if the port was taken meanwhile. No-op
    /// when running.
    pub async fn start(&mut self) {
        if !self.running {
            if let Err(e) = self.try_start().await {
                panic!("postgres restart on port {} failed: {e}", self.port);
            }
        }
    }

    /// `CREATE DATABASE name` and returns its URL, so several tests or
    /// components can share one server. `name`: ASCII letters, digits and
    /// `_`; panics if it exists already.
    pub async fn new_database(&self, name: &str) -> String {
        assert!(
            !name.is_empty()
                && name.len() < 64
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "database name {name:?}: use 1-63 ASCII letters, digits, _"
        );
        let mut conn = PgConnection::connect(&self.url_for("postgres"))
            .await
            .expect("connect as tau");
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        let _ = conn.close().await;
        self.url_for(name)
    }

    fn url_for(&self, db: &str) -> String {
        format!("postgres://tau:tau@127.0.0.1:{}/{db}", self.port)
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn command(&self, prog: &str) -> Command {
        pg_command(&self.bindir, self.run_as.as_deref(), prog, &self.dir)
    }

    /// `pg_ctl start -w`, then waits until `SELECT 1` succeeds. Err: the
    /// reason with the server log's tail.
    async fn try_start(&mut self) -> Result<(), String> {
        let log = self.dir.join("postgres.log");
        let out = tokio::process::Command::from(self.command("pg_ctl"))
            .arg("start")
            .arg("-D")
            .arg(self.data_dir())
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", "60", "-o", &format!("-p {}", self.port)])
            .output()
            .await
            .map_err(|e| format!("run pg_ctl: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "pg_ctl start: {}\n{}",
                String::from_utf8_lossy(&out.stderr),
                log_tail(&log, 2000)
            ));
        }
        self.running = true;
        let deadline = Instant::now() + crate::READY_TIMEOUT;
        loop {
            let probe = async {
                let mut conn = PgConnection::connect(&self.url_for("postgres")).await?;
                sqlx::query("SELECT 1").execute(&mut conn).await?;
                conn.close().await
            };
            match tokio::time::timeout(Duration::from_secs(5), probe).await {
                Ok(Ok(())) => return Ok(()),
                _ if Instant::now() > deadline => {
                    return Err(format!(
                        "not accepting connections after start\n{}",
                        log_tail(&log, 2000)
                    ))
                }
                _ => tokio::time::sleep(Duration::from_millis(25)).await,
            }
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        stop_dir(&self.bindir, self.run_as.as_deref(), &self.dir);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Stops whatever server runs on `dir/data` (`pg_ctl stop -m immediate`,
/// then `kill -9` of the postmaster). Synchronous: used by Drop and reaping.
fn stop_dir(bindir: &Path, run_as: Option<&str>, dir: &Path) {
    let data = dir.join("data");
    let Ok(pidfile) = std::fs::read_to_string(data.join("postmaster.pid")) else {
        return;
    };
    let _ = pg_command(bindir, run_as, "pg_ctl", dir)
        .arg("stop")
        .arg("-D")
        .arg(&data)
        .args(["-m", "immediate", "-w", "-t", "10"])
        .output();
    if let Some(pid) = pidfile.lines().next().and_then(|l| l.trim().parse().ok()) {
        kill9(pid, "postgres");
    }
}

/// A command for Postgres binary `prog`, as `run_as` (via `runuser`) when
/// given, working directory `dir` (readable by that user).
fn pg_command(bindir: &Path, run_as: Option<&str>, prog: &str, dir: &Path) -> Command {
    let mut cmd = match run_as {
        Some(user) => {
            let runuser = find_on_path("runuser").unwrap_or_else(|| "/usr/sbin/runuser".into());
            let mut cmd = Command::new(runuser);
            cmd.args(["-u", user, "--"]).arg(bindir.join(prog));
            cmd
        }
        None => Command::new(bindir.join(prog)),
    };
    cmd.current_dir(dir)
        .env_remove("PGDATA")
        .env_remove("PGPORT");
    cmd
}

/// The directory holding `initdb` and `pg_ctl`: `$TAU_PG_BINDIR`, then
/// `PATH`, then the highest `/usr/lib/postgresql/<version>/bin`.
fn bindir() -> Option<&'static PathBuf> {
    static BINDIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    let has_both = |d: &Path| d.join("initdb").is_file() && d.join("pg_ctl").is_file();
    BINDIR
        .get_or_init(|| {
            let from_env = std::env::var_os("TAU_PG_BINDIR").map(PathBuf::from);
            let from_path = find_on_path("initdb").and_then(|p| p.parent().map(Path::to_path_buf));
            let versioned = std::fs::read_dir("/usr/lib/postgresql")
                .ok()
                .and_then(|entries| {
                    entries
                        .flatten()
                        .filter_map(|e| {
                            let name = e.file_name().to_string_lossy().into_owned();
                            let version: Vec<u32> = name
                                .split('.')
                                .map(str::parse)
                                .collect::<Result<_, _>>()
                                .ok()?;
                            Some((version, e.path().join("bin")))
                        })
                        .filter(|(_, bin)| has_both(bin))
                        .max()
                        .map(|(_, bin)| bin)
                });
            [from_env, from_path, versioned]
                .into_iter()
                .flatten()
                .find(|d| has_both(d))
        })
        .as_ref()
}

/// Postgres refuses to run as root: then run it as `postgres` (the Debian
/// package's system user), else `nobody`. `None`: run as ourselves.
fn run_as_user() -> Option<String> {
    is_root().then(|| {
        if user_ids("postgres").is_some() {
            "postgres"
        } else {
            "nobody"
        }
        .to_owned()
    })
}

/// (uid, gid) of `user` from /etc/passwd.
fn user_ids(user: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    let line = passwd.lines().find(|l| l.split(':').next() == Some(user))?;
    let mut fields = line.split(':').skip(2);
    Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
}
