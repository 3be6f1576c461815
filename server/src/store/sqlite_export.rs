//! The SQLite store's reads for evidence bundles (`service::export`): entry metadata by kind,
//! host and receipt time, each host's last report before a time, full reports by digest,
//! entry bodies by index (read in chunks by the exporter, never all at once), the signed
//! checkpoints in a size range and every leaf hash of the tree in one query.

use evidence_protocol::bundle::EntryKind;
use evidence_protocol::Digest;
use rusqlite::{params, Connection, OptionalExtension};

use super::sqlite::{digest_col, Sqlite};
use super::*;

const META_COLS: &str = "log_index, kind, host_id, key_id, seq, received_at, digest, signature";

fn meta_row(r: &rusqlite::Row) -> rusqlite::Result<LogEntryMeta> {
    let kind: String = r.get(1)?;
    let digest: Vec<u8> = r.get(6)?;
    let corrupt = |what: String| {
        rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Text, what.into())
    };
    Ok(LogEntryMeta {
        log_index: r.get::<_, i64>(0)? as u64,
        kind: EntryKind::parse(&kind)
            .ok_or_else(|| corrupt(format!("unknown entry kind {kind:?}")))?,
        host_id: r.get(2)?,
        key_id: r.get(3)?,
        seq: r.get::<_, Option<i64>>(4)?.map(|s| s as u64),
        received_at: r.get(5)?,
        digest: Digest(
            digest
                .as_slice()
                .try_into()
                .map_err(|_| corrupt("digest is not 32 bytes".into()))?,
        ),
        signature: r.get(7)?,
    })
}

fn kinds_json(kinds: &[EntryKind]) -> String {
    serde_json::to_string(&kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>())
        .unwrap_or_else(|_| "[]".into())
}

/// One host's (or every host's, `host = None`) entries under `filter`, in log order.
fn entries_of(
    c: &Connection,
    filter: &EntryFilter,
    host: Option<&str>,
    limit: usize,
) -> rusqlite::Result<Vec<LogEntryMeta>> {
    let (from, to) = filter.received.unwrap_or((i64::MIN, i64::MAX));
    // With a host, the (host_id, received_at) index answers; without, the log is walked in order.
    let host_clause = if host.is_some() {
        "host_id = ?5 AND"
    } else {
        "?5 IS NULL AND"
    };
    c.prepare_cached(&format!(
        "SELECT {META_COLS} FROM evidence_log
         WHERE {host_clause} received_at >= ?3 AND received_at <= ?4 AND log_index < ?1
           AND kind IN (SELECT value FROM json_each(?2))
         ORDER BY log_index LIMIT ?6"
    ))?
    .query_map(
        params![
            filter.below.min(i64::MAX as u64) as i64,
            kinds_json(&filter.kinds),
            from,
            to,
            host,
            limit.min(i64::MAX as usize) as i64
        ],
        meta_row,
    )?
    .collect()
}

pub(super) fn log_entries(s: &Sqlite, filter: &EntryFilter) -> StoreResult<Vec<LogEntryMeta>> {
    s.read(|c| match &filter.hosts {
        None => entries_of(c, filter, None, filter.limit),
        Some(hosts) => {
            let mut all = Vec::new();
            for h in hosts {
                let left = filter.limit.saturating_sub(all.len());
                all.extend(entries_of(c, filter, Some(h), left)?);
            }
            all.sort_by_key(|e: &LogEntryMeta| e.log_index);
            all.truncate(filter.limit);
            Ok(all)
        }
    })
}

pub(super) fn last_reports_before(
    s: &Sqlite,
    hosts: Option<&[String]>,
    before: i64,
    below: u64,
) -> StoreResult<Vec<LogEntryMeta>> {
    s.read(|c| {
        let hosts: Vec<String> = match hosts {
            Some(h) => h.to_vec(),
            None => c
                .prepare("SELECT host_id FROM hosts ORDER BY host_id")?
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?,
        };
        let mut stmt = c.prepare_cached(&format!(
            "SELECT {META_COLS} FROM evidence_log
             WHERE host_id = ?1 AND received_at < ?2 AND log_index < ?3
               AND kind IN ('full', 'attestation')
             ORDER BY received_at DESC, log_index DESC LIMIT 1"
        ))?;
        let mut out = Vec::new();
        for h in &hosts {
            if let Some(m) = stmt
                .query_row(
                    params![h, before, below.min(i64::MAX as u64) as i64],
                    meta_row,
                )
                .optional()?
            {
                out.push(m);
            }
        }
        out.sort_by_key(|e| e.log_index);
        Ok(out)
    })
}

