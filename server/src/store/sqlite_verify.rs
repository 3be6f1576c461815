//! The SQLite store's reads for deep verification (`verify-log --deep`): per host, where
//! `latest_facts` points, the latest `full` entry found by scanning the evidence log (with its
//! verbatim bytes), the current findings and the last finding transition per check, each page of
//! hosts read in one snapshot. The comparison is `domain::deep_verify`'s.

use rusqlite::{params, OptionalExtension};

use super::sqlite::Sqlite;
use super::StoreResult;
use crate::domain::deep_verify::{CheckVerdict, HostDerived};

fn verdict(r: &rusqlite::Row) -> rusqlite::Result<CheckVerdict> {
    Ok(CheckVerdict {
        check: r.get(0)?,
        status: r.get(1)?,
        reason: r.get(2)?,
    })
}

impl Sqlite {
    /// Up to `limit` hosts with ids after `after` (all hosts from the start with `None`), in
    /// host-id order, revoked ones included, read in one transaction.
    pub fn derived_hosts(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<HostDerived>> {
        self.read(|c| {
            // One snapshot for the page: a host's tables and its report are read together.
            let tx = c.unchecked_transaction()?;
            let hosts: Vec<(String, bool)> = tx
                .prepare(
                    "SELECT host_id, revoked_at IS NOT NULL FROM hosts
                     WHERE ?1 IS NULL OR host_id > ?1 ORDER BY host_id LIMIT ?2",
                )?
                .query_map(params![after, limit as i64], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            let mut pointer =
                tx.prepare("SELECT log_index FROM latest_facts WHERE host_id = ?1")?;
            let mut latest = tx.prepare(
                "SELECT log_index, body FROM evidence_log WHERE host_id = ?1 AND kind = 'full'
                 ORDER BY log_index DESC LIMIT 1",
            )?;
            let mut findings = tx.prepare(
                "SELECT check_id, status, reason FROM current_findings WHERE host_id = ?1
                 ORDER BY check_id",
            )?;
            let mut transitions = tx.prepare(
                "SELECT t.check_id, t.status, t.reason FROM finding_transitions t
                 JOIN (SELECT MAX(id) AS id FROM finding_transitions WHERE host_id = ?1
                       GROUP BY check_id) m ON t.id = m.id
                 ORDER BY t.check_id",
            )?;
            let mut out = Vec::with_capacity(hosts.len());
            for (host_id, revoked) in hosts {
                out.push(HostDerived {
                    latest_facts: pointer
                        .query_row([&host_id], |r| r.get::<_, i64>(0))
                        .optional()?
                        .map(|i| i as u64),
                    latest_full: latest
                        .query_row([&host_id], |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)))
                        .optional()?,
                    findings: findings
                        .query_map([&host_id], verdict)?
                        .collect::<rusqlite::Result<_>>()?,
                    last_transitions: transitions
                        .query_map([&host_id], verdict)?
                        .collect::<rusqlite::Result<_>>()?,
                    host_id,
                    revoked,
                });
            }
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use evidence_protocol::{CollectorName, Digest, Facts, Report, ReportKind};
    use rusqlite::Connection;

    use crate::domain::status::CheckIndex;
    use crate::service::verify::{deep_verify, DeepVerification};
    use crate::store::sqlite::SqliteStore;
    use crate::store::*;

    const FW: &str = "firewall.inbound_default_deny";

    async fn enroll(s: &SqliteStore, host: &str) {
        s.create_secret(&SecretRecord::issued(
            format!("s-{host}"),
            [7; 32],
            0,
            3_600,
            false,
            String::new(),
            None,
        ))
        .await
        .unwrap();
        s.enroll(&EnrollAttempt {
            secret_id: format!("s-{host}"),
            secret_hash: [7; 32],
            public_key: [host.len() as u8 + host.as_bytes()[0]; 32],
            key_id: format!("k-{host}"),
            identity: evidence_protocol::api::HostIdentity {
                machine_id: format!("m-{host}"),
                hostname: host.into(),
                hardware_serial: None,
            },
            agent_version: "1".into(),
            new_host_id: host.into(),
            now: 1,
        })
        .await
        .unwrap()
        .unwrap();
    }

    /// Appends a real full report (every collector failed with `reason`) with the findings its
    /// facts give under the default policy, as ingest does; answers its log index.
    async fn report(s: &SqliteStore, host: &str, seq: u64, reason: &str) -> u64 {
        let facts = Facts::all_failed(CollectorName::ALL, reason);
        let findings = crate::service::ingest::evaluate(&facts, &Default::default());
        let bytes = Report {
            host_id: host.into(),
            key_id: format!("k-{host}"),
            seq,
            prev_digest: None,
            collected_at: chrono::Utc::now(),
            agent_version: "1".into(),
            collector_versions: Default::default(),
            dropped_reports: 0,
            kind: ReportKind::Full { facts },
            witnessed: None,
        }
        .to_bytes();
        let item = AppendItem {
            host_id: host.into(),
            key_id: format!("k-{host}"),
            seq,
            prev_digest: None,
            digest: Digest::of(&bytes),
            bytes,
            collected_at: 1,
            received_at: 1 + seq as i64,
            dropped_reports: 0,
            agent_version: "1".into(),
            content: AppendContent::Full { findings },
            signature: None,
        };
        let signer = Arc::new(crate::service::checkpoints::NoteSigner::new(Arc::new(
            evidence_protocol::SigningKey::generate().unwrap(),
        )));
        s.append_reports(&[item], signer).await.unwrap().results[0]
            .as_ref()
            .unwrap()
            .log_index
    }

    /// Host `h` with two full reports (the second is the latest) and host `r`, revoked, with one.
    async fn two_hosts(path: &std::path::Path) -> SqliteStore {
        let s = SqliteStore::open(path).unwrap();
        enroll(&s, "h").await;
        enroll(&s, "r").await;
        report(&s, "h", 1, "unreadable").await;
        report(&s, "h", 2, "timed out").await;
        report(&s, "r", 1, "unreadable").await;
        assert!(s.revoke_host("r", "admin", 5).await.unwrap());
        s
    }

    async fn deep(s: &SqliteStore) -> (DeepVerification, Vec<String>) {
        let found = deep_verify(s, Arc::new(CheckIndex::new())).await.unwrap();
        let lines = found
            .differences
            .iter()
            .map(|d| d.message.clone())
            .collect();
        (found, lines)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_clean_store_verifies_deep_with_revoked_hosts_counted() {
        let dir = tempfile::tempdir().unwrap();
        let s = two_hosts(&dir.path().join("db.sqlite")).await;
        let (found, lines) = deep(&s).await;
        assert_eq!(lines, Vec::<String>::new());
        assert!(found.ok);
        let checks = crate::service::ingest::evaluate(
            &Facts::all_failed(CollectorName::ALL, "x"),
            &Default::default(),
        )
        .len() as u64;
        let c = &found.counts;
        assert_eq!(
            (
                c.hosts,
                c.revoked_hosts,
                c.reports_evaluated,
                c.findings,
                c.transitions
            ),
            (2, 1, 2, 2 * checks, 2 * checks)
        );
        assert_eq!(c.controls, 2 * CheckIndex::new().controls.len() as u64);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_edited_current_finding_is_named_with_the_control_and_transition_it_contradicts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let s = two_hosts(&path).await;
        Connection::open(&path)
            .unwrap()
            .execute(
                "UPDATE current_findings SET status = 'fail' WHERE host_id = 'h' AND check_id = ?1",
                [FW],
            )
            .unwrap();
        let (found, lines) = deep(&s).await;
        assert!(!found.ok);
        let finding = format!(
            "host h check {FW}: stored fail (\"timed out\"), facts give error (\"timed out\")"
        );
        assert!(lines.contains(&finding), "{lines:#?}");
        // The check's controls: an error leaves them unknown, a fail fails them.
        assert!(
            lines.iter().any(|l| l.starts_with("host h control ")
                && l.ends_with("stored findings give fail, facts give unknown")),
            "{lines:#?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("host h check {FW}: last transition error"))),
            "{lines:#?}"
        );
        assert!(lines.iter().all(|l| l.starts_with("host h ")), "{lines:#?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_deleted_finding_row_is_named_as_missing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let s = two_hosts(&path).await;
        Connection::open(&path)
            .unwrap()
            .execute(
                "DELETE FROM current_findings WHERE host_id = 'r' AND check_id = ?1",
                [FW],
            )
            .unwrap();
        let (_, lines) = deep(&s).await;
        let missing = format!(
            "host r (revoked) check {FW}: no stored finding, facts give error (\"unreadable\")"
        );
        assert_eq!(lines.first(), Some(&missing), "{lines:#?}");
        assert!(
            lines.contains(&format!(
                "host r (revoked) check {FW}: last transition error (\"unreadable\"), no current finding"
            )),
            "{lines:#?}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn latest_facts_pointing_at_an_older_report_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let s = two_hosts(&path).await;
        let raw = Connection::open(&path).unwrap();
        let (older, latest): (i64, i64) = raw
            .query_row(
                "SELECT MIN(log_index), MAX(log_index) FROM evidence_log WHERE host_id = 'h' AND kind = 'full'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        raw.execute(
            "UPDATE latest_facts SET log_index = ?1 WHERE host_id = 'h'",
            [older],
        )
        .unwrap();
        let (found, lines) = deep(&s).await;
        assert!(!found.ok);
        assert_eq!(
            lines,
            [format!(
                "host h latest_facts: points at entry {older}, but the latest full report in the log is entry {latest}"
            )]
        );
    }
}
