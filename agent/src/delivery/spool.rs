//! The durable outbox: every signed report is on disk here before it is shipped, and leaves
//! only once the server's signed receipt for it has been verified.
//!
//! One file per report in `<state_dir>/spool/`, named by the zero-padded sequence number so
//! directory order is delivery order: `00000000000000000042.report`. A file holds a magic line,
//! the report's Ed25519 signature, the body length and the exact signed body. It is written
//! under a temporary name, fsynced, renamed and the directory fsynced ([`durable::write_atomic`]),
//! so a crash or power loss leaves either the whole entry or none. An entry that still does not
//! verify (length or signature) when it reaches the head is moved to `spool/corrupt/` and counted
//! as dropped, never shipped and never silently deleted.
//!
//! The spool is bounded by a count and a byte size; [`Spool::make_room`] names the oldest
//! entries to drop so a new one fits, and the caller reports their number to the server.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use evidence_protocol::signing::{self, PUBLIC_KEY_LEN, SIGNATURE_LEN};

use crate::delivery::durable;

const MAGIC: &[u8; 8] = b"EVSPOOL1";
const HEADER_LEN: usize = MAGIC.len() + SIGNATURE_LEN + 8;
const SUFFIX: &str = ".report";

/// One spooled report: its exact signed bytes and the signature over them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub seq: u64,
    pub body: Vec<u8>,
    pub signature: [u8; SIGNATURE_LEN],
}

/// What reading the oldest entry gave.
#[derive(Debug)]
pub enum Head {
    Entry(Entry),
    /// The oldest entry was corrupt and has been quarantined; look again.
    Quarantined {
        seq: u64,
        reason: String,
    },
}

/// The spool directory and an index of its entries (sequence number -> file size).
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    public_key: [u8; PUBLIC_KEY_LEN],
    entries: BTreeMap<u64, u64>,
    max_reports: u64,
    max_bytes: u64,
}

