//! What the agent keeps in its state directory between runs, apart from the spool.
//!
//! * `agent.key`: the host's Ed25519 PKCS#8 document, mode 0600 from creation, never sent
//!   anywhere (only its public key is, at enrollment).
//! * `enrollment.json`: written by `enroll`: the server, how its certificate is pinned, the host
//!   id, the server's public key that verifies receipts, and the report schedule the server
//!   expects (interval and how many missed intervals make the host stale).
//! * `chain.json`: where the host's report chain stands: the next sequence number, the digest of
//!   the last report made (the next one's `prev_digest`), the last full report's digest (what an
//!   attestation says still holds), and reports dropped but not yet reported to the server.
//! * `witness.json`: the last checkpoint of the server's evidence log this agent verified (size
//!   and root). Every report names it, and every receipt must prove the log still extends it:
//!   the agent is a witness of the server's history.
//!
//! Every file is replaced atomically ([`crate::delivery::durable::write_atomic`]).

use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::{DateTime, Utc};
use evidence_protocol::signing::SigningKey;
use evidence_protocol::Digest;
use serde::{Deserialize, Serialize};

use crate::delivery::durable;

const KEY_FILE: &str = "agent.key";
const ENROLLMENT_FILE: &str = "enrollment.json";
const CHAIN_FILE: &str = "chain.json";
const WITNESS_FILE: &str = "witness.json";

/// How the agent recognises its server's TLS certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Pin {
    /// SHA-256 of the server's end-entity certificate (DER), 64 lowercase hex characters.
    Fingerprint(String),
    /// A CA certificate (PEM) that must sign the server's certificate, for the URL's host name.
    CaPem(String),
}

/// Written once by `enroll`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Enrollment {
    /// Base URL of the server, e.g. `https://evidence.example:8443`.
    pub server_url: String,
    pub pin: Pin,
    pub host_id: String,
    pub key_id: String,
    /// The server's Ed25519 public key, base64: receipts must verify with it.
    pub server_public_key: String,
    pub enrolled_at: DateTime<Utc>,
    /// The interval the server expects reports at (seconds).
    pub report_interval_secs: u64,
    /// How many intervals without a report make the host stale on the server. `None` in state
    /// written before the agent stored it.
    #[serde(default)]
    pub stale_after_intervals: Option<u32>,
}

/// The host's report chain (see the module doc).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Chain {
    /// Sequence number of the next report (reports start at 1).
    pub next_seq: u64,
    /// Digest of the last report made, spooled or delivered.
    pub last_digest: Option<Digest>,
    /// Digest of the last full (not attestation) report.
    pub last_full_digest: Option<Digest>,
    /// Reports dropped from the spool that no report has counted yet.
    pub pending_dropped: u64,
}

/// The state directory and its files.
#[derive(Debug, Clone)]
pub struct StateDir {
    dir: PathBuf,
}

