//! Evidence bundles (`evidence-bundle-v1`, `evidence_protocol::bundle`): what an auditor takes
//! away and checks offline with `evidence-verify`. Used by `GET /v1/admin/bundle` and by
//! `evidence-server export-bundle`.
//!
//! An export runs in two steps. [`Exporter::plan`] decides everything but the bodies' bytes:
//! it obtains the final checkpoint (signing one when the log grew), selects the entries (the
//! selected hosts' reports received in the period, each host's last report before it, the full
//! reports their attestations name, every key event of those hosts and every policy entry, all
//! below the final size), parses each report once for its chain links, witnessed checkpoint
//! and attested digest, reads every leaf hash once and computes all inclusion and consistency
//! proofs in memory from them, and derives the findings and status rows with the one shared
//! derivation (`evidence_controls::derive_rows`). Refusals (unknown host or control, an empty
//! period, more than the entry limit) all happen here, before a byte is written.
//! [`BundlePlan::write`] then streams the archive in path order through the shared
//! `BundleWriter`, reading bodies in chunks of [`BODY_CHUNK`] entries, so memory holds the
//! plan (metadata and two leaf hashes per entry of the log), not the bodies.
//!
//! Deterministic: the same log, selection and export time give the same bytes.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::sync::Arc;

use evidence_controls::{derive_rows, Derivation, OrgPolicy, PolicyEvidence, ReportEvidence};
use evidence_protocol::bundle::{
    chain_of, checkpoint_path, findings_csv, max_file_bytes, status_csv, BundleError,
    BundleManifest, BundleWriter, ChainLink, ConsistencyStep, EntryKind, EntryMeta, FindingRow,
    HostChain, Period, Selection, StatusRow, TreeHead, CHAINS, CONSISTENCY, FINAL_CHECKPOINT,
    FINDINGS_CSV, FINDINGS_JSON, FORMAT, MAX_FILES, STATUS_CSV, STATUS_JSON,
};
use evidence_protocol::merkle::{self, Extended, LeafHashes};
use evidence_protocol::CompactRange;
use evidence_protocol::{Digest, Report, SigningKey};
use serde::Deserialize;

use super::checkpoints::Checkpointer;
use super::{ErrorCode, ServiceError, ServiceResult, Services};
use crate::store::{EntryFilter, LogEntryMeta, Store, StoreError, StoredCheckpoint};

/// The most entries one bundle holds unless the caller says otherwise (`--max-entries`): a
/// selection over it is refused. Each entry is two files; the archive format allows
/// `MAX_FILES` (2,000,000) files.
pub const DEFAULT_MAX_ENTRIES: usize = 500_000;
/// Bodies read from the store per query while writing.
pub const BODY_CHUNK: usize = 256;

/// What to export: hosts (empty: every host), controls (empty: every control), the period
/// (microseconds; `None`: from the first entry, to the export time).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BundleRequest {
    pub hosts: Vec<String>,
    pub controls: Vec<String>,
    pub from: Option<i64>,
    pub to: Option<i64>,
}

/// Why an export was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("no host {0:?}")]
    UnknownHost(String),
    #[error("no control {0:?} in the ISO/IEC 27002:2022 catalog")]
    UnknownControl(String),
    #[error("the period is empty: from {from} is after to {to}")]
    EmptyPeriod { from: String, to: String },
    #[error("the evidence log is empty: nothing to export")]
    EmptyLog,
    #[error(
        "the selection holds {selected} entries, more than the {max} one bundle may hold: \
         select fewer hosts or a shorter period"
    )]
    TooManyEntries { selected: usize, max: usize },
    #[error(
        "{name} would be {size} bytes, more than the {max} a bundle file may hold: select \
         fewer hosts or controls"
    )]
    RowsTooLarge {
        name: &'static str,
        size: usize,
        max: u64,
    },
    #[error("stored evidence is inconsistent: {0}")]
    Corrupt(String),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("writing the bundle: {0}")]
    Bundle(#[from] BundleError),
    #[error("the export task failed: {0}")]
    Task(String),
}

