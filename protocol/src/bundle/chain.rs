//! A host's report chain over a bundle's period, and every discontinuity in it: the one
//! derivation behind `chains.json`, run by the server's exporter over the reports it includes
//! and by `evidence-verify` over the reports it finds, so the two compare gap for gap.

use super::types::{ChainGap, GapKind, HostChain};
use crate::Digest;

/// What the chain needs of one report: its place, its digest and what it says of its past.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainLink {
    pub seq: u64,
    /// SHA-256 of the report's bytes.
    pub digest: Digest,
    /// The report's `prev_digest`.
    pub prev_digest: Option<Digest>,
    /// The report's `dropped_reports`.
    pub dropped_reports: u64,
}

/// The chain of one host's reports (any order; sorted by `seq` here), `None` when there are
/// none. Between two consecutive reports `a`, `b`: a `seq_gap` when `b.seq != a.seq + 1`, a
/// `prev_digest_mismatch` when `b.prev_digest` is not `a`'s digest. A `dropped_reports` gap
/// for every report that says it dropped some, `after_seq` being the previous report's seq (or
/// the report's own seq less one for the first). Gaps are sorted.
pub fn chain_of(host_id: &str, links: &[ChainLink]) -> Option<HostChain> {
    let mut links = links.to_vec();
    links.sort_by_key(|l| l.seq);
    let (first, last) = (links.first()?, links.last()?);
    let mut gaps = Vec::new();
    let mut previous: Option<&ChainLink> = None;
    for b in &links {
        if let Some(a) = previous {
            if b.seq != a.seq.saturating_add(1) {
                let detail = if b.seq == a.seq {
                    format!("seq {} appears twice", b.seq)
                } else {
                    format!(
                        "no report between seq {} and seq {} ({} missing)",
                        a.seq,
                        b.seq,
                        b.seq - a.seq - 1
                    )
                };
                gaps.push(ChainGap {
                    after_seq: a.seq,
                    before_seq: b.seq,
                    kind: GapKind::SeqGap,
                    detail,
                });
            }
            if b.prev_digest != Some(a.digest) {
                gaps.push(ChainGap {
                    after_seq: a.seq,
                    before_seq: b.seq,
                    kind: GapKind::PrevDigestMismatch,
                    detail: format!(
                        "report seq {} names previous digest {} but report seq {} has digest {}",
                        b.seq,
                        b.prev_digest
                            .map_or_else(|| "none".to_string(), |d| d.to_hex()),
                        a.seq,
                        a.digest
                    ),
                });
            }
        }
        if b.dropped_reports > 0 {
            gaps.push(ChainGap {
                after_seq: previous.map_or(b.seq.saturating_sub(1), |a| a.seq),
                before_seq: b.seq,
                kind: GapKind::DroppedReports,
                detail: format!(
                    "the agent dropped {} report(s) before seq {}",
                    b.dropped_reports, b.seq
                ),
            });
        }
        previous = Some(b);
    }
    gaps.sort();
    Some(HostChain {
        host_id: host_id.to_string(),
        first_seq: first.seq,
        last_seq: last.seq,
        reports: links.len() as u64,
        gaps,
    })
}
