//! apt's package indexes in `/var/lib/apt/lists`: `*_Packages` files stored plain, gzip, xz or
//! lz4 (as `Acquire::GzipIndexes` and `Acquire::CompressionTypes::Order` leave them), each tied
//! to the `Release`/`InRelease` file of its suite by file-name prefix.
//!
//! The main Debian index holds ~60k stanzas (~50 MB decompressed), so it is decoded as a
//! stream and scanned stanza by stanza: only stanzas whose package name is installed are parsed
//! (the name is the first line; everything else is skipped with a SIMD search for the blank
//! line). Memory stays at one read buffer plus the kept entries.

use std::io::{Read, Write};

use super::control;

/// The longest stanza accepted: bookworm main's longest (librust-winapi-dev) is 76,338 bytes, so
/// 1 MiB is ~13x; without it, a file with no blank line would be buffered whole.
pub const MAX_STANZA_BYTES: usize = 1 << 20;

/// One `Packages` file in the lists directory.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct IndexFile {
    /// File name inside the lists directory.
    pub file_name: String,
    /// File name of its `InRelease`/`Release`, if any.
    pub release_file: Option<String>,
    /// The component (`main`), from the file name.
    pub component: String,
    /// The host it was downloaded from (first part of the file name).
    pub site: String,
}

/// One kept stanza: a version of an installed package offered by an index.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct IndexEntry {
    pub name: String,
    /// `all` is reported as is; the caller maps it to the native architecture.
    pub arch: String,
    pub version: String,
}

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("{0}: unsupported compression (this agent reads plain, gz, xz and lz4 indexes)")]
    Unsupported(String),
    #[error("decompressing: {0} (corrupt or truncated file?)")]
    Decode(String),
    /// Over the cap on its size, on disk or decompressed (a decompression bomb).
    #[error("{0}")]
    TooLarge(String),
    #[error("contains a NUL byte (binary or corrupt file)")]
    Binary,
    #[error("does not end with a newline (truncated file?)")]
    Truncated,
    #[error("stanza {stanza}: longer than {MAX_STANZA_BYTES} bytes (corrupt file?)")]
    StanzaTooLong { stanza: u64 },
    #[error("stanza {stanza}: no Package field (corrupt file?)")]
    NoPackage { stanza: u64 },
    #[error("stanza {stanza} ({name}): {message}")]
    BadStanza {
        stanza: u64,
        name: String,
        message: String,
    },
}

/// Compression of an index file, from its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Plain,
    Gzip,
    Xz,
    Lz4,
}

impl Compression {
    /// The compression of `file_name`, or an error for a compression this reader lacks.
    pub fn of(file_name: &str) -> Result<Self, IndexError> {
        let ext = file_name.rsplit_once("_Packages").map_or("", |(_, e)| e);
        match ext {
            "" => Ok(Compression::Plain),
            ".gz" => Ok(Compression::Gzip),
            ".xz" => Ok(Compression::Xz),
            ".lz4" => Ok(Compression::Lz4),
            _ => Err(IndexError::Unsupported(file_name.to_string())),
        }
    }
}

/// Picks the `Packages` indexes and `Release` files out of a lists-directory listing.
pub fn index_files(names: &[String]) -> Vec<IndexFile> {
    let releases: Vec<(&str, &str)> = names
        .iter()
        .filter_map(|n| {
            let prefix = n
                .strip_suffix("InRelease")
                .or_else(|| n.strip_suffix("Release"))?;
            prefix.ends_with('_').then_some((prefix, n.as_str()))
        })
        .collect();
    let mut out = Vec::new();
    for name in names {
        let Some((stem, ext)) = name.rsplit_once("_Packages") else {
            continue;
        };
        if !matches!(ext, "" | ".gz" | ".xz" | ".lz4" | ".bz2" | ".zst" | ".lzma") {
            continue; // e.g. `.diff_Index`
        }
        // The longest matching prefix; InRelease wins over Release (it sorts first).
        let release = releases
            .iter()
            .filter(|(prefix, _)| name.starts_with(prefix))
            .max_by_key(|(prefix, file)| (prefix.len(), file.ends_with("InRelease")));
        let rest = release.map_or(stem, |(prefix, _)| &stem[prefix.len().min(stem.len())..]);
        let component = rest
            .split("_binary-")
            .next()
            .unwrap_or("")
            .replace('_', "/");
        out.push(IndexFile {
            file_name: name.clone(),
            release_file: release.map(|(_, file)| file.to_string()),
            component,
            site: name.split('_').next().unwrap_or("").to_string(),
        });
    }
    out.sort();
    out
}

