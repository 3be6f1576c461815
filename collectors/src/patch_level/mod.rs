//! The `patch_level` collector (skeleton: to be filled in).

use evidence_protocol::facts::PatchLevelFacts;
use evidence_protocol::Observation;

use crate::Host;

/// Observes the host's `patch_level` state.
pub fn collect(_host: &Host) -> Observation<PatchLevelFacts> {
    Observation::error("the patch_level collector is not implemented yet")
}
