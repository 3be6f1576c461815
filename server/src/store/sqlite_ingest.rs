//! The SQLite store's write path for reports: one report appended inside the batch
//! transaction (the ingest rules of `domain::rules` decide; this file reads their inputs and
//! writes what they decided: evidence log, gap events, finding transitions).

use evidence_protocol::{log_chain_next, Digest, EntryKind};
use rusqlite::{params, OptionalExtension, Transaction};

use super::sqlite::{db, digest_col};
use super::*;
use crate::domain::rules::{self, AppendDecision, ChainState, StoredEntry};

/// Replaces one host's current findings, writing the transitions `rules::finding_changes`
/// finds.
pub(super) fn apply_host_findings(
    tx: &Transaction,
    host_id: &str,
    findings: &[NewFinding],
    at: i64,
    log_index: Option<u64>,
) -> StoreResult<()> {
    let mut old: std::collections::BTreeMap<String, rules::StoredVerdict> = Default::default();
    {
        let mut stmt = tx
            .prepare_cached(
                "SELECT check_id, status, reason, evidence FROM current_findings WHERE host_id = ?1",
            )
            .map_err(db)?;
        let rows = stmt
            .query_map([host_id], |r| {
                Ok((r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?)))
            })
            .map_err(db)?;
        for row in rows {
            let (k, v) = row.map_err(db)?;
            old.insert(k, v);
        }
    }
    let changes = rules::finding_changes(old, findings);
    let mut upsert = tx
        .prepare_cached(
            "INSERT INTO current_findings (host_id, check_id, status, reason, evidence, since)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (host_id, check_id) DO UPDATE SET status = excluded.status,
               reason = excluded.reason, evidence = excluded.evidence,
               since = CASE WHEN current_findings.status = excluded.status
                       AND current_findings.reason IS excluded.reason
                       THEN current_findings.since ELSE excluded.since END",
        )
        .map_err(db)?;
    for f in &changes.upserts {
        upsert
            .execute(params![
                host_id,
                f.check,
                f.status.as_str(),
                f.reason,
                f.evidence,
                at
            ])
            .map_err(db)?;
    }
    let mut transition = tx
        .prepare_cached(
            "INSERT INTO finding_transitions (host_id, check_id, status, reason, at, log_index)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .map_err(db)?;
    let log_index = log_index.map(|i| i as i64);
    for f in &changes.transitions {
        transition
            .execute(params![
                host_id,
                f.check,
                f.status.as_str(),
                f.reason,
                at,
                log_index
            ])
            .map_err(db)?;
    }
    for check in &changes.removed {
        tx.execute(
            "DELETE FROM current_findings WHERE host_id = ?1 AND check_id = ?2",
            params![host_id, check],
        )
        .map_err(db)?;
        transition
            .execute(params![
                host_id,
                check,
                "absent",
                Option::<String>::None,
                at,
                log_index
            ])
            .map_err(db)?;
    }
    Ok(())
}

/// The evidence log's head: (last index or -1, its chain hash or zero).
pub(super) fn log_head(tx: &Transaction) -> StoreResult<(i64, Digest)> {
    tx.query_row(
        "SELECT log_index, chain_hash FROM evidence_log ORDER BY log_index DESC LIMIT 1",
        [],
        |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)),
    )
    .optional()
    .map_err(db)?
    .map(|(i, h)| Ok((i, digest_col(Some(h))?.unwrap_or(Digest::ZERO))))
    .transpose()
    .map(|head| head.unwrap_or((-1, Digest::ZERO)))
}

/// One entry on its way into the evidence log.
pub(super) struct LogRow<'a> {
    pub host_id: &'a str,
    /// `None` for key events (they are not in the host's report chain).
    pub seq: Option<u64>,
    pub key_id: &'a str,
    pub digest: &'a Digest,
    pub received_at: i64,
    pub collected_at: i64,
    pub kind: EntryKind,
    pub body: &'a [u8],
    /// The agent's base64 signature over `body` (reports).
    pub signature: Option<&'a str>,
}

