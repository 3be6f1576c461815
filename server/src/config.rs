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
        }
    }
}

impl Config {
    pub fn from_toml(text: &str) -> anyhow::Result<Self> {
        Ok(toml::from_str(text)?)
    }

    /// Staleness threshold in microseconds.
    pub fn stale_after_us(&self) -> i64 {
        (self.report_interval_secs as i64)
            .saturating_mul(self.stale_after_intervals as i64)
            .saturating_mul(1_000_000)
    }
}
