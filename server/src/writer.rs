//! The ingest writer: one thread that owns all report writes and commits them in groups
//! (every report waiting in the queue goes into one transaction, up to `max_batch`). Each
//! handler waits for its report's result, so a receipt is only ever sent after the commit.
//! After a commit the writer updates the in-memory fleet status.

use std::sync::Arc;

use evidence_protocol::Facts;
use tokio::sync::{mpsc, oneshot};

use crate::state::AppState;
use crate::status::HostState;
use crate::store::{AppendContent, AppendItem, AppendRefusal, Appended, NewFinding};

pub type JobResult = Result<Result<Appended, AppendRefusal>, String>;

/// One verified report waiting to be committed.
pub struct Job {
    pub item: AppendItem,
    /// The parsed facts (full reports), to re-evaluate if the policy changed meanwhile.
    pub facts: Option<Facts>,
    pub policy_version: u64,
    pub reply: oneshot::Sender<JobResult>,
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

/// Starts the writer thread.
pub fn spawn(state: Arc<AppState>, mut rx: mpsc::Receiver<Job>) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name("ingest-writer".into())
        .spawn(move || {
            while let Some(first) = rx.blocking_recv() {
                let mut jobs = vec![first];
                while jobs.len() < state.config.max_batch {
                    match rx.try_recv() {
                        Ok(job) => jobs.push(job),
                        Err(_) => break,
                    }
                }
                commit(&state, jobs);
            }
        })
        .expect("spawn writer thread")
}

fn commit(state: &AppState, mut jobs: Vec<Job>) {
    let (version, policy) = state.policy();
    for job in &mut jobs {
        if job.policy_version != version {
            if let (Some(facts), AppendContent::Full { findings, .. }) =
                (&job.facts, &mut job.item.content)
            {
                *findings = evaluate(facts, &policy.checks);
            }
        }
    }
    let items: Vec<AppendItem> = jobs.iter().map(|j| j.item.clone()).collect();
    let results: Vec<JobResult> = match state.store.append_reports(&items) {
        Ok(results) => results.into_iter().map(Ok).collect(),
        // One bad item must not sink the others: retry one by one.
        Err(_) if items.len() > 1 => items
            .iter()
            .map(
                |item| match state.store.append_reports(std::slice::from_ref(item)) {
                    Ok(mut r) => Ok(r.remove(0)),
                    Err(e) => Err(e.to_string()),
                },
            )
            .collect(),
        Err(e) => vec![Err(e.to_string())],
    };
    state.metrics.batch(items.len());
    {
        let mut fleet = state.fleet.hosts.write().expect("fleet lock");
        for (item, result) in items.iter().zip(&results) {
            if let Ok(Ok(a)) = result {
                if a.duplicate {
                    continue;
                }
                let host = fleet
                    .entry(item.host_id.clone())
                    .or_insert_with(|| HostState {
                        hostname: item.host_id.as_str().into(),
                        last_seen: None,
                        revoked: false,
                        findings: Box::new([]),
                    });
                host.last_seen = Some(a.received_at);
                if let AppendContent::Full { findings, .. } = &item.content {
                    host.set_findings(findings, &state.index);
                }
            }
        }
    }
    for (job, result) in jobs.into_iter().zip(results) {
        let _ = job.reply.send(result);
    }
}
