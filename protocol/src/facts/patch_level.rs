//! Facts of the `patch_level` collector.

use serde::{Deserialize, Serialize};

/// What the `patch_level` collector observed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchLevelFacts {}
