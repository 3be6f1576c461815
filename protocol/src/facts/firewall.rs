//! Facts of the `firewall` collector.

use serde::{Deserialize, Serialize};

/// What the `firewall` collector observed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirewallFacts {}
