//! Throwaway Redis: `redis-server` as a child process on a free port.

use crate::{find_on_path, kill9, log_tail, make_temp_dir, reap_stale, skip};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Once, OnceLock};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A private Redis server on 127.0.0.1 without persistence (a restart
/// starts empty). Dropping it kills the server and deletes its directory.
pub struct Redis {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    child: Option<Child>,
}

/// Starts a fresh server for `test_name`. Returns `None` after printing
/// `SKIPPED <test>: <reason>` when `redis-server` is not installed and
/// [`crate::require_services`] is false; panics when it is true, or when the
/// server fails to start.
pub async fn redis(test_name: &str) -> Option<Redis> {
    let Some(bin) = binary() else {
        return skip(
            test_name,
            "redis-server not found in $TAU_REDIS_SERVER, on PATH or at /usr/bin/redis-server; \
             run .ci/install-services.sh",
        );
    };
    static REAP: Once = Once::new();
    REAP.call_once(|| reap_stale("redis", stop_dir));

    let dir = make_temp_dir("redis", test_name);
    let mut redis = Redis {
        dir,
        bin: bin.clone(),
        port: 0,
        child: None,
    };
    for attempt in 1.. {
        redis.port = crate::free_port();
        match redis.try_start().await {
            Ok(()) => break,
            // Lost the race for the free port to another process: new port.
            Err(e) if attempt < 5 && e.contains("Address already in use") => continue,
            Err(e) => panic!("{test_name}: redis did not start: {e}"),
        }
    }
    Some(redis)
}

impl Redis {
    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The server's loopback port (a free one, never 6379).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's temp directory (log in `redis.log`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Kills the server (SIGKILL, like a crash) and waits for it to exit:
    /// connections drop, new ones are refused. No-op when stopped.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port (empty: no persistence) and
    /// returns once it answers PING. Panics if the port was taken meanwhile.
    /// No-op when running.
    pub async fn start(&mut self) {
        if self.child.is_none() {
            if let Err(e) = self.try_start().await {
                panic!("redis restart on port {} failed: {e}", self.port);
            }
        }
    }

    /// Spawns `redis-server` and waits for PING. Err: the reason with the
    /// log's tail.
    async fn try_start(&mut self) -> Result<(), String> {
        let log_path = self.dir.join("redis.log");
        let log = File::options()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| e.to_string())?;
        let log2 = log.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new(&self.bin)
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--appendonly", "no", "--daemonize", "no", "--dir"])
            .arg(&self.dir)
            .arg("--pidfile")
            .arg(self.dir.join("redis.pid"))
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", self.bin.display()))?;
        let child = self.child.insert(child);
        let deadline = Instant::now() + crate::READY_TIMEOUT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Err(format!(
                    "redis-server exited ({status})\n{}",
                    log_tail(&log_path, 2000)
                ));
            }
            if ping(self.port).await {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "no PONG after start\n{}",
                    log_tail(&log_path, 2000)
                ));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Kills a server left running in `dir` by a dead test process.
fn stop_dir(dir: &Path) {
    let pid = std::fs::read_to_string(dir.join("redis.pid")).ok();
    if let Some(pid) = pid.and_then(|p| p.trim().parse().ok()) {
        kill9(pid, "redis-server");
    }
}

/// One PING over a fresh TCP connection; true on `+PONG`.
async fn ping(port: u16) -> bool {
    let probe = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        stream.write_all(b"*1\r\n$4\r\nPING\r\n").await?;
        let mut buf = [0u8; 16];
        let n = stream.read(&mut buf).await?;
        std::io::Result::Ok(buf[..n].starts_with(b"+PONG"))
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(2), probe).await,
        Ok(Ok(true))
    )
}

/// `redis-server`: `$TAU_REDIS_SERVER`, then `PATH`, then /usr/bin.
fn binary() -> Option<&'static PathBuf> {
    static BIN: OnceLock<Option<PathBuf>> = OnceLock::new();
    BIN.get_or_init(|| {
        let from_env = std::env::var_os("TAU_REDIS_SERVER").map(PathBuf::from);
        [
            from_env,
            find_on_path("redis-server"),
            Some("/usr/bin/redis-server".into()),
        ]
        .into_iter()
        .flatten()
        .find(|p| p.is_file())
    })
    .as_ref()
}
