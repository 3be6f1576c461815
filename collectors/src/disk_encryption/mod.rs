//! The `disk_encryption` collector (skeleton: to be filled in).

use evidence_protocol::facts::DiskEncryptionFacts;
use evidence_protocol::Observation;

use crate::Host;

/// Observes the host's `disk_encryption` state.
pub fn collect(_host: &Host) -> Observation<DiskEncryptionFacts> {
    Observation::error("the disk_encryption collector is not implemented yet")
}
