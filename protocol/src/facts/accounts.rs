//! Facts of the `accounts` collector.

use serde::{Deserialize, Serialize};

/// What the `accounts` collector observed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountsFacts {}
