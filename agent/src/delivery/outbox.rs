//! The outbox: turns facts into signed, chained reports and keeps the spool and the chain state
//! consistent with each other across crashes.
//!
//! Making a report: drop the oldest spooled reports if the new one would not fit (recording the
//! loss in `chain.json` first), build the report with the next sequence number, the previous
//! report's digest and the count of reports lost since the last one, sign its bytes, spool it
//! durably, then advance the chain. The spool write is the commit point: at open, a spooled
//! report newer than the chain says (a crash between the two writes) moves the chain forward.

use std::collections::BTreeMap;

use anyhow::Context;
use chrono::{DateTime, Utc};
use evidence_protocol::signing::SigningKey;
use evidence_protocol::{Digest, Report, ReportKind};

use crate::delivery::spool::{Entry, Head, Spool};
use crate::state::{Chain, Enrollment, StateDir};

/// The spool plus the chain state, changed together.
#[derive(Debug)]
pub struct Outbox {
    state: StateDir,
    spool: Spool,
    chain: Chain,
    host_id: String,
}

impl Outbox {
    /// Opens the spool and reconciles the chain with it.
    pub fn open(
        state: StateDir,
        key: &SigningKey,
        enrollment: &Enrollment,
        max_reports: u64,
        max_bytes: u64,
    ) -> anyhow::Result<Outbox> {
        let spool = Spool::open(&state.spool_dir(), key.public_key(), max_reports, max_bytes)?;
        let mut chain = state.load_chain()?;
        if let Some(newest) = spool.newest_seq().filter(|seq| *seq >= chain.next_seq) {
            tracing::warn!(
                seq = newest,
                "spool is ahead of the chain state (crash while spooling); catching up"
            );
            chain.next_seq = newest + 1;
            chain.pending_dropped = 0;
            chain.last_digest = None;
            if let Some(entry) = spool.get(newest)? {
                chain.last_digest = Some(Digest::of(&entry.body));
                if let Ok(report) = Report::from_bytes(&entry.body) {
                    if report.facts().is_some() {
                        chain.last_full_digest = chain.last_digest;
                    }
                }
            }
            state.save_chain(&chain)?;
        }
        Ok(Outbox {
            state,
            spool,
            chain,
            host_id: enrollment.host_id.clone(),
        })
    }

    pub fn chain(&self) -> &Chain {
        &self.chain
    }

    pub fn depth(&self) -> u64 {
        self.spool.depth()
    }

    /// Signs and durably spools a new report; returns its sequence number and digest.
    /// The last log checkpoint this agent verified.
    pub fn witness(&self) -> anyhow::Result<Option<evidence_protocol::Witnessed>> {
        self.state.load_witness()
    }

    /// Keeps `checkpoint` (from a verified receipt) as the witnessed one; it is at least as
    /// new as the last, which the receipt proved it extends.
    pub fn witnessed(&mut self, checkpoint: &evidence_protocol::Witnessed) -> anyhow::Result<()> {
        self.state.save_witness(checkpoint)
    }

    pub fn append(
        &mut self,
        key: &SigningKey,
        kind: ReportKind,
        collector_versions: BTreeMap<String, String>,
        collected_at: DateTime<Utc>,
    ) -> anyhow::Result<(u64, Digest)> {
        let witnessed = self.state.load_witness()?;
        let build = |chain: &Chain| Report {
            host_id: self.host_id.clone(),
            key_id: key.key_id(),
            seq: chain.next_seq,
            prev_digest: chain.last_digest,
            collected_at,
            agent_version: env!("CARGO_PKG_VERSION").to_string(),
            collector_versions: collector_versions.clone(),
            dropped_reports: chain.pending_dropped,
            kind: kind.clone(),
            witnessed,
        };
        let estimate = build(&self.chain).to_bytes().len();
        let victims = self.spool.make_room(estimate);
        if !victims.is_empty() {
            let mut lost = 0u64;
            for &seq in &victims {
                // A dropped report's own count of earlier losses is lost with it: carry it on.
                let carried = self
                    .spool
                    .get(seq)?
                    .and_then(|e| Report::from_bytes(&e.body).ok())
                    .map_or(0, |r| r.dropped_reports);
                lost += 1 + carried;
            }
            tracing::warn!(
                dropped = victims.len(),
                "spool full: dropping the oldest reports"
            );
            self.chain.pending_dropped += lost;
            self.state.save_chain(&self.chain)?;
            for seq in victims {
                self.spool.drop_entry(seq)?;
            }
        }
        let report = build(&self.chain);
        let bytes = report.to_bytes();
        let digest = Digest::of(&bytes);
        let entry = Entry {
            seq: report.seq,
            signature: key.sign(&bytes),
            body: bytes,
        };
        self.spool.push(&entry).context("spooling the report")?;
        self.chain.next_seq += 1;
        self.chain.last_digest = Some(digest);
        if matches!(kind, ReportKind::Full { .. }) {
            self.chain.last_full_digest = Some(digest);
        }
        self.chain.pending_dropped = 0;
        self.state.save_chain(&self.chain)?;
        Ok((entry.seq, digest))
    }

