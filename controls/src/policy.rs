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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_policy_is_exactly_the_built_in_defaults() {
        let text = include_str!("../../packaging/policy.example.toml");
        assert_eq!(Policy::from_toml(text).unwrap(), Policy::default());
    }

    #[test]
    fn an_empty_policy_is_the_defaults_and_a_typo_is_refused() {
        assert_eq!(Policy::from_toml("").unwrap(), Policy::default());
        let err = Policy::from_toml("[accounts]\ndormant_dayz = 30\n").unwrap_err();
        assert!(err.to_string().contains("dormant_dayz"), "{err}");
    }
}
