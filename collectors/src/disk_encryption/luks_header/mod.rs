//! LUKS1 and LUKS2 headers, parsed natively from a device's first bytes.
//!
//! LUKS1: the 592-byte big-endian `phdr` (magic `LUKS\xba\xbe`, cipher name and mode, hash-spec,
//! key bytes, uuid, 8 key slots whose `active` word is `0x00AC71F3` or `0x0000DEAD`).
//! LUKS2: a 4096-byte binary header (magic, `hdr_size`, label, checksum algorithm, uuid, checksum)
//! followed by a NUL-terminated JSON area up to `hdr_size`; the checksum over both is verified
//! before the JSON (keyslots, segments, digests) is trusted. Pure: [`parse`] takes bytes;
//! [`read_device`] reads them from a device node or image file through the [`Host`].

use std::collections::BTreeMap;
use std::io::Read;

use evidence_protocol::facts::disk_encryption::{HeaderProbe, LuksHeader, LuksKeyslot, Pbkdf};
use serde::Deserialize;

use crate::{caps, Host};

/// `LUKS\xba\xbe`, at offset 0 of LUKS1 and of the primary LUKS2 header.
pub const MAGIC: &[u8; 6] = b"LUKS\xba\xbe";
/// Size of the LUKS1 `phdr`.
pub const LUKS1_HEADER_LEN: usize = 592;
/// Size of the LUKS2 binary header; the JSON area follows it.
pub const LUKS2_BINARY_LEN: usize = 4096;
/// The LUKS2 header sizes (binary + JSON) the on-disk format allows.
const LUKS2_HDR_SIZES: [u64; 9] = [
    0x4000, 0x8000, 0x10000, 0x20000, 0x40000, 0x80000, 0x100000, 0x200000, 0x400000,
];
// The cap on a header read is the largest header size.
const _: () = assert!(caps::LUKS_HEADER == LUKS2_HDR_SIZES[LUKS2_HDR_SIZES.len() - 1]);
const LUKS1_SLOT_ACTIVE: u32 = 0x00AC_71F3;
const LUKS1_SLOT_DISABLED: u32 = 0x0000_DEAD;

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum LuksError {
    #[error("no LUKS magic")]
    NotLuks,
    #[error("LUKS header truncated: {have} bytes, need {need}")]
    Truncated { have: usize, need: usize },
    #[error("unsupported LUKS version {0}")]
    UnsupportedVersion(u16),
    #[error("corrupt LUKS header: {0}")]
    Corrupt(String),
    #[error("LUKS2 header checksum mismatch ({0})")]
    Checksum(String),
    #[error("LUKS2 JSON metadata: {0}")]
    Json(String),
}

/// How many bytes from the start of the device [`parse`] needs, given at least the first 16.
/// `None` when they do not start a LUKS header.
pub fn needed_len(start: &[u8]) -> Option<usize> {
    if start.len() < 16 || &start[..6] != MAGIC {
        return None;
    }
    match be_u16(start, 6) {
        2 => {
            let size = be_u64(start, 8);
            // An invalid size is reported by `parse`; read just the binary header for it.
            Some(if LUKS2_HDR_SIZES.contains(&size) {
                size as usize
            } else {
                LUKS2_BINARY_LEN
            })
        }
        _ => Some(LUKS1_HEADER_LEN),
    }
}

/// Parses a LUKS1 or LUKS2 header from the device's first bytes.
pub fn parse(bytes: &[u8]) -> Result<LuksHeader, LuksError> {
    if bytes.len() < 6 || &bytes[..6] != MAGIC {
        return Err(LuksError::NotLuks);
    }
    need(bytes, 8)?;
    match be_u16(bytes, 6) {
        1 => parse_luks1(bytes),
        2 => parse_luks2(bytes),
        other => Err(LuksError::UnsupportedVersion(other)),
    }
}

/// Reads and parses the header at the start of `path` under the host's root (a block device
/// node or an image file).
pub fn read_device(host: &Host, path: &str) -> HeaderProbe {
    match read_and_parse(host, path) {
        Ok(Some(header)) => HeaderProbe::Luks(header),
        Ok(None) => HeaderProbe::NoLuksHeader,
        Err(reason) => HeaderProbe::Error { reason },
    }
}