impl From<ExportError> for ServiceError {
    fn from(e: ExportError) -> Self {
        let code = match &e {
            ExportError::UnknownHost(_) => ErrorCode::NotFound,
            ExportError::UnknownControl(_)
            | ExportError::EmptyPeriod { .. }
            | ExportError::TooManyEntries { .. }
            | ExportError::RowsTooLarge { .. }
            | ExportError::EmptyLog => ErrorCode::InvalidField,
            ExportError::Corrupt(_)
            | ExportError::Store(_)
            | ExportError::Bundle(_)
            | ExportError::Task(_) => ErrorCode::Internal,
        };
        ServiceError::new(code, e.to_string())
    }
}

type ExportResult<T> = Result<T, ExportError>;

/// What a report says of its place in the chain and of the log: read without its facts.
#[derive(Deserialize)]
struct ReportLinks {
    prev_digest: Option<Digest>,
    #[serde(default)]
    dropped_reports: u64,
    #[serde(default)]
    witnessed: Option<evidence_protocol::report::Witnessed>,
    kind: LinkKind,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum LinkKind {
    Full {
        #[allow(dead_code)]
        facts: serde::de::IgnoredAny,
    },
    Attestation {
        still_holds: Digest,
    },
}

/// Everything a bundle holds but the bodies, decided and checked; [`BundlePlan::write`]
/// streams it.
pub struct BundlePlan {
    manifest: BundleManifest,
    final_note: String,
    checkpoints: Vec<StoredCheckpoint>,
    consistency: Vec<ConsistencyStep>,
    chains: Vec<HostChain>,
    entries: Vec<LogEntryMeta>,
    /// The whole tree in memory, from one read of the leaves: each proof is O(log n) lookups.
    tree: Extended,
    /// `findings.csv`, `findings.json`, `status.csv`, `status.json`, serialised (and checked
    /// against the archive's file size limit) when planned.
    rows: Vec<(&'static str, Vec<u8>)>,
}

impl BundlePlan {
    /// How many log entries the bundle holds.
    pub fn entries(&self) -> usize {
        self.entries.len()
    }

    /// The final checkpoint's size.
    pub fn size(&self) -> u64 {
        self.manifest.checkpoint.size
    }

    /// Writes the archive into `out` (on the blocking pool), reading the bodies from `store`
    /// in chunks; each body is checked against its digest on the way.
    pub async fn write<W: Write + Send + 'static>(
        self,
        store: &dyn Store,
        key: Arc<SigningKey>,
        out: W,
    ) -> ExportResult<W> {
        let BundlePlan {
            manifest,
            final_note,
            checkpoints,
            consistency,
            chains,
            entries,
            tree,
            rows,
        } = self;
        let tree = Arc::new(tree);
        let size = manifest.checkpoint.size;
        let mut writer = blocking(BundleWriter::new(out), move |w| {
            w.add_json(CHAINS, &chains)?;
            for cp in &checkpoints {
                w.add(&checkpoint_path(cp.size), cp.note.as_bytes())?;
            }
            w.add(FINAL_CHECKPOINT, final_note.as_bytes())?;
            w.add_json(CONSISTENCY, &consistency)?;
            Ok(())
        })
        .await?;
        for chunk in entries.chunks(BODY_CHUNK) {
            let indexes: Vec<u64> = chunk.iter().map(|e| e.log_index).collect();
            let bodies = store.log_bodies(&indexes).await?;
            if bodies.len() != chunk.len() {
                return Err(ExportError::Corrupt(
                    "an entry disappeared from the log during the export".into(),
                ));
            }
            let chunk = chunk.to_vec();
            let tree = tree.clone();
            writer = blocking(writer, move |w| {
                for (meta, (index, body)) in chunk.iter().zip(bodies) {
                    if Digest::of(&body) != meta.digest || index != meta.log_index {
                        return Err(ExportError::Corrupt(format!(
                            "entry {index}: the stored bytes do not match their digest"
                        )));
                    }
                    let inclusion = merkle::inclusion_proof(meta.log_index, size, tree.as_ref())
                        .map_err(|e| ExportError::Corrupt(e.to_string()))?;
                    w.add_entry(&entry_meta(meta, inclusion), &body)?;
                }
                Ok(())
            })
            .await?;
        }
        let done = tokio::task::spawn_blocking(move || -> ExportResult<W> {
            for (name, bytes) in &rows {
                writer.add(name, bytes)?;
            }
            Ok(writer.finish(manifest, &key)?)
        });
        done.await.map_err(|e| ExportError::Task(e.to_string()))?
    }
}

/// Pretty JSON of either row list, as `BundleWriter::add_json` writes it.
mod erased {
    pub trait Json {
        fn to_pretty(&self) -> serde_json::Result<Vec<u8>>;
    }
    impl<T: serde::Serialize> Json for T {
        fn to_pretty(&self) -> serde_json::Result<Vec<u8>> {
            serde_json::to_vec_pretty(self)
        }
    }
}

/// Runs `f` on the writer on tokio's blocking pool (archive writes are blocking I/O).
async fn blocking<W: Write + Send + 'static>(
    mut writer: BundleWriter<W>,
    f: impl FnOnce(&mut BundleWriter<W>) -> ExportResult<()> + Send + 'static,
) -> ExportResult<BundleWriter<W>> {
    tokio::task::spawn_blocking(move || f(&mut writer).map(|()| writer))
        .await
        .map_err(|e| ExportError::Task(e.to_string()))?
}

