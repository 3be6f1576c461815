//! Facts: what the collectors observed on one host, keyed by collector name.
//!
//! A collector that was not run (`--only`) is absent; one that failed as a whole is
//! `Observation::Error`. Each collector's own fact type lives in its own module.

pub mod accounts;
pub mod disk_encryption;
pub mod firewall;
pub mod host;
pub mod patch_level;

use serde::{Deserialize, Serialize};

use crate::Observation;

pub use accounts::AccountsFacts;
pub use disk_encryption::DiskEncryptionFacts;
pub use firewall::FirewallFacts;
pub use host::HostFacts;
pub use patch_level::PatchLevelFacts;

/// Every collector's facts for one collection run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Facts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<Observation<HostFacts>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_encryption: Option<Observation<DiskEncryptionFacts>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch_level: Option<Observation<PatchLevelFacts>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firewall: Option<Observation<FirewallFacts>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accounts: Option<Observation<AccountsFacts>>,
}
