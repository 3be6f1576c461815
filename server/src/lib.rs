#![doc = include_str!("../README.md")]
//!
//! # The crate's map
//!
//! Layered, each layer calling only the ones below it:
//!
//! - [`domain`]: what the server decides, with no I/O: typed records, the pure ingest and
//!   enrollment rules every store backend applies, the one control-status rule and the fleet
//!   views built on it, the policy and Statement of Applicability.
//! - [`store`]: the async [`store::Store`] trait (domain types in, domain types out, no SQL in
//!   the contract) and its backends ([`store::sqlite`]), with a conformance suite per backend.
//! - [`service`]: the application services (enrollment, ingest with its group-commit writer,
//!   admin, queries): the only callers of the store and the only owners of the caches.
//! - [`http`]: thin handlers, role extractors, body limits, JSON errors, and the OpenAPI
//!   document derived from the same route list.
//!
//! Around them: [`serve`] (start-up: data directory, store, keys, TLS, listener),
//! [`connections`] (connection limits under TLS), [`config`], [`datadir`], [`tls`], [`auth`]
//! (token and secret formats), [`audit`], [`metrics`], [`limits`], [`time`] and [`preview`].

pub mod audit;
pub mod auth;
pub mod config;
pub mod connections;
pub mod datadir;
pub mod domain;
pub mod http;
pub mod limits;
pub mod metrics;
pub mod preview;
pub mod serve;
pub mod service;
pub mod store;
pub mod time;
pub mod tls;