fn entry_meta(e: &LogEntryMeta, inclusion: Vec<Digest>) -> EntryMeta {
    EntryMeta {
        log_index: e.log_index,
        kind: e.kind,
        host_id: e.host_id.clone(),
        key_id: e.key_id.clone(),
        seq: e.seq,
        received_at: e.received_at,
        digest: e.digest,
        signature: e.signature.clone(),
        inclusion,
    }
}

/// Builds bundles from a store, signing with the server's key.
pub struct Exporter {
    store: Arc<dyn Store>,
    key: Arc<SigningKey>,
    /// The freshness bound of the status rows, seconds.
    pub stale_after_secs: u64,
    /// The most entries a bundle may hold ([`DEFAULT_MAX_ENTRIES`]).
    pub max_entries: usize,
}

impl Exporter {
    pub fn new(store: Arc<dyn Store>, key: Arc<SigningKey>, stale_after_secs: u64) -> Self {
        Self {
            store,
            key,
            stale_after_secs,
            max_entries: DEFAULT_MAX_ENTRIES,
        }
    }

    /// Plans a bundle with a checkpointer of its own (the command line: no running services).
    pub async fn plan_standalone(
        &self,
        req: &BundleRequest,
        now: i64,
    ) -> ServiceResult<BundlePlan> {
        let checkpointer = Checkpointer::new(self.store.clone(), self.key.clone());
        let final_checkpoint = checkpointer.latest().await?;
        Ok(self.plan(req, final_checkpoint, now).await?)
    }