/// Decodes `reader` per `compression` and keeps the stanzas whose package name `wanted`
/// accepts; more than `limit` decoded bytes is an error, so a small file that decompresses to
/// gigabytes is refused once past `limit`. Returns the kept entries and the number of stanzas seen.
pub fn scan<R: Read>(
    reader: R,
    compression: Compression,
    wanted: &dyn Fn(&str) -> bool,
    limit: u64,
) -> Result<(Vec<IndexEntry>, u64), IndexError> {
    let mut sink = Scanner::new(wanted, limit);
    let result = match compression {
        Compression::Plain => pump(reader, &mut sink),
        Compression::Gzip => pump(flate2::read::MultiGzDecoder::new(reader), &mut sink),
        Compression::Lz4 => pump(lz4_flex::frame::FrameDecoder::new(reader), &mut sink),
        Compression::Xz => {
            let mut input = std::io::BufReader::new(reader);
            lzma_rs::xz_decompress(&mut input, &mut sink).map_err(|e| match e {
                lzma_rs::error::Error::IoError(io) => io,
                other => std::io::Error::other(other.to_string()),
            })
        }
    };
    // An error raised by the scanner inside a decoder is the scanner's, not the decoder's.
    if let Some(err) = sink.error.take() {
        return Err(err);
    }
    result.map_err(|e| match e.kind() {
        // The capped file read past its cap: the file is over it, not corrupt.
        std::io::ErrorKind::FileTooLarge => IndexError::TooLarge(e.to_string()),
        _ => IndexError::Decode(e.to_string()),
    })?;
    sink.finish()
}

/// Copies a reader into the scanner in large chunks.
fn pump<R: Read>(mut reader: R, sink: &mut Scanner<'_>) -> std::io::Result<()> {
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => sink.write_all(&buf[..n])?,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Push-based stanza scanner: buffers partial stanzas between writes.
struct Scanner<'w> {
    wanted: &'w dyn Fn(&str) -> bool,
    carry: Vec<u8>,
    stanzas: u64,
    kept: Vec<IndexEntry>,
    error: Option<IndexError>,
    blank: memchr::memmem::Finder<'static>,
    /// Decoded bytes written so far, and the most allowed.
    written: u64,
    limit: u64,
}

impl<'w> Scanner<'w> {
    fn new(wanted: &'w dyn Fn(&str) -> bool, limit: u64) -> Self {
        Self {
            wanted,
            carry: Vec::with_capacity(512 * 1024),
            stanzas: 0,
            kept: Vec::new(),
            error: None,
            blank: memchr::memmem::Finder::new(b"\n\n"),
            written: 0,
            limit,
        }
    }

    /// Processes every complete stanza in `carry`, keeping the unfinished tail.
    fn drain_complete(&mut self) -> Result<(), IndexError> {
        let Some(last) = memchr::memmem::rfind(&self.carry, b"\n\n") else {
            return Ok(());
        };
        let carry = std::mem::take(&mut self.carry);
        let result = self.process(&carry[..last + 1]);
        self.carry = carry;
        self.carry.drain(..last + 2);
        result
    }

