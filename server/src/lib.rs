//! evidence-server as a library: the binary (`main.rs`), the load generator and the tests
//! build on these modules.

pub mod auth;
pub mod policy;
pub mod rules;
pub mod status;
pub mod store;
pub mod time;
