//! Checks over the `firewall` collector's facts (skeleton: to be filled in).

use serde::{Deserialize, Serialize};

use super::Check;

/// Thresholds for the `firewall` checks; every field has a documented default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FirewallPolicy {}

/// The `firewall` checks.
pub const CHECKS: &[Check] = &[];
