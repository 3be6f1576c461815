//! C2SP `signed-note` (c2sp.org/signed-note, the format of golang.org/x/mod/sumdb/note) with
//! Ed25519 signatures: a text ending in a newline, a blank line, then signature lines
//! `— <key name> <base64(4-byte key ID || 64-byte signature)>`.
//!
//! The key ID is `SHA-256(key name || 0x0A || 0x01 || 32-byte public key)[:4]`, 0x01 being the
//! Ed25519 signature type. Signatures by other keys are ignored, as the spec requires, so a
//! note can also carry witness cosignatures; a signature by the expected key that does not
//! verify rejects the whole note. The server signs its checkpoints with [`sign_note`]; agents
//! and `evidence-verify` open them with [`open_note`].

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use super::CheckpointError;
use crate::signing::{self, SigningKey, PUBLIC_KEY_LEN, SIGNATURE_LEN};
use crate::Digest;

/// The longest note accepted or produced, in bytes. A checkpoint with its signature is about
/// 200 bytes; this leaves room for extension lines and tens of cosignatures.
pub const MAX_NOTE_LEN: usize = 16 * 1024;
/// The most signature lines a note may carry (the spec asks verifiers to accept at least 16).
pub const MAX_SIGNATURES: usize = 64;
/// The signature type identifier byte of Ed25519 in key IDs (c2sp.org/signed-note).
pub const ED25519_SIGNATURE_TYPE: u8 = 0x01;
/// The start of every signature line: an em dash (U+2014) and a space.
pub const SIGNATURE_PREFIX: &str = "\u{2014} ";

/// Whether `name` can name a key: non-empty, no Unicode space, no `+`.
pub fn is_valid_key_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+')
}

/// The 4-byte key ID of an Ed25519 key:
/// `SHA-256(key name || 0x0A || 0x01 || public key)[:4]`.
pub fn key_id(key_name: &str, public_key: &[u8; PUBLIC_KEY_LEN]) -> [u8; 4] {
    let hash = Digest::of_parts(&[
        key_name.as_bytes(),
        b"\n",
        &[ED25519_SIGNATURE_TYPE],
        public_key,
    ]);
    let mut id = [0u8; 4];
    id.copy_from_slice(&hash.as_bytes()[..4]);
    id
}

/// The verifier key string of sumdb/note, `<name>+<key ID, 8 hex>+<base64(0x01 || key)>`: how
/// the server's checkpoint key is published for agents and auditors.
pub fn verifier_key(
    key_name: &str,
    public_key: &[u8; PUBLIC_KEY_LEN],
) -> Result<String, CheckpointError> {
    if !is_valid_key_name(key_name) {
        return Err(CheckpointError::InvalidKeyName);
    }
    let mut typed = vec![ED25519_SIGNATURE_TYPE];
    typed.extend_from_slice(public_key);
    Ok(format!(
        "{key_name}+{}+{}",
        hex::encode(key_id(key_name, public_key)),
        B64.encode(typed)
    ))
}

/// Parses a verifier key string ([`verifier_key`]) into the key name and the Ed25519 public
/// key, checking the key ID it states.
pub fn parse_verifier_key(vkey: &str) -> Result<(String, [u8; PUBLIC_KEY_LEN]), CheckpointError> {
    let bad = CheckpointError::BadVerifierKey;
    let (name, rest) = vkey.split_once('+').ok_or(bad.clone())?;
    let (id_hex, key_b64) = rest.split_once('+').ok_or(bad.clone())?;
    if !is_valid_key_name(name) || id_hex.len() != 8 {
        return Err(bad);
    }
    let mut id = [0u8; 4];
    hex::decode_to_slice(id_hex, &mut id).map_err(|_| bad.clone())?;
    let typed = B64.decode(key_b64).map_err(|_| bad.clone())?;
    let Some((&ED25519_SIGNATURE_TYPE, key)) = typed.split_first() else {
        return Err(bad);
    };
    let public_key: [u8; PUBLIC_KEY_LEN] = key.try_into().map_err(|_| bad.clone())?;
    if key_id(name, &public_key) != id {
        return Err(bad);
    }
    Ok((name.to_string(), public_key))
}