    fn process(&mut self, mut data: &[u8]) -> Result<(), IndexError> {
        while !data.is_empty() {
            let start = data.iter().position(|&c| c != b'\n').unwrap_or(data.len());
            data = &data[start..];
            if data.is_empty() {
                break;
            }
            let end = self.blank.find(data).map_or(data.len(), |i| i + 1);
            let (stanza, rest) = data.split_at(end);
            data = rest;
            self.stanzas += 1;
            self.stanza(stanza)?;
        }
        Ok(())
    }

    fn stanza(&mut self, stanza: &[u8]) -> Result<(), IndexError> {
        let number = self.stanzas;
        let at = if stanza.starts_with(b"Package:") {
            0
        } else {
            memchr::memmem::find(stanza, b"\nPackage:")
                .ok_or(IndexError::NoPackage { stanza: number })?
                + 1
        };
        let line = &stanza[at + 8..];
        let line = &line[..memchr::memchr(b'\n', line).unwrap_or(line.len())];
        let name = std::str::from_utf8(control::trim(line))
            .map_err(|_| IndexError::NoPackage { stanza: number })?;
        if !(self.wanted)(name) {
            return Ok(());
        }
        let bad = |message: String| IndexError::BadStanza {
            stanza: number,
            name: name.to_string(),
            message,
        };
        let fields = control::fields(stanza, 1).map_err(|e| bad(e.to_string()))?;
        let text = |field: &'static str| -> Result<String, IndexError> {
            control::get_str(&fields, field)
                .map_err(|e| bad(e.to_string()))?
                .filter(|v| !v.is_empty())
                .map(str::to_string)
                .ok_or_else(|| bad(format!("no {field} field")))
        };
        let entry = IndexEntry {
            name: name.to_string(),
            arch: text("Architecture")?,
            version: text("Version")?,
        };
        self.kept.push(entry);
        Ok(())
    }

    fn finish(mut self) -> Result<(Vec<IndexEntry>, u64), IndexError> {
        if let Some(err) = self.error.take() {
            return Err(err);
        }
        self.drain_complete()?;
        if !self.carry.is_empty() {
            if !self.carry.ends_with(b"\n") {
                return Err(IndexError::Truncated);
            }
            let tail = std::mem::take(&mut self.carry);
            self.process(&tail)?;
        }
        Ok((self.kept, self.stanzas))
    }
}

