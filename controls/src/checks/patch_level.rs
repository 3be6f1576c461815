//! Checks over the `patch_level` collector's facts (skeleton: to be filled in).

use serde::{Deserialize, Serialize};

use super::Check;

/// Thresholds for the `patch_level` checks; every field has a documented default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PatchLevelPolicy {}

/// The `patch_level` checks.
pub const CHECKS: &[Check] = &[];