pub(super) fn full_reports_by_digest(
    s: &Sqlite,
    wanted: &[(String, Digest)],
    below: u64,
) -> StoreResult<Vec<LogEntryMeta>> {
    s.read(|c| {
        let mut stmt = c.prepare_cached(&format!(
            "SELECT {META_COLS} FROM evidence_log
             WHERE host_id = ?1 AND digest = ?2 AND kind = 'full' AND log_index < ?3
             ORDER BY log_index LIMIT 1"
        ))?;
        let mut out = Vec::new();
        for (h, d) in wanted {
            if let Some(m) = stmt
                .query_row(
                    params![
                        h,
                        d.as_bytes().as_slice(),
                        below.min(i64::MAX as u64) as i64
                    ],
                    meta_row,
                )
                .optional()?
            {
                out.push(m);
            }
        }
        out.sort_by_key(|e| e.log_index);
        out.dedup_by_key(|e| e.log_index);
        Ok(out)
    })
}

pub(super) fn log_bodies(s: &Sqlite, indexes: &[u64]) -> StoreResult<Vec<(u64, Vec<u8>)>> {
    s.read(|c| {
        let mut stmt = c.prepare_cached("SELECT body FROM evidence_log WHERE log_index = ?1")?;
        let mut out = Vec::with_capacity(indexes.len());
        for &i in indexes {
            if let Some(body) = stmt
                .query_row([i.min(i64::MAX as u64) as i64], |r| r.get(0))
                .optional()?
            {
                out.push((i, body));
            }
        }
        Ok(out)
    })
}

pub(super) fn checkpoints_between(
    s: &Sqlite,
    from: u64,
    to: u64,
) -> StoreResult<Vec<StoredCheckpoint>> {
    let rows: Vec<(i64, Vec<u8>, String, i64)> = s.read(|c| {
        c.prepare_cached(
            "SELECT size, root, note, at FROM checkpoints WHERE size >= ?1 AND size <= ?2 ORDER BY size",
        )?
        .query_map(
            params![
                from.min(i64::MAX as u64) as i64,
                to.min(i64::MAX as u64) as i64
            ],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )?
        .collect()
    })?;
    rows.into_iter()
        .map(super::sqlite_tree::checkpoint_row)
        .collect()
}

pub(super) fn leaf_hashes(s: &Sqlite, size: u64) -> StoreResult<Vec<Digest>> {
    s.read_store(|c| {
        let mut stmt = c
            .prepare("SELECT idx, hash FROM merkle_nodes WHERE level = 0 AND idx < ?1 ORDER BY idx")
            .map_err(super::sqlite::db)?;
        let mut rows = stmt
            .query([size.min(i64::MAX as u64) as i64])
            .map_err(super::sqlite::db)?;
        let mut out = Vec::with_capacity(usize::try_from(size).unwrap_or(0).min(1 << 24));
        while let Some(r) = rows.next().map_err(super::sqlite::db)? {
            let idx = r.get::<_, i64>(0).map_err(super::sqlite::db)? as u64;
            if idx != out.len() as u64 {
                return Err(StoreError::Corrupt(format!(
                    "Merkle leaf {} is missing",
                    out.len()
                )));
            }
            let hash: Vec<u8> = r.get(1).map_err(super::sqlite::db)?;
            out.push(digest_col(Some(hash))?.unwrap_or(Digest::ZERO));
        }
        Ok(out)
    })
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::*;

    #[test]
    fn a_store_from_before_policy_logging_logs_its_policy_versions_in_order_of_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let s = Sqlite::open(&path).unwrap();
        // Two versions as a store before migration 0006 kept them: no log entry, out of id order.
        let raw = Connection::open(&path).unwrap();
        raw.execute(
            "INSERT INTO policy_versions (at, policy) VALUES (20, '{\"v\":2}'), (10, '{\"v\":1}')",
            [],
        )
        .unwrap();
        assert_eq!(s.log_policy_versions("ed25519:server").unwrap(), 2);
        assert_eq!(s.log_policy_versions("ed25519:server").unwrap(), 0, "once");
        let policies = log_entries(
            &s,
            &EntryFilter {
                kinds: vec![EntryKind::Policy],
                hosts: None,
                received: None,
                below: u64::MAX,
                limit: 10,
            },
        )
        .unwrap();
        let bodies = log_bodies(&s, &[0, 1]).unwrap();
        assert_eq!(
            (
                policies.iter().map(|p| p.received_at).collect::<Vec<_>>(),
                bodies
            ),
            (
                vec![10, 20],
                vec![(0, b"{\"v\":1}".to_vec()), (1, b"{\"v\":2}".to_vec())]
            )
        );
        assert!(policies
            .iter()
            .all(|p| p.host_id == "-" && p.key_id == "ed25519:server" && p.seq.is_none()));
        assert_eq!(s.verify_log().unwrap().map(|(n, _)| n), Ok(2));
        assert_eq!(s.tree_head().unwrap().0, 2);
    }
}
