//! Bearer tokens (roles `admin` and `reader`) and enrollment secrets: generation, hashing,
//! and constant-time checking. Only SHA-256 hashes are stored; the plain value is shown once.
//!
//! Format: `<prefix>_<id>_<secret>` (`evt_` API tokens, `ens_` enrollment secrets): `id` (16 hex)
//! finds the record, the hash of `secret` (43 base64url characters, 256 bits) is compared in
//! constant time.

use std::collections::HashMap;
use std::sync::RwLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};

use crate::store::TokenRecord;

pub use crate::domain::records::Role;

/// A freshly generated credential: id, the full value to hand out once, and its hash.
pub struct NewCredential {
    pub id: String,
    pub value: String,
    pub hash: [u8; 32],
}

/// Random bytes from the system's random source.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    SystemRandom::new()
        .fill(&mut out)
        .expect("system random source");
    out
}

/// Generates `<prefix>_<id>_<secret>`.
pub fn generate(prefix: &str) -> NewCredential {
    let id = hex::encode(random_bytes::<8>());
    let secret = URL_SAFE_NO_PAD.encode(random_bytes::<32>());
    NewCredential {
        value: format!("{prefix}_{id}_{secret}"),
        hash: hash(&secret),
        id,
    }
}

/// Splits a presented credential into (id, hash of secret); `None` if malformed.
pub fn parse(prefix: &str, value: &str) -> Option<(String, [u8; 32])> {
    let rest = value.strip_prefix(prefix)?.strip_prefix('_')?;
    let (id, secret) = rest.split_once('_')?;
    if id.len() != 16 || !id.bytes().all(|b| b.is_ascii_hexdigit()) || secret.len() != 43 {
        return None;
    }
    Some((id.to_string(), hash(secret)))
}

fn hash(secret: &str) -> [u8; 32] {
    *evidence_protocol::Digest::of(secret.as_bytes()).as_bytes()
}

/// In-memory copy of the token table, refreshed on every change.
#[derive(Default)]
pub struct Tokens {
    by_id: RwLock<HashMap<String, ([u8; 32], Role)>>,
}

impl Tokens {
    pub fn load(&self, records: &[TokenRecord]) {
        let map = records
            .iter()
            .filter(|t| t.revoked_at.is_none())
            .map(|t| (t.id.clone(), (t.hash, t.role)))
            .collect();
        *self.by_id.write().expect("tokens lock") = map;
    }

    /// The id and role of a presented bearer token, if it is valid.
    pub fn check(&self, bearer: &str) -> Option<(String, Role)> {
        let (id, presented) = parse("evt", bearer)?;
        let map = self.by_id.read().expect("tokens lock");
        let (stored, role) = map.get(&id)?;
        constant_time_eq::constant_time_eq(stored, &presented).then_some((id, *role))
    }

    /// True when the token id is well formed and unknown here (another process, such as
    /// `evidence-server admin-token`, may have created it since the last load).
    pub fn unknown_id(&self, bearer: &str) -> bool {
        parse("evt", bearer)
            .is_some_and(|(id, _)| !self.by_id.read().expect("tokens lock").contains_key(&id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_token_checks_with_its_role_and_a_changed_one_does_not() {
        let t = generate("evt");
        let tokens = Tokens::default();
        tokens.load(&[TokenRecord {
            id: t.id.clone(),
            hash: t.hash,
            role: Role::Reader,
            name: String::new(),
            created_at: 0,
            revoked_at: None,
        }]);
        assert_eq!(tokens.check(&t.value), Some((t.id.clone(), Role::Reader)));
        let mut wrong = t.value.clone();
        wrong.pop();
        wrong.push(if t.value.ends_with('A') { 'B' } else { 'A' });
        assert_eq!(tokens.check(&wrong), None);
        assert_eq!(tokens.check("evt_nothing"), None);
        assert_eq!(tokens.check(""), None);
    }
}
