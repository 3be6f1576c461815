//! evidence-loadgen: the load generator of evidence-server and the HTTPS client it shares with
//! the end-to-end tests, kept out of the server so that the server proper needs no HTTP client.
//!
//! * [`client`]: a small client of the server's API over HTTPS pinned to the server
//!   certificate's fingerprint ([`pin`]): creating an enrollment secret, enrolling simulated
//!   hosts with real Ed25519 keys, building, signing and submitting their report chains,
//!   rotating keys and checking receipts; [`client::sample_facts`] gives realistic facts.
//! * the `evidence-loadgen` binary (`src/bin/evidence-loadgen/`): `ingest` (throughput and
//!   latency over HTTPS against a running server), `populate` and `snapshot-bench` (fleet-size
//!   benchmarks that drive the server's store and snapshot in-process, through
//!   `evidence-server` as a library). `server/scripts/bench-server.sh` runs them for
//!   BENCHMARKS.md.

pub mod client;
pub mod pin;
