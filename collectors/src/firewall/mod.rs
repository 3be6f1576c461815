//! The `firewall` collector (skeleton: to be filled in).

use evidence_protocol::facts::FirewallFacts;
use evidence_protocol::Observation;

use crate::Host;

/// Observes the host's `firewall` state.
pub fn collect(_host: &Host) -> Observation<FirewallFacts> {
    Observation::error("the firewall collector is not implemented yet")
}
