//! The machine's speed on the day, measured before any load.
//!
//! On the shared virtual machine these numbers come from, the same relay
//! build has cost twice the CPU per webhook event from one session to the
//! next, at the same load average: the host's disk and its neighbours
//! change under us. A run's figures mean little without the speed of the
//! two things the relay's ingest leans on, timed the same way each time:
//! signing (the HMAC every webhook is verified with) and a WAL-sized
//! append made durable (what every commit waits for).

use std::{io::Write, time::Instant};

use serde::Serialize;
use tau_relay::ingest::signature::sign;

/// What the calibration measured.
#[derive(Debug, Clone, Serialize)]
pub struct Calibration {
    /// Mean microseconds to sign a 1 KiB webhook body (HMAC-SHA256).
    pub hmac_1k_us: f64,
    /// Milliseconds for an 8 KiB append and `fdatasync` in the temp dir:
    /// median, 99th percentile.
    pub fsync_8k_ms_p50: f64,
    pub fsync_8k_ms_p99: f64,
}

const SIGNATURES: u32 = 20_000;
const APPENDS: usize = 200;

/// Times both: a quarter of a second on a fast disk, about a second
/// where a sync takes 5 ms.
pub fn run() -> std::io::Result<Calibration> {
    let body = vec![b'x'; 1024];
    let started = Instant::now();
    for i in 0..SIGNATURES {
        std::hint::black_box(sign(b"calibration-secret", &i.to_string(), "ts", &body));
    }
    let hmac_1k_us = started.elapsed().as_secs_f64() * 1e6 / f64::from(SIGNATURES);

    let path = std::env::temp_dir().join(format!("tau-bench-fsync-{}", std::process::id()));
    let mut file = std::fs::File::create(&path)?;
    let page = vec![0u8; 8192];
    let mut ms = Vec::with_capacity(APPENDS);
    for _ in 0..APPENDS {
        let t = Instant::now();
        file.write_all(&page)?;
        file.sync_data()?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    drop(file);
    let _ = std::fs::remove_file(&path);
    ms.sort_by(f64::total_cmp);
    Ok(Calibration {
        hmac_1k_us,
        fsync_8k_ms_p50: ms[APPENDS / 2],
        fsync_8k_ms_p99: ms[APPENDS * 99 / 100],
    })
}

impl std::fmt::Display for Calibration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "machine speed now: HMAC-SHA256 of 1 KiB {:.2} µs; 8 KiB append + fdatasync p50 {:.2} ms, p99 {:.2} ms",
            self.hmac_1k_us, self.fsync_8k_ms_p50, self.fsync_8k_ms_p99
        )
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn calibration_measures_both_and_prints_them() {
        let c = super::run().expect("temp dir writable");
        assert!(c.hmac_1k_us > 0.0);
        assert!(c.fsync_8k_ms_p50 > 0.0 && c.fsync_8k_ms_p99 >= c.fsync_8k_ms_p50);
        let line = c.to_string();
        assert!(
            line.contains("HMAC-SHA256") && line.contains("fdatasync"),
            "{line}"
        );
    }
}
