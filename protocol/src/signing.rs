//! Ed25519 keys, detached signatures over exact bytes, and key ids (ring).
//!
//! The agent holds a [`SigningKey`] whose PKCS#8 document never leaves the host; it signs each
//! report's bytes and the enrollment request. The server holds its own [`SigningKey`] and signs
//! receipts. Verification needs only the 32-byte public key ([`verify`]).
//! On the wire, public keys and signatures are standard base64 (with padding).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};

use crate::Digest;

/// Length of an Ed25519 public key in bytes.
pub const PUBLIC_KEY_LEN: usize = 32;
/// Length of an Ed25519 signature in bytes.
pub const SIGNATURE_LEN: usize = 64;

/// Signing and key errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigningError {
    #[error("could not generate an Ed25519 key")]
    Generate,
    #[error("not an Ed25519 PKCS#8 key document")]
    BadKeyDocument,
    #[error("not valid base64")]
    BadBase64,
    #[error("an Ed25519 public key is 32 bytes, got {0}")]
    BadPublicKeyLength(usize),
    #[error("an Ed25519 signature is 64 bytes, got {0}")]
    BadSignatureLength(usize),
    #[error("signature does not match the signed bytes and key")]
    BadSignature,
}

/// An Ed25519 key pair (agent key or server key).
pub struct SigningKey {
    pair: Ed25519KeyPair,
    pkcs8: Vec<u8>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.key_id())
    }
}

impl SigningKey {
    /// Generates a new key from the system's random source.
    pub fn generate() -> Result<Self, SigningError> {
        let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .map_err(|_| SigningError::Generate)?;
        Self::from_pkcs8(doc.as_ref())
    }

    /// Loads a key from its PKCS#8 (v2) document, as written by [`Self::pkcs8`].
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<Self, SigningError> {
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|_| SigningError::BadKeyDocument)?;
        Ok(Self {
            pair,
            pkcs8: pkcs8.to_vec(),
        })
    }

    /// The PKCS#8 document to store (mode 0600) and load again.
    pub fn pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The 32-byte public key.
    pub fn public_key(&self) -> [u8; PUBLIC_KEY_LEN] {
        let mut out = [0u8; PUBLIC_KEY_LEN];
        out.copy_from_slice(self.pair.public_key().as_ref());
        out
    }

    /// The public key, base64 (wire form).
    pub fn public_key_b64(&self) -> String {
        B64.encode(self.public_key())
    }

    /// This key's id ([`key_id`] of its public key).
    pub fn key_id(&self) -> String {
        key_id(&self.public_key())
    }

    /// Detached signature over exactly `bytes`.
    pub fn sign(&self, bytes: &[u8]) -> [u8; SIGNATURE_LEN] {
        let mut out = [0u8; SIGNATURE_LEN];
        out.copy_from_slice(self.pair.sign(bytes).as_ref());
        out
    }

    /// Detached signature over exactly `bytes`, base64 (the `X-Evidence-Signature` value).
    pub fn sign_b64(&self, bytes: &[u8]) -> String {
        B64.encode(self.sign(bytes))
    }
}

/// A key's id: `ed25519:` followed by the first 16 bytes of SHA-256(public key), hex.
/// Both sides can derive it; the server also returns it at enrollment.
pub fn key_id(public_key: &[u8; PUBLIC_KEY_LEN]) -> String {
    format!("ed25519:{}", &Digest::of(public_key).to_hex()[..32])
}

/// Verifies a detached Ed25519 signature over exactly `bytes`.
pub fn verify(
    public_key: &[u8; PUBLIC_KEY_LEN],
    bytes: &[u8],
    signature: &[u8],
) -> Result<(), SigningError> {
    if signature.len() != SIGNATURE_LEN {
        return Err(SigningError::BadSignatureLength(signature.len()));
    }
    UnparsedPublicKey::new(&ED25519, public_key)
        .verify(bytes, signature)
        .map_err(|_| SigningError::BadSignature)
}

/// Decodes a base64 public key (wire form).
pub fn decode_public_key(b64: &str) -> Result<[u8; PUBLIC_KEY_LEN], SigningError> {
    decode_fixed(b64, SigningError::BadPublicKeyLength)
}

/// Decodes a base64 signature (wire form).
pub fn decode_signature(b64: &str) -> Result<[u8; SIGNATURE_LEN], SigningError> {
    decode_fixed(b64, SigningError::BadSignatureLength)
}

/// Decodes base64 into exactly `N` bytes; `wrong_length` names the error for any other length.
fn decode_fixed<const N: usize>(
    b64: &str,
    wrong_length: fn(usize) -> SigningError,
) -> Result<[u8; N], SigningError> {
    let bytes = B64
        .decode(b64.trim())
        .map_err(|_| SigningError::BadBase64)?;
    bytes
        .as_slice()
        .try_into()
        .map_err(|_| wrong_length(bytes.len()))
}

/// Encodes bytes as standard base64 (the wire form of keys and signatures).
pub fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_for_the_same_bytes_and_key() {
        let key = SigningKey::generate().unwrap();
        let other = SigningKey::generate().unwrap();
        let sig = key.sign(b"report bytes");
        assert_eq!(verify(&key.public_key(), b"report bytes", &sig), Ok(()));
        assert_eq!(
            verify(&key.public_key(), b"report bytez", &sig),
            Err(SigningError::BadSignature)
        );
        assert_eq!(
            verify(&other.public_key(), b"report bytes", &sig),
            Err(SigningError::BadSignature)
        );
        assert!(verify(&key.public_key(), b"report bytes", &sig[..10]).is_err());
    }

    #[test]
    fn a_key_reloads_from_its_pkcs8_document_with_the_same_id() {
        let key = SigningKey::generate().unwrap();
        let again = SigningKey::from_pkcs8(key.pkcs8()).unwrap();
        assert_eq!(again.key_id(), key.key_id());
        assert!(key.key_id().starts_with("ed25519:"));
        assert_eq!(key.key_id().len(), "ed25519:".len() + 32);
        assert!(SigningKey::from_pkcs8(b"garbage").is_err());
    }

    #[test]
    fn base64_wire_forms_decode_and_reject_bad_lengths() {
        let key = SigningKey::generate().unwrap();
        assert_eq!(
            decode_public_key(&key.public_key_b64()).unwrap(),
            key.public_key()
        );
        let sig = key.sign_b64(b"x");
        assert_eq!(decode_signature(&sig).unwrap(), key.sign(b"x"));
        assert_eq!(
            decode_public_key("AAAA"),
            Err(SigningError::BadPublicKeyLength(3))
        );
        assert_eq!(decode_signature("!!"), Err(SigningError::BadBase64));
    }
}
