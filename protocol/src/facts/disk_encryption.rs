//! Facts of the `disk_encryption` collector.

use serde::{Deserialize, Serialize};

/// What the `disk_encryption` collector observed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskEncryptionFacts {}