impl Write for Scanner<'_> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.error.is_some() {
            return Err(std::io::Error::other("index scan failed"));
        }
        self.written += data.len() as u64;
        if self.written > self.limit {
            self.error = Some(IndexError::TooLarge(format!(
                "decompresses to more than {} bytes, over its cap (a decompression bomb?)",
                self.limit
            )));
            return Err(std::io::Error::other("index over its cap"));
        }
        if memchr::memchr(0, data).is_some() {
            self.error = Some(IndexError::Binary);
            return Err(std::io::Error::other("NUL byte in index"));
        }
        self.carry.extend_from_slice(data);
        if let Err(err) = self.drain_complete() {
            self.error = Some(err);
            return Err(std::io::Error::other("index scan failed"));
        }
        if self.carry.len() > MAX_STANZA_BYTES {
            self.error = Some(IndexError::StanzaTooLong {
                stanza: self.stanzas + 1,
            });
            return Err(std::io::Error::other("index scan failed"));
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const STANZAS: &[u8] = b"Package: a\nVersion: 1\nArchitecture: amd64\n\nPackage: b\nSource: x\nVersion: 2:1.0-1\nArchitecture: all\nDescription: d\n long\n\n";

    #[test]
    fn only_wanted_stanzas_are_kept() {
        let (kept, seen) = scan(STANZAS, Compression::Plain, &|n| n == "b", u64::MAX).unwrap();
        assert_eq!(seen, 2);
        assert_eq!(
            kept,
            vec![IndexEntry {
                name: "b".into(),
                arch: "all".into(),
                version: "2:1.0-1".into()
            }]
        );
    }

    #[test]
    fn a_stanza_without_package_or_a_cut_file_is_an_error() {
        assert!(matches!(
            scan(
                &b"Version: 1\n\n"[..],
                Compression::Plain,
                &|_| true,
                u64::MAX
            ),
            Err(IndexError::NoPackage { .. })
        ));
        let cut = &STANZAS[..STANZAS.len() - 9];
        assert!(matches!(
            scan(cut, Compression::Plain, &|_| false, u64::MAX),
            Err(IndexError::Truncated)
        ));
        assert!(matches!(
            scan(
                &b"Package: a\n\0\n"[..],
                Compression::Plain,
                &|_| false,
                u64::MAX
            ),
            Err(IndexError::Binary)
        ));
    }

    /// `member` gzip-compressed once and repeated `times`: a member is a whole gzip file, so
    /// the result decodes (as `MultiGzDecoder` reads it) to `member` `times` over.
    fn gzip_repeated(member: &[u8], times: usize) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(member).unwrap();
        gz.finish().unwrap().repeat(times)
    }

    #[test]
    fn a_gzip_bomb_is_refused_once_decompressed_past_the_cap() {
        // 64 MiB of blank lines (a valid, empty index) from ~66 KiB of gzip (deflate tops out
        // near 1:1000).
        let bomb = gzip_repeated(&[b'\n'; 1 << 20], 64);
        assert!(bomb.len() < 128 << 10, "{} bytes", bomb.len());
        let (_, seen) = scan(&bomb[..], Compression::Gzip, &|_| true, 64 << 20).unwrap();
        assert_eq!(seen, 0, "under the cap it is an empty index");
        match scan(&bomb[..], Compression::Gzip, &|_| true, 8 << 20) {
            Err(err @ IndexError::TooLarge(_)) => assert_eq!(
                err.to_string(),
                "decompresses to more than 8388608 bytes, over its cap (a decompression bomb?)"
            ),
            other => panic!("bomb accepted: {other:?}"),
        }
    }

    #[test]
    fn a_stanza_that_never_ends_is_refused_past_the_stanza_cap() {
        let mut data = b"Package: a\nVersion: 1\nArchitecture: all\n\nPackage: b\n".to_vec();
        data.extend(b"Description: x\n".repeat(MAX_STANZA_BYTES / 8));
        match scan(&data[..], Compression::Plain, &|_| true, u64::MAX) {
            Err(err @ IndexError::StanzaTooLong { stanza: 2 }) => {
                assert_eq!(
                    err.to_string(),
                    "stanza 2: longer than 1048576 bytes (corrupt file?)"
                )
            }
            other => panic!("endless stanza accepted: {other:?}"),
        }
    }

    #[test]
    fn index_files_are_tied_to_the_longest_release_prefix() {
        let names: Vec<String> = [
            "deb.debian.org_debian_dists_bookworm_InRelease",
            "deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages.lz4",
            "deb.debian.org_debian_dists_bookworm-updates_InRelease",
            "deb.debian.org_debian_dists_bookworm-updates_main_binary-amd64_Packages.diff_Index",
            "deb.debian.org_debian_dists_bookworm-updates_main_binary-amd64_Packages.lz4",
            "lock",
        ]
        .map(String::from)
        .to_vec();
        let files = index_files(&names);
        assert_eq!(files.len(), 2);
        assert_eq!(
            files[1].release_file.as_deref(),
            Some("deb.debian.org_debian_dists_bookworm_InRelease")
        );
        assert_eq!(
            files[0].release_file.as_deref(),
            Some("deb.debian.org_debian_dists_bookworm-updates_InRelease")
        );
        assert_eq!(files[0].component, "main");
        assert_eq!(files[0].site, "deb.debian.org");
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(data in any::<Vec<u8>>()) {
            for c in [Compression::Plain, Compression::Gzip, Compression::Xz, Compression::Lz4] {
                let _ = scan(&data[..], c, &|_| true, u64::MAX);
            }
            let mut prefixed = b"Package: x\n".to_vec();
            prefixed.extend_from_slice(&data);
            let _ = scan(&prefixed[..], Compression::Plain, &|_| true, u64::MAX);
        }
    }
}