/// Refuses the ASCII control characters other than newline, which notes must not contain.
pub(super) fn check_characters(text: &str) -> Result<(), CheckpointError> {
    match text.char_indices().find(|(_, c)| *c < ' ' && *c != '\n') {
        Some((offset, _)) => Err(CheckpointError::ControlCharacter { offset }),
        None => Ok(()),
    }
}

/// Signs `text` (which must end in a newline) with `key` under `key_name`: the note is the
/// text, a blank line and one signature line.
pub fn sign_note(text: &str, key: &SigningKey, key_name: &str) -> Result<String, CheckpointError> {
    if !is_valid_key_name(key_name) {
        return Err(CheckpointError::InvalidKeyName);
    }
    if !text.ends_with('\n') {
        return Err(CheckpointError::TextNotNewlineTerminated);
    }
    check_characters(text)?;
    let mut signature = key_id(key_name, &key.public_key()).to_vec();
    signature.extend_from_slice(&key.sign(text.as_bytes()));
    let note = format!(
        "{text}\n{SIGNATURE_PREFIX}{key_name} {}\n",
        B64.encode(signature)
    );
    if note.len() > MAX_NOTE_LEN {
        return Err(CheckpointError::TooLong {
            len: note.len(),
            max: MAX_NOTE_LEN,
        });
    }
    Ok(note)
}

/// Opens a signed note: checks its form and that it carries a valid signature by the Ed25519
/// key `public_key` named `key_name`, and returns its text (ending in a newline).
///
/// Signatures by other keys are ignored; one by this key that does not verify rejects the note.
/// Notes must be UTF-8: a caller holding bytes refuses invalid UTF-8 before calling this.
pub fn open_note<'a>(
    note: &'a str,
    key_name: &str,
    public_key: &[u8; PUBLIC_KEY_LEN],
) -> Result<&'a str, CheckpointError> {
    if note.len() > MAX_NOTE_LEN {
        return Err(CheckpointError::TooLong {
            len: note.len(),
            max: MAX_NOTE_LEN,
        });
    }
    if !is_valid_key_name(key_name) {
        return Err(CheckpointError::InvalidKeyName);
    }
    check_characters(note)?;
    // The text ends at the last blank line; its final newline belongs to it.
    let split = note
        .rfind("\n\n")
        .ok_or(CheckpointError::NoSignatureBlock)?;
    let (text, signatures) = (&note[..split + 1], &note[split + 2..]);
    if signatures.is_empty() {
        return Err(CheckpointError::NoSignatureBlock);
    }
    if !signatures.ends_with('\n') {
        return Err(CheckpointError::SignatureBlockNotNewlineTerminated);
    }
    let lines: Vec<&str> = signatures[..signatures.len() - 1].split('\n').collect();
    if lines.len() > MAX_SIGNATURES {
        return Err(CheckpointError::TooManySignatures {
            count: lines.len(),
            max: MAX_SIGNATURES,
        });
    }
    let expected_id = key_id(key_name, public_key);
    let (mut verified, mut same_name_other_key) = (false, false);
    for (i, line) in lines.iter().enumerate() {
        let malformed = CheckpointError::MalformedSignatureLine { line: i + 1 };
        let (name, b64) = line
            .strip_prefix(SIGNATURE_PREFIX)
            .and_then(|rest| rest.split_once(' '))
            .ok_or(malformed.clone())?;
        if !is_valid_key_name(name) {
            return Err(malformed);
        }
        let decoded = B64.decode(b64).map_err(|_| malformed.clone())?;
        if decoded.len() < 5 {
            return Err(malformed);
        }
        if name != key_name {
            continue;
        }
        if decoded[..4] != expected_id {
            same_name_other_key = true;
            continue;
        }
        let signature = &decoded[4..];
        if signature.len() != SIGNATURE_LEN
            || signing::verify(public_key, text.as_bytes(), signature).is_err()
        {
            return Err(CheckpointError::BadSignature {
                key_name: key_name.to_string(),
            });
        }
        verified = true;
    }
    if verified {
        Ok(text)
    } else if same_name_other_key {
        Err(CheckpointError::SignedByAnotherKey {
            key_name: key_name.to_string(),
        })
    } else {
        Err(CheckpointError::NotSignedByKey {
            key_name: key_name.to_string(),
        })
    }
}
