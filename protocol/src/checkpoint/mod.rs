//! Signed checkpoints of the evidence log: the C2SP `tlog-checkpoint` body
//! (c2sp.org/tlog-checkpoint) in a `signed-note` ([`note`]) signed with Ed25519.
//!
//! A checkpoint says "the log named `origin` has `size` entries and this Merkle root"
//! (`crate::merkle`). The server signs one at least once per group commit, publishes it and
//! puts it in receipts; never two that are inconsistent with each other. An agent, as a witness,
//! verifies each checkpoint it receives and keeps the last one to demand a consistency proof
//! from it; `evidence-verify` checks a bundle's checkpoints offline with the server's public key.
//!
//! The body is three lines (origin, decimal tree size without leading zeros, standard base64 of
//! the 32-byte root), then optional non-empty extension lines, each ending in a newline.

pub mod note;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use crate::signing::{SigningKey, PUBLIC_KEY_LEN};
use crate::Digest;

pub use note::{
    is_valid_key_name, key_id, open_note, parse_verifier_key, sign_note, verifier_key,
    MAX_NOTE_LEN, MAX_SIGNATURES,
};

/// Why a note or checkpoint is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("the note is {len} bytes, more than the {max} accepted")]
    TooLong { len: usize, max: usize },
    #[error("the note has {count} signature lines, more than the {max} accepted")]
    TooManySignatures { count: usize, max: usize },
    #[error("control character at byte {offset}: notes hold no control character but newline")]
    ControlCharacter { offset: usize },
    #[error("no signature block: the text must be followed by a blank line and signature lines")]
    NoSignatureBlock,
    #[error("the signature block does not end in a newline")]
    SignatureBlockNotNewlineTerminated,
    #[error("signature line {line} is not `— <key name> <base64 key ID and signature>`")]
    MalformedSignatureLine { line: usize },
    #[error("a key name is non-empty, without spaces or `+`")]
    InvalidKeyName,
    #[error("not a verifier key `<name>+<8 hex key ID>+<base64 0x01 and Ed25519 key>`")]
    BadVerifierKey,
    #[error("the note carries no signature by the key {key_name}")]
    NotSignedByKey { key_name: String },
    #[error("the note is signed by another key under the name {key_name}, not by this key")]
    SignedByAnotherKey { key_name: String },
    #[error("the signature by {key_name} does not match the note's text")]
    BadSignature { key_name: String },
    #[error("the text does not end in a newline")]
    TextNotNewlineTerminated,
    #[error("a checkpoint has at least three lines: origin, tree size and root hash")]
    TooFewLines,
    #[error("line {line} of the checkpoint is empty")]
    EmptyLine { line: usize },
    #[error("line {line} of the checkpoint contains a newline")]
    NewlineInLine { line: usize },
    #[error("the tree size {0:?} is not a decimal number without leading zeros below 2^64")]
    BadTreeSize(String),
    #[error("the root hash is not the standard base64 of 32 bytes")]
    BadRootHash,
    #[error("the checkpoint is for the log {found:?}, not {expected:?}")]
    WrongOrigin { expected: String, found: String },
}

/// A transparency log checkpoint: the log's identity, tree size and root hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's identity, e.g. `evidence.example.com/log`.
    pub origin: String,
    /// The number of entries in the tree.
    pub size: u64,
    /// The RFC 6962 Merkle tree hash of those entries.
    pub root: Digest,
    /// Opaque extension lines after the root hash (non-empty, no newline).
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// A checkpoint without extension lines.
    pub fn new(origin: impl Into<String>, size: u64, root: Digest) -> Self {
        Self {
            origin: origin.into(),
            size,
            root,
            extensions: Vec::new(),
        }
    }

    /// The note text: origin, size, base64 root and the extension lines, each ending in `\n`.
    pub fn body(&self) -> String {
        let mut body = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root.0)
        );
        for line in &self.extensions {
            body.push_str(line);
            body.push('\n');
        }
        body
    }

    /// Whether [`Checkpoint::body`] is a well-formed checkpoint that parses back to `self`.
    pub fn validate(&self) -> Result<(), CheckpointError> {
        let lines = std::iter::once(&self.origin).chain(&self.extensions);
        for (line, text) in [1].into_iter().chain(4..).zip(lines) {
            if text.is_empty() {
                return Err(CheckpointError::EmptyLine { line });
            }
            if text.contains('\n') {
                return Err(CheckpointError::NewlineInLine { line });
            }
        }
        note::check_characters(&self.body())
    }

    /// Parses a checkpoint body (the text of a note, ending in a newline).
    pub fn parse(body: &str) -> Result<Self, CheckpointError> {
        let Some(body) = body.strip_suffix('\n') else {
            return Err(CheckpointError::TextNotNewlineTerminated);
        };
        note::check_characters(body)?;
        let lines: Vec<&str> = body.split('\n').collect();
        if let Some(i) = lines.iter().position(|l| l.is_empty()) {
            return Err(CheckpointError::EmptyLine { line: i + 1 });
        }
        let [origin, size, root, extensions @ ..] = lines.as_slice() else {
            return Err(CheckpointError::TooFewLines);
        };
        Ok(Self {
            origin: origin.to_string(),
            size: parse_size(size)?,
            root: parse_root(root)?,
            extensions: extensions.iter().map(|l| l.to_string()).collect(),
        })
    }

    /// The signed note of this checkpoint by the log's key `key_name` (C2SP recommends the
    /// origin as the key name).
    pub fn sign(&self, key: &SigningKey, key_name: &str) -> Result<String, CheckpointError> {
        self.validate()?;
        sign_note(&self.body(), key, key_name)
    }
}

/// ASCII decimal, no sign, no leading zero unless the value is 0, below 2^64.
fn parse_size(line: &str) -> Result<u64, CheckpointError> {
    let bad = || CheckpointError::BadTreeSize(line.to_string());
    if !line.bytes().all(|b| b.is_ascii_digit()) || (line.len() > 1 && line.starts_with('0')) {
        return Err(bad());
    }
    line.parse().map_err(|_| bad())
}

/// Standard base64 of exactly 32 bytes, in its one canonical spelling.
fn parse_root(line: &str) -> Result<Digest, CheckpointError> {
    let bytes = B64.decode(line).map_err(|_| CheckpointError::BadRootHash)?;
    let root: [u8; 32] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| CheckpointError::BadRootHash)?;
    if B64.encode(root) != line {
        return Err(CheckpointError::BadRootHash);
    }
    Ok(Digest(root))
}

/// Verifies a signed checkpoint: a well-formed note of at most [`MAX_NOTE_LEN`] bytes with a
/// valid signature by the Ed25519 key `public_key` named `key_name`, whose text is a
/// well-formed checkpoint. The caller compares the origin (or uses [`verify_note_from`]).
pub fn verify_note(
    note: &str,
    key_name: &str,
    public_key: &[u8; PUBLIC_KEY_LEN],
) -> Result<Checkpoint, CheckpointError> {
    Checkpoint::parse(open_note(note, key_name, public_key)?)
}

/// [`verify_note`], and the checkpoint must be for the log `origin`.
pub fn verify_note_from(
    note: &str,
    origin: &str,
    key_name: &str,
    public_key: &[u8; PUBLIC_KEY_LEN],
) -> Result<Checkpoint, CheckpointError> {
    let checkpoint = verify_note(note, key_name, public_key)?;
    if checkpoint.origin != origin {
        return Err(CheckpointError::WrongOrigin {
            expected: origin.to_string(),
            found: checkpoint.origin,
        });
    }
    Ok(checkpoint)
}

#[cfg(test)]
mod tests;
