//! The bundle's log entries (`entries/<index>.json` and `.body`): each one's digest and
//! inclusion proof against the final checkpoint, what its body says (a report, a key event, a
//! policy version) against its metadata, the hosts' key timelines and the report signatures,
//! duplicates and order, and each host's chain against `chains.json`.

use std::collections::{BTreeMap, BTreeSet};

use evidence_controls::OrgPolicy;
use evidence_protocol::bundle::{
    chain_of, entry_body_path, entry_meta_path, parse_entry_path, Bundle, BundleManifest, ChainGap,
    ChainLink, EntryFile, EntryKind, EntryMeta, HostChain, KeyEventBody, CHAINS,
};
use evidence_protocol::log_entry::format_micros;
use evidence_protocol::merkle::verify_inclusion;
use evidence_protocol::signing::{self, PUBLIC_KEY_LEN};
use evidence_protocol::{Digest, Report, ReportKind};

use crate::log::Heads;
use crate::{Failures, Summary};

/// What an entry's body is, once parsed and checked against its metadata.
#[derive(Debug, Clone)]
pub(crate) enum Parsed {
    Report(Box<Report>),
    KeyEvent {
        body: Box<KeyEventBody>,
        public_key: [u8; PUBLIC_KEY_LEN],
    },
    Policy(Box<OrgPolicy>),
    /// The body does not parse or contradicts the metadata (a failure was recorded).
    Invalid,
}

/// One entry of the bundle.
#[derive(Debug, Clone)]
pub(crate) struct Entry<'a> {
    pub meta: EntryMeta,
    pub body: &'a [u8],
    pub parsed: Parsed,
}

impl Entry<'_> {
    /// The report, when this entry is a valid one.
    pub(crate) fn report(&self) -> Option<&Report> {
        match &self.parsed {
            Parsed::Report(r) => Some(r),
            _ => None,
        }
    }

    /// `entry N (host h, seq s)`, for messages.
    pub(crate) fn describe(&self) -> String {
        match self.meta.seq {
            Some(seq) => format!(
                "entry {} (host {}, seq {seq})",
                self.meta.log_index, self.meta.host_id
            ),
            None => format!(
                "entry {} ({} of host {})",
                self.meta.log_index,
                self.meta.kind.as_str(),
                self.meta.host_id
            ),
        }
    }
}

/// Every entry of the bundle by log index.
#[derive(Debug, Default)]
pub(crate) struct Entries<'a> {
    pub by_index: BTreeMap<u64, Entry<'a>>,
}

