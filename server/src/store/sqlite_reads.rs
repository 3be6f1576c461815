//! The SQLite store's heavier reads: one host's detail, the fleet's findings at a time, one
//! control's failing evidence, and the end-to-end verification of the evidence log.

use std::collections::HashMap;

use evidence_protocol::{log_chain_next, Digest};
use rusqlite::{params, OptionalExtension};

use super::sqlite::{host_row, Sqlite, HOST_COLS};
use super::*;
use crate::domain::rules::parse_status;

fn finding_row(r: &rusqlite::Row) -> rusqlite::Result<StoredFinding> {
    let status: String = r.get(2)?;
    Ok(StoredFinding {
        host_id: r.get(0)?,
        check: r.get(1)?,
        status: parse_status(&status).unwrap_or(evidence_controls::Status::Error),
        reason: r.get(3)?,
        evidence: r.get(4)?,
        since: r.get(5)?,
    })
}

fn key_event_kind(s: &str) -> Option<KeyEventKind> {
    [
        KeyEventKind::Enrolled,
        KeyEventKind::Pending,
        KeyEventKind::Rotated,
        KeyEventKind::Rekeyed,
        KeyEventKind::Approved,
        KeyEventKind::Revoked,
    ]
    .into_iter()
    .find(|k| k.as_str() == s)
}