fn read_and_parse(host: &Host, path: &str) -> Result<Option<LuksHeader>, String> {
    let full = host.path(path);
    let shown = full.display();
    let mut reader = host
        .open_device(path, caps::LUKS_HEADER)
        .map_err(|e| e.to_string())?;
    let mut bytes =
        read_up_to(&mut reader, LUKS2_BINARY_LEN).map_err(|e| format!("{shown}: {e}"))?;
    if bytes.len() < 6 || &bytes[..6] != MAGIC {
        return Ok(None);
    }
    if let Some(need) = needed_len(&bytes).filter(|&n| n > bytes.len()) {
        let more =
            read_up_to(&mut reader, need - bytes.len()).map_err(|e| format!("{shown}: {e}"))?;
        bytes.extend_from_slice(&more);
    }
    parse(&bytes).map(Some).map_err(|e| format!("{shown}: {e}"))
}

/// Reads until `len` bytes or end of file, whichever comes first.
fn read_up_to(reader: &mut impl Read, len: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(len);
    reader.take(len as u64).read_to_end(&mut buf)?;
    Ok(buf)
}

fn parse_luks1(bytes: &[u8]) -> Result<LuksHeader, LuksError> {
    need(bytes, LUKS1_HEADER_LEN)?;
    let cipher = c_string(&bytes[8..40], "cipher-name")?;
    let cipher_mode = c_string(&bytes[40..72], "cipher-mode")?;
    let hash = c_string(&bytes[72..104], "hash-spec")?;
    let key_bytes = be_u32(bytes, 108);
    let uuid = c_string(&bytes[168..208], "uuid")?;
    if cipher.is_empty() || cipher_mode.is_empty() || hash.is_empty() {
        return Err(LuksError::Corrupt("empty cipher, mode or hash-spec".into()));
    }
    if key_bytes == 0 || key_bytes > 512 {
        return Err(LuksError::Corrupt(format!("key-bytes {key_bytes}")));
    }
    let mut keyslots = Vec::new();
    for slot in 0..8u32 {
        let at = 208 + 48 * slot as usize;
        match be_u32(bytes, at) {
            LUKS1_SLOT_ACTIVE => keyslots.push(LuksKeyslot {
                slot,
                key_bits: key_bytes * 8,
                pbkdf: Pbkdf {
                    kind: "pbkdf2".into(),
                    hash: Some(hash.clone()),
                    iterations: Some(be_u32(bytes, at + 4)),
                    time_cost: None,
                    memory_kib: None,
                    parallelism: None,
                },
            }),
            LUKS1_SLOT_DISABLED => {}
            other => {
                return Err(LuksError::Corrupt(format!(
                    "key slot {slot} state {other:#010x} is neither active nor disabled"
                )))
            }
        }
    }
    Ok(LuksHeader {
        version: 1,
        uuid,
        label: None,
        cipher,
        cipher_mode,
        key_bits: Some(key_bytes * 8),
        hash,
        keyslots,
    })
}

fn parse_luks2(bytes: &[u8]) -> Result<LuksHeader, LuksError> {
    need(bytes, LUKS2_BINARY_LEN)?;
    let hdr_size = be_u64(bytes, 8);
    if !LUKS2_HDR_SIZES.contains(&hdr_size) {
        return Err(LuksError::Corrupt(format!("hdr_size {hdr_size}")));
    }
    let hdr_size = hdr_size as usize;
    need(bytes, hdr_size)?;
    let label = c_string(&bytes[24..72], "label")?;
    let checksum_alg = c_string(&bytes[72..104], "checksum_alg")?;
    let uuid = c_string(&bytes[168..208], "uuid")?;
    if be_u64(bytes, 256) != 0 {
        return Err(LuksError::Corrupt(
            "primary header with non-zero hdr_offset".into(),
        ));
    }
    verify_checksum(&bytes[..hdr_size], &checksum_alg)?;
    let json_area = &bytes[LUKS2_BINARY_LEN..hdr_size];
    let json_end = json_area
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(json_area.len());
    let meta: Metadata = serde_json::from_slice(&json_area[..json_end])
        .map_err(|e| LuksError::Json(e.to_string()))?;
    metadata_to_header(meta, uuid, label)
}

/// SHA-256/512/1 over the header with the 64-byte checksum field (offset 448) zeroed.
fn verify_checksum(header: &[u8], alg: &str) -> Result<(), LuksError> {
    let algorithm = match alg {
        "sha256" => &ring::digest::SHA256,
        "sha512" => &ring::digest::SHA512,
        "sha1" => &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
        other => {
            return Err(LuksError::Checksum(format!(
                "unsupported algorithm {other:?}"
            )))
        }
    };
    let mut ctx = ring::digest::Context::new(algorithm);
    ctx.update(&header[..448]);
    ctx.update(&[0u8; 64]);
    ctx.update(&header[512..]);
    let digest = ctx.finish();
    let stored = &header[448..448 + digest.as_ref().len()];
    if stored == digest.as_ref() {
        Ok(())
    } else {
        Err(LuksError::Checksum(format!(
            "{alg} over {} bytes",
            header.len()
        )))
    }
}