impl<'a> Entries<'a> {
    /// Reads every entry: both files present, the metadata parses and names its own index,
    /// the body has the stated digest, the index is below the final size, the leaf's inclusion
    /// proof leads to the final root, and the body parses as its kind and agrees with the
    /// metadata.
    pub(crate) fn read(bundle: &'a Bundle, heads: &Heads, f: &mut Failures) -> Entries<'a> {
        let mut indexes = BTreeSet::new();
        for name in bundle.files.keys() {
            if let Some(EntryFile::Meta(i) | EntryFile::Body(i)) = parse_entry_path(name) {
                indexes.insert(i);
            }
        }
        let final_head = heads.final_head;
        let mut pending: Vec<(u64, EntryMeta, &'a [u8])> = Vec::with_capacity(indexes.len());
        for index in indexes {
            let (meta_path, body_path) = (entry_meta_path(index), entry_body_path(index));
            let (Some(meta_bytes), Some(body)) =
                (bundle.files.get(&meta_path), bundle.files.get(&body_path))
            else {
                f.push(
                    "entries",
                    format!("entry {index}: {meta_path} and {body_path} must both be present"),
                );
                continue;
            };
            match serde_json::from_slice::<EntryMeta>(meta_bytes) {
                Ok(meta) => pending.push((index, meta, body.as_slice())),
                Err(e) => f.push("entries", format!("file {meta_path}: {e}")),
            }
        }
        // Only each host's latest full report up to the period's end has facts the rows need
        // (`derive_rows` picks by kind, time and index, as here): the others are checked
        // whole, then keep their parsed headers only, so memory holds the bundle once.
        let mut latest_full: BTreeMap<&str, (i64, u64)> = BTreeMap::new();
        for (index, meta, _) in &pending {
            if meta.kind == EntryKind::Full && meta.received_at <= bundle.manifest.period.to {
                let at = (meta.received_at, *index);
                let latest = latest_full.entry(meta.host_id.as_str()).or_insert(at);
                *latest = (*latest).max(at);
            }
        }
        let keep_facts: BTreeSet<u64> = latest_full.values().map(|(_, index)| *index).collect();
        // Each entry on its own (digest, inclusion proof, body), on every core.
        let checked = crate::parallel_map(&pending, |(index, meta, body)| {
            let index = *index;
            let mut local = Failures::default();
            if meta.log_index != index {
                local.push(
                    "entries",
                    format!(
                        "{} states log_index {}",
                        entry_meta_path(index),
                        meta.log_index
                    ),
                );
            }
            let digest = Digest::of(body);
            if digest != meta.digest {
                local.push(
                    "entries",
                    format!(
                        "entry {index}: {} has digest {digest}, the entry states {}",
                        entry_body_path(index),
                        meta.digest
                    ),
                );
            }
            if index >= final_head.size {
                local.push(
                    "entries",
                    format!(
                        "entry {index} is not below the final checkpoint's size {}",
                        final_head.size
                    ),
                );
            } else if let Err(e) = verify_inclusion(
                &meta.leaf().hash(),
                index,
                final_head.size,
                &meta.inclusion,
                &final_head.root,
            ) {
                local.push(
                    "entries",
                    format!(
                        "entry {index} ({} of host {}): its leaf is not in the final checkpoint: {e}",
                        meta.kind.as_str(),
                        meta.host_id
                    ),
                );
            }
            let mut parsed = parse_body(meta, body, &bundle.manifest, &mut local);
            if let Parsed::Report(report) = &mut parsed {
                if let ReportKind::Full { facts } = &mut report.kind {
                    if !keep_facts.contains(&index) {
                        *facts = Default::default();
                    }
                }
            }
            (local, parsed)
        });
        let mut by_index = BTreeMap::new();
        for ((index, meta, body), (local, parsed)) in pending.into_iter().zip(checked) {
            f.0.extend(local.0);
            by_index.insert(index, Entry { meta, body, parsed });
        }
        Entries { by_index }
    }

    /// Report entries with a valid body.
    pub(crate) fn reports(&self) -> impl Iterator<Item = (&Entry<'a>, &Report)> {
        self.by_index
            .values()
            .filter_map(|e| e.report().map(|r| (e, r)))
    }

    /// Reports only of the selected hosts, when the selection names hosts.
    pub(crate) fn check_contents(&self, m: &BundleManifest, f: &mut Failures) {
        if m.period.from > m.period.to {
            f.push(
                "entries",
                format!(
                    "manifest.json: period from {} is after to {}",
                    format_micros(m.period.from),
                    format_micros(m.period.to)
                ),
            );
        }
        if m.selection.hosts.is_empty() {
            return;
        }
        for e in self.by_index.values() {
            if e.meta.kind != EntryKind::Policy && !m.selection.hosts.contains(&e.meta.host_id) {
                f.push(
                    "entries",
                    format!(
                        "{}: host {} is not in the selection",
                        e.describe(),
                        e.meta.host_id
                    ),
                );
            }
        }
    }

    /// Replays each host's key events in log order and checks every report against the key in
    /// force when it was logged: its key must be the host's active key (enrolled, rekeyed,
    /// rotated in or approved, not since replaced), the host not revoked, and the signature
    /// must verify over the exact body.
    pub(crate) fn check_keys(&self, f: &mut Failures) {
        #[derive(Default)]
        struct HostKeys {
            active: Option<(String, [u8; PUBLIC_KEY_LEN])>,
            /// Keys no longer active: key id -> the entry that replaced it.
            retired: BTreeMap<String, u64>,
            revoked_at: Option<u64>,
        }
        let mut hosts: BTreeMap<&str, HostKeys> = BTreeMap::new();
        /// A report whose key was in force: who, key id, key, body, signature.
        type SignatureCheck<'b> = (String, &'b String, [u8; PUBLIC_KEY_LEN], &'b [u8], &'b str);
        let mut signatures: Vec<SignatureCheck> = Vec::new();
        for e in self.by_index.values() {
            let index = e.meta.log_index;
            match &e.parsed {
                Parsed::KeyEvent { body, public_key } => {
                    let h = hosts.entry(e.meta.host_id.as_str()).or_default();
                    match body.event.as_str() {
                        "enrolled" | "rekeyed" | "rotated" | "approved" => {
                            if body.event == "rotated" {
                                let current = h.active.as_ref().map(|(k, _)| k.as_str());
                                if current != body.previous_key_id.as_deref() {
                                    f.push(
                                        "keys",
                                        format!(
                                            "{}: rotation from key {} but the host's active key is {}",
                                            e.describe(),
                                            body.previous_key_id.as_deref().unwrap_or("none"),
                                            current.unwrap_or("none")
                                        ),
                                    );
                                }
                            }
                            if let Some((old, _)) = h.active.take() {
                                if old != body.key_id {
                                    h.retired.insert(old, index);
                                }
                            }
                            h.retired.remove(&body.key_id);
                            h.active = Some((body.key_id.clone(), *public_key));
                        }
                        "revoked" => {
                            h.revoked_at.get_or_insert(index);
                        }
                        "pending" => {}
                        other => f.push(
                            "keys",
                            format!("{}: unknown key event {other:?}", e.describe()),
                        ),
                    }
                }
                Parsed::Report(_) => {
                    let host = e.meta.host_id.as_str();
                    let h = hosts.entry(host).or_default();
                    let who = e.describe();
                    let key = &e.meta.key_id;
                    if let Some(at) = h.revoked_at {
                        f.push(
                            "keys",
                            format!(
                                "{who} was received after host {host} was revoked (entry {at})"
                            ),
                        );
                        continue;
                    }
                    let public_key = match &h.active {
                        Some((id, pk)) if id == key => pk,
                        _ => {
                            match h.retired.get(key) {
                                Some(at) => f.push(
                                    "keys",
                                    format!("{who} is signed by key {key}, which was replaced at entry {at}, before the report was received"),
                                ),
                                None => f.push(
                                    "keys",
                                    format!("{who} is signed by key {key}, which is not enrolled for host {host}"),
                                ),
                            }
                            continue;
                        }
                    };
                    let Some(sig) = &e.meta.signature else {
                        f.push(
                            "keys",
                            format!(
                                "{who}: no signature is stored, so the report cannot be verified"
                            ),
                        );
                        continue;
                    };
                    // Verified below, on every core, in this order.
                    signatures.push((who, key, *public_key, e.body, sig.as_str()));
                }
                Parsed::Policy(_) | Parsed::Invalid => {}
            }
        }
        let verified = crate::parallel_map(&signatures, |(_, _, public_key, body, sig)| {
            signing::decode_signature(sig)
                .map_err(|e| e.to_string())
                .and_then(|s| signing::verify(public_key, body, &s).map_err(|e| e.to_string()))
        });
        for ((who, key, ..), verified) in signatures.iter().zip(verified) {
            if let Err(err) = verified {
                f.push(
                    "keys",
                    format!("{who}: the signature by key {key} does not verify: {err}"),
                );
            }
        }
    }

    /// No host sends the same seq twice; per host, the log index increases with `seq` and with
    /// `received_at`; an attestation names the host's previous full report.
    pub(crate) fn check_order(&self, f: &mut Failures) {
        let mut by_host: BTreeMap<&str, Vec<(&Entry<'a>, &Report)>> = BTreeMap::new();
        for (e, r) in self.reports() {
            by_host
                .entry(e.meta.host_id.as_str())
                .or_default()
                .push((e, r));
        }
        for (host, reports) in &by_host {
            let mut seqs: BTreeMap<u64, u64> = BTreeMap::new();
            for (e, r) in reports {
                if let Some(first) = seqs.insert(r.seq, e.meta.log_index) {
                    f.push(
                        "order",
                        format!(
                            "host {host} seq {} appears in entries {first} and {}",
                            r.seq, e.meta.log_index
                        ),
                    );
                }
            }
            let mut last_full: Option<&Entry<'a>> = None;
            for pair in reports.windows(2) {
                let ((a, ra), (b, rb)) = (pair[0], pair[1]);
                if rb.seq <= ra.seq {
                    f.push(
                        "order",
                        format!(
                            "host {host}: entry {} (seq {}) comes after entry {} (seq {}) in the log: seq must increase with the log index",
                            b.meta.log_index, rb.seq, a.meta.log_index, ra.seq
                        ),
                    );
                }
                if b.meta.received_at < a.meta.received_at {
                    f.push(
                        "order",
                        format!(
                            "host {host}: entry {} (received {}) comes after entry {} (received {}) in the log: received_at must increase with the log index",
                            b.meta.log_index,
                            format_micros(b.meta.received_at),
                            a.meta.log_index,
                            format_micros(a.meta.received_at)
                        ),
                    );
                }
            }
            for (e, r) in reports {
                match &r.kind {
                    ReportKind::Full { .. } => last_full = Some(e),
                    ReportKind::Attestation { still_holds } => {
                        let previous = last_full.map(|p| p.meta.digest);
                        if previous != Some(*still_holds) {
                            f.push(
                                "order",
                                format!(
                                    "{}: the attestation names report {still_holds}, but the host's previous full report in the bundle is {}",
                                    e.describe(),
                                    previous.map_or_else(|| "none".to_string(), |d| d.to_hex())
                                ),
                            );
                        }
                    }
                }
            }
        }
    }

    /// Recomputes each host's chain over the period's reports and compares with `chains.json`.
    pub(crate) fn check_chains(&self, bundle: &Bundle, f: &mut Failures) {
        let period = bundle.manifest.period;
        let mut links: BTreeMap<&str, Vec<ChainLink>> = BTreeMap::new();
        for (e, r) in self.reports() {
            if e.meta.received_at < period.from || e.meta.received_at > period.to {
                continue;
            }
            links
                .entry(e.meta.host_id.as_str())
                .or_default()
                .push(ChainLink {
                    seq: r.seq,
                    digest: e.meta.digest,
                    prev_digest: r.prev_digest,
                    dropped_reports: r.dropped_reports,
                });
        }
        let computed: BTreeMap<&str, HostChain> = links
            .iter()
            .filter_map(|(h, l)| chain_of(h, l).map(|c| (*h, c)))
            .collect();
        let stated: Vec<HostChain> = match bundle.json(CHAINS) {
            Ok(c) => c,
            Err(e) => {
                f.push("chains", e.to_string());
                return;
            }
        };
        if !stated.windows(2).all(|w| w[0].host_id < w[1].host_id) {
            f.push(
                "chains",
                format!("{CHAINS} is not sorted by host_id without duplicates"),
            );
        }
        let stated: BTreeMap<&str, &HostChain> =
            stated.iter().map(|c| (c.host_id.as_str(), c)).collect();
        for (host, chain) in &computed {
            let Some(s) = stated.get(host) else {
                f.push(
                    "chains",
                    format!("{CHAINS} has no chain for host {host}, which has {} report(s) in the period", chain.reports),
                );
                continue;
            };
            if (s.first_seq, s.last_seq, s.reports)
                != (chain.first_seq, chain.last_seq, chain.reports)
            {
                f.push(
                    "chains",
                    format!(
                        "{CHAINS} host {host}: states seq {}..{} with {} report(s), the reports give seq {}..{} with {}",
                        s.first_seq, s.last_seq, s.reports, chain.first_seq, chain.last_seq, chain.reports
                    ),
                );
            }
            let key = |g: &ChainGap| (g.after_seq, g.before_seq, g.kind);
            let stated_gaps: BTreeSet<_> = s.gaps.iter().map(key).collect();
            let real_gaps: BTreeSet<_> = chain.gaps.iter().map(key).collect();
            for g in &chain.gaps {
                if !stated_gaps.contains(&key(g)) {
                    f.push(
                        "chains",
                        format!(
                            "{CHAINS} host {host}: chain gap not stated: after seq {} before seq {} ({}): {}",
                            g.after_seq, g.before_seq, g.kind.as_str(), g.detail
                        ),
                    );
                }
            }
            for g in &s.gaps {
                if !real_gaps.contains(&key(g)) {
                    f.push(
                        "chains",
                        format!(
                            "{CHAINS} host {host}: states a gap after seq {} before seq {} ({}) that the reports do not show",
                            g.after_seq, g.before_seq, g.kind.as_str()
                        ),
                    );
                }
            }
        }
        for host in stated.keys() {
            if !computed.contains_key(host) {
                f.push(
                    "chains",
                    format!(
                        "{CHAINS} has a chain for host {host}, which has no report in the period"
                    ),
                );
            }
        }
    }

    /// Hosts, reports, key events and policy versions, for the summary.
    pub(crate) fn count(&self, s: &mut Summary) {
        let mut hosts = BTreeSet::new();
        for e in self.by_index.values() {
            match &e.parsed {
                Parsed::Report(r) => {
                    hosts.insert(e.meta.host_id.as_str());
                    s.reports += 1;
                    match r.kind {
                        ReportKind::Full { .. } => s.full_reports += 1,
                        ReportKind::Attestation { .. } => s.attestations += 1,
                    }
                }
                Parsed::KeyEvent { .. } => {
                    hosts.insert(e.meta.host_id.as_str());
                    s.key_events += 1;
                }
                Parsed::Policy(_) => s.policy_versions += 1,
                Parsed::Invalid => {}
            }
        }
        s.hosts = hosts.len() as u64;
    }
}

/// Parses an entry's body as its kind and checks it against the metadata.
fn parse_body(meta: &EntryMeta, body: &[u8], m: &BundleManifest, f: &mut Failures) -> Parsed {
    let index = meta.log_index;
    let mut problems = Vec::new();
    let parsed = match meta.kind {
        EntryKind::Full | EntryKind::Attestation => match Report::from_bytes(body) {
            Err(e) => {
                problems.push(format!("the body is not a report: {e}"));
                Parsed::Invalid
            }
            Ok(r) => {
                if r.host_id != meta.host_id {
                    problems.push(format!(
                        "the entry names host {} but the report says host {}",
                        meta.host_id, r.host_id
                    ));
                }
                if r.key_id != meta.key_id {
                    problems.push(format!(
                        "the entry names key {} but the report says key {}",
                        meta.key_id, r.key_id
                    ));
                }
                if meta.seq != Some(r.seq) {
                    problems.push(format!(
                        "the entry states seq {:?} but the report says seq {}",
                        meta.seq, r.seq
                    ));
                }
                let kind = match r.kind {
                    ReportKind::Full { .. } => EntryKind::Full,
                    ReportKind::Attestation { .. } => EntryKind::Attestation,
                };
                if kind != meta.kind {
                    problems.push(format!(
                        "the entry's kind is {} but the report is {}",
                        meta.kind.as_str(),
                        kind.as_str()
                    ));
                }
                Parsed::Report(Box::new(r))
            }
        },
        EntryKind::KeyEvent => match serde_json::from_slice::<KeyEventBody>(body) {
            Err(e) => {
                problems.push(format!("the body is not a key event: {e}"));
                Parsed::Invalid
            }
            Ok(b) => {
                if b.kind != "key_event" || b.host_id != meta.host_id || b.key_id != meta.key_id {
                    problems.push(format!(
                        "the key event body (type {}, host {}, key {}) does not match the entry (host {}, key {})",
                        b.kind, b.host_id, b.key_id, meta.host_id, meta.key_id
                    ));
                }
                if meta.seq.is_some() {
                    problems.push("a key event has no seq".to_string());
                }
                match signing::decode_public_key(&b.public_key) {
                    Ok(pk) if signing::key_id(&pk) == b.key_id => Parsed::KeyEvent {
                        body: Box::new(b),
                        public_key: pk,
                    },
                    Ok(pk) => {
                        problems.push(format!(
                            "the public key's id is {}, not {}",
                            signing::key_id(&pk),
                            b.key_id
                        ));
                        Parsed::Invalid
                    }
                    Err(e) => {
                        problems.push(format!("the public key is not valid: {e}"));
                        Parsed::Invalid
                    }
                }
            }
        },
        EntryKind::Policy => match OrgPolicy::from_json(body) {
            Err(e) => {
                problems.push(format!("the body is not a policy: {e}"));
                Parsed::Invalid
            }
            Ok(p) => {
                if meta.host_id != "-" || meta.key_id != m.server_key_id || meta.seq.is_some() {
                    problems.push(format!(
                        "a policy entry names host \"-\" and the server key {}, no seq (it names host {}, key {})",
                        m.server_key_id, meta.host_id, meta.key_id
                    ));
                }
                Parsed::Policy(Box::new(p))
            }
        },
    };
    if problems.is_empty() {
        return parsed;
    }
    let what = match meta.seq {
        Some(seq) => format!("entry {index} (host {}, seq {seq})", meta.host_id),
        None => format!(
            "entry {index} ({} of host {})",
            meta.kind.as_str(),
            meta.host_id
        ),
    };
    for p in problems {
        f.push("entries", format!("{what}: {p}"));
    }
    Parsed::Invalid
}