    /// The oldest intact report; corrupt entries met on the way are quarantined and counted.
    pub fn next_to_ship(&mut self) -> anyhow::Result<Option<Entry>> {
        loop {
            match self.spool.head()? {
                None => return Ok(None),
                Some(Head::Entry(entry)) => return Ok(Some(entry)),
                Some(Head::Quarantined { seq, reason }) => {
                    tracing::error!(seq, %reason, "corrupt spool entry quarantined; counted as dropped");
                    self.record_lost(1)?;
                }
            }
        }
    }

    /// A report the server has a verified receipt for leaves the spool.
    pub fn delivered(&mut self, seq: u64) -> anyhow::Result<()> {
        self.spool.remove(seq)
    }

    /// A report the server will never accept leaves the spool and is counted as lost.
    pub fn rejected(&mut self, seq: u64) -> anyhow::Result<()> {
        self.record_lost(1)?;
        self.spool.drop_entry(seq)
    }

    fn record_lost(&mut self, count: u64) -> anyhow::Result<()> {
        self.chain.pending_dropped += count;
        self.state.save_chain(&self.chain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use evidence_protocol::Facts;

    fn enrollment() -> Enrollment {
        Enrollment {
            server_url: "https://127.0.0.1:1".into(),
            pin: crate::state::Pin::Fingerprint("ab".repeat(32)),
            host_id: "host-1".into(),
            key_id: "k".into(),
            server_public_key: String::new(),
            enrolled_at: Utc::now(),
            report_interval_secs: 3600,
            stale_after_intervals: Some(3),
        }
    }

    fn full() -> ReportKind {
        ReportKind::Full {
            facts: Facts::default(),
        }
    }

    fn open(dir: &std::path::Path, key: &SigningKey, max: u64) -> Outbox {
        let state = StateDir::open(dir).unwrap();
        Outbox::open(state, key, &enrollment(), max, 1 << 30).unwrap()
    }

    #[test]
    fn reports_are_chained_by_sequence_and_previous_digest() {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::generate().unwrap();
        let mut outbox = open(dir.path(), &key, 100);
        let (s1, d1) = outbox
            .append(&key, full(), BTreeMap::new(), Utc::now())
            .unwrap();
        let attestation = ReportKind::Attestation { still_holds: d1 };
        let (s2, _) = outbox
            .append(&key, attestation, BTreeMap::new(), Utc::now())
            .unwrap();
        assert_eq!((s1, s2), (1, 2));
        let first = outbox.next_to_ship().unwrap().unwrap();
        outbox.delivered(first.seq).unwrap();
        let second = outbox.next_to_ship().unwrap().unwrap();
        let report = Report::from_bytes(&second.body).unwrap();
        assert_eq!(report.prev_digest, Some(d1));
        assert_eq!(report.host_id, "host-1");
        assert_eq!(outbox.chain().last_full_digest, Some(d1));
    }

    #[test]
    fn a_full_spool_drops_the_oldest_and_the_next_report_counts_them() {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::generate().unwrap();
        let mut outbox = open(dir.path(), &key, 2);
        for _ in 0..5 {
            outbox
                .append(&key, full(), BTreeMap::new(), Utc::now())
                .unwrap();
        }
        assert_eq!(outbox.depth(), 2);
        let mut seen = Vec::new();
        while let Some(entry) = outbox.next_to_ship().unwrap() {
            let report = Report::from_bytes(&entry.body).unwrap();
            seen.push((report.seq, report.dropped_reports));
            outbox.delivered(entry.seq).unwrap();
        }
        // 3 came: 1 dropped; 4 came: 2 dropped; 5 came: 3 dropped, which carried 3's count of 1.
        assert_eq!(seen, [(4, 1), (5, 2)]);
    }

    #[test]
    fn a_crash_between_spooling_and_saving_the_chain_is_caught_up_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::generate().unwrap();
        let mut outbox = open(dir.path(), &key, 100);
        outbox
            .append(&key, full(), BTreeMap::new(), Utc::now())
            .unwrap();
        let stale = outbox.chain().clone();
        let (_, d2) = outbox
            .append(&key, full(), BTreeMap::new(), Utc::now())
            .unwrap();
        StateDir::open(dir.path())
            .unwrap()
            .save_chain(&stale)
            .unwrap();
        let outbox = open(dir.path(), &key, 100);
        assert_eq!(outbox.chain().next_seq, 3);
        assert_eq!(outbox.chain().last_digest, Some(d2));
    }
}