/// Appends `row` after `head`, moving `head` on; returns the new (index, chain hash, leaf
/// hash).
pub(super) fn append_log(
    tx: &Transaction,
    head: &mut (i64, Digest),
    row: &LogRow,
) -> StoreResult<(u64, Digest, Digest)> {
    let index = (head.0 + 1) as u64;
    let chain = log_chain_next(&head.1, index, row.digest);
    tx.prepare_cached(
        "INSERT INTO evidence_log (log_index, host_id, seq, key_id, digest, received_at, collected_at, kind, chain_hash, body, signature)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )
    .map_err(db)?
    .execute(params![
        index as i64,
        row.host_id,
        row.seq.map(|s| s as i64),
        row.key_id,
        row.digest.as_bytes().as_slice(),
        row.received_at,
        row.collected_at,
        row.kind.as_str(),
        chain.as_bytes().as_slice(),
        row.body,
        row.signature
    ])
    .map_err(db)?;
    let leaf = super::sqlite_tree::add_leaf(
        tx,
        index,
        &crate::domain::log_entry::LogLeaf {
            kind: row.kind,
            host_id: row.host_id,
            key_id: row.key_id,
            seq: row.seq,
            received_at: row.received_at,
            digest: row.digest,
        },
    )?;
    *head = (index as i64, chain);
    Ok((index, chain, leaf))
}

pub(super) fn record_key_change(tx: &Transaction, c: &KeyChange) -> StoreResult<Option<u64>> {
    let log_index = if c.event == KeyEventKind::Pending {
        None
    } else {
        let body = rules::key_event_body(c);
        let mut head = log_head(tx)?;
        let row = LogRow {
            host_id: c.host_id,
            seq: None,
            key_id: c.key_id,
            digest: &Digest::of(&body),
            received_at: c.at,
            collected_at: c.at,
            kind: EntryKind::KeyEvent,
            body: &body,
            signature: None,
        };
        Some(append_log(tx, &mut head, &row)?.0)
    };
    tx.execute(
        "INSERT INTO key_events (host_id, event, key_id, previous_key_id, authorized_by, at, log_index)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            c.host_id,
            c.event.as_str(),
            c.key_id,
            c.previous_key_id,
            c.authorized_by,
            c.at,
            log_index.map(|i| i as i64)
        ],
    )
    .map_err(db)?;
    Ok(log_index)
}

