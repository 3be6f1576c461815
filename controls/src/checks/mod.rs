//! The checks: small typed functions from one collector's facts (and the policy) to an outcome.
//!
//! Each collector's checks live in their own module and list themselves in `CHECKS`; their
//! mapping to controls is data, in `data/checks/<collector>.toml`.

#[macro_use]
mod need;

pub mod accounts;
pub mod disk_encryption;
pub mod firewall;
pub mod patch_level;

use evidence_protocol::facts::{
    AccountsFacts, DiskEncryptionFacts, FirewallFacts, PatchLevelFacts,
};

use crate::{Outcome, Policy};

/// A check function over one collector's facts.
#[derive(Clone, Copy)]
pub enum Evaluator {
    DiskEncryption(fn(&DiskEncryptionFacts, &Policy) -> Outcome),
    PatchLevel(fn(&PatchLevelFacts, &Policy) -> Outcome),
    Firewall(fn(&FirewallFacts, &Policy) -> Outcome),
    Accounts(fn(&AccountsFacts, &Policy) -> Outcome),
}

impl Evaluator {
    /// The collector whose facts this check reads.
    pub fn collector(&self) -> &'static str {
        match self {
            Evaluator::DiskEncryption(_) => "disk_encryption",
            Evaluator::PatchLevel(_) => "patch_level",
            Evaluator::Firewall(_) => "firewall",
            Evaluator::Accounts(_) => "accounts",
        }
    }
}

/// One check: a stable id (`<collector>.<what>`), a short title, and its function.
#[derive(Clone, Copy)]
pub struct Check {
    pub id: &'static str,
    pub title: &'static str,
    pub evaluate: Evaluator,
}

/// Every check, sorted by id.
pub fn all() -> Vec<Check> {
    let mut checks: Vec<Check> = [
        accounts::CHECKS,
        disk_encryption::CHECKS,
        firewall::CHECKS,
        patch_level::CHECKS,
    ]
    .concat();
    checks.sort_by_key(|c| c.id);
    checks
}
