//! The data directory: created 0700, its state files 0600 whatever the umask, held by one
//! server at a time (an exclusive lock on `lock`, naming the holder's pid), and checked at
//! start-up so that a store holding data never silently regenerates a missing key.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

/// The SQLite database.
pub const DATABASE: &str = "evidence.db";
/// The receipt-signing key (Ed25519, PKCS#8).
pub const SERVER_KEY: &str = "server-key.pk8";
/// The self-signed TLS certificate and key, when the operator gives none.
pub const TLS_CERT: &str = "tls-cert.pem";
pub const TLS_KEY: &str = "tls-key.pem";
/// The admin token printed at first start.
pub const ADMIN_TOKEN: &str = "admin-token";
const LOCK: &str = "lock";

/// Every file in the directory that holds a secret or the store (kept 0600).
const PRIVATE_FILES: &[&str] = &[
    DATABASE,
    "evidence.db-wal",
    "evidence.db-shm",
    SERVER_KEY,
    TLS_KEY,
    ADMIN_TOKEN,
    LOCK,
];

/// A data directory held by this process (the lock is released when it is dropped).
pub struct DataDir {
    pub path: PathBuf,
    _lock: File,
}

/// Whether the directory already held a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreState {
    /// Nothing there yet: everything is created.
    New,
    /// A store with its keys.
    Existing,
}

/// Creates `path` (0700) if needed and tightens it to 0700 if it is wider.
pub fn create_private_dir(path: &Path) -> anyhow::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(path)
        .with_context(|| format!("creating {}", path.display()))?;
    set_mode(path, 0o700)
}

fn set_mode(path: &Path, mode: u32) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let current = std::fs::metadata(path)
            .with_context(|| format!("reading {}", path.display()))?
            .permissions()
            .mode()
            & 0o777;
        if current != mode {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                .with_context(|| format!("setting mode {mode:o} on {}", path.display()))?;
        }
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

/// Opens (creating) a file readable by its owner only.
pub fn private_file(path: &Path) -> std::io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(path)
}

impl DataDir {
    /// Creates (0700) and locks the directory, or says which process holds it.
    pub fn open(path: &Path) -> anyhow::Result<DataDir> {
        create_private_dir(path)?;
        let lock_path = path.join(LOCK);
        let mut lock =
            private_file(&lock_path).with_context(|| format!("opening {}", lock_path.display()))?;
        if let Err(e) = lock.try_lock() {
            let mut holder = String::new();
            let _ = lock.read_to_string(&mut holder);
            let holder = holder.trim();
            bail!(
                "the data directory {} is in use by another evidence-server (pid {}): one \
                 server per data directory ({e})",
                path.display(),
                if holder.is_empty() { "unknown" } else { holder }
            );
        }
        lock.set_len(0)?;
        lock.rewind()?;
        writeln!(lock, "{}", std::process::id())?;
        lock.sync_all()?;
        Ok(DataDir {
            path: path.to_path_buf(),
            _lock: lock,
        })
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Checks what is there before anything is created: a store with every key it needs, or
    /// nothing at all. `generated_tls`: the TLS certificate lives here (no operator PEM).
    pub fn check(&self, generated_tls: bool) -> anyhow::Result<StoreState> {
        let db = self.file(DATABASE);
        let mut keys = vec![SERVER_KEY];
        if generated_tls {
            keys.extend([TLS_CERT, TLS_KEY]);
        }
        let present: Vec<&str> = keys
            .iter()
            .copied()
            .filter(|k| self.file(k).exists())
            .collect();
        if !db.exists() {
            if !present.is_empty() {
                bail!(
                    "{} is missing but {} {} still there: the store was lost or moved. \
                     Restore {DATABASE} from a backup, or remove {} to start a new, empty store",
                    db.display(),
                    present.join(", "),
                    if present.len() == 1 { "is" } else { "are" },
                    present.join(" and ")
                );
            }
            return Ok(StoreState::New);
        }
        check_database_file(&db)?;
        for k in keys {
            if !present.contains(&k) {
                let why = match k {
                    SERVER_KEY => "it signed every receipt the agents hold",
                    _ => "agents pinned this certificate's fingerprint",
                };
                bail!(
                    "{} is missing while the store {} holds data: restore it from a backup \
                     ({why}); the server will not make a new one in its place",
                    self.file(k).display(),
                    db.display()
                );
            }
        }
        Ok(StoreState::Existing)
    }

    /// Sets every state file present to 0600 (the database's WAL and shared-memory files are
    /// created by SQLite with the database's own mode).
    pub fn tighten(&self) -> anyhow::Result<()> {
        for name in PRIVATE_FILES {
            let p = self.file(name);
            if p.exists() {
                set_mode(&p, 0o600)?;
            }
        }
        Ok(())
    }
}

/// A database file must be a SQLite database: a zero-byte or foreign file is never taken for
/// a new store.
pub fn check_database_file(db: &Path) -> anyhow::Result<()> {
    let mut header = [0u8; 16];
    let mut f = File::open(db).with_context(|| format!("opening {}", db.display()))?;
    let len = f.metadata()?.len();
    if len == 0 {
        bail!(
            "{} is empty (0 bytes), not an evidence store: restore it from a backup, or remove \
             it (and the keys beside it) to start a new store",
            db.display()
        );
    }
    if f.read_exact(&mut header).is_err() || &header != b"SQLite format 3\0" {
        bail!(
            "{} is not a SQLite database ({len} bytes): restore it from a backup",
            db.display()
        );
    }
    Ok(())
}

/// Opens the store of an existing data directory (for `verify-log`, `admin-token`): an error
/// when there is none.
/// The server key (receipts, checkpoints, bundles) of an existing data directory, for the
/// offline commands; a missing or foreign key file is an error naming it.
pub fn existing_server_key(dir: &Path) -> anyhow::Result<evidence_protocol::SigningKey> {
    let path = dir.join(SERVER_KEY);
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    evidence_protocol::SigningKey::from_pkcs8(&bytes)
        .with_context(|| format!("{} is not an Ed25519 key", path.display()))
}

pub fn existing_store(dir: &Path) -> anyhow::Result<crate::store::sqlite::SqliteStore> {
    let db = dir.join(DATABASE);
    if !db.exists() {
        bail!(
            "no evidence store in {}: {} does not exist",
            dir.display(),
            db.display()
        );
    }
    check_database_file(&db)?;
    crate::store::sqlite::SqliteStore::open(&db)
        .with_context(|| format!("opening the store {}", db.display()))
}