pub(super) fn append_one(
    tx: &Transaction,
    item: &AppendItem,
    head: &mut (i64, Digest),
    leaves: &mut Vec<Digest>,
) -> StoreResult<Result<Appended, AppendRefusal>> {
    // (revoked_at, last_seq, last_digest, last_full_digest)
    type HostRow = (Option<i64>, i64, Option<Vec<u8>>, Option<Vec<u8>>);
    let host: Option<HostRow> = tx
        .prepare_cached("SELECT revoked_at, last_seq, last_digest, last_full_digest FROM hosts WHERE host_id = ?1")
        .map_err(db)?
        .query_row([&item.host_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .optional()
        .map_err(db)?;
    let chain = match host {
        None => None,
        Some((revoked, last_seq, last_digest, last_full)) => Some(ChainState {
            revoked: revoked.is_some(),
            key_state: tx
                .prepare_cached("SELECT state FROM host_keys WHERE key_id = ?1 AND host_id = ?2")
                .map_err(db)?
                .query_row(params![item.key_id, item.host_id], |r| r.get(0))
                .optional()
                .map_err(db)?,
            last_seq: last_seq as u64,
            last_digest: digest_col(last_digest)?,
            last_full_digest: digest_col(last_full)?,
        }),
    };
    let gaps = match rules::decide_append(item, chain.as_ref()) {
        Err(refusal) => return Ok(Err(refusal)),
        Ok(AppendDecision::Retry { last_seq }) => {
            let stored = tx
                .prepare_cached("SELECT log_index, digest, received_at, chain_hash FROM evidence_log WHERE host_id = ?1 AND seq = ?2")
                .map_err(db)?
                .query_row(params![item.host_id, item.seq as i64], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })
                .optional()
                .map_err(db)?
                .map(|(log_index, digest, received_at, chain_hash)| {
                    Ok::<_, StoreError>(StoredEntry {
                        log_index: log_index as u64,
                        digest: digest_col(Some(digest))?.unwrap_or(Digest::ZERO),
                        received_at,
                        chain_hash: digest_col(Some(chain_hash))?.unwrap_or(Digest::ZERO),
                    })
                })
                .transpose()?;
            return Ok(rules::retry_outcome(item, stored, last_seq));
        }
        Ok(AppendDecision::Append { gaps }) => gaps,
    };
    let kind = match item.content {
        AppendContent::Full { .. } => EntryKind::Full,
        AppendContent::Attestation { .. } => EntryKind::Attestation,
    };
    let (index, chain_hash, leaf) = append_log(
        tx,
        head,
        &LogRow {
            host_id: &item.host_id,
            seq: Some(item.seq),
            key_id: &item.key_id,
            digest: &item.digest,
            received_at: item.received_at,
            collected_at: item.collected_at,
            kind,
            body: &item.bytes,
            signature: item.signature.as_deref(),
        },
    )?;
    leaves.push(leaf);
    for gap in &gaps {
        tx.prepare_cached("INSERT INTO gaps (host_id, log_index, kind, detail, dropped, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
            .map_err(db)?
            .execute(params![item.host_id, index as i64, gap.kind.as_str(), gap.detail, gap.dropped as i64, item.received_at])
            .map_err(db)?;
    }
    let is_full = matches!(item.content, AppendContent::Full { .. });
    tx.prepare_cached(
        "UPDATE hosts SET last_seq = ?2, last_digest = ?3, last_seen = ?4, agent_version = ?5,
           last_full_digest = CASE WHEN ?6 THEN ?3 ELSE last_full_digest END WHERE host_id = ?1",
    )
    .map_err(db)?
    .execute(params![
        item.host_id,
        item.seq as i64,
        item.digest.as_bytes().as_slice(),
        item.received_at,
        item.agent_version,
        is_full
    ])
    .map_err(db)?;
    if let AppendContent::Full { findings } = &item.content {
        tx.prepare_cached(
            "INSERT INTO latest_facts (host_id, log_index, collected_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (host_id) DO UPDATE SET log_index = excluded.log_index,
               collected_at = excluded.collected_at",
        )
        .map_err(db)?
        .execute(params![item.host_id, index as i64, item.collected_at])
        .map_err(db)?;
        apply_host_findings(tx, &item.host_id, findings, item.received_at, Some(index))?;
    }
    Ok(Ok(Appended {
        digest: item.digest,
        host_id: item.host_id.clone(),
        seq: item.seq,
        received_at: item.received_at,
        log_index: index,
        chain_hash,
        duplicate: false,
        gaps: gaps.into_iter().map(|g| g.detail).collect(),
    }))
}

/// Appends one policy version to the evidence log (kind `policy`, host `-`, the server key's
/// id, no seq, received at `at`, body the JSON's bytes); answers its log index.
fn append_policy(tx: &Transaction, policy_json: &str, at: i64, key_id: &str) -> StoreResult<u64> {
    let body = policy_json.as_bytes();
    let mut head = log_head(tx)?;
    let row = LogRow {
        host_id: POLICY_HOST,
        seq: None,
        key_id,
        digest: &Digest::of(body),
        received_at: at,
        collected_at: at,
        kind: EntryKind::Policy,
        body,
        signature: None,
    };
    Ok(append_log(tx, &mut head, &row)?.0)
}

/// The `host_id` of policy entries: no host's.
pub(super) const POLICY_HOST: &str = "-";

/// Records a policy version and its evidence-log entry, in `tx`.
pub(super) fn record_policy(
    tx: &Transaction,
    policy_json: &str,
    at: i64,
    key_id: &str,
) -> StoreResult<u64> {
    let index = append_policy(tx, policy_json, at, key_id)?;
    tx.execute(
        "INSERT INTO policy_versions (at, policy, log_index) VALUES (?1, ?2, ?3)",
        params![at, policy_json, index as i64],
    )
    .map_err(db)?;
    Ok(index)
}

/// Logs every policy version without an entry (stored before migration 0006), in order of
/// `at` (then id); answers how many.
pub(super) fn log_policy_versions(tx: &Transaction, key_id: &str) -> StoreResult<u64> {
    let unlogged: Vec<(i64, i64, String)> = tx
        .prepare(
            "SELECT id, at, policy FROM policy_versions WHERE log_index IS NULL ORDER BY at, id",
        )
        .map_err(db)?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .map_err(db)?
        .collect::<rusqlite::Result<_>>()
        .map_err(db)?;
    for (id, at, policy) in &unlogged {
        let index = append_policy(tx, policy, *at, key_id)?;
        tx.execute(
            "UPDATE policy_versions SET log_index = ?2 WHERE id = ?1",
            params![id, index as i64],
        )
        .map_err(db)?;
    }
    Ok(unlogged.len() as u64)
}
