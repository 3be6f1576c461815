//! The domain: what the server decides, with no I/O. Typed records ([`records`]), the pure
//! rules every store backend applies inside its transactions ([`rules`]), the control-status
//! rule and the fleet views built on it ([`status`]), and the organisation's policy with its
//! Statement of Applicability ([`policy`]). Services and backends call these; nothing here
//! calls them.

pub mod log_entry;
pub mod policy;
pub mod records;
pub mod rules;
pub mod status;
