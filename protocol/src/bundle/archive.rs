//! The bundle's archive: a deterministic POSIX ustar tar (entries sorted by path, mode 0644,
//! uid and gid 0, no user or group names, mtime 0, regular files only, no directory entries),
//! so the same files always give the same bytes.
//!
//! [`BundleWriter`] streams the files into any `Write` in path order (the server's exporter),
//! then writes `manifest.json` (with every file's digest) and `manifest.sig` (the server's
//! signed note over the manifest). [`Bundle::read`] reads an archive back under fixed limits
//! (file count, file size, archive size, the allowed paths) for `evidence-verify`.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};

use super::types::{BundleManifest, EntryMeta, FORMAT};
use super::types::{CHAINS, CONSISTENCY, FINDINGS_CSV, FINDINGS_JSON, STATUS_CSV, STATUS_JSON};
use crate::checkpoint::sign_note;
use crate::signing::SigningKey;
use crate::Digest;

/// `manifest.json`.
pub const MANIFEST: &str = "manifest.json";
/// `manifest.sig`: the signed note over [`manifest_sig_text`].
pub const MANIFEST_SIG: &str = "manifest.sig";
/// `checkpoints/final.note`: the final checkpoint.
pub const FINAL_CHECKPOINT: &str = "checkpoints/final.note";
/// The most files an archive may hold.
pub const MAX_FILES: u64 = 2_000_000;
/// The largest entry, checkpoint or manifest file an archive may hold (16 MiB: a report body
/// is capped far below).
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;
/// The largest fleet-wide table (the manifest's file list, findings, status, chains,
/// consistency steps) an archive may hold (2 GiB: about 800,000 hosts' findings as CSV).
pub const MAX_TABLE_BYTES: u64 = 2 * 1024 * 1024 * 1024;

/// The size limit of the file `name`: tables may be fleet-sized, every other file is small.
pub fn max_file_bytes(name: &str) -> u64 {
    if name.contains('/') || name == MANIFEST_SIG {
        MAX_FILE_BYTES
    } else {
        MAX_TABLE_BYTES
    }
}
/// The largest archive read (8 GiB).
pub const MAX_ARCHIVE_BYTES: u64 = 8 * 1024 * 1024 * 1024;

/// Why a bundle cannot be written or read. Each names the file concerned.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("reading the archive: {0}")]
    Io(#[from] io::Error),
    #[error("the archive holds more than {max} files")]
    TooManyFiles { max: u64 },
    #[error("the archive is larger than {max} bytes")]
    ArchiveTooLarge { max: u64 },
    #[error("file {name} is {size} bytes, more than the {max} allowed")]
    FileTooLarge { name: String, size: u64, max: u64 },
    #[error("file {name}: the path is absolute or leaves the bundle (`..`)")]
    UnsafePath { name: String },
    #[error("unexpected file {name}")]
    UnexpectedFile { name: String },
    #[error("file {name} is not a regular file (tar entry type {kind})")]
    NotRegularFile { name: String, kind: u8 },
    #[error("file {name} appears twice")]
    DuplicateFile { name: String },
    #[error("missing file {name}")]
    MissingFile { name: String },
    #[error("file {name}: {message}")]
    Json { name: String, message: String },
    #[error("file {name} is not UTF-8 text")]
    NotUtf8 { name: String },
    #[error("file {name} added after {previous}: the writer takes files in path order")]
    OutOfOrder { name: String, previous: String },
    #[error("file {name} is written by the writer itself")]
    Reserved { name: String },
    #[error("the manifest's format is {found:?}, not {FORMAT:?}")]
    WrongFormat { found: String },
    #[error("signing manifest.sig: {0}")]
    Sign(#[from] crate::CheckpointError),
}

/// The text `manifest.sig` signs: the format, then the hex SHA-256 of `manifest.json`'s bytes.
pub fn manifest_sig_text(manifest_json: &[u8]) -> String {
    format!("{FORMAT}\n{}\n", Digest::of(manifest_json).to_hex())
}

/// `entries/<log index, 20 digits>.json`.
pub fn entry_meta_path(log_index: u64) -> String {
    format!("entries/{log_index:020}.json")
}

/// `entries/<log index, 20 digits>.body`.
pub fn entry_body_path(log_index: u64) -> String {
    format!("entries/{log_index:020}.body")
}

/// `checkpoints/<size, 20 digits>.note`.
pub fn checkpoint_path(size: u64) -> String {
    format!("checkpoints/{size:020}.note")
}

/// Which file of an entry a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryFile {
    Meta(u64),
    Body(u64),
}

