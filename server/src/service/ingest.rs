//! Report ingest. [`Services::submit`] verifies the exact bytes with the enrolled key before
//! looking inside them, applies the schema, identity, range and clock rules, evaluates the
//! facts, and hands the report to the group-commit writer: one task that owns all report
//! writes and commits every report waiting in its queue in one transaction (up to
//! `max_batch`). Each caller waits for its report's result, so a receipt is only ever sent
//! after the commit; after a commit the writer updates the fleet cache.
//!
//! The batch's transaction also signs one checkpoint of the log (one signature per group
//! commit, not per report). The writer keeps the newest part of the tree in memory (a
//! [`Extended`] window over the last batches' leaves, up to [`PROOF_WINDOW`]) and proves from
//! it each new report's inclusion in that checkpoint and the checkpoint's consistency with the
//! one the report's agent last verified; only an agent whose checkpoint is older than the
//! window gets its consistency proof from the store.

use std::sync::Arc;

use evidence_protocol::merkle::{self, Extended};
use evidence_protocol::{Digest, Facts, Receipt, Report, ReportKind};
use tokio::sync::{mpsc, oneshot};

use super::caches::Caches;
use super::enrollment::{bad_signature, check_text, usable, Signature};
use super::{ErrorCode, ServiceError, ServiceResult, Services};
use crate::metrics::Metrics;
use crate::store::{
    AppendContent, AppendItem, AppendRefusal, Appended, CheckpointSigner, NewFinding, Store,
};

type JobResult = Result<Result<(Appended, Option<Included>), AppendRefusal>, String>;

/// A new report's place in the checkpoint its batch signed.
pub struct Included {
    checkpoint: String,
    size: u64,
    inclusion: Vec<Digest>,
    /// From the agent's witnessed size, when the window holds it.
    consistency: Option<Vec<Digest>>,
}

/// How many of the newest log entries the writer keeps in memory for proofs (32 bytes each,
/// plus their subtrees: about 5 MiB).
pub const PROOF_WINDOW: usize = 1 << 16;

/// One verified report waiting to be committed.
pub struct Job {
    item: AppendItem,
    /// The parsed facts (full reports), to re-evaluate if the policy changed meanwhile.
    facts: Option<Facts>,
    policy_version: u64,
    /// The size of the checkpoint the agent last verified (its receipt's consistency proof
    /// starts there).
    witnessed: Option<u64>,
    reply: oneshot::Sender<JobResult>,
}

/// Evaluates facts under the checks' policy into findings to store.
pub fn evaluate(facts: &Facts, policy: &evidence_controls::Policy) -> Vec<NewFinding> {
    evidence_controls::evaluate(facts, policy)
        .into_iter()
        .map(|f| NewFinding {
            check: f.check,
            status: f.status,
            reason: f.reason,
            evidence: serde_json::to_string(&f.evidence).unwrap_or_else(|_| "null".into()),
        })
        .collect()
}