#[derive(Deserialize)]
struct Metadata {
    keyslots: BTreeMap<String, Keyslot>,
    segments: BTreeMap<String, Segment>,
    digests: BTreeMap<String, Digest>,
}

#[derive(Deserialize)]
struct Keyslot {
    key_size: u32,
    kdf: Kdf,
}

#[derive(Deserialize)]
struct Kdf {
    #[serde(rename = "type")]
    kind: String,
    hash: Option<String>,
    iterations: Option<u32>,
    time: Option<u32>,
    memory: Option<u32>,
    cpus: Option<u32>,
}

#[derive(Deserialize)]
struct Segment {
    #[serde(rename = "type")]
    kind: String,
    encryption: Option<String>,
}

#[derive(Deserialize)]
struct Digest {
    hash: Option<String>,
    keyslots: Vec<String>,
    segments: Vec<String>,
}

fn metadata_to_header(
    meta: Metadata,
    uuid: String,
    label: String,
) -> Result<LuksHeader, LuksError> {
    let segments = numbered(meta.segments, "segment")?;
    let (segment_id, encryption) = segments
        .iter()
        .find_map(|(id, s)| (s.kind == "crypt").then_some((id, s.encryption.as_deref())))
        .ok_or_else(|| LuksError::Json("no crypt segment".into()))?;
    let encryption =
        encryption.ok_or_else(|| LuksError::Json("crypt segment without encryption".into()))?;
    let (cipher, cipher_mode) = encryption
        .split_once('-')
        .map(|(c, m)| (c.to_string(), m.to_string()))
        .unwrap_or_else(|| (encryption.to_string(), String::new()));
    let segment_key = segment_id.to_string();
    let digests = numbered(meta.digests, "digest")?;
    let digest = digests
        .values()
        .find(|d| d.segments.contains(&segment_key))
        .ok_or_else(|| LuksError::Json(format!("no digest for segment {segment_id}")))?;
    let hash = digest
        .hash
        .clone()
        .ok_or_else(|| LuksError::Json("segment digest without hash".into()))?;
    let keyslots = numbered(meta.keyslots, "keyslot")?;
    let key_bits = keyslots
        .iter()
        .find(|(id, _)| digest.keyslots.contains(&id.to_string()))
        .map(|(_, k)| k.key_size.saturating_mul(8));
    let keyslots = keyslots
        .into_iter()
        .map(|(slot, k)| {
            let argon = k.kdf.kind.starts_with("argon2");
            LuksKeyslot {
                slot,
                key_bits: k.key_size.saturating_mul(8),
                pbkdf: Pbkdf {
                    hash: if argon { None } else { k.kdf.hash },
                    iterations: k.kdf.iterations,
                    time_cost: k.kdf.time,
                    memory_kib: k.kdf.memory,
                    parallelism: k.kdf.cpus,
                    kind: k.kdf.kind,
                },
            }
        })
        .collect();
    Ok(LuksHeader {
        version: 2,
        uuid,
        label: (!label.is_empty()).then_some(label),
        cipher,
        cipher_mode,
        key_bits,
        hash,
        keyslots,
    })
}

/// Re-keys a JSON object keyed by decimal ids (`"0"`, `"1"`...) by number.
fn numbered<T>(map: BTreeMap<String, T>, what: &str) -> Result<BTreeMap<u32, T>, LuksError> {
    map.into_iter()
        .map(|(k, v)| {
            k.parse::<u32>()
                .map(|n| (n, v))
                .map_err(|_| LuksError::Json(format!("{what} id {k:?} is not a number")))
        })
        .collect()
}

fn need(bytes: &[u8], len: usize) -> Result<(), LuksError> {
    if bytes.len() < len {
        Err(LuksError::Truncated {
            have: bytes.len(),
            need: len,
        })
    } else {
        Ok(())
    }
}

/// A NUL-padded fixed-size text field.
fn c_string(field: &[u8], name: &str) -> Result<String, LuksError> {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    std::str::from_utf8(&field[..end])
        .ok()
        .filter(|s| s.chars().all(|c| !c.is_control()))
        .map(str::to_string)
        .ok_or_else(|| LuksError::Corrupt(format!("{name} is not printable text")))
}

fn be_u16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn be_u64(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

#[cfg(test)]
mod tests;
