//! The SQLite store's write path for reports: one report appended inside the batch
//! transaction (replay and chain rules, gap events, evidence log), and finding transitions.

use evidence_protocol::{log_chain_next, Digest};
use rusqlite::{params, OptionalExtension, Transaction};

use super::sqlite::{db, digest_col};
use super::*;
use crate::rules;

/// Replaces one host's current findings, writing transitions and control statuses that changed.
pub(super) fn apply_host_findings(
    tx: &Transaction,
    host_id: &str,
    findings: &[NewFinding],
    at: i64,
    log_index: Option<u64>,
) -> StoreResult<()> {
    type Row = (String, Option<String>, String);
    let mut old: std::collections::BTreeMap<String, Row> = Default::default();
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
    let mut transition = tx
        .prepare_cached(
            "INSERT INTO finding_transitions (host_id, check_id, status, reason, at, log_index)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .map_err(db)?;
    let mut any_change = false;
    for f in findings {
        let status = f.status.as_str();
        let (changed, same_evidence) = match old.remove(&f.check) {
            Some((s, r, e)) => (s != status || r != f.reason, e == f.evidence),
            None => (true, false),
        };
        // Steady state (same verdict, same evidence) writes nothing.
        if changed || !same_evidence {
            upsert
                .execute(params![host_id, f.check, status, f.reason, f.evidence, at])
                .map_err(db)?;
        }
        if changed {
            any_change = true;
            transition
                .execute(params![
                    host_id,
                    f.check,
                    status,
                    f.reason,
                    at,
                    log_index.map(|i| i as i64)
                ])
                .map_err(db)?;
        }
    }
    // Checks that no longer produce a finding (collector not run any more).
    for (check, _) in old {
        any_change = true;
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
                log_index.map(|i| i as i64)
            ])
            .map_err(db)?;
    }
    if !any_change {
        return Ok(());
    }
    let mut ctl = tx
        .prepare_cached(
            "INSERT INTO control_status (host_id, control_id, status, reason, since) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (host_id, control_id) DO UPDATE SET status = excluded.status, reason = excluded.reason,
               since = CASE WHEN control_status.status = excluded.status THEN control_status.since ELSE excluded.since END
             WHERE control_status.status IS NOT excluded.status OR control_status.reason IS NOT excluded.reason",
        )
        .map_err(db)?;
    let statuses = rules::control_statuses(findings);
    tx.execute(
        "DELETE FROM control_status WHERE host_id = ?1 AND control_id NOT IN (SELECT value FROM json_each(?2))",
        params![host_id, serde_json::to_string(&statuses.keys().collect::<Vec<_>>()).unwrap_or_default()],
    )
    .map_err(db)?;
    for (control, (status, reason)) in statuses {
        ctl.execute(params![host_id, control, status, reason, at])
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
    pub kind: &'a str,
    pub body: &'a [u8],
}

/// Appends `row` after `head`, moving `head` on; returns the new (index, chain hash).
pub(super) fn append_log(
    tx: &Transaction,
    head: &mut (i64, Digest),
    row: &LogRow,
) -> StoreResult<(u64, Digest)> {
    let index = (head.0 + 1) as u64;
    let chain = log_chain_next(&head.1, index, row.digest);
    tx.prepare_cached(
        "INSERT INTO evidence_log (log_index, host_id, seq, key_id, digest, received_at, collected_at, kind, chain_hash, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
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
        row.kind,
        chain.as_bytes().as_slice(),
        row.body
    ])
    .map_err(db)?;
    *head = (index as i64, chain);
    Ok((index, chain))
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
            kind: "key_event",
            body: &body,
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
) -> StoreResult<Result<Appended, AppendRefusal>> {
    // (revoked_at, last_seq, last_digest, last_full_digest)
    type HostRow = (Option<i64>, i64, Option<Vec<u8>>, Option<Vec<u8>>);
    let host: Option<HostRow> = tx
        .prepare_cached("SELECT revoked_at, last_seq, last_digest, last_full_digest FROM hosts WHERE host_id = ?1")
        .map_err(db)?
        .query_row([&item.host_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .optional()
        .map_err(db)?;
    let Some((revoked, last_seq, last_digest, last_full)) = host else {
        return Ok(Err(AppendRefusal::UnknownHost));
    };
    if revoked.is_some() {
        return Ok(Err(AppendRefusal::HostRevoked));
    }
    let key_ok: Option<String> = tx
        .prepare_cached("SELECT state FROM host_keys WHERE key_id = ?1 AND host_id = ?2")
        .map_err(db)?
        .query_row(params![item.key_id, item.host_id], |r| r.get(0))
        .optional()
        .map_err(db)?;
    if key_ok.as_deref() != Some("active") {
        return Ok(Err(AppendRefusal::KeyNotActive));
    }
    let last_seq = last_seq as u64;
    if item.seq <= last_seq {
        // A retry of exactly the stored bytes gets its original receipt back.
        let stored: Option<(i64, Vec<u8>, i64, Vec<u8>)> = tx
            .prepare_cached("SELECT log_index, digest, received_at, chain_hash FROM evidence_log WHERE host_id = ?1 AND seq = ?2")
            .map_err(db)?
            .query_row(params![item.host_id, item.seq as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .optional()
            .map_err(db)?;
        if let Some((idx, digest, received_at, chain)) = stored {
            if digest.as_slice() == item.digest.as_bytes() {
                return Ok(Ok(Appended {
                    digest: item.digest,
                    host_id: item.host_id.clone(),
                    seq: item.seq,
                    received_at,
                    log_index: idx as u64,
                    chain_hash: digest_col(Some(chain))?.unwrap_or(Digest::ZERO),
                    duplicate: true,
                    gaps: vec![],
                }));
            }
        }
        return Ok(Err(AppendRefusal::Replay { last_seq }));
    }
    if let AppendContent::Attestation { still_holds } = &item.content {
        if digest_col(last_full)?.as_ref() != Some(still_holds) {
            return Ok(Err(AppendRefusal::AttestationMismatch));
        }
    }
    let kind = match item.content {
        AppendContent::Full { .. } => "full",
        AppendContent::Attestation { .. } => "attestation",
    };
    let (index, chain) = append_log(
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
        },
    )?;
    let mut gaps = Vec::new();
    let last_digest = digest_col(last_digest)?;
    if last_digest.is_some() && item.prev_digest != last_digest {
        let detail = format!(
            "report seq {} names previous digest {} but the last stored report (seq {}) has digest {}",
            item.seq,
            item.prev_digest.map(|d| d.to_hex()).unwrap_or_else(|| "none".into()),
            last_seq,
            last_digest.map(|d| d.to_hex()).unwrap_or_default()
        );
        gaps.push(("chain_break", detail, 0u64));
    }
    if item.dropped_reports > 0 {
        gaps.push((
            "dropped_reports",
            format!(
                "the agent dropped {} report(s) before seq {}",
                item.dropped_reports, item.seq
            ),
            item.dropped_reports,
        ));
    }
    for (kind, detail, dropped) in &gaps {
        tx.prepare_cached("INSERT INTO gaps (host_id, log_index, kind, detail, dropped, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
            .map_err(db)?
            .execute(params![item.host_id, index as i64, kind, detail, *dropped as i64, item.received_at])
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
        chain_hash: chain,
        duplicate: false,
        gaps: gaps.into_iter().map(|g| g.1).collect(),
    }))
}
