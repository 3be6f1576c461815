//! The organisation's policy: the check thresholds ([`crate::Policy`]) plus the Statement of
//! Applicability (per ISO/IEC 27002:2022 control: applicable or not, with a justification).
//!
//! The server keeps each version as an evidence-log entry (set by an admin, `PUT
//! /v1/admin/policy`); `evidence-verify` reads the versions from a bundle and re-evaluates with
//! them, so both parse and validate it here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Policy plus Statement of Applicability.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OrgPolicy {
    /// Check thresholds (every field defaults; see `evidence_controls::policy`).
    pub checks: crate::Policy,
    /// Statement of Applicability by control id (`"8.20"`). A control not listed is applicable.
    pub applicability: BTreeMap<String, Applicability>,
}

/// One Statement of Applicability entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Applicability {
    pub applicable: bool,
    /// Why the control is (not) applicable: required, at most 2,000 characters.
    pub justification: String,
}

/// Why a policy is refused.
#[derive(Debug, thiserror::Error)]
pub enum OrgPolicyError {
    #[error("policy is not valid JSON for the policy schema: {0}")]
    Schema(String),
    #[error("statement of applicability names unknown control {0:?}")]
    UnknownControl(String),
    #[error(
        "statement of applicability for control {0} needs a justification of 1 to 2000 characters"
    )]
    Justification(String),
}

impl OrgPolicy {
    /// Parses and validates a policy document (JSON).
    pub fn from_json(bytes: &[u8]) -> Result<Self, OrgPolicyError> {
        let policy: OrgPolicy =
            serde_json::from_slice(bytes).map_err(|e| OrgPolicyError::Schema(e.to_string()))?;
        policy.validate()?;
        Ok(policy)
    }

    pub fn validate(&self) -> Result<(), OrgPolicyError> {
        for (control, entry) in &self.applicability {
            if crate::catalog::control(control).is_none() {
                return Err(OrgPolicyError::UnknownControl(
                    control.chars().take(64).collect(),
                ));
            }
            let n = entry.justification.trim().chars().count();
            if n == 0 || n > 2000 {
                return Err(OrgPolicyError::Justification(control.clone()));
            }
        }
        Ok(())
    }

    /// The justification when `control` is declared not applicable.
    pub fn not_applicable(&self, control: &str) -> Option<&str> {
        self.applicability
            .get(control)
            .filter(|a| !a.applicable)
            .map(|a| a.justification.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_policy_is_valid_and_applies_every_control() {
        let p = OrgPolicy::from_json(b"{}").unwrap();
        assert_eq!(p.not_applicable("8.20"), None);
    }

    #[test]
    fn unknown_controls_unknown_keys_and_missing_justifications_are_refused() {
        let unknown = br#"{"applicability":{"99.1":{"applicable":false,"justification":"x"}}}"#;
        assert!(matches!(
            OrgPolicy::from_json(unknown),
            Err(OrgPolicyError::UnknownControl(_))
        ));
        assert!(matches!(
            OrgPolicy::from_json(br#"{"surprise":1}"#),
            Err(OrgPolicyError::Schema(_))
        ));
        let empty = br#"{"applicability":{"8.20":{"applicable":false,"justification":" "}}}"#;
        assert!(matches!(
            OrgPolicy::from_json(empty),
            Err(OrgPolicyError::Justification(_))
        ));
        let ok = br#"{"applicability":{"8.20":{"applicable":false,"justification":"no network"}}}"#;
        assert_eq!(
            OrgPolicy::from_json(ok).unwrap().not_applicable("8.20"),
            Some("no network")
        );
    }
}
