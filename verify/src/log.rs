//! The bundle's signatures and the log's shape: `manifest.sig` over `manifest.json`, every
//! file's digest against the manifest, the final and periodic checkpoints (signed by the server
//! key), the consistency proofs between consecutive checkpoints and to the final one, and every
//! checkpoint the agents witnessed (from their signed reports) against the final one.

use std::collections::{BTreeMap, BTreeSet};

use evidence_protocol::bundle::{
    manifest_sig_text, parse_checkpoint_path, Bundle, CheckpointFile, ConsistencyStep, TreeHead,
    CONSISTENCY, FINAL_CHECKPOINT, FORMAT, MANIFEST, MANIFEST_SIG,
};
use evidence_protocol::checkpoint::{open_note, verify_note_from};
use evidence_protocol::merkle::verify_consistency;
use evidence_protocol::receipt::server_origin;
use evidence_protocol::signing::key_id;
use evidence_protocol::Digest;

use crate::entries::Entries;
use crate::{Failures, ServerKey};

/// The tree heads the bundle proves: the final checkpoint and the periodic ones by size, and
/// the consistency steps of `consistency.json`.
#[derive(Debug)]
pub struct Heads {
    pub final_head: TreeHead,
    pub periodic: BTreeMap<u64, Digest>,
    pub steps: BTreeMap<(u64, u64), Vec<Digest>>,
}

/// Checks the manifest's form and signature; returns the key name to verify notes with.
pub fn check_manifest(bundle: &Bundle, key: &ServerKey, f: &mut Failures) -> String {
    let m = &bundle.manifest;
    if m.format != FORMAT {
        f.push(
            "manifest",
            format!("{MANIFEST}: format is {:?}, not {FORMAT:?}", m.format),
        );
    }
    let origin = server_origin(&key.public_key);
    if m.origin != origin {
        f.push(
            "manifest",
            format!(
                "{MANIFEST}: origin is {:?} but the given server key's origin is {origin:?}",
                m.origin
            ),
        );
    }
    let id = key_id(&key.public_key);
    if m.server_key_id != id {
        f.push(
            "manifest",
            format!(
                "{MANIFEST}: server_key_id is {:?} but the given server key's id is {id:?}",
                m.server_key_id
            ),
        );
    }
    let name = key.name.clone().unwrap_or_else(|| m.origin.clone());
    if name != m.origin {
        f.push(
            "manifest",
            format!(
                "{MANIFEST}: origin is {:?} but the verifier key is named {name:?}",
                m.origin
            ),
        );
    }
    match open_note(&bundle.manifest_sig, &name, &key.public_key) {
        Ok(text) if text == manifest_sig_text(&bundle.manifest_bytes) => {}
        Ok(_) => f.push(
            "manifest",
            format!("{MANIFEST_SIG} is a valid signature, but not over this {MANIFEST} (its digest differs)"),
        ),
        Err(e) => f.push(
            "manifest",
            format!("{MANIFEST_SIG} does not verify with the server key: {e}"),
        ),
    }
    name
}

/// Every file listed with the right digest, none missing, none extra.
pub fn check_files(bundle: &Bundle, f: &mut Failures) {
    let listed: Vec<(&String, &Digest)> = bundle.manifest.files.iter().collect();
    let actual = crate::parallel_map(&listed, |(name, _)| {
        bundle.files.get(*name).map(|bytes| Digest::of(bytes))
    });
    for ((name, expected), actual) in listed.into_iter().zip(actual) {
        match actual {
            None => f.push(
                "files",
                format!("file {name} is listed in {MANIFEST} but missing"),
            ),
            Some(actual) => {
                if actual != *expected {
                    f.push(
                        "files",
                        format!(
                            "file {name}: digest mismatch: {MANIFEST} says {expected}, the file has {actual}"
                        ),
                    );
                }
            }
        }
    }
    for name in bundle.files.keys() {
        if !bundle.manifest.files.contains_key(name) {
            f.push("files", format!("file {name} is not listed in {MANIFEST}"));
        }
    }
}

