//! The findings and status rows: recomputed from the bundle's reports and policy entries with
//! `evidence_controls::derive_rows` (the code the server's exporter uses) and compared row by row
//! with `findings.json` and `status.json`; the CSVs must be exactly those rows. Policy versions
//! come only from the log's policy entries.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;

use evidence_controls::{
    catalog_identity, derive_rows, Derivation, DerivedRows, PolicyEvidence, ReportEvidence,
};
use evidence_protocol::bundle::{
    findings_csv, status_csv, Bundle, EntryKind, FindingRow, StatusRow, FINDINGS_CSV,
    FINDINGS_JSON, STATUS_CSV, STATUS_JSON,
};

use crate::entries::{Entries, Parsed};
use crate::Failures;

/// Checks the catalog, recomputes the rows and compares; returns the recomputed rows.
pub fn check_rows(bundle: &Bundle, entries: &Entries<'_>, f: &mut Failures) -> DerivedRows {
    let m = &bundle.manifest;
    let ours = catalog_identity();
    if m.catalog != ours {
        f.push(
            "catalog",
            format!(
                "the rows were derived with catalog {} ({}), this verifier has {} ({}): the comparison may differ",
                m.catalog.version, m.catalog.digest, ours.version, ours.digest
            ),
        );
    }
    let mut hosts = BTreeSet::new();
    let mut reports = Vec::new();
    let mut policies = Vec::new();
    let mut policy_indexes = BTreeSet::new();
    for e in entries.by_index.values() {
        match &e.parsed {
            Parsed::Report(r) => {
                hosts.insert(e.meta.host_id.clone());
                reports.push(ReportEvidence {
                    log_index: e.meta.log_index,
                    host_id: &e.meta.host_id,
                    received_at: e.meta.received_at,
                    digest: e.meta.digest,
                    report: r,
                });
            }
            Parsed::KeyEvent { .. } => {
                hosts.insert(e.meta.host_id.clone());
            }
            Parsed::Policy(p) => {
                policy_indexes.insert(e.meta.log_index);
                policies.push(PolicyEvidence {
                    log_index: e.meta.log_index,
                    received_at: e.meta.received_at,
                    policy: p,
                });
            }
            Parsed::Invalid if e.meta.kind == EntryKind::Policy => {
                policy_indexes.insert(e.meta.log_index);
            }
            Parsed::Invalid => {}
        }
    }
    let derived = derive_rows(&Derivation {
        hosts: &hosts,
        reports: &reports,
        policies: &policies,
        controls: &m.selection.controls,
        to: m.period.to,
        stale_after_secs: m.stale_after_secs,
    });

    if let Some(findings) = load::<FindingRow>(bundle, FINDINGS_JSON, f) {
        for row in &findings {
            if let Some(p) = row.policy_log_index {
                if !policy_indexes.contains(&p) {
                    f.push(
                        "findings",
                        format!(
                            "{FINDINGS_JSON} row host {} check {}: names policy entry {p}, which is not a policy entry of the log",
                            row.host_id, row.check
                        ),
                    );
                }
            }
        }
        compare(
            "findings",
            FINDINGS_JSON,
            &findings,
            &derived.findings,
            |r| (r.host_id.clone(), r.check.clone()),
            |r| format!("host {} check {}", r.host_id, r.check),
            |r| {
                vec![
                    ("status", r.status.as_str().to_string()),
                    ("reason", format!("{:?}", r.reason)),
                    ("log_index", r.log_index.to_string()),
                    ("report_digest", r.report_digest.to_hex()),
                    ("policy_log_index", format!("{:?}", r.policy_log_index)),
                ]
            },
            f,
        );
        check_csv(bundle, FINDINGS_CSV, &findings_csv(&findings), f);
    }
    if let Some(status) = load::<StatusRow>(bundle, STATUS_JSON, f) {
        compare(
            "status",
            STATUS_JSON,
            &status,
            &derived.status,
            |r| (r.host_id.clone(), r.control.clone()),
            |r| format!("host {} control {}", r.host_id, r.control),
            |r| {
                vec![
                    ("status", r.status.as_str().to_string()),
                    ("reason", format!("{:?}", r.reason)),
                    ("log_index", format!("{:?}", r.log_index)),
                    ("report_digest", format!("{:?}", r.report_digest)),
                ]
            },
            f,
        );
        check_csv(bundle, STATUS_CSV, &status_csv(&status), f);
    }
    derived
}

fn load<T: serde::de::DeserializeOwned>(
    bundle: &Bundle,
    name: &str,
    f: &mut Failures,
) -> Option<Vec<T>> {
    match bundle.json(name) {
        Ok(rows) => Some(rows),
        Err(e) => {
            f.push(
                if name == FINDINGS_JSON {
                    "findings"
                } else {
                    "status"
                },
                e.to_string(),
            );
            None
        }
    }
}

/// Compares the bundle's rows with the recomputed ones, keyed, field by field: `bundle says X,
/// facts give Y`.
#[allow(clippy::too_many_arguments)]
fn compare<R: Debug, K: Ord + Clone>(
    check: &'static str,
    file: &str,
    stated: &[R],
    derived: &[R],
    key: impl Fn(&R) -> K,
    name: impl Fn(&R) -> String,
    fields: impl Fn(&R) -> Vec<(&'static str, String)>,
    f: &mut Failures,
) {
    let keys: Vec<K> = stated.iter().map(&key).collect();
    let derived_keys: Vec<K> = derived.iter().map(&key).collect();
    let stated_map: BTreeMap<K, &R> = stated.iter().map(|r| (key(r), r)).collect();
    let derived_map: BTreeMap<K, &R> = derived.iter().map(|r| (key(r), r)).collect();
    if stated_map.len() != stated.len() {
        f.push(check, format!("{file} holds the same row twice"));
    }
    for (k, d) in &derived_map {
        match stated_map.get(k) {
            None => f.push(
                check,
                format!("{file} has no row for {}, which the facts give", name(d)),
            ),
            Some(s) => {
                for ((field, said), (_, given)) in fields(s).into_iter().zip(fields(d)) {
                    if said != given {
                        f.push(
                            check,
                            format!(
                                "{file} row {}: {field}: bundle says {said}, facts give {given}",
                                name(s)
                            ),
                        );
                    }
                }
            }
        }
    }
    for (k, s) in &stated_map {
        if !derived_map.contains_key(k) {
            f.push(
                check,
                format!("{file} row {} does not follow from the facts", name(s)),
            );
        }
    }
    if stated_map.len() == stated.len()
        && keys != derived_keys
        && stated_map.len() == derived_map.len()
    {
        f.push(
            check,
            format!("{file} rows are not in the derivation's order"),
        );
    }
}

/// The CSV file must be exactly the JSON rows as CSV.
fn check_csv(bundle: &Bundle, name: &str, expected: &[u8], f: &mut Failures) {
    let check = if name == FINDINGS_CSV {
        "findings"
    } else {
        "status"
    };
    match bundle.file(name) {
        Err(e) => f.push(check, e.to_string()),
        Ok(bytes) if bytes == expected => {}
        Ok(bytes) => {
            let line = bytes
                .split(|b| *b == b'\n')
                .zip(expected.split(|b| *b == b'\n'))
                .position(|(a, b)| a != b)
                .map_or_else(
                    || "one ends early".to_string(),
                    |i| format!("first difference on line {}", i + 1),
                );
            f.push(
                check,
                format!("{name} is not the rows of its JSON file ({line})"),
            );
        }
    }
}