impl Spool {
    /// Opens the spool, creating it if needed and removing temporary files a crash left behind.
    /// Entries are checked against `public_key` (the host key) when they reach the head.
    pub fn open(
        dir: &Path,
        public_key: [u8; PUBLIC_KEY_LEN],
        max_reports: u64,
        max_bytes: u64,
    ) -> anyhow::Result<Spool> {
        durable::create_private_dir(dir)
            .with_context(|| format!("creating spool {}", dir.display()))?;
        let mut entries = BTreeMap::new();
        for item in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
            let item = item?;
            let name = item.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(".tmp") {
                std::fs::remove_file(item.path())
                    .with_context(|| format!("removing leftover {}", item.path().display()))?;
            } else if let Some(seq) = parse_name(&name) {
                entries.insert(seq, item.metadata()?.len());
            }
        }
        Ok(Spool {
            dir: dir.to_path_buf(),
            public_key,
            entries,
            max_reports,
            max_bytes,
        })
    }

    /// Number of reports waiting.
    pub fn depth(&self) -> u64 {
        self.entries.len() as u64
    }

    /// Bytes of reports waiting.
    pub fn bytes(&self) -> u64 {
        self.entries.values().sum()
    }

    pub fn newest_seq(&self) -> Option<u64> {
        self.entries.keys().next_back().copied()
    }

    /// Sequence numbers of the oldest entries that must go so that one more entry of
    /// `body_len` bytes fits within the bounds. Nothing is removed here: the caller first
    /// records the loss durably, then calls [`Spool::drop_entry`] for each.
    pub fn make_room(&self, body_len: usize) -> Vec<u64> {
        let new_size = (HEADER_LEN + body_len) as u64;
        let mut count = self.depth() + 1;
        let mut bytes = self.bytes() + new_size;
        let mut victims = Vec::new();
        for (&seq, &size) in &self.entries {
            if count <= self.max_reports && bytes <= self.max_bytes {
                break;
            }
            victims.push(seq);
            count -= 1;
            bytes -= size;
        }
        victims
    }

    /// Durably adds a signed report. Sequence numbers must increase.
    pub fn push(&mut self, entry: &Entry) -> anyhow::Result<()> {
        if let Some(newest) = self.newest_seq() {
            anyhow::ensure!(
                entry.seq > newest,
                "spool: sequence {} is not above the newest spooled {}",
                entry.seq,
                newest
            );
        }
        let mut bytes = Vec::with_capacity(HEADER_LEN + entry.body.len());
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&entry.signature);
        bytes.extend_from_slice(&(entry.body.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&entry.body);
        let path = self.path_of(entry.seq);
        durable::write_atomic(&path, &bytes, 0o600)
            .with_context(|| format!("spooling report to {}", path.display()))?;
        self.entries.insert(entry.seq, bytes.len() as u64);
        Ok(())
    }

    /// The oldest entry, read and verified; `None` when the spool is empty.
    pub fn head(&mut self) -> anyhow::Result<Option<Head>> {
        let Some((&seq, _)) = self.entries.iter().next() else {
            return Ok(None);
        };
        match self.read(seq)? {
            Ok(entry) => Ok(Some(Head::Entry(entry))),
            Err(reason) => {
                self.quarantine(seq)?;
                Ok(Some(Head::Quarantined { seq, reason }))
            }
        }
    }

    /// The entry with this sequence number, if it is present and intact.
    pub fn get(&self, seq: u64) -> anyhow::Result<Option<Entry>> {
        if !self.entries.contains_key(&seq) {
            return Ok(None);
        }
        Ok(self.read(seq)?.ok())
    }

    /// Removes a delivered entry (after its receipt was verified).
    pub fn remove(&mut self, seq: u64) -> anyhow::Result<()> {
        let path = self.path_of(seq);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(err).with_context(|| format!("removing {}", path.display())),
        }
        durable::sync_dir(&self.dir)?;
        self.entries.remove(&seq);
        Ok(())
    }

    /// Removes an entry dropped to respect the bounds (see [`Spool::make_room`]).
    pub fn drop_entry(&mut self, seq: u64) -> anyhow::Result<()> {
        self.remove(seq)
    }

    fn read(&self, seq: u64) -> anyhow::Result<Result<Entry, String>> {
        let path = self.path_of(seq);
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        Ok(decode(seq, &bytes, &self.public_key))
    }

    fn quarantine(&mut self, seq: u64) -> anyhow::Result<()> {
        let corrupt = self.dir.join("corrupt");
        durable::create_private_dir(&corrupt)?;
        let from = self.path_of(seq);
        let to = corrupt.join(from.file_name().expect("spool file name"));
        std::fs::rename(&from, &to).with_context(|| format!("quarantining {}", from.display()))?;
        durable::sync_dir(&self.dir)?;
        self.entries.remove(&seq);
        Ok(())
    }

    fn path_of(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:020}{SUFFIX}"))
    }
}