/// Verifies the final and periodic checkpoints and the consistency chain between them.
pub fn check_checkpoints(
    bundle: &Bundle,
    key_name: &str,
    key: &ServerKey,
    f: &mut Failures,
) -> Heads {
    let m = &bundle.manifest;
    let mut heads = Heads {
        final_head: m.checkpoint,
        periodic: BTreeMap::new(),
        steps: BTreeMap::new(),
    };
    let origin = &m.origin;
    let open = |name: &str, f: &mut Failures| -> Option<TreeHead> {
        let text = match bundle.text(name) {
            Ok(t) => t,
            Err(e) => {
                f.push("checkpoints", e.to_string());
                return None;
            }
        };
        match verify_note_from(text, origin, key_name, &key.public_key) {
            Ok(c) => Some(TreeHead {
                size: c.size,
                root: c.root,
            }),
            Err(e) => {
                f.push("checkpoints", format!("{name}: {e}"));
                None
            }
        }
    };
    if let Some(head) = open(FINAL_CHECKPOINT, f) {
        if head != m.checkpoint {
            f.push(
                "checkpoints",
                format!(
                    "{FINAL_CHECKPOINT} is size {} root {}, but {MANIFEST} states size {} root {}",
                    head.size, head.root, m.checkpoint.size, m.checkpoint.root
                ),
            );
        }
    }
    for name in bundle.files.keys() {
        let Some(CheckpointFile::Periodic(size)) = parse_checkpoint_path(name) else {
            continue;
        };
        let Some(head) = open(name, f) else { continue };
        if head.size != size {
            f.push(
                "checkpoints",
                format!("{name} holds a checkpoint of size {}", head.size),
            );
        }
        if head.size > m.checkpoint.size {
            f.push(
                "checkpoints",
                format!(
                    "{name}: size {} is larger than the final checkpoint's {}: the log was truncated",
                    head.size, m.checkpoint.size
                ),
            );
        }
        heads.periodic.insert(head.size, head.root);
    }
    if heads.periodic.is_empty() {
        f.push("checkpoints", "the bundle holds no periodic checkpoint");
    }

    let steps: Vec<ConsistencyStep> = match bundle.json(CONSISTENCY) {
        Ok(s) => s,
        Err(e) => {
            f.push("consistency", e.to_string());
            Vec::new()
        }
    };
    let mut sorted = steps.clone();
    sorted.sort_by_key(|s| (s.from, s.to));
    sorted.dedup_by_key(|s| (s.from, s.to));
    if sorted != steps {
        f.push(
            "consistency",
            format!("{CONSISTENCY} is not sorted by (from, to) without duplicates"),
        );
    }
    for s in steps {
        heads.steps.insert((s.from, s.to), s.proof);
    }
    // Consecutive checkpoints, the last to the final one.
    let mut sizes: Vec<(u64, Digest)> = heads
        .periodic
        .iter()
        .filter(|(size, _)| **size <= m.checkpoint.size)
        .map(|(s, r)| (*s, *r))
        .collect();
    sizes.push((m.checkpoint.size, m.checkpoint.root));
    for pair in sizes.windows(2) {
        let ((a, ra), (b, rb)) = (pair[0], pair[1]);
        check_step(&heads, (a, &ra), (b, &rb), "checkpoint", f);
    }
    // A step must end at a checkpoint of the bundle (steps from witnessed sizes end at the
    // final one and are checked with the reports, `check_witnessed`).
    let known: BTreeSet<u64> = sizes.iter().map(|(s, _)| *s).collect();
    for (from, to) in heads.steps.keys() {
        if !known.contains(to) {
            f.push(
                "consistency",
                format!("{CONSISTENCY}: the step from {from} to {to} ends at no checkpoint of the bundle"),
            );
        }
    }
    heads
}

/// Verifies the consistency step from `old` to `new` (an equal size needs equal roots).
fn check_step(
    heads: &Heads,
    (old, old_root): (u64, &Digest),
    (new, new_root): (u64, &Digest),
    what: &str,
    f: &mut Failures,
) {
    if old == new {
        if old_root != new_root {
            f.push(
                "consistency",
                format!("two {what}s of size {old} have different roots {old_root} and {new_root}: the log forked"),
            );
        }
        return;
    }
    let Some(proof) = heads.steps.get(&(old, new)) else {
        f.push(
            "consistency",
            format!("{CONSISTENCY} has no step from {old} to {new}"),
        );
        return;
    };
    if let Err(e) = verify_consistency(old, new, old_root, new_root, proof) {
        f.push(
            "consistency",
            format!("the consistency proof from the {what} of size {old} (root {old_root}) to size {new} (root {new_root}) fails: {e}"),
        );
    }
}

/// Every checkpoint an agent witnessed (in its signed report) is consistent with the final one
/// and, at a size the bundle has a checkpoint of, has that checkpoint's root.
pub fn check_witnessed(entries: &Entries, heads: &Heads, bundle: &Bundle, f: &mut Failures) {
    let final_head = bundle.manifest.checkpoint;
    let mut seen = BTreeSet::new();
    for e in entries.by_index.values() {
        let Some(report) = e.report() else { continue };
        let Some(w) = report.witnessed else { continue };
        let who = e.describe();
        if w.size > final_head.size {
            f.push(
                "witnessed",
                format!(
                    "{who} witnessed a checkpoint of size {}, beyond the final checkpoint's {}: the log was truncated",
                    w.size, final_head.size
                ),
            );
            continue;
        }
        if let Some(root) = heads.periodic.get(&w.size) {
            if *root != w.root {
                f.push(
                    "witnessed",
                    format!(
                        "{who} witnessed size {} with root {}, but checkpoints/{:020}.note has root {root}: the log forked",
                        w.size, w.root, w.size
                    ),
                );
            }
        }
        if !seen.insert((w.size, w.root)) {
            continue;
        }
        let before = f.0.len();
        check_step(
            heads,
            (w.size, &w.root),
            (final_head.size, &final_head.root),
            "witnessed checkpoint",
            f,
        );
        for failure in &mut f.0[before..] {
            failure.check = "witnessed";
            failure.message = format!("{who}: {}", failure.message);
        }
    }
}