    /// Writes a planned bundle into `out`.
    pub async fn write<W: Write + Send + 'static>(
        &self,
        plan: BundlePlan,
        out: W,
    ) -> ExportResult<W> {
        plan.write(self.store.as_ref(), self.key.clone(), out).await
    }

    /// Decides the bundle of `req` up to `final_checkpoint` (the latest signed, taken after
    /// `now`); see the module doc.
    pub async fn plan(
        &self,
        req: &BundleRequest,
        final_checkpoint: StoredCheckpoint,
        now: i64,
    ) -> ExportResult<BundlePlan> {
        let store = self.store.as_ref();
        let size = final_checkpoint.size;
        if size == 0 {
            return Err(ExportError::EmptyLog);
        }
        let known: BTreeSet<String> = store
            .hosts()
            .await?
            .into_iter()
            .map(|h| h.host_id)
            .collect();
        let mut hosts = req.hosts.clone();
        hosts.sort();
        hosts.dedup();
        if let Some(unknown) = hosts.iter().find(|h| !known.contains(*h)) {
            return Err(ExportError::UnknownHost(unknown.clone()));
        }
        let mut controls = req.controls.clone();
        controls.sort_by(|a, b| evidence_controls::catalog::compare_control_ids(a, b));
        controls.dedup();
        if let Some(unknown) = controls
            .iter()
            .find(|c| evidence_controls::catalog::control(c).is_none())
        {
            return Err(ExportError::UnknownControl(unknown.clone()));
        }
        let to = req.to.unwrap_or(now);
        if let Some(from) = req.from.filter(|from| *from > to) {
            return Err(ExportError::EmptyPeriod {
                from: crate::time::fmt(from),
                to: crate::time::fmt(to),
            });
        }
        let host_filter = (!hosts.is_empty()).then(|| hosts.clone());
        let limit = self.max_entries.saturating_add(1);
        let filter = |kinds: Vec<EntryKind>, received| EntryFilter {
            kinds,
            hosts: host_filter.clone(),
            received,
            below: size,
            limit,
        };
        let reports = vec![EntryKind::Full, EntryKind::Attestation];
        let from_bound = req.from.unwrap_or(i64::MIN);
        let mut selected: BTreeMap<u64, LogEntryMeta> = BTreeMap::new();
        let too_many = |n: usize| ExportError::TooManyEntries {
            selected: n,
            max: self.max_entries,
        };
        let in_period = store
            .log_entries(&filter(reports.clone(), Some((from_bound, to))))
            .await?;
        if in_period.len() > self.max_entries {
            return Err(too_many(in_period.len()));
        }
        let period_indexes: BTreeSet<u64> = in_period.iter().map(|e| e.log_index).collect();
        selected.extend(in_period.into_iter().map(|e| (e.log_index, e)));
        if let Some(from) = req.from {
            let before = store
                .last_reports_before(host_filter.as_deref(), from, size)
                .await?;
            selected.extend(before.into_iter().map(|e| (e.log_index, e)));
        }
        for kinds in [vec![EntryKind::KeyEvent], vec![EntryKind::Policy]] {
            let mut f = filter(kinds.clone(), None);
            if kinds == [EntryKind::Policy] {
                f.hosts = None;
            }
            let found = store.log_entries(&f).await?;
            if found.len() > self.max_entries {
                return Err(too_many(found.len()));
            }
            selected.extend(found.into_iter().map(|e| (e.log_index, e)));
        }

        // Every report parsed once: chain links, witnessed sizes, attested full reports.
        let mut links: BTreeMap<u64, (ChainLink, LinkKind)> = BTreeMap::new();
        let mut witnessed: BTreeSet<u64> = BTreeSet::new();
        let report_indexes: Vec<u64> = selected
            .values()
            .filter(|e| e.kind.is_report())
            .map(|e| e.log_index)
            .collect();
        self.read_links(&selected, &report_indexes, &mut links, &mut witnessed)
            .await?;
        let full_digests: BTreeSet<(&str, Digest)> = selected
            .values()
            .filter(|e| e.kind == EntryKind::Full)
            .map(|e| (e.host_id.as_str(), e.digest))
            .collect();
        let mut wanted: Vec<(String, Digest)> = Vec::new();
        for (index, (_, kind)) in &links {
            if let LinkKind::Attestation { still_holds } = kind {
                let host = &selected[index].host_id;
                if !full_digests.contains(&(host.as_str(), *still_holds)) {
                    wanted.push((host.clone(), *still_holds));
                }
            }
        }
        wanted.sort();
        wanted.dedup();
        if !wanted.is_empty() {
            let found = store.full_reports_by_digest(&wanted, size).await?;
            if let Some(missing) = wanted
                .iter()
                .find(|(h, d)| !found.iter().any(|e| &e.host_id == h && e.digest == *d))
            {
                return Err(ExportError::Corrupt(format!(
                    "an attestation of host {} names the full report {}, which is not in the log",
                    missing.0, missing.1
                )));
            }
            let new: Vec<u64> = found.iter().map(|e| e.log_index).collect();
            selected.extend(found.into_iter().map(|e| (e.log_index, e)));
            self.read_links(&selected, &new, &mut links, &mut witnessed)
                .await?;
        }
        if selected.len() > self.max_entries {
            return Err(too_many(selected.len()));
        }

        // The period, the chains over its reports.
        let period_from = req.from.unwrap_or_else(|| {
            selected
                .values()
                .filter(|e| e.kind.is_report())
                .map(|e| e.received_at)
                .min()
                .unwrap_or(to)
        });
        let period = Period {
            from: period_from.min(to),
            to,
        };
        let mut per_host: BTreeMap<&str, Vec<ChainLink>> = BTreeMap::new();
        for index in &period_indexes {
            let entry = &selected[index];
            per_host
                .entry(entry.host_id.as_str())
                .or_default()
                .push(links[index].0);
        }
        let chains: Vec<HostChain> = per_host
            .iter()
            .filter_map(|(host, links)| chain_of(host, links))
            .collect();

        // The tree, once; the checkpoints in the span and the consistency steps.
        let tree = Extended::new(CompactRange::new(), store.leaf_hashes(size).await?);
        if tree.len() != size || merkle::root(&tree) != final_checkpoint.root {
            return Err(ExportError::Corrupt(format!(
                "the stored tree does not hash to the root of the checkpoint of {size} entries"
            )));
        }
        let first = *selected.keys().next().unwrap_or(&(size - 1));
        let checkpoints = store.checkpoints_between(first + 1, size).await?;
        if checkpoints.len() + 2 * selected.len() + 8 > MAX_FILES as usize {
            return Err(too_many(selected.len()));
        }
        let mut steps: BTreeSet<(u64, u64)> = checkpoints
            .windows(2)
            .map(|w| (w[0].size, w[1].size))
            .collect();
        steps.extend(checkpoints.last().map(|c| (c.size, size)));
        steps.extend(witnessed.iter().map(|w| (*w, size)));
        let consistency = steps
            .into_iter()
            .filter(|(from, to)| 0 < *from && from < to && *to <= size)
            .map(|(from, to)| {
                merkle::consistency_proof(from, to, &tree)
                    .map(|proof| ConsistencyStep { from, to, proof })
                    .map_err(|e| ExportError::Corrupt(e.to_string()))
            })
            .collect::<ExportResult<Vec<_>>>()?;

        let (findings, status) = self.rows(&selected, &controls, to).await?;
        let json = |name: &str, value: &dyn erased::Json| {
            value
                .to_pretty()
                .map_err(|e| ExportError::Corrupt(format!("{name} does not serialise: {e}")))
        };
        let rows = vec![
            (FINDINGS_CSV, findings_csv(&findings)),
            (FINDINGS_JSON, json(FINDINGS_JSON, &findings)?),
            (STATUS_CSV, status_csv(&status)),
            (STATUS_JSON, json(STATUS_JSON, &status)?),
        ];
        drop((findings, status));
        if let Some((name, bytes)) = rows
            .iter()
            .find(|(name, b)| b.len() as u64 > max_file_bytes(name))
        {
            return Err(ExportError::RowsTooLarge {
                name,
                size: bytes.len(),
                max: max_file_bytes(name),
            });
        }
        let manifest = BundleManifest {
            format: FORMAT.to_string(),
            origin: super::checkpoints::origin(&self.key),
            server_key_id: self.key.key_id(),
            generator: format!("evidence-server {}", env!("CARGO_PKG_VERSION")),
            selection: Selection {
                hosts,
                controls: controls.clone(),
                from: req.from,
                to: req.to,
            },
            period,
            catalog: evidence_controls::catalog_identity(),
            stale_after_secs: self.stale_after_secs,
            checkpoint: TreeHead {
                size,
                root: final_checkpoint.root,
            },
            files: BTreeMap::new(),
        };
        Ok(BundlePlan {
            manifest,
            final_note: final_checkpoint.note,
            checkpoints,
            consistency,
            chains,
            entries: selected.into_values().collect(),
            tree,
            rows,
        })
    }

    /// Reads and parses the reports at `indexes` (in chunks), recording their links and the
    /// sizes they witnessed.
    async fn read_links(
        &self,
        selected: &BTreeMap<u64, LogEntryMeta>,
        indexes: &[u64],
        links: &mut BTreeMap<u64, (ChainLink, LinkKind)>,
        witnessed: &mut BTreeSet<u64>,
    ) -> ExportResult<()> {
        for chunk in indexes.chunks(BODY_CHUNK) {
            for (index, body) in self.store.log_bodies(chunk).await? {
                let entry = &selected[&index];
                let parsed: ReportLinks = serde_json::from_slice(&body).map_err(|e| {
                    ExportError::Corrupt(format!("entry {index} is not a report: {e}"))
                })?;
                if let Some(w) = parsed.witnessed {
                    witnessed.insert(w.size);
                }
                let link = ChainLink {
                    seq: entry.seq.unwrap_or(0),
                    digest: entry.digest,
                    prev_digest: parsed.prev_digest,
                    dropped_reports: parsed.dropped_reports,
                };
                links.insert(index, (link, parsed.kind));
            }
        }
        Ok(())
    }

    /// The findings and status rows as of `to`, by the shared derivation over the bundle's
    /// entries: only each host's latest report and latest full report (what the derivation
    /// reads) and the policy entries are parsed in full.
    async fn rows(
        &self,
        selected: &BTreeMap<u64, LogEntryMeta>,
        controls: &[String],
        to: i64,
    ) -> ExportResult<(Vec<FindingRow>, Vec<StatusRow>)> {
        let hosts: BTreeSet<String> = selected
            .values()
            .filter(|e| e.kind != EntryKind::Policy)
            .map(|e| e.host_id.clone())
            .collect();
        let mut latest: BTreeMap<&str, &LogEntryMeta> = BTreeMap::new();
        let mut latest_full: BTreeMap<&str, &LogEntryMeta> = BTreeMap::new();
        for e in selected.values() {
            if !e.kind.is_report() || e.received_at > to {
                continue;
            }
            let newer = |old: &&LogEntryMeta| {
                (e.received_at, e.log_index) > (old.received_at, old.log_index)
            };
            if latest.get(e.host_id.as_str()).is_none_or(newer) {
                latest.insert(&e.host_id, e);
            }
            if e.kind == EntryKind::Full && latest_full.get(e.host_id.as_str()).is_none_or(newer) {
                latest_full.insert(&e.host_id, e);
            }
        }
        let policy_indexes: Vec<u64> = selected
            .values()
            .filter(|e| e.kind == EntryKind::Policy)
            .map(|e| e.log_index)
            .collect();
        let mut policies: Vec<(u64, OrgPolicy)> = Vec::new();
        for chunk in policy_indexes.chunks(BODY_CHUNK) {
            for (index, body) in self.store.log_bodies(chunk).await? {
                let policy = OrgPolicy::from_json(&body).map_err(|e| {
                    ExportError::Corrupt(format!("entry {index} is not a policy: {e}"))
                })?;
                policies.push((index, policy));
            }
        }
        let policy_evidence: Vec<PolicyEvidence<'_>> = policies
            .iter()
            .map(|(index, policy)| PolicyEvidence {
                log_index: *index,
                received_at: selected[index].received_at,
                policy,
            })
            .collect();
        // Hosts are independent: derived a chunk at a time (in host order, so the rows stay
        // sorted), holding only that chunk's parsed reports.
        let hosts: Vec<String> = hosts.into_iter().collect();
        let (mut findings, mut status) = (Vec::new(), Vec::new());
        for chunk in hosts.chunks(BODY_CHUNK) {
            let mut wanted: Vec<u64> = chunk
                .iter()
                .flat_map(|h| [latest.get(h.as_str()), latest_full.get(h.as_str())])
                .flatten()
                .map(|e| e.log_index)
                .collect();
            wanted.sort_unstable();
            wanted.dedup();
            let mut reports: Vec<(u64, Report)> = Vec::with_capacity(wanted.len());
            for (index, body) in self.store.log_bodies(&wanted).await? {
                let report = Report::from_bytes(&body).map_err(|e| {
                    ExportError::Corrupt(format!("entry {index} is not a report: {e}"))
                })?;
                reports.push((index, report));
            }
            let report_evidence: Vec<ReportEvidence<'_>> = reports
                .iter()
                .map(|(index, report)| {
                    let e = &selected[index];
                    ReportEvidence {
                        log_index: *index,
                        host_id: &e.host_id,
                        received_at: e.received_at,
                        digest: e.digest,
                        report,
                    }
                })
                .collect();
            let rows = derive_rows(&Derivation {
                hosts: &chunk.iter().cloned().collect(),
                reports: &report_evidence,
                policies: &policy_evidence,
                controls,
                to,
                stale_after_secs: self.stale_after_secs,
            });
            findings.extend(rows.findings);
            status.extend(rows.status);
        }
        Ok((findings, status))
    }
}

