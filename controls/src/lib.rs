//! The ISO/IEC 27002:2022 control catalog as data, its crosswalks to other frameworks, the
//! organisation's policy, and the checks that turn collected facts into findings.
//!
//! Pure: no I/O besides parsing the embedded data files and a policy text handed in by the caller.
//! Facts come from `evidence-protocol` (filled in by the collectors on a host); findings go to the
//! agent's output and to the server's evaluation, which maps them onto controls, and (through
//! [`derive_rows`]) to the findings and status rows of evidence bundles.

pub mod catalog;
pub mod checks;
mod derive;
mod evaluate;
mod finding;
mod mapping;
mod org_policy;
pub mod policy;
pub mod status;

pub use derive::{
    catalog_identity, derive_rows, policy_at, status_controls, Derivation, DerivedRows,
    PolicyEvidence, ReportEvidence,
};
pub use evaluate::evaluate;
/// Which catalog a computation used ([`catalog_identity`]); the bundle manifest's `catalog`.
pub use evidence_protocol::bundle::CatalogIdentity;
pub use finding::{Finding, Outcome, Status};
pub use mapping::{check_mappings, CheckMapping, ControlLink, MappingError, Relationship};
pub use org_policy::{Applicability, OrgPolicy, OrgPolicyError};
pub use policy::{Policy, PolicyError};
pub use status::{control_status, status_with_reason, ControlStatus, Verdicts};
