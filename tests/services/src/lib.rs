//! Throwaway Postgres and Redis servers for TAU's tests.
//!
//! Why: the relay's Postgres store and Redis bus must be tested against the
//! real servers (their SQL, locking and pub/sub semantics are what matter),
//! yet a test must never touch a developer's or CI machine's own instances,
//! and `cargo test --workspace` must still pass on a machine with only Rust.
//! So every [`postgres`] / [`redis`] call starts a private server:
//!
//! - in a fresh directory under [`std::env::temp_dir`], on a free loopback
//!   port (never 5432 / 6379, never a system data directory);
//! - with durability switched off (`fsync=off`, no Redis persistence), since
//!   the data dies with the test;
//! - owned by the returned handle: `stop` / `start` simulate an outage on the
//!   same port with the same data, and dropping the handle stops the server
//!   and deletes its directory (synchronously, `kill -9` as the last resort).
//!   Directories left behind by a killed test process are reaped the next
//!   time a server is started.
//!
//! When the binaries are missing the functions print
//! `SKIPPED <test>: <reason>` to stderr and return `None`, unless
//! `TAU_REQUIRE_SERVICES=1` ([`require_services`]), which turns the skip into
//! a panic (CI sets it after running `.ci/install-services.sh`). A server
//! that is installed but fails to start always panics, with its log.
//!
//! Binaries: Postgres' `initdb` + `pg_ctl` come from `$TAU_PG_BINDIR`, else
//! `PATH`, else the highest `/usr/lib/postgresql/<version>/bin` (Debian);
//! `redis-server` from `$TAU_REDIS_SERVER`, else `PATH`, else
//! `/usr/bin/redis-server`. Postgres refuses to run as root, so when the
//! tests run as root it runs as the `postgres` system user (or `nobody`) via
//! `runuser`.

#![deny(missing_docs)]

mod postgres;
mod redis;

pub use postgres::{postgres, Postgres};
pub use redis::{redis, Redis};

use std::io::Write;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// How long a server may take to accept connections before the start fails
/// (generous: a loaded 2-core CI machine builds and tests at the same time).
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Whether a missing server is a failure rather than a skip:
/// `TAU_REQUIRE_SERVICES=1` (CI's `.ci/run` sets it).
pub fn require_services() -> bool {
    std::env::var("TAU_REQUIRE_SERVICES").is_ok_and(|v| v.trim() == "1")
}

/// The skip-or-fail rule for an absent server: prints
/// `SKIPPED <test>: <reason>` to stderr (even under libtest's capture) and
/// returns `None`, or panics when [`require_services`] is true.
fn skip<T>(test_name: &str, reason: &str) -> Option<T> {
    if require_services() {
        panic!("{test_name}: {reason} (TAU_REQUIRE_SERVICES=1 forbids skipping)");
    }
    // Straight to fd 2, not eprintln!: libtest captures (hides) the output
    // of passing tests, and a skip must be seen.
    let _ = writeln!(std::io::stderr(), "SKIPPED {test_name}: {reason}");
    None
}

/// A free loopback port: bind port 0, read the port, release it. Another
/// process may grab it before the server binds, so starts retry on a bind
/// failure with a new port.
fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local_addr").port()
}

/// Creates `<temp_dir>/tau-<kind>-<pid>-<n>-<test>`; the pid lets a later
/// run reap directories whose owner died (see [`reap_stale`]).
fn make_temp_dir(kind: &str, test_name: &str) -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tag: String = test_name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .take(24)
        .collect();
    let dir = std::env::temp_dir().join(format!("tau-{kind}-{}-{n}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    dir
}

/// First `name` found in a directory of `PATH`.
fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Whether this process runs as root (effective uid 0, from /proc).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("Uid:"))?.to_owned();
            Some(line.split_whitespace().nth(2)? == "0")
        })
        .unwrap_or(false)
}

/// Whether process `pid` exists and its command line contains `needle`
/// (guards against killing an unrelated process that reused a pid).
fn process_matches(pid: u32, needle: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).contains(needle))
        .unwrap_or(false)
}

/// `kill -9 pid` if the process still looks like `needle`.
fn kill9(pid: u32, needle: &str) {
    if process_matches(pid, needle) {
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
    }
}

/// The last `max` bytes of a log file, for panic messages.
fn log_tail(path: &Path, max: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let start = text.len().saturating_sub(max);
    let start = (start..text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    format!("--- {} ---\n{}", path.display(), &text[start..])
}

/// Removes `tau-<kind>-<pid>-*` directories whose owning test process is
/// gone, first calling `stop` on each (which kills a server left running).
fn reap_stale(kind: &str, stop: impl Fn(&Path)) {
    let prefix = format!("tau-{kind}-");
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(owner) = name.strip_prefix(&prefix).and_then(|r| r.split('-').next()) else {
            continue;
        };
        let Ok(owner) = owner.parse::<u32>() else {
            continue;
        };
        if owner != std::process::id() && !Path::new(&format!("/proc/{owner}")).exists() {
            stop(&entry.path());
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
