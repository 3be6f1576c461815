//! Server configuration: a TOML file (`--config`) overridden by flags; every field has the
//! documented default below, so `evidence-server serve` runs with no file and no flags.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

/// `evidence-server.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on. Default `0.0.0.0:8443`.
    pub listen: SocketAddr,
    /// Directory for the database, server key, TLS certificate. Default `./evidence-data`.
    pub data_dir: PathBuf,
    /// PEM certificate chain and key; both or neither. Default: a self-signed certificate
    /// generated on first start in `data_dir` (its SHA-256 fingerprint is printed).
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Extra DNS names / IPs for the self-signed certificate (always has localhost, 127.0.0.1,
    /// ::1 and the hostname).
    pub tls_names: Vec<String>,
    /// How often agents should report, seconds. Default 3600.
    pub report_interval_secs: u64,
    /// A host that missed this many intervals is stale (never counts as passing). Default 3.
    pub stale_after_intervals: u32,
    /// Largest accepted request body, bytes. Default 1 MiB.
    pub max_body_bytes: usize,
    /// How far in the future a report's `collected_at` may be, seconds. Default 300.
    pub max_clock_skew_secs: i64,
    /// Most reports committed in one transaction (group commit). Default 512.
    pub max_batch: usize,
    /// A TLS handshake must finish within this many seconds. Default 10.
    pub tls_handshake_timeout_secs: u64,
    /// A request's headers must arrive within this many seconds of the connection opening or
    /// of the previous answer (an idle keep-alive connection is closed then). Default 10.
    pub header_read_timeout_secs: u64,
    /// A request's body must arrive within this many seconds (408 after). Default 30.
    pub body_read_timeout_secs: u64,
    /// A connection with no byte read or written for this many seconds is closed (HTTP/2
    /// included). Default 60.
    pub idle_timeout_secs: u64,
    /// Most connections held open at once; one more is closed on arrival. Default 4096.
    pub max_connections: usize,
    /// Most bytes of request bodies being read at once; a request that would exceed it is
    /// refused at once with 503. Default 64 MiB.
    pub max_inflight_body_bytes: usize,
    /// Enrollment attempts per secret: this many at once, refilled at the rate below.
    /// Defaults 100 and 600 per minute.
    pub enroll_burst_per_secret: u32,
    pub enroll_per_minute_per_secret: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "0.0.0.0:8443".parse().expect("valid default address"),
            data_dir: PathBuf::from("evidence-data"),
            tls_cert: None,
            tls_key: None,
            tls_names: Vec::new(),
            report_interval_secs: 3600,
            stale_after_intervals: 3,
            max_body_bytes: 1 << 20,
            max_clock_skew_secs: 300,
            max_batch: 512,
            tls_handshake_timeout_secs: 10,
            header_read_timeout_secs: 10,
            body_read_timeout_secs: 30,
            idle_timeout_secs: 60,
            max_connections: 4096,
            max_inflight_body_bytes: 64 << 20,
            enroll_burst_per_secret: 100,
            enroll_per_minute_per_secret: 600,
        }
    }
}

/// Largest accepted value of any duration setting: ten years in seconds.
const MAX_SECS: u64 = 10 * 366 * 86_400;

impl Config {
    pub fn from_toml(text: &str) -> anyhow::Result<Self> {
        Ok(toml::from_str(text)?)
    }

    /// Refuses values that are zero where that means "never", or that would overflow the
    /// arithmetic done with them (microsecond times, drain sizes, permit counts).
    pub fn validate(&self) -> anyhow::Result<()> {
        let secs = [
            ("report_interval_secs", self.report_interval_secs),
            (
                "tls_handshake_timeout_secs",
                self.tls_handshake_timeout_secs,
            ),
            ("header_read_timeout_secs", self.header_read_timeout_secs),
            ("body_read_timeout_secs", self.body_read_timeout_secs),
            ("idle_timeout_secs", self.idle_timeout_secs),
        ];
        for (name, v) in secs {
            anyhow::ensure!(
                (1..=MAX_SECS).contains(&v),
                "{name} must be 1 to {MAX_SECS} seconds, got {v}"
            );
        }
        anyhow::ensure!(
            (0..=MAX_SECS as i64).contains(&self.max_clock_skew_secs),
            "max_clock_skew_secs must be 0 to {MAX_SECS}, got {}",
            self.max_clock_skew_secs
        );
        anyhow::ensure!(
            (1..=1000).contains(&self.stale_after_intervals),
            "stale_after_intervals must be 1 to 1000, got {}",
            self.stale_after_intervals
        );
        anyhow::ensure!(
            (1024..=1 << 30).contains(&self.max_body_bytes),
            "max_body_bytes must be 1 KiB to 1 GiB, got {}",
            self.max_body_bytes
        );
        anyhow::ensure!(
            (self.max_body_bytes..=1 << 34).contains(&self.max_inflight_body_bytes),
            "max_inflight_body_bytes must be at least max_body_bytes ({}) and at most 16 GiB, got {}",
            self.max_body_bytes,
            self.max_inflight_body_bytes
        );
        anyhow::ensure!(
            (1..=1_000_000).contains(&self.max_connections),
            "max_connections must be 1 to 1000000, got {}",
            self.max_connections
        );
        anyhow::ensure!(
            (1..=100_000).contains(&self.max_batch),
            "max_batch must be 1 to 100000, got {}",
            self.max_batch
        );
        anyhow::ensure!(
            self.enroll_burst_per_secret >= 1,
            "enroll_burst_per_secret must be at least 1"
        );
        Ok(())
    }

    /// Staleness threshold in microseconds.
    pub fn stale_after_us(&self) -> i64 {
        (self.report_interval_secs as i64)
            .saturating_mul(self.stale_after_intervals as i64)
            .saturating_mul(1_000_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid_and_overflowing_values_are_refused() {
        assert!(Config::default().validate().is_ok());
        let refused = |f: fn(&mut Config)| {
            let mut c = Config::default();
            f(&mut c);
            c.validate().is_err()
        };
        assert!(refused(|c| c.max_clock_skew_secs = i64::MAX));
        assert!(refused(|c| c.max_clock_skew_secs = -1));
        assert!(refused(|c| c.report_interval_secs = u64::MAX));
        assert!(refused(|c| c.report_interval_secs = 0));
        assert!(refused(|c| c.max_body_bytes = usize::MAX));
        assert!(refused(|c| c.header_read_timeout_secs = 0));
        assert!(refused(|c| c.max_connections = 0));
        assert!(refused(|c| c.max_inflight_body_bytes = 1));
    }
}
