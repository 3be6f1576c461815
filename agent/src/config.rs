//! The agent's configuration file (`/etc/evidence-agent/agent.toml` by default).
//!
//! Read once at start by `enroll`, `run` and `status`. Every field has a documented default, so
//! an empty file (or no file at the default path) is a valid configuration; unknown keys are
//! refused so a typo never silently falls back to a default. `packaging/agent.toml` is the
//! annotated example shipped with the packages.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;

/// Where the configuration is read from when `--config` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/evidence-agent/agent.toml";

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Directory for the host key, the enrollment state and the spool.
    /// Default: `/var/lib/evidence-agent` (created mode 0700).
    pub state_dir: PathBuf,
    /// Root of the file system the collectors observe. Default: `/`.
    pub root: PathBuf,
    pub schedule: ScheduleConfig,
    pub watch: WatchConfig,
    pub spool: SpoolConfig,
    pub ship: ShipConfig,
    pub collectors: CollectorsConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            state_dir: PathBuf::from("/var/lib/evidence-agent"),
            root: PathBuf::from("/"),
            schedule: ScheduleConfig::default(),
            watch: WatchConfig::default(),
            spool: SpoolConfig::default(),
            ship: ShipConfig::default(),
            collectors: CollectorsConfig::default(),
        }
    }
}

/// Seconds between full collections when neither the configuration nor the server says.
pub const FALLBACK_INTERVAL_SECS: u64 = 3600;
/// Heartbeat seconds when neither the configuration nor the server says.
pub const FALLBACK_HEARTBEAT_SECS: u64 = 900;

/// When full collections and heartbeat attestations happen.
///
/// `interval_secs` and `heartbeat_secs` are normally left out: the agent then follows the
/// report interval the server gave at enrollment, so the server never sees it stale (see
/// [`crate::service::schedule::Schedule::choose`]).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScheduleConfig {
    /// Seconds between full collections. Default: the server's report interval (stored at
    /// enrollment), else [`FALLBACK_INTERVAL_SECS`] (one hour).
    pub interval_secs: Option<u64>,
    /// Up to this many seconds of random delay added to each scheduled collection, so a fleet
    /// started together does not report together; never more than the interval. Default: 300.
    pub splay_secs: u64,
    /// When no report was made for this many seconds, a signed attestation that the last full
    /// report still holds is sent. 0 turns attestations off. Default: a quarter of the server's
    /// report interval, else [`FALLBACK_HEARTBEAT_SECS`] (15 minutes).
    pub heartbeat_secs: Option<u64>,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        ScheduleConfig {
            interval_secs: None,
            splay_secs: 300,
            heartbeat_secs: None,
        }
    }
}

/// Continuous monitoring of the files each collector reads.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WatchConfig {
    /// Watch the collectors' files and re-run the affected collectors on a change. Default: true.
    pub enabled: bool,
    /// Milliseconds of quiet after a change before the collectors re-run (a package upgrade
    /// touches many files; they become one report). Default: 500.
    pub debounce_ms: u64,
}

impl Default for WatchConfig {
    fn default() -> Self {
        WatchConfig {
            enabled: true,
            debounce_ms: 500,
        }
    }
}

/// The on-disk outbox of signed reports.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpoolConfig {
    /// Most reports kept while the server is unreachable; past it the oldest are dropped and the
    /// loss is reported to the server as a counted gap. Default: 10000.
    pub max_reports: u64,
    /// Most bytes of reports kept, with the same oldest-first dropping. Default: 268435456 (256 MiB).
    pub max_bytes: u64,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        SpoolConfig {
            max_reports: 10_000,
            max_bytes: 256 * 1024 * 1024,
        }
    }
}

/// Delivery to the server.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShipConfig {
    /// Seconds one HTTP request may take. Default: 30.
    pub request_timeout_secs: u64,
    /// First retry delay after a failed delivery, in milliseconds; doubles on each failure
    /// (with full jitter). Default: 1000.
    pub backoff_initial_ms: u64,
    /// Longest retry delay, in seconds (also caps a server's Retry-After). Default: 300.
    pub backoff_max_secs: u64,
}

impl Default for ShipConfig {
    fn default() -> Self {
        ShipConfig {
            request_timeout_secs: 30,
            backoff_initial_ms: 1000,
            backoff_max_secs: 300,
        }
    }
}

/// Which collectors run and for how long.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CollectorsConfig {
    /// Collectors to run by name (`evidence-agent collect --help` lists them).
    /// Default: empty, meaning all of them.
    pub only: Vec<String>,
    /// Seconds one collector may run before its facts become an error. Default: 30.
    pub timeout_secs: u64,
}

