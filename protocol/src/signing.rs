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
    #[error("the public key is a small-order point: any constant signature would verify")]
    SmallOrderKey,
    #[error("the public key is not canonically encoded (y is not below 2^255 - 19)")]
    NonCanonicalKey,
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

/// Encodings (sign bit cleared) of the points of small order on edwards25519 and of their
/// non-canonical aliases, as in libsodium's `has_small_order`: 0 and 1 (y), the two y values of
/// the order-8 points, and p - 1, p, p + 1. With the sign bit either way these cover all eight
/// small-order points.
const SMALL_ORDER_Y: [[u8; 32]; 7] = [
    [0; 32],
    {
        let mut y = [0; 32];
        y[0] = 1;
        y
    },
    [
        0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98,
        0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53,
        0xfc, 0x05,
    ],
    [
        0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67,
        0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac,
        0x03, 0x7a,
    ],
    p_plus(-1),
    p_plus(0),
    p_plus(1),
];

/// The little-endian encoding of 2^255 - 19 + `delta` (top bit clear).
const fn p_plus(delta: i16) -> [u8; 32] {
    let mut y = [0xff; 32];
    y[31] = 0x7f;
    y[0] = (0xed + delta) as u8;
    y
}

/// Refuses public keys that must never be trusted: the small-order points (for which one
/// constant signature verifies every message) and non-canonical encodings (y >= p, where two
/// strings name one point). Called before a key is enrolled or rotated in, and by [`verify`].
pub fn check_public_key(public_key: &[u8; PUBLIC_KEY_LEN]) -> Result<(), SigningError> {
    let mut y = *public_key;
    y[31] &= 0x7f;
    if SMALL_ORDER_Y.contains(&y) {
        return Err(SigningError::SmallOrderKey);
    }
    // y >= p = 2^255 - 19: bytes 1..31 all 0xff, byte 31 0x7f, byte 0 at least 0xed.
    if y[31] == 0x7f && y[1..31].iter().all(|b| *b == 0xff) && y[0] >= 0xed {
        return Err(SigningError::NonCanonicalKey);
    }
    Ok(())
}

/// The eight points of small order, canonically encoded: what an enrollment must refuse (for
/// tests and audits of other verifiers).
pub fn small_order_points() -> Vec<[u8; PUBLIC_KEY_LEN]> {
    let mut points = Vec::new();
    for y in [SMALL_ORDER_Y[0], SMALL_ORDER_Y[2], SMALL_ORDER_Y[3]] {
        let mut negative = y;
        negative[31] |= 0x80;
        points.extend([y, negative]);
    }
    points.push(SMALL_ORDER_Y[1]); // the identity (x = 0)
    points.push(SMALL_ORDER_Y[4]); // (0, -1), order 2
    points
}

/// Verifies a detached Ed25519 signature over exactly `bytes` (a weak key never verifies).
pub fn verify(
    public_key: &[u8; PUBLIC_KEY_LEN],
    bytes: &[u8],
    signature: &[u8],
) -> Result<(), SigningError> {
    check_public_key(public_key)?;
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
    fn small_order_and_non_canonical_public_keys_are_refused_and_never_verify() {
        let points = small_order_points();
        assert_eq!(points.len(), 8);
        // With A of small order, R = identity and S = 0 passes a cofactorless check for some
        // messages; whatever ring does, these keys are refused before any signature is looked at.
        let mut constant = [0u8; 64];
        constant[0] = 1;
        for p in &points {
            assert_eq!(
                check_public_key(p),
                Err(SigningError::SmallOrderKey),
                "{p:02x?}"
            );
            assert!(verify(p, b"any report", &constant).is_err());
        }
        for delta in [2, 3, 18] {
            assert_eq!(
                check_public_key(&p_plus(delta)),
                Err(SigningError::NonCanonicalKey)
            );
        }
        let key = SigningKey::generate().unwrap();
        assert_eq!(check_public_key(&key.public_key()), Ok(()));
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
