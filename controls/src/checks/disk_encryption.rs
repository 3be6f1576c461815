//! Checks over the `disk_encryption` collector's facts (skeleton: to be filled in).

use serde::{Deserialize, Serialize};

use super::Check;

/// Thresholds for the `disk_encryption` checks; every field has a documented default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DiskEncryptionPolicy {}

/// The `disk_encryption` checks.
pub const CHECKS: &[Check] = &[];
