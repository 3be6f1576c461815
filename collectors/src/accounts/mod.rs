//! The `accounts` collector (skeleton: to be filled in).

use evidence_protocol::facts::AccountsFacts;
use evidence_protocol::Observation;

use crate::Host;

/// Observes the host's `accounts` state.
pub fn collect(_host: &Host) -> Observation<AccountsFacts> {
    Observation::error("the accounts collector is not implemented yet")
}