impl Default for CollectorsConfig {
    fn default() -> Self {
        CollectorsConfig {
            only: Vec::new(),
            timeout_secs: evidence_collectors::DEFAULT_COLLECTOR_TIMEOUT.as_secs(),
        }
    }
}

impl Config {
    /// Parses a configuration file's text and checks its values.
    pub fn from_toml(text: &str) -> anyhow::Result<Config> {
        let config: Config = toml::from_str(text)?;
        config.validate()?;
        Ok(config)
    }

    /// Loads `path`; with no path, the default path if it exists and the defaults otherwise.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Config> {
        let (path, required) = match path {
            Some(path) => (path.to_path_buf(), true),
            None => (PathBuf::from(DEFAULT_CONFIG_PATH), false),
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => Config::from_toml(&text)
                .with_context(|| format!("in configuration file {}", path.display())),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound && !required => {
                Ok(Config::default())
            }
            Err(err) => {
                Err(err).with_context(|| format!("reading configuration file {}", path.display()))
            }
        }
    }

    fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.schedule.interval_secs != Some(0),
            "schedule.interval_secs must be above 0"
        );
        anyhow::ensure!(
            self.spool.max_reports > 0,
            "spool.max_reports must be above 0"
        );
        anyhow::ensure!(self.spool.max_bytes > 0, "spool.max_bytes must be above 0");
        anyhow::ensure!(
            self.collectors.timeout_secs > 0,
            "collectors.timeout_secs must be above 0"
        );
        anyhow::ensure!(
            self.ship.request_timeout_secs > 0,
            "ship.request_timeout_secs must be above 0"
        );
        self.collector_names()?;
        Ok(())
    }

    /// The configured collectors, parsed (every collector when `only` is empty).
    pub fn collector_names(&self) -> anyhow::Result<Vec<evidence_collectors::CollectorName>> {
        let mut names = if self.collectors.only.is_empty() {
            evidence_collectors::CollectorName::ALL.to_vec()
        } else {
            self.collectors
                .only
                .iter()
                .map(|name| name.parse())
                .collect::<Result<Vec<_>, _>>()
                .context("collectors.only")?
        };
        names.sort();
        names.dedup();
        Ok(names)
    }

    pub fn collector_timeout(&self) -> Duration {
        Duration::from_secs(self.collectors.timeout_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_file_gives_the_documented_defaults() {
        let config = Config::from_toml("").unwrap();
        assert_eq!(config, Config::default());
        assert_eq!(config.schedule.interval_secs, None);
        assert_eq!(config.schedule.heartbeat_secs, None);
        assert_eq!(config.watch.debounce_ms, 500);
        assert_eq!(config.state_dir, PathBuf::from("/var/lib/evidence-agent"));
    }

    #[test]
    fn the_shipped_example_parses_and_matches_the_defaults() {
        let text = include_str!("../../packaging/agent.toml");
        assert_eq!(Config::from_toml(text).unwrap(), Config::default());
    }

    #[test]
    fn the_shipped_example_documents_the_fallback_interval_and_heartbeat() {
        // The two keys the server normally decides are commented out in the example, with the
        // values used when there is no enrollment to take them from.
        let text = include_str!("../../packaging/agent.toml");
        let uncommented = text
            .replace("# interval_secs = ", "interval_secs = ")
            .replace("# heartbeat_secs = ", "heartbeat_secs = ");
        let schedule = Config::from_toml(&uncommented).unwrap().schedule;
        assert_eq!(schedule.interval_secs, Some(FALLBACK_INTERVAL_SECS));
        assert_eq!(schedule.heartbeat_secs, Some(FALLBACK_HEARTBEAT_SECS));
    }

    #[test]
    fn unknown_keys_are_refused_at_every_level() {
        assert!(Config::from_toml("stat_dir = \"/tmp\"").is_err());
        assert!(Config::from_toml("[schedule]\ninterval = 5").is_err());
        assert!(Config::from_toml("[spool]\nmax_report = 5").is_err());
    }

    #[test]
    fn zero_interval_and_unknown_collectors_are_refused() {
        assert!(Config::from_toml("[schedule]\ninterval_secs = 0").is_err());
        let err = Config::from_toml("[collectors]\nonly = [\"ssd\"]").unwrap_err();
        assert!(format!("{err:#}").contains("ssd"), "{err:#}");
    }

    #[test]
    fn a_missing_explicit_file_is_an_error_but_a_missing_default_is_not() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Config::load(Some(&dir.path().join("absent.toml"))).is_err());
        let path = dir.path().join("agent.toml");
        std::fs::write(&path, "[watch]\ndebounce_ms = 100\n").unwrap();
        assert_eq!(Config::load(Some(&path)).unwrap().watch.debounce_ms, 100);
    }
}