pub(super) fn host(s: &Sqlite, host_id: &str) -> StoreResult<Option<HostDetail>> {
    s.read(|c| {
        let Some(summary) = c
            .query_row(&format!("SELECT {HOST_COLS} FROM hosts WHERE host_id = ?1"), [host_id], host_row)
            .optional()?
        else {
            return Ok(None);
        };
        let facts: Option<(Vec<u8>, i64)> = c
            .query_row("SELECT e.body, l.collected_at FROM latest_facts l
                 JOIN evidence_log e ON e.log_index = l.log_index WHERE l.host_id = ?1", [host_id], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        let findings = c
            .prepare("SELECT host_id, check_id, status, reason, evidence, since FROM current_findings WHERE host_id = ?1 ORDER BY check_id")?
            .query_map([host_id], finding_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let transitions = c
            .prepare("SELECT check_id, status, reason, at, log_index FROM finding_transitions WHERE host_id = ?1 ORDER BY id DESC LIMIT 500")?
            .query_map([host_id], |r| {
                Ok(Transition {
                    check: r.get(0)?,
                    status: r.get(1)?,
                    reason: r.get(2)?,
                    at: r.get(3)?,
                    log_index: r.get::<_, Option<i64>>(4)?.map(|i| i as u64),
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let gaps = c
            .prepare("SELECT kind, detail, dropped, at, log_index FROM gaps WHERE host_id = ?1 ORDER BY id DESC LIMIT 500")?
            .query_map([host_id], |r| {
                Ok(GapEvent {
                    kind: r.get(0)?,
                    detail: r.get(1)?,
                    dropped: r.get::<_, i64>(2)? as u64,
                    at: r.get(3)?,
                    log_index: r.get::<_, i64>(4)? as u64,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let reports = c
            .prepare("SELECT log_index, seq, digest, received_at, kind FROM evidence_log WHERE host_id = ?1 AND kind != 'key_event' ORDER BY log_index DESC LIMIT 100")?
            .query_map([host_id], |r| {
                Ok(LogEntry {
                    log_index: r.get::<_, i64>(0)? as u64,
                    seq: r.get::<_, i64>(1)? as u64,
                    digest: hex::encode(r.get::<_, Vec<u8>>(2)?),
                    received_at: r.get(3)?,
                    kind: r.get(4)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let keys = c
            .prepare("SELECT key_id, state, created_at, retired_at FROM host_keys WHERE host_id = ?1 ORDER BY created_at, key_id")?
            .query_map([host_id], |r| {
                Ok(HostKey { key_id: r.get(0)?, state: r.get(1)?, created_at: r.get(2)?, retired_at: r.get(3)? })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let key_events = c
            .prepare("SELECT event, key_id, previous_key_id, authorized_by, at, log_index FROM key_events WHERE host_id = ?1 ORDER BY id DESC LIMIT 500")?
            .query_map([host_id], |r| {
                let event: String = r.get(0)?;
                Ok(KeyEvent {
                    event: key_event_kind(&event).ok_or_else(|| {
                        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, format!("key event {event:?}").into())
                    })?,
                    key_id: r.get(1)?,
                    previous_key_id: r.get(2)?,
                    authorized_by: r.get(3)?,
                    at: r.get(4)?,
                    log_index: r.get::<_, Option<i64>>(5)?.map(|i| i as u64),
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(Some(HostDetail {
            keys,
            key_events,
            summary,
            facts_collected_at: facts.as_ref().map(|f| f.1),
            latest_full_report: facts.map(|f| f.0),
            findings,
            transitions,
            gaps,
            reports,
        }))
    })
}

/// Streams hosts in host-id order, merging the (host-id ordered) findings query into them.
pub(super) fn for_each_host_at(
    s: &Sqlite,
    at: i64,
    f: &mut dyn FnMut(HostFindings),
) -> StoreResult<()> {
    s.read(|c| {
        let current = at == i64::MAX;
        // Last report at or before `at`, for past dates (current: the hosts table has it).
        let mut seen_past: HashMap<String, i64> = HashMap::new();
        if !current {
            let mut stmt = c.prepare("SELECT host_id, MAX(received_at) FROM evidence_log WHERE received_at <= ?1 AND kind != 'key_event' GROUP BY host_id")?;
            for row in stmt.query_map([at], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
                let (h, t) = row?;
                seen_past.insert(h, t);
            }
        }
        let findings_sql = if current {
            "SELECT host_id, check_id, status, reason FROM current_findings WHERE ?1 = ?1 ORDER BY host_id, check_id"
        } else {
            "SELECT t.host_id, t.check_id, t.status, t.reason FROM finding_transitions t
             JOIN (SELECT MAX(id) AS id FROM finding_transitions WHERE at <= ?1 GROUP BY host_id, check_id) m
             ON t.id = m.id WHERE t.status != 'absent' ORDER BY t.host_id, t.check_id"
        };
        let mut fstmt = c.prepare(findings_sql)?;
        let mut frows = fstmt.query([at])?;
        // (host id, check id, status, reason)
        type Row = (String, String, String, Option<String>);
        let next_finding = |rows: &mut rusqlite::Rows| -> rusqlite::Result<Option<Row>> {
            Ok(match rows.next()? {
                Some(r) => Some((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                None => None,
            })
        };
        let mut pending = next_finding(&mut frows)?;
        let mut hstmt = c.prepare(
            "SELECT host_id, hostname, revoked_at, last_seen FROM hosts WHERE enrolled_at <= ?1 ORDER BY host_id",
        )?;
        let mut hrows = hstmt.query([at])?;
        while let Some(r) = hrows.next()? {
            let host_id: String = r.get(0)?;
            let revoked: Option<i64> = r.get(2)?;
            let last_seen = if current { r.get(3)? } else { seen_past.get(&host_id).copied() };
            let mut findings = Vec::new();
            // Skip findings of hosts not listed (enrolled later), take this host's.
            while let Some((h, check, status, reason)) = pending.take() {
                if h < host_id {
                    pending = next_finding(&mut frows)?;
                    continue;
                }
                if h > host_id {
                    pending = Some((h, check, status, reason));
                    break;
                }
                if let Some(status) = parse_status(&status) {
                    findings.push((check, status, reason));
                }
                pending = next_finding(&mut frows)?;
            }
            f(HostFindings { host_id, hostname: r.get(1)?, last_seen, revoked: revoked.is_some_and(|r| r <= at), findings });
        }
        Ok(())
    })
}

pub(super) fn findings_for_checks(
    s: &Sqlite,
    checks: &[String],
) -> StoreResult<Vec<StoredFinding>> {
    let list = serde_json::to_string(checks).unwrap_or_else(|_| "[]".into());
    s.read(|c| {
        c.prepare(
            "SELECT host_id, check_id, status, reason, evidence, since FROM current_findings
             WHERE check_id IN (SELECT value FROM json_each(?1)) AND status IN ('fail', 'error')
             ORDER BY host_id, check_id",
        )?
        .query_map(params![list], finding_row)?
        .collect()
    })
}

pub(super) fn verify_log(s: &Sqlite) -> StoreResult<Result<(u64, Digest), LogBreak>> {
    let checkpoint = s.latest_checkpoint()?;
    s.read(|c| {
        let mut stmt = c.prepare(
            "SELECT e.log_index, e.digest, e.chain_hash, e.body, e.kind, e.host_id, e.key_id, e.seq,
                    e.received_at, m.hash
             FROM evidence_log e LEFT JOIN merkle_nodes m ON m.level = 0 AND m.idx = e.log_index
             ORDER BY e.log_index",
        )?;
        let mut rows = stmt.query([])?;
        let mut head = Digest::ZERO;
        let mut expected: u64 = 0;
        let mut tree = evidence_protocol::CompactRange::new();
        while let Some(r) = rows.next()? {
            let index = r.get::<_, i64>(0)? as u64;
            let digest: Vec<u8> = r.get(1)?;
            let chain: Vec<u8> = r.get(2)?;
            let body: Vec<u8> = r.get(3)?;
            let fail = |problem: String| {
                Ok(Err(LogBreak {
                    log_index: index,
                    problem,
                }))
            };
            if index != expected {
                return fail(format!(
                    "entry {expected} is missing (next present is {index})"
                ));
            }
            let actual = Digest::of(&body);
            if digest.as_slice() != actual.as_bytes() {
                return fail("stored bytes do not match their digest".into());
            }
            let next = log_chain_next(&head, index, &actual);
            if chain.as_slice() != next.as_bytes() {
                return fail("chain hash does not follow from the previous entry".into());
            }
            let (kind, host_id, key_id): (String, String, String) = (r.get(4)?, r.get(5)?, r.get(6)?);
            let seq: Option<i64> = r.get(7)?;
            let Some(kind) = evidence_protocol::EntryKind::parse(&kind) else {
                return fail(format!("unknown entry kind {kind:?}"));
            };
            let leaf = crate::domain::log_entry::LogLeaf {
                kind,
                host_id: &host_id,
                key_id: &key_id,
                seq: seq.map(|s| s as u64),
                received_at: r.get(8)?,
                digest: &actual,
            }
            .hash();
            let recorded: Option<Vec<u8>> = r.get(9)?;
            if recorded.as_deref() != Some(leaf.as_bytes().as_slice()) {
                return fail(
                    "the entry's fields do not match the Merkle leaf recorded when it was appended"
                        .into(),
                );
            }
            tree.push(leaf);
            if let Some(cp) = &checkpoint {
                if cp.size == index + 1 && tree.root() != cp.root {
                    return fail(format!(
                        "the first {} entries do not hash to the root of the checkpoint the server signed for that size",
                        cp.size
                    ));
                }
            }
            head = next;
            expected += 1;
        }
        if let Some(cp) = &checkpoint {
            if expected < cp.size {
                return Ok(Err(LogBreak {
                    log_index: expected,
                    problem: format!(
                        "the server signed a checkpoint of {} entries but only {expected} remain: entries were removed",
                        cp.size
                    ),
                }));
            }
        }
        Ok(Ok((expected, head)))
    })
}