impl Services {
    /// An exporter over this server's store and key, with its freshness bound.
    pub fn exporter(&self) -> Exporter {
        Exporter::new(
            self.store.clone(),
            self.server_key.clone(),
            (self.config.stale_after_us() / 1_000_000).max(0) as u64,
        )
    }

    /// Plans the bundle of `req` (admin): the final checkpoint is the latest, signed now when
    /// the log grew. Every refusal happens here.
    pub async fn plan_bundle(&self, req: &BundleRequest) -> ServiceResult<BundlePlan> {
        let now = crate::time::now_us();
        let final_checkpoint = self.checkpoints.latest().await?;
        Ok(self.exporter().plan(req, final_checkpoint, now).await?)
    }
}

/// An RFC 3339 time, or a plain date: its first microsecond for a start (`from`), its last for
/// an end (`to`, as `crate::time::parse_at` reads it).
pub fn parse_time(value: &str, start: bool) -> Result<i64, ServiceError> {
    let at = crate::time::parse_at(value).ok_or_else(|| {
        ServiceError::new(
            ErrorCode::BadTime,
            format!("{value:?} is not an RFC 3339 time or a date (YYYY-MM-DD)"),
        )
    })?;
    let plain_date = chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d").is_ok();
    Ok(if start && plain_date {
        at - 86_400_000_000 + 1
    } else {
        at
    })
}