fn parse_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Decodes and verifies one spool file; the error says why it is not a whole signed report.
fn decode(seq: u64, bytes: &[u8], public_key: &[u8; PUBLIC_KEY_LEN]) -> Result<Entry, String> {
    if bytes.len() < HEADER_LEN || &bytes[..MAGIC.len()] != MAGIC {
        return Err(format!("spool entry {seq}: truncated or not a spool entry"));
    }
    let mut signature = [0u8; SIGNATURE_LEN];
    signature.copy_from_slice(&bytes[MAGIC.len()..MAGIC.len() + SIGNATURE_LEN]);
    let mut len = [0u8; 8];
    len.copy_from_slice(&bytes[MAGIC.len() + SIGNATURE_LEN..HEADER_LEN]);
    let body = &bytes[HEADER_LEN..];
    if u64::from_le_bytes(len) != body.len() as u64 {
        return Err(format!(
            "spool entry {seq}: body is {} bytes, header says {}",
            body.len(),
            u64::from_le_bytes(len)
        ));
    }
    signing::verify(public_key, body, &signature)
        .map_err(|err| format!("spool entry {seq}: {err}"))?;
    Ok(Entry {
        seq,
        body: body.to_vec(),
        signature,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use evidence_protocol::signing::SigningKey;

    fn entry(key: &SigningKey, seq: u64) -> Entry {
        let body = format!("{{\"seq\":{seq}}}").into_bytes();
        Entry {
            seq,
            signature: key.sign(&body),
            body,
        }
    }

    #[test]
    fn entries_come_back_in_sequence_order_after_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::generate().unwrap();
        let mut spool = Spool::open(dir.path(), key.public_key(), 100, 1 << 20).unwrap();
        for seq in [3, 10, 11] {
            spool.push(&entry(&key, seq)).unwrap();
        }
        assert!(
            spool.push(&entry(&key, 5)).is_err(),
            "sequence must increase"
        );
        drop(spool);
        let mut spool = Spool::open(dir.path(), key.public_key(), 100, 1 << 20).unwrap();
        assert_eq!(spool.depth(), 3);
        let mut delivered = Vec::new();
        while let Some(Head::Entry(head)) = spool.head().unwrap() {
            assert_eq!(head, entry(&key, head.seq));
            delivered.push(head.seq);
            spool.remove(head.seq).unwrap();
        }
        assert_eq!(delivered, [3, 10, 11]);
        assert_eq!(spool.depth(), 0);
    }

    #[test]
    fn a_torn_or_tampered_entry_is_quarantined_and_the_next_one_is_delivered() {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::generate().unwrap();
        let mut spool = Spool::open(dir.path(), key.public_key(), 100, 1 << 20).unwrap();
        for seq in 1..=3 {
            spool.push(&entry(&key, seq)).unwrap();
        }
        let first = dir.path().join(format!("{:020}.report", 1));
        let bytes = std::fs::read(&first).unwrap();
        std::fs::write(&first, &bytes[..bytes.len() - 3]).unwrap();
        let second = dir.path().join(format!("{:020}.report", 2));
        let mut bytes = std::fs::read(&second).unwrap();
        *bytes.last_mut().unwrap() ^= 1;
        std::fs::write(&second, &bytes).unwrap();
        std::fs::write(dir.path().join(".00000000000000000004.report.tmp"), b"half").unwrap();

        let mut spool = Spool::open(dir.path(), key.public_key(), 100, 1 << 20).unwrap();
        assert!(matches!(
            spool.head().unwrap(),
            Some(Head::Quarantined { seq: 1, .. })
        ));
        assert!(matches!(
            spool.head().unwrap(),
            Some(Head::Quarantined { seq: 2, .. })
        ));
        assert!(matches!(spool.head().unwrap(), Some(Head::Entry(e)) if e.seq == 3));
        assert!(dir
            .path()
            .join("corrupt")
            .join(format!("{:020}.report", 1))
            .exists());
        assert!(!dir.path().join(".00000000000000000004.report.tmp").exists());
    }

    #[test]
    fn make_room_names_the_oldest_entries_past_the_count_or_byte_bound() {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::generate().unwrap();
        let mut spool = Spool::open(dir.path(), key.public_key(), 3, 1 << 20).unwrap();
        for seq in 1..=3 {
            spool.push(&entry(&key, seq)).unwrap();
        }
        assert_eq!(spool.make_room(10), vec![1]);
        let per_entry = spool.bytes() / 3;
        let mut spool = Spool::open(dir.path(), key.public_key(), 100, per_entry * 2).unwrap();
        assert_eq!(spool.make_room(per_entry as usize - HEADER_LEN), vec![1, 2]);
        spool.drop_entry(1).unwrap();
        assert_eq!(spool.depth(), 2);
    }

    #[test]
    fn files_that_are_not_spool_entries_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("README"), b"x").unwrap();
        std::fs::write(dir.path().join("42.report"), b"x").unwrap();
        let key = SigningKey::generate().unwrap();
        let spool = Spool::open(dir.path(), key.public_key(), 3, 1 << 20).unwrap();
        assert_eq!(spool.depth(), 0);
    }
}