impl StateDir {
    /// Opens (creating with mode 0700 if needed) the state directory.
    pub fn open(dir: &Path) -> anyhow::Result<StateDir> {
        durable::create_private_dir(dir)
            .with_context(|| format!("creating state directory {}", dir.display()))?;
        Ok(StateDir {
            dir: dir.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    pub fn spool_dir(&self) -> PathBuf {
        self.dir.join("spool")
    }

    /// The host key: loaded if present, generated and stored (mode 0600) otherwise.
    pub fn load_or_create_key(&self) -> anyhow::Result<SigningKey> {
        match self.load_key()? {
            Some(key) => Ok(key),
            None => {
                let key = SigningKey::generate()?;
                let path = self.dir.join(KEY_FILE);
                durable::write_atomic(&path, key.pkcs8(), 0o600)
                    .with_context(|| format!("storing the host key in {}", path.display()))?;
                Ok(key)
            }
        }
    }

    /// The host key, if one was generated; an unreadable or corrupt key file is an error.
    pub fn load_key(&self) -> anyhow::Result<Option<SigningKey>> {
        let path = self.dir.join(KEY_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(
                SigningKey::from_pkcs8(&bytes)
                    .with_context(|| format!("host key {}", path.display()))?,
            )),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err).with_context(|| format!("reading host key {}", path.display())),
        }
    }

    pub fn load_enrollment(&self) -> anyhow::Result<Option<Enrollment>> {
        self.read_json(ENROLLMENT_FILE)
    }

    pub fn save_enrollment(&self, enrollment: &Enrollment) -> anyhow::Result<()> {
        self.write_json(ENROLLMENT_FILE, enrollment)
    }

    /// The chain; a fresh one (next_seq 1) before the first report.
    pub fn load_chain(&self) -> anyhow::Result<Chain> {
        Ok(self.read_json(CHAIN_FILE)?.unwrap_or(Chain {
            next_seq: 1,
            ..Chain::default()
        }))
    }

    pub fn save_chain(&self, chain: &Chain) -> anyhow::Result<()> {
        self.write_json(CHAIN_FILE, chain)
    }

    /// The last checkpoint this agent verified, `None` before its first receipt.
    pub fn load_witness(&self) -> anyhow::Result<Option<evidence_protocol::Witnessed>> {
        self.read_json(WITNESS_FILE)
    }

    pub fn save_witness(&self, witnessed: &evidence_protocol::Witnessed) -> anyhow::Result<()> {
        self.write_json(WITNESS_FILE, witnessed)
    }

    pub(crate) fn read_json<T: for<'de> Deserialize<'de>>(
        &self,
        name: &str,
    ) -> anyhow::Result<Option<T>> {
        let path = self.dir.join(name);
        match std::fs::read(&path) {
            Ok(bytes) => {
                Ok(Some(serde_json::from_slice(&bytes).with_context(|| {
                    format!("{} is corrupt", path.display())
                })?))
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err).with_context(|| format!("reading {}", path.display())),
        }
    }

    pub(crate) fn write_json<T: Serialize>(&self, name: &str, value: &T) -> anyhow::Result<()> {
        let path = self.dir.join(name);
        let mut bytes = serde_json::to_vec_pretty(value)?;
        bytes.push(b'\n');
        durable::write_atomic(&path, &bytes, 0o600)
            .with_context(|| format!("writing {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_host_key_is_created_once_with_mode_0600_and_reloaded_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(&dir.path().join("state")).unwrap();
        let key = state.load_or_create_key().unwrap();
        let again = state.load_or_create_key().unwrap();
        assert_eq!(key.key_id(), again.key_id());
        let mode = std::fs::metadata(state.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let dir_mode = std::fs::metadata(state.path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(dir_mode & 0o777, 0o700);
    }

    #[test]
    fn a_corrupt_key_file_is_an_error_not_a_new_key() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path()).unwrap();
        std::fs::write(dir.path().join(KEY_FILE), b"not a key").unwrap();
        assert!(state.load_or_create_key().is_err());
        assert_eq!(
            std::fs::read(dir.path().join(KEY_FILE)).unwrap(),
            b"not a key"
        );
    }

    fn enrollment() -> Enrollment {
        Enrollment {
            server_url: "https://s:8443".into(),
            pin: Pin::Fingerprint("ab".repeat(32)),
            host_id: "host-1".into(),
            key_id: "k".into(),
            server_public_key: "pk".into(),
            enrolled_at: "2025-01-01T00:00:00Z".parse().unwrap(),
            report_interval_secs: 60,
            stale_after_intervals: Some(3),
        }
    }

    #[test]
    fn the_enrollment_keeps_the_servers_schedule_in_a_0600_file() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path()).unwrap();
        state.save_enrollment(&enrollment()).unwrap();
        assert_eq!(state.load_enrollment().unwrap(), Some(enrollment()));
        let mode = std::fs::metadata(dir.path().join(ENROLLMENT_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn an_enrollment_written_before_the_stale_threshold_was_stored_still_loads() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path()).unwrap();
        let mut json = serde_json::to_value(enrollment()).unwrap();
        json.as_object_mut()
            .unwrap()
            .remove("stale_after_intervals");
        std::fs::write(dir.path().join(ENROLLMENT_FILE), json.to_string()).unwrap();
        let loaded = state.load_enrollment().unwrap().unwrap();
        assert_eq!(loaded.stale_after_intervals, None);
        assert_eq!(loaded.report_interval_secs, 60);
    }

    #[test]
    fn the_chain_starts_at_one_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path()).unwrap();
        assert_eq!(state.load_chain().unwrap().next_seq, 1);
        let chain = Chain {
            next_seq: 9,
            last_digest: Some(Digest::of(b"8")),
            last_full_digest: Some(Digest::of(b"7")),
            pending_dropped: 2,
        };
        state.save_chain(&chain).unwrap();
        assert_eq!(state.load_chain().unwrap(), chain);
    }
}