/// `evidence-server export-bundle`: opens the store of `data_dir` (beside a running server:
/// the store is read, and a checkpoint is signed when the log grew since the last), logs any
/// policy version that predates policy entries, and writes the bundle to `out` (through
/// `<out>.partial`, renamed when complete). Answers the entries written and the final size.
pub async fn export_data_dir(
    data_dir: &std::path::Path,
    out: &std::path::Path,
    req: &BundleRequest,
    stale_after_secs: u64,
    max_entries: usize,
) -> anyhow::Result<(usize, u64)> {
    use anyhow::Context;
    let store: Arc<dyn Store> = Arc::new(crate::datadir::existing_store(data_dir)?);
    let key = crate::datadir::existing_server_key(data_dir)?;
    store.log_policy_versions(&key.key_id()).await?;
    let mut exporter = Exporter::new(store, Arc::new(key), stale_after_secs);
    exporter.max_entries = max_entries;
    let plan = exporter
        .plan_standalone(req, crate::time::now_us())
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    let (entries, size) = (plan.entries(), plan.size());
    let mut partial = out.as_os_str().to_owned();
    partial.push(".partial");
    let partial = std::path::PathBuf::from(partial);
    let file = std::fs::File::create(&partial)
        .with_context(|| format!("creating {}", partial.display()))?;
    let written = async {
        let file = exporter.write(plan, std::io::BufWriter::new(file)).await?;
        let file = file.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        anyhow::Ok(())
    };
    if let Err(e) = written.await {
        let _ = std::fs::remove_file(&partial);
        return Err(e);
    }
    std::fs::rename(&partial, out).with_context(|| format!("writing {}", out.display()))?;
    Ok((entries, size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proofs_from_the_memory_tree_are_those_of_the_leaves() {
        let leaves: Vec<Digest> = (0..37u32).map(|i| Digest::of(&i.to_be_bytes())).collect();
        let tree = Extended::new(CompactRange::new(), leaves.clone());
        assert_eq!(merkle::root(&tree), merkle::root(&leaves));
        for size in [1u64, 2, 5, 16, 37] {
            for index in 0..size {
                assert_eq!(
                    merkle::inclusion_proof(index, size, &tree),
                    merkle::inclusion_proof(index, size, &leaves)
                );
            }
            assert_eq!(
                merkle::consistency_proof(3.min(size), size, &tree),
                merkle::consistency_proof(3.min(size), size, &leaves)
            );
        }
    }
}
