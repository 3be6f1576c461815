//! evidence-server as a library: the binary (`main.rs`), the load generator and the tests
//! build on these modules.

pub mod api;
pub mod audit;
pub mod auth;
pub mod client;
pub mod config;
pub mod connections;
pub mod datadir;
pub mod limits;
pub mod metrics;
pub mod pin;
pub mod policy;
pub mod preview;
pub mod rules;
pub mod serve;
pub mod state;
pub mod status;
pub mod store;
pub mod time;
pub mod tls;
pub mod writer;
