//! The domain: what the server decides, with no I/O. Typed records ([`records`]), the pure
//! rules every store backend applies inside its transactions ([`rules`]), the control-status
//! rule and the fleet views built on it ([`status`]), (the status rule itself and the organisation's policy with its
//! Statement of Applicability live in `evidence_controls`, shared with evidence-verify). Services and backends call these; nothing here
//! calls them.

pub mod deep_verify;
pub mod log_entry;
pub mod records;
pub mod rules;
pub mod status;
