//! The organisation's policy: thresholds for the checks, read from a TOML file.
//!
//! Every field has a default, so an empty file (or none) is a valid policy. Each collector's
//! thresholds are defined next to its checks.

use serde::{Deserialize, Serialize};

use crate::checks::accounts::AccountsPolicy;
use crate::checks::disk_encryption::DiskEncryptionPolicy;
use crate::checks::firewall::FirewallPolicy;
use crate::checks::patch_level::PatchLevelPolicy;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    pub accounts: AccountsPolicy,
    pub disk_encryption: DiskEncryptionPolicy,
    pub firewall: FirewallPolicy,
    pub patch_level: PatchLevelPolicy,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid policy: {0}")]
pub struct PolicyError(String);

impl Policy {
    /// Parses a policy file; unknown keys are refused so a typo cannot silently keep a default.
    pub fn from_toml(text: &str) -> Result<Self, PolicyError> {
        toml::from_str(text).map_err(|e| PolicyError(e.to_string()))
    }
}
