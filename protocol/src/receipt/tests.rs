use super::*;
use crate::checkpoint::Checkpoint;
use crate::merkle::{consistency_proof, inclusion_proof, leaf_hash, root_at};
use crate::signing::SigningKey;

/// A log of `others` entries before the report, the report's leaf, and one entry after it.
struct Log {
    server: SigningKey,
    leaves: Vec<Digest>,
}

impl Log {
    fn new(others: u32) -> Self {
        Self {
            server: SigningKey::generate().unwrap(),
            leaves: (0..others).map(|i| leaf_hash(&i.to_be_bytes())).collect(),
        }
    }

    fn note(&self, size: u64) -> String {
        let origin = server_origin(&self.server.public_key());
        Checkpoint::new(origin.clone(), size, root_at(&self.leaves, size).unwrap())
            .sign(&self.server, &origin)
            .unwrap()
    }

    fn witnessed(&self, size: u64) -> Witnessed {
        Witnessed {
            size,
            root: root_at(&self.leaves, size).unwrap(),
        }
    }

    /// Appends the report and answers its receipt against the whole log, proving consistency
    /// from the report's witnessed size.
    fn receive(&mut self, bytes: &[u8]) -> Receipt {
        let report = Report::from_bytes(bytes).unwrap();
        let received_at: DateTime<Utc> = "2026-12-01T10:00:00.000001Z".parse().unwrap();
        let log_index = self.leaves.len() as u64;
        self.leaves
            .push(report_leaf_hash(&report, &Digest::of(bytes), &received_at));
        self.leaves.push(leaf_hash(b"after"));
        let size = self.leaves.len() as u64;
        Receipt {
            report_digest: Digest::of(bytes),
            host_id: report.host_id.clone(),
            seq: report.seq,
            received_at,
            log_index,
            checkpoint: self.note(size),
            inclusion: inclusion_proof(log_index, size, &self.leaves).unwrap(),
            consistency: report
                .witnessed
                .and_then(|w| consistency_proof(w.size, size, &self.leaves).ok()),
        }
    }
}

fn report_bytes(witnessed: Option<Witnessed>) -> Vec<u8> {
    Report {
        host_id: "h-1".into(),
        key_id: "k-1".into(),
        seq: 4,
        prev_digest: None,
        collected_at: "2026-12-01T09:59:00Z".parse().unwrap(),
        agent_version: "0.1.0".into(),
        collector_versions: Default::default(),
        dropped_reports: 0,
        kind: ReportKind::Attestation {
            still_holds: Digest::of(b"full"),
        },
        witnessed,
    }
    .to_bytes()
}

#[test]
fn a_receipt_verifies_after_a_json_round_trip_and_returns_its_checkpoint() {
    let mut log = Log::new(5);
    let bytes = report_bytes(Some(log.witnessed(3)));
    let receipt = log.receive(&bytes);
    let back: Receipt = serde_json::from_slice(&serde_json::to_vec(&receipt).unwrap()).unwrap();
    assert_eq!(
        back.verify(&log.server.public_key(), &bytes, Some(&log.witnessed(3))),
        Ok(log.witnessed(7))
    );
}

#[test]
fn the_first_report_needs_no_consistency_proof() {
    let mut log = Log::new(0);
    let bytes = report_bytes(None);
    let receipt = log.receive(&bytes);
    assert_eq!(receipt.consistency, None);
    assert_eq!(
        receipt.verify(&log.server.public_key(), &bytes, None),
        Ok(log.witnessed(2))
    );
}

#[test]
fn other_bytes_another_key_or_a_moved_index_are_refused() {
    let mut log = Log::new(5);
    let bytes = report_bytes(None);
    let receipt = log.receive(&bytes);
    assert_eq!(
        receipt.verify(
            &log.server.public_key(),
            &report_bytes(Some(log.witnessed(1))),
            None
        ),
        Err(ReceiptError::OtherReport)
    );
    let other = SigningKey::generate().unwrap();
    assert!(matches!(
        receipt.verify(&other.public_key(), &bytes, None),
        Err(ReceiptError::Checkpoint(_))
    ));
    let moved = Receipt {
        log_index: receipt.log_index - 1,
        ..receipt.clone()
    };
    assert!(matches!(
        moved.verify(&log.server.public_key(), &bytes, None),
        Err(ReceiptError::NotIncluded { size: 7, .. })
    ));
    let later = Receipt {
        received_at: receipt.received_at + chrono::Duration::microseconds(1),
        ..receipt
    };
    assert!(matches!(
        later.verify(&log.server.public_key(), &bytes, None),
        Err(ReceiptError::NotIncluded { .. })
    ));
}

#[test]
fn a_server_that_rewrote_what_the_agent_witnessed_is_caught() {
    let mut log = Log::new(5);
    let seen = log.witnessed(4);
    // The server replaces entry 1 after the agent verified the checkpoint of 4 entries.
    log.leaves[1] = leaf_hash(b"rewritten");
    let bytes = report_bytes(Some(seen));
    let receipt = log.receive(&bytes);
    let err = receipt
        .verify(&log.server.public_key(), &bytes, Some(&seen))
        .unwrap_err();
    assert!(matches!(
        err,
        ReceiptError::Inconsistent {
            witnessed: 4,
            size: 7,
            ..
        }
    ));
    assert!(
        err.to_string().contains("rewrote or forked history"),
        "{err}"
    );
}

#[test]
fn a_rolled_back_log_or_a_missing_consistency_proof_is_refused() {
    let mut log = Log::new(5);
    let bigger = Witnessed {
        size: 40,
        root: Digest::of(b"a bigger tree"),
    };
    let bytes = report_bytes(Some(bigger));
    let receipt = log.receive(&bytes);
    assert_eq!(
        receipt.verify(&log.server.public_key(), &bytes, Some(&bigger)),
        Err(ReceiptError::RolledBack {
            size: 7,
            witnessed: 40
        })
    );
    let mut log = Log::new(5);
    let seen = log.witnessed(2);
    let bytes = report_bytes(Some(seen));
    let receipt = Receipt {
        consistency: None,
        ..log.receive(&bytes)
    };
    assert_eq!(
        receipt.verify(&log.server.public_key(), &bytes, Some(&seen)),
        Err(ReceiptError::NoConsistencyProof { witnessed: 2 })
    );
}