/// Which checkpoint a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointFile {
    Final,
    Periodic(u64),
}

/// Twenty ASCII digits, as a number.
fn twenty_digits(s: &str) -> Option<u64> {
    (s.len() == 20 && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// The entry a path names, if it is `entries/<20 digits>.json` or `.body`.
pub fn parse_entry_path(name: &str) -> Option<EntryFile> {
    let rest = name.strip_prefix("entries/")?;
    if let Some(n) = rest.strip_suffix(".json") {
        return twenty_digits(n).map(EntryFile::Meta);
    }
    twenty_digits(rest.strip_suffix(".body")?).map(EntryFile::Body)
}

/// The checkpoint a path names, if it is `checkpoints/final.note` or `<20 digits>.note`.
pub fn parse_checkpoint_path(name: &str) -> Option<CheckpointFile> {
    if name == FINAL_CHECKPOINT {
        return Some(CheckpointFile::Final);
    }
    let n = name.strip_prefix("checkpoints/")?.strip_suffix(".note")?;
    twenty_digits(n).map(CheckpointFile::Periodic)
}

/// Whether `name` is one of the paths a v1 bundle may hold.
pub fn is_bundle_path(name: &str) -> bool {
    [
        MANIFEST,
        MANIFEST_SIG,
        CONSISTENCY,
        CHAINS,
        FINDINGS_JSON,
        FINDINGS_CSV,
        STATUS_JSON,
        STATUS_CSV,
    ]
    .contains(&name)
        || parse_entry_path(name).is_some()
        || parse_checkpoint_path(name).is_some()
}

fn check_path(name: &str) -> Result<(), BundleError> {
    if name.starts_with('/') || name.split('/').any(|part| part == "..") {
        return Err(BundleError::UnsafePath {
            name: name.to_string(),
        });
    }
    if !is_bundle_path(name) {
        return Err(BundleError::UnexpectedFile {
            name: name.to_string(),
        });
    }
    Ok(())
}

/// Appends one regular file with the fixed metadata.
fn append_file<W: Write>(
    builder: &mut tar::Builder<W>,
    name: &str,
    bytes: &[u8],
) -> io::Result<()> {
    let mut header = tar::Header::new_ustar();
    header.set_path(name)?;
    header.set_size(bytes.len() as u64);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    builder.append(&header, bytes)
}

/// Writes `files` (every file, the manifest and its signature included) as a deterministic
/// archive, sorted by path. Paths are not checked: [`BundleWriter`] is the checked way.
pub fn write_archive<W: Write>(files: &BTreeMap<String, Vec<u8>>, out: W) -> io::Result<W> {
    let mut builder = tar::Builder::new(out);
    for (name, bytes) in files {
        append_file(&mut builder, name, bytes)?;
    }
    builder.into_inner()
}

/// Writes a bundle in one pass: add every file but the manifest and its signature in path
/// order ([`BundleWriter::add`]), then [`BundleWriter::finish`] with the manifest (whose `files`
/// it fills in) and the server key. The files that sort after `manifest.sig` (`status.*`) are
/// held until then; everything else is written as it comes.
pub struct BundleWriter<W: Write> {
    builder: tar::Builder<W>,
    files: BTreeMap<String, Digest>,
    held: Vec<(String, Vec<u8>)>,
    last: Option<String>,
}

impl BundleWriter<Vec<u8>> {
    /// A writer into memory ([`BundleWriter::finish`] returns the archive's bytes).
    pub fn in_memory() -> Self {
        Self::new(Vec::new())
    }
}

impl<W: Write> BundleWriter<W> {
    pub fn new(out: W) -> Self {
        Self {
            builder: tar::Builder::new(out),
            files: BTreeMap::new(),
            held: Vec::new(),
            last: None,
        }
    }

    /// Adds one file. Names must be bundle paths ([`is_bundle_path`]), other than the
    /// manifest's two, in strictly ascending order.
    pub fn add(&mut self, name: &str, bytes: &[u8]) -> Result<(), BundleError> {
        check_path(name)?;
        if name == MANIFEST || name == MANIFEST_SIG {
            return Err(BundleError::Reserved {
                name: name.to_string(),
            });
        }
        if let Some(previous) = &self.last {
            if name <= previous.as_str() {
                return Err(BundleError::OutOfOrder {
                    name: name.to_string(),
                    previous: previous.clone(),
                });
            }
        }
        if bytes.len() as u64 > max_file_bytes(name) {
            return Err(BundleError::FileTooLarge {
                name: name.to_string(),
                size: bytes.len() as u64,
                max: max_file_bytes(name),
            });
        }
        self.last = Some(name.to_string());
        self.files.insert(name.to_string(), Digest::of(bytes));
        if name > MANIFEST_SIG {
            self.held.push((name.to_string(), bytes.to_vec()));
        } else {
            append_file(&mut self.builder, name, bytes)?;
        }
        Ok(())
    }

    /// Adds `value` as pretty JSON.
    pub fn add_json<T: serde::Serialize>(
        &mut self,
        name: &str,
        value: &T,
    ) -> Result<(), BundleError> {
        let bytes = serde_json::to_vec_pretty(value).map_err(|e| BundleError::Json {
            name: name.to_string(),
            message: e.to_string(),
        })?;
        self.add(name, &bytes)
    }

    /// Adds one log entry: its metadata (`.body` sorts before `.json`, so the body first).
    pub fn add_entry(&mut self, meta: &EntryMeta, body: &[u8]) -> Result<(), BundleError> {
        self.add(&entry_body_path(meta.log_index), body)?;
        self.add_json(&entry_meta_path(meta.log_index), meta)
    }

    /// Writes `manifest.json` (with `files` set to every file added), `manifest.sig` signed by
    /// `server_key` under the key name `manifest.origin`, the held files and the archive's end.
    pub fn finish(
        mut self,
        mut manifest: BundleManifest,
        server_key: &SigningKey,
    ) -> Result<W, BundleError> {
        if manifest.format != FORMAT {
            return Err(BundleError::WrongFormat {
                found: manifest.format,
            });
        }
        manifest.files = std::mem::take(&mut self.files);
        let json = serde_json::to_vec_pretty(&manifest).map_err(|e| BundleError::Json {
            name: MANIFEST.to_string(),
            message: e.to_string(),
        })?;
        let sig = sign_note(&manifest_sig_text(&json), server_key, &manifest.origin)?;
        append_file(&mut self.builder, MANIFEST, &json)?;
        append_file(&mut self.builder, MANIFEST_SIG, sig.as_bytes())?;
        for (name, bytes) in &self.held {
            append_file(&mut self.builder, name, bytes)?;
        }
        Ok(self.builder.into_inner()?)
    }
}

/// A bundle read back: the parsed manifest, its exact bytes and signature, and every other
/// file's bytes by path. Nothing here is verified yet beyond the archive's form and limits.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub manifest: BundleManifest,
    pub manifest_bytes: Vec<u8>,
    pub manifest_sig: String,
    /// Every file but `manifest.json` and `manifest.sig`.
    pub files: BTreeMap<String, Vec<u8>>,
}

/// Counts the bytes read through it and stops past the archive limit.
struct Counted<R> {
    inner: R,
    read: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.read > MAX_ARCHIVE_BYTES {
            return Err(io::Error::other("archive limit"));
        }
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

impl Bundle {
    /// Reads an archive: at most [`MAX_FILES`] files of at most [`MAX_FILE_BYTES`] each, at
    /// most [`MAX_ARCHIVE_BYTES`] in all; regular files with bundle paths only, each once;
    /// `manifest.json` (which must parse) and `manifest.sig` present.
    pub fn read<R: Read>(input: R) -> Result<Bundle, BundleError> {
        let mut archive = tar::Archive::new(Counted {
            inner: input,
            read: 0,
        });
        let mut files = BTreeMap::new();
        let result = Self::read_files(&mut archive, &mut files);
        if archive.into_inner().read > MAX_ARCHIVE_BYTES {
            return Err(BundleError::ArchiveTooLarge {
                max: MAX_ARCHIVE_BYTES,
            });
        }
        result?;
        let manifest_bytes = files.remove(MANIFEST).ok_or(BundleError::MissingFile {
            name: MANIFEST.to_string(),
        })?;
        let sig = files.remove(MANIFEST_SIG).ok_or(BundleError::MissingFile {
            name: MANIFEST_SIG.to_string(),
        })?;
        let manifest_sig = String::from_utf8(sig).map_err(|_| BundleError::NotUtf8 {
            name: MANIFEST_SIG.to_string(),
        })?;
        let manifest = parse_json(MANIFEST, &manifest_bytes)?;
        Ok(Bundle {
            manifest,
            manifest_bytes,
            manifest_sig,
            files,
        })
    }

    fn read_files<R: Read>(
        archive: &mut tar::Archive<R>,
        files: &mut BTreeMap<String, Vec<u8>>,
    ) -> Result<(), BundleError> {
        let mut count = 0u64;
        for entry in archive.entries()?.raw(true) {
            let mut entry = entry?;
            count += 1;
            if count > MAX_FILES {
                return Err(BundleError::TooManyFiles { max: MAX_FILES });
            }
            let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            check_path(&name)?;
            let kind = entry.header().entry_type();
            if !kind.is_file() {
                return Err(BundleError::NotRegularFile {
                    name,
                    kind: kind.as_byte(),
                });
            }
            let size = entry.size();
            if size > max_file_bytes(&name) {
                let max = max_file_bytes(&name);
                return Err(BundleError::FileTooLarge { name, size, max });
            }
            if files.contains_key(&name) {
                return Err(BundleError::DuplicateFile { name });
            }
            let mut bytes = Vec::with_capacity(size as usize);
            (&mut entry).take(size).read_to_end(&mut bytes)?;
            files.insert(name, bytes);
        }
        Ok(())
    }

    /// The bytes of `name` (not the manifest's two files).
    pub fn file(&self, name: &str) -> Result<&[u8], BundleError> {
        self.files
            .get(name)
            .map(Vec::as_slice)
            .ok_or(BundleError::MissingFile {
                name: name.to_string(),
            })
    }

    /// `name` parsed as JSON into `T`.
    pub fn json<T: serde::de::DeserializeOwned>(&self, name: &str) -> Result<T, BundleError> {
        parse_json(name, self.file(name)?)
    }

    /// `name` as UTF-8 text.
    pub fn text(&self, name: &str) -> Result<&str, BundleError> {
        std::str::from_utf8(self.file(name)?).map_err(|_| BundleError::NotUtf8 {
            name: name.to_string(),
        })
    }

    /// Writes the bundle back exactly as it is (manifest and signature verbatim, not
    /// recomputed): for tests that tamper with one file.
    pub fn to_archive(&self) -> io::Result<Vec<u8>> {
        let mut all = self.files.clone();
        all.insert(MANIFEST.to_string(), self.manifest_bytes.clone());
        all.insert(
            MANIFEST_SIG.to_string(),
            self.manifest_sig.clone().into_bytes(),
        );
        write_archive(&all, Vec::new())
    }
}

fn parse_json<T: serde::de::DeserializeOwned>(name: &str, bytes: &[u8]) -> Result<T, BundleError> {
    serde_json::from_slice(bytes).map_err(|e| BundleError::Json {
        name: name.to_string(),
        message: e.to_string(),
    })
}