/// Starts the writer task.
pub(super) fn spawn_writer(
    store: Arc<dyn Store>,
    signer: Arc<dyn CheckpointSigner>,
    caches: Arc<Caches>,
    metrics: Arc<Metrics>,
    max_batch: usize,
    mut rx: mpsc::Receiver<Job>,
) {
    tokio::spawn(async move {
        let mut window = Extended::default();
        while let Some(first) = rx.recv().await {
            let mut jobs = vec![first];
            while jobs.len() < max_batch {
                match rx.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
            commit(
                store.as_ref(),
                &signer,
                &caches,
                &metrics,
                &mut window,
                jobs,
            )
            .await;
        }
    });
}

async fn commit(
    store: &dyn Store,
    signer: &Arc<dyn CheckpointSigner>,
    caches: &Caches,
    metrics: &Metrics,
    window: &mut Extended,
    mut jobs: Vec<Job>,
) {
    let (version, policy) = caches.policy();
    for job in &mut jobs {
        if job.policy_version != version {
            if let (Some(facts), AppendContent::Full { findings }) =
                (&job.facts, &mut job.item.content)
            {
                *findings = evaluate(facts, &policy.checks);
            }
        }
    }
    let items: Vec<AppendItem> = jobs.iter_mut().map(|j| take_item(&mut j.item)).collect();
    let witnessed: Vec<Option<u64>> = jobs.iter().map(|j| j.witnessed).collect();
    let results: Vec<JobResult> = match store.append_reports(&items, signer.clone()).await {
        Ok(batch) => included(batch, window, &witnessed),
        // One bad item must not sink the others: retry one by one.
        Err(_) if items.len() > 1 => {
            let mut out = Vec::with_capacity(items.len());
            for (item, witnessed) in items.iter().zip(&witnessed) {
                out.push(
                    match store
                        .append_reports(std::slice::from_ref(item), signer.clone())
                        .await
                    {
                        Ok(batch) => {
                            included(batch, window, std::slice::from_ref(witnessed)).remove(0)
                        }
                        Err(e) => Err(e.to_string()),
                    },
                );
            }
            out
        }
        Err(e) => vec![Err(e.to_string())],
    };
    metrics.batch(items.len());
    caches.reports_committed(items.iter().zip(&results).filter_map(
        |(item, result)| match result {
            Ok(Ok((a, _))) if !a.duplicate => Some((
                item.host_id.as_str(),
                a.received_at,
                match &item.content {
                    AppendContent::Full { findings } => Some(findings.as_slice()),
                    AppendContent::Attestation { .. } => None,
                },
            )),
            _ => None,
        },
    ));
    for (job, result) in jobs.into_iter().zip(results) {
        let _ = job.reply.send(result);
    }
}

/// Each new report's inclusion proof against the batch's checkpoint, and the consistency
/// proof from its agent's witnessed size, from the window (moved on by the batch's leaves;
/// retries get their proofs later, from the store).
fn included(
    batch: crate::store::AppendBatch,
    window: &mut Extended,
    witnessed: &[Option<u64>],
) -> Vec<JobResult> {
    let Some(growth) = batch.growth else {
        return batch
            .results
            .into_iter()
            .map(|r| Ok(r.map(|a| (a, None))))
            .collect();
    };
    // Entries appended outside the writer (key events, policy versions) or a full window:
    // start over at the batch's edge.
    if merkle::LeafHashes::len(window) != growth.before.size() || window.window_len() > PROOF_WINDOW
    {
        *window = Extended::new(growth.before.clone(), []);
    }
    growth.leaves.iter().for_each(|leaf| window.push(*leaf));
    let size = growth.checkpoint.size;
    batch
        .results
        .into_iter()
        .zip(witnessed)
        .map(|(result, witnessed)| {
            Ok(result.map(|appended| {
                let proof = (!appended.duplicate)
                    .then(|| merkle::inclusion_proof(appended.log_index, size, &*window).ok())
                    .flatten()
                    .map(|inclusion| Included {
                        checkpoint: growth.checkpoint.note.clone(),
                        size,
                        inclusion,
                        consistency: witnessed
                            .filter(|&w| w >= window.start_size() && w <= size)
                            .and_then(|w| merkle::consistency_proof(w, size, &*window).ok()),
                    });
                (appended, proof)
            }))
        })
        .collect()
}

/// Moves an item out of its job (the job keeps only its reply channel's use).
fn take_item(item: &mut AppendItem) -> AppendItem {
    AppendItem {
        host_id: std::mem::take(&mut item.host_id),
        key_id: std::mem::take(&mut item.key_id),
        bytes: std::mem::take(&mut item.bytes),
        agent_version: std::mem::take(&mut item.agent_version),
        content: std::mem::replace(&mut item.content, AppendContent::Full { findings: vec![] }),
        signature: item.signature.take(),
        ..*item
    }
}

fn refusal(r: AppendRefusal) -> ServiceError {
    match r {
        AppendRefusal::Replay { last_seq } => ServiceError::new(
            ErrorCode::ReplayedSequence,
            format!("seq must be above {last_seq}, the last accepted for this host"),
        ),
        AppendRefusal::UnknownHost => ServiceError::new(ErrorCode::UnknownHost, "unknown host"),
        AppendRefusal::HostRevoked => {
            ServiceError::new(ErrorCode::HostRevoked, "this host was revoked")
        }
        AppendRefusal::KeyNotActive => ServiceError::new(
            ErrorCode::KeyNotActive,
            "this key is not the host's active key",
        ),
        AppendRefusal::AttestationMismatch => ServiceError::new(
            ErrorCode::AttestationMismatch,
            "still_holds does not name this host's last full report: send a full report",
        ),
    }
}

impl Services {
    /// `POST /v1/reports`: `body` signed by key `key_id`. Answers the signed receipt; an
    /// accepted report is counted with its latency since `started` (when its body began to
    /// arrive).
    pub async fn submit(
        &self,
        body: Vec<u8>,
        key_id: &str,
        signature: &Signature,
        witnessed_size: Option<u64>,
        started: std::time::Instant,
    ) -> ServiceResult<Receipt> {
        let (receipt, duplicate) = self
            .submit_inner(body, key_id, signature, witnessed_size)
            .await?;
        self.metrics
            .accepted(duplicate, started.elapsed().as_secs_f64());
        Ok(receipt)
    }

    /// Counts a refused report by its code (`evidence_reports_refused_total`) and logs it like
    /// every security event: the caller reports every refusal, its own included.
    pub fn report_refused(&self, e: &ServiceError) {
        tracing::warn!(target: "audit", event = "report", outcome = e.code.as_str(), actor = "-", detail = %e.message);
        self.metrics.refused(e.code.as_str())
    }

    async fn submit_inner(
        &self,
        bytes: Vec<u8>,
        key_id: &str,
        signature: &Signature,
        witnessed_size: Option<u64>,
    ) -> ServiceResult<(Receipt, bool)> {
        let key = self.known_key(key_id)?;
        // Verify the exact bytes before looking inside them.
        evidence_protocol::signing::verify(&key.public_key, &bytes, signature).map_err(|_| {
            bad_signature("the signature does not match the body and the enrolled key")
        })?;
        usable(&key)?;
        std::str::from_utf8(&bytes)
            .map_err(|_| ServiceError::new(ErrorCode::BadEncoding, "the body is not UTF-8"))?;
        let report: Report =
            serde_json::from_slice(&bytes).map_err(|e| ServiceError::json("report", &e))?;
        if report.host_id != key.host_id || report.key_id != key.key_id {
            return Err(ServiceError::new(
                ErrorCode::IdentityMismatch,
                "the report names another host or key than the key that signed it",
            ));
        }
        check_text("agent_version", &report.agent_version)?;
        for (k, v) in &report.collector_versions {
            check_text("collector_versions key", k)?;
            check_text("collector_versions value", v)?;
        }
        if report.seq == 0 {
            return Err(ServiceError::invalid("seq starts at 1"));
        }
        for (field, value) in [
            ("seq", report.seq),
            ("dropped_reports", report.dropped_reports),
        ] {
            if value > i64::MAX as u64 {
                return Err(ServiceError::invalid(format!(
                    "{field} must be at most 2^63 - 1, got {value}"
                )));
            }
        }
        let now = crate::time::now_us();
        let collected_at = crate::time::to_us(&report.collected_at);
        let skew = self.config.max_clock_skew_secs * 1_000_000;
        if collected_at < key.host_enrolled_at - skew {
            return Err(ServiceError::new(
                ErrorCode::CollectedBeforeEnrollment,
                format!(
                    "collected_at {} is before this host enrolled ({}) by more than the clock skew bound",
                    crate::time::fmt(collected_at),
                    crate::time::fmt(key.host_enrolled_at)
                ),
            ));
        }
        if collected_at > now + skew {
            return Err(ServiceError::new(
                ErrorCode::ClockSkew,
                format!(
                    "collected_at is more than {} s in the future: check the host clock",
                    self.config.max_clock_skew_secs
                ),
            ));
        }
        let (policy_version, policy) = self.caches.policy();
        let (content, facts) = match report.kind {
            ReportKind::Full { facts } => {
                let findings = evaluate(&facts, &policy.checks);
                (AppendContent::Full { findings }, Some(facts))
            }
            ReportKind::Attestation { still_holds } => {
                (AppendContent::Attestation { still_holds }, None)
            }
        };
        let item = AppendItem {
            host_id: report.host_id,
            key_id: report.key_id,
            seq: report.seq,
            prev_digest: report.prev_digest,
            digest: Digest::of(&bytes),
            bytes,
            collected_at,
            received_at: now,
            dropped_reports: report.dropped_reports,
            agent_version: report.agent_version,
            content,
            signature: Some(evidence_protocol::signing::b64(signature)),
        };
        let witnessed = witnessed_size.or(report.witnessed.map(|w| w.size));
        let (tx, rx) = oneshot::channel();
        self.writer
            .send(Job {
                item,
                facts,
                policy_version,
                witnessed,
                reply: tx,
            })
            .await
            .map_err(|_| ServiceError::shutting_down())?;
        let (appended, included) = rx
            .await
            .map_err(|_| ServiceError::shutting_down())?
            .map_err(ServiceError::internal)?
            .map_err(refusal)?;
        let included = match included {
            Some(included) => included,
            // A retry of a stored report: its proof against the latest checkpoint.
            None => {
                let latest = self.checkpoints.latest().await?;
                let (_, inclusion) = self
                    .store
                    .inclusion_proof(appended.log_index, latest.size)
                    .await?
                    .ok_or_else(|| ServiceError::internal("a stored report is not in the tree"))?;
                Included {
                    checkpoint: latest.note,
                    size: latest.size,
                    inclusion,
                    consistency: None,
                }
            }
        };
        let consistency = match (included.consistency, witnessed) {
            (Some(proof), _) => Some(proof),
            // Older than the writer's window: from the store.
            (None, Some(from)) if from <= included.size => {
                self.store.consistency_proof(from, included.size).await?
            }
            (None, _) => None,
        };
        let receipt = Receipt {
            report_digest: appended.digest,
            host_id: appended.host_id,
            seq: appended.seq,
            received_at: crate::time::from_us(appended.received_at),
            log_index: appended.log_index,
            checkpoint: included.checkpoint,
            inclusion: included.inclusion,
            consistency,
        };
        Ok((receipt, appended.duplicate))
    }
}
