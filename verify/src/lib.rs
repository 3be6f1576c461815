//! `evidence-verify`'s checks: everything an auditor can establish about an evidence bundle
//! offline, with nothing but the server's public key.
//!
//! Input: a [`Bundle`] read by `evidence_protocol::bundle` and the server's key. Output: a
//! [`Verification`] with every failure (each naming the file, entry or host and what differs)
//! and a [`Summary`] of what was verified. The checks run in order ([`verify`]); a failure does
//! not stop the later checks where they still make sense, so an auditor sees every problem.
//! The findings and status rows are recomputed with `evidence_controls::derive_rows`, the same
//! code the server's exporter uses.

mod entries;
mod log;
mod rows;

/// `f` over `items` on every core (scoped threads, contiguous chunks); results in input order.
pub(crate) fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = items.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(|| part.iter().map(&f).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a verifier thread panicked"))
            .collect()
    })
}

use std::collections::BTreeMap;

use evidence_protocol::bundle::{Bundle, ControlVerdict};
use evidence_protocol::signing::PUBLIC_KEY_LEN;
use serde::Serialize;

use entries::Entries;

/// The server's key as the auditor was given it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerKey {
    /// The note key name from a verifier key string; `None` for a bare public key (then the
    /// manifest's origin is the name, and it must be the origin this key gives).
    pub name: Option<String>,
    pub public_key: [u8; PUBLIC_KEY_LEN],
}

/// One failed check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// Which check: `manifest`, `files`, `checkpoints`, `consistency`, `entries`, `keys`,
    /// `order`, `witnessed`, `chains`, `catalog`, `findings`, `status`.
    pub check: &'static str,
    pub message: String,
}

/// What the bundle holds, as the verifier counted it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub origin: String,
    pub period_from: String,
    pub period_to: String,
    pub catalog_version: String,
    pub catalog_digest: String,
    pub checkpoint_size: u64,
    pub checkpoint_root: String,
    pub hosts: u64,
    pub reports: u64,
    pub full_reports: u64,
    pub attestations: u64,
    pub key_events: u64,
    pub policy_versions: u64,
    /// Status rows (host x control) by status, as recomputed.
    pub controls: ControlCounts,
    /// Per control: how many hosts pass, fail, are unknown or not applicable.
    pub per_control: BTreeMap<String, ControlCounts>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ControlCounts {
    pub passing: u64,
    pub failing: u64,
    pub unknown: u64,
    pub not_applicable: u64,
}

impl ControlCounts {
    fn add(&mut self, status: ControlVerdict) {
        match status {
            ControlVerdict::Pass => self.passing += 1,
            ControlVerdict::Fail => self.failing += 1,
            ControlVerdict::Unknown => self.unknown += 1,
            ControlVerdict::NotApplicable => self.not_applicable += 1,
        }
    }
}

/// The outcome: verified when there is no failure.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Verification {
    pub verified: bool,
    pub summary: Summary,
    pub failures: Vec<Failure>,
}

/// Collects failures as the checks run.
#[derive(Debug, Default)]
pub(crate) struct Failures(Vec<Failure>);

impl Failures {
    pub(crate) fn push(&mut self, check: &'static str, message: impl Into<String>) {
        self.0.push(Failure {
            check,
            message: message.into(),
        });
    }
}

/// Runs every check on `bundle` with the server key `key`, in this order: the manifest's
/// signature; the files against the manifest; the final and periodic checkpoints and the
/// consistency proofs between them; each entry's body digest and inclusion proof; the entries'
/// contents, the key timeline and the report signatures; duplicates and order; the witnessed
/// checkpoints; the chains; the catalog and the findings and status rows.
pub fn verify(bundle: &Bundle, key: &ServerKey) -> Verification {
    let mut failures = Failures::default();
    let m = &bundle.manifest;
    let key_name = log::check_manifest(bundle, key, &mut failures);
    log::check_files(bundle, &mut failures);
    let heads = log::check_checkpoints(bundle, &key_name, key, &mut failures);
    let entries = Entries::read(bundle, &heads, &mut failures);
    entries.check_contents(m, &mut failures);
    entries.check_keys(&mut failures);
    entries.check_order(&mut failures);
    log::check_witnessed(&entries, &heads, bundle, &mut failures);
    entries.check_chains(bundle, &mut failures);
    let derived = rows::check_rows(bundle, &entries, &mut failures);

    let mut summary = Summary {
        origin: m.origin.clone(),
        period_from: evidence_protocol::log_entry::format_micros(m.period.from),
        period_to: evidence_protocol::log_entry::format_micros(m.period.to),
        catalog_version: m.catalog.version.clone(),
        catalog_digest: m.catalog.digest.to_hex(),
        checkpoint_size: m.checkpoint.size,
        checkpoint_root: m.checkpoint.root.to_hex(),
        ..Summary::default()
    };
    entries.count(&mut summary);
    for row in &derived.status {
        summary.controls.add(row.status);
        summary
            .per_control
            .entry(row.control.clone())
            .or_default()
            .add(row.status);
    }
    Verification {
        verified: failures.0.is_empty(),
        summary,
        failures: failures.0,
    }
}
