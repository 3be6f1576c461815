//! The SQLite implementation of [`Store`]: one file in the data directory, WAL mode, one writer
//! connection (behind a mutex; the ingest writer batches many reports per transaction) and a
//! small pool of read connections. [`Sqlite`] is the synchronous engine; [`SqliteStore`] runs
//! each of its calls on tokio's blocking pool and is what the server holds as a `dyn Store`. Migrations are the numbered SQL files under
//! `server/migrations/sqlite/`, embedded at build time and tracked in `schema_version`.

use std::path::Path;
use std::sync::{Arc, Mutex};

use evidence_protocol::Digest;
use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::sqlite_ingest::record_key_change;
use super::*;
use crate::domain::rules::{self, EnrollAction, EnrollInputs};

/// Numbered migrations, applied in order; never edit a released one, add the next.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/sqlite/0001_init.sql")),
    (2, include_str!("../../migrations/sqlite/0002_trust.sql")),
    (
        3,
        include_str!("../../migrations/sqlite/0003_drop_control_status.sql"),
    ),
    (4, include_str!("../../migrations/sqlite/0004_merkle.sql")),
    (
        5,
        include_str!("../../migrations/sqlite/0005_report_signatures.sql"),
    ),
    (
        6,
        include_str!("../../migrations/sqlite/0006_policy_log.sql"),
    ),
];

/// The synchronous SQLite engine: every method is one transaction.
pub struct Sqlite {
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    path: std::path::PathBuf,
}

pub(super) fn db(e: rusqlite::Error) -> StoreError {
    StoreError::Db(e.to_string())
}

pub(super) fn digest_col(v: Option<Vec<u8>>) -> StoreResult<Option<Digest>> {
    v.map(|b| {
        b.as_slice()
            .try_into()
            .map(Digest)
            .map_err(|_| StoreError::Corrupt("digest is not 32 bytes".into()))
    })
    .transpose()
}

/// Reads a typed state stored as its name: anything else is corrupt data, an error.
fn parse_column<T>(
    v: rusqlite::types::ValueRef<'_>,
    what: &str,
    parse: fn(&str) -> Option<T>,
) -> rusqlite::types::FromSqlResult<T> {
    let s = v.as_str()?;
    parse(s)
        .ok_or_else(|| rusqlite::types::FromSqlError::Other(format!("unknown {what} {s:?}").into()))
}

impl rusqlite::types::FromSql for KeyState {
    fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        parse_column(v, "key state", KeyState::parse)
    }
}

impl rusqlite::types::FromSql for Role {
    fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        parse_column(v, "token role", Role::parse)
    }
}

impl Sqlite {
    /// Opens (creating if needed) `path` and applies pending migrations.
    pub fn open(path: &Path) -> StoreResult<Self> {
        let mut conn = Self::connect(path)?;
        // The writer keeps a larger page cache than the readers.
        conn.execute_batch("PRAGMA cache_size=-32000").map_err(db)?;
        migrate(&mut conn)?;
        {
            let tx = conn.transaction().map_err(db)?;
            super::sqlite_tree::backfill(&tx)?;
            tx.commit().map_err(db)?;
        }
        Ok(Self {
            writer: Mutex::new(conn),
            readers: Mutex::new(Vec::new()),
            path: path.to_path_buf(),
        })
    }

    fn connect(path: &Path) -> StoreResult<Connection> {
        let conn = Connection::open(path).map_err(db)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;
             PRAGMA busy_timeout=10000; PRAGMA cache_size=-4000;",
        )
        .map_err(db)?;
        Ok(conn)
    }

    /// Benchmark population only: stop waiting for fsync on commit (a crash may lose the
    /// latest commits). The server never calls this.
    pub fn set_bulk_load(&self) -> StoreResult<()> {
        self.writer
            .lock()
            .expect("writer lock")
            .execute_batch("PRAGMA synchronous=OFF")
            .map_err(db)
    }

    /// Runs `f` on a pooled read connection.
    pub(super) fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> StoreResult<T> {
        let conn = self.readers.lock().expect("pool lock").pop();
        let conn = match conn {
            Some(c) => c,
            None => Self::connect(&self.path)?,
        };
        let out = f(&conn).map_err(db);
        let mut pool = self.readers.lock().expect("pool lock");
        if pool.len() < 8 {
            pool.push(conn);
        }
        out
    }

    /// Runs `f` (which reports its own errors) on a pooled read connection.
    pub(super) fn read_store<T>(
        &self,
        f: impl FnOnce(&Connection) -> StoreResult<T>,
    ) -> StoreResult<T> {
        let mut out = None;
        self.read(|c| {
            out = Some(f(c));
            Ok(())
        })?;
        out.expect("the read ran")
    }

    fn write<T>(&self, f: impl FnOnce(&Transaction) -> StoreResult<T>) -> StoreResult<T> {
        let mut conn = self.writer.lock().expect("writer lock");
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(db)?;
        let out = f(&tx)?;
        tx.commit().map_err(db)?;
        Ok(out)
    }
}

fn migrate(conn: &mut Connection) -> StoreResult<()> {
    conn.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        .map_err(db)?;
    let current: i64 = conn
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_version",
            [],
            |r| r.get(0),
        )
        .map_err(db)?;
    for (version, sql) in MIGRATIONS {
        if *version > current {
            let tx = conn.transaction().map_err(db)?;
            tx.execute_batch(sql).map_err(db)?;
            tx.execute(
                "INSERT INTO schema_version (version) VALUES (?1)",
                [version],
            )
            .map_err(db)?;
            tx.commit().map_err(db)?;
        }
    }
    Ok(())
}

fn secret_row(r: &rusqlite::Row) -> rusqlite::Result<SecretRecord> {
    let hash: Vec<u8> = r.get(1)?;
    Ok(SecretRecord {
        id: r.get(0)?,
        hash: hash.try_into().unwrap_or([0; 32]),
        created_at: r.get(2)?,
        expires_at: r.get(3)?,
        single_use: r.get(4)?,
        uses: r.get::<_, i64>(5)? as u64,
        revoked_at: r.get(6)?,
        note: r.get(7)?,
        host_id: r.get(8)?,
    })
}

const SECRET_COLS: &str =
    "id, hash, created_at, expires_at, single_use, uses, revoked_at, note, host_id";

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    constant_time_eq::constant_time_eq(a, b)
}

impl Sqlite {
    pub fn enroll(&self, a: &EnrollAttempt) -> StoreResult<Result<EnrollOutcome, EnrollRefusal>> {
        self.write(|tx| {
            let secret = tx
                .query_row(&format!("SELECT {SECRET_COLS} FROM enrollment_secrets WHERE id = ?1"), [&a.secret_id], secret_row)
                .optional()
                .map_err(db)?;
            let secret_matches = secret.as_ref().is_some_and(|s| ct_eq(&s.hash, &a.secret_hash));
            let host: Option<(String, Option<i64>)> = tx
                .query_row("SELECT host_id, revoked_at FROM hosts WHERE machine_id = ?1", [&a.identity.machine_id], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()
                .map_err(db)?;
            let key_owner: Option<(String, KeyState)> = tx
                .query_row("SELECT host_id, state FROM host_keys WHERE key_id = ?1", [&a.key_id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
                .map_err(db)?;
            let count = |sql: &str, arg: &str| -> StoreResult<u64> {
                tx.query_row(sql, [arg], |r| r.get::<_, i64>(0)).map(|n| n as u64).map_err(db)
            };
            let pending_for_host = match &host {
                Some((h, _)) => count("SELECT COUNT(*) FROM host_keys WHERE host_id = ?1 AND state = 'pending'", h)?,
                None => 0,
            };
            let pending_for_secret =
                count("SELECT COUNT(*) FROM host_keys WHERE secret_id = ?1 AND state = 'pending'", &a.secret_id)?;
            let inputs = EnrollInputs {
                secret: secret.as_ref(),
                secret_matches,
                host: host.as_ref().map(|(h, rev)| (h.as_str(), rev.is_some())),
                key_owner: key_owner.as_ref().map(|(h, s)| (h.as_str(), *s)),
                pending_for_host,
                pending_for_secret,
                now: a.now,
            };
            let action = match rules::decide_enrollment(&inputs) {
                Ok(action) => action,
                Err(refusal) => return Ok(Err(refusal)),
            };
            let host_id = host.as_ref().map(|h| h.0.clone()).unwrap_or_else(|| a.new_host_id.clone());
            let consume = |tx: &Transaction| -> StoreResult<()> {
                tx.execute("UPDATE enrollment_secrets SET uses = uses + 1 WHERE id = ?1", [&a.secret_id]).map_err(db)?;
                Ok(())
            };
            let authorized_by = format!("enrollment secret {}", a.secret_id);
            let record = |tx: &Transaction, event, previous: Option<&str>| {
                record_key_change(
                    tx,
                    &KeyChange {
                        host_id: &host_id,
                        event,
                        key_id: &a.key_id,
                        public_key: &a.public_key,
                        previous_key_id: previous,
                        authorized_by: &authorized_by,
                        at: a.now,
                        proof: None,
                    },
                )
            };
            let event = match action {
                EnrollAction::Existing => None,
                EnrollAction::NewHost => {
                    consume(tx)?;
                    tx.execute(
                        "INSERT INTO hosts (host_id, machine_id, hostname, hardware_serial, enrolled_at, agent_version)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        params![host_id, a.identity.machine_id, a.identity.hostname, a.identity.hardware_serial, a.now, a.agent_version],
                    )
                    .map_err(db)?;
                    tx.execute(
                        "INSERT INTO host_keys (key_id, host_id, public_key, state, created_at, secret_id) VALUES (?1, ?2, ?3, 'active', ?4, ?5)",
                        params![a.key_id, host_id, a.public_key.as_slice(), a.now, a.secret_id],
                    )
                    .map_err(db)?;
                    record(tx, KeyEventKind::Enrolled, None)?;
                    Some(KeyEventKind::Enrolled)
                }
                EnrollAction::Rekey => {
                    consume(tx)?;
                    let previous = activate_key(tx, &host_id, &a.key_id, &a.public_key, &a.secret_id, a.now)?;
                    tx.execute(
                        "UPDATE hosts SET hostname = ?2, hardware_serial = ?3 WHERE host_id = ?1",
                        params![host_id, a.identity.hostname, a.identity.hardware_serial],
                    )
                    .map_err(db)?;
                    record(tx, KeyEventKind::Rekeyed, previous.as_deref())?;
                    Some(KeyEventKind::Rekeyed)
                }
                EnrollAction::Pending => {
                    let inserted = tx.execute(
                        "INSERT INTO host_keys (key_id, host_id, public_key, state, created_at, secret_id) VALUES (?1, ?2, ?3, 'pending', ?4, ?5)
                         ON CONFLICT (key_id) DO NOTHING",
                        params![a.key_id, host_id, a.public_key.as_slice(), a.now, a.secret_id],
                    )
                    .map_err(db)?;
                    if inserted == 1 {
                        record(tx, KeyEventKind::Pending, None)?;
                    }
                    return Ok(Err(EnrollRefusal::KeyChangeNeedsApproval { host_id }));
                }
            };
            let (last_seq, last_digest) = last_of(tx, &host_id)?;
            Ok(Ok(EnrollOutcome { host_id, key_id: a.key_id.clone(), last_seq, last_digest, event }))
        })
    }

    pub fn keys(&self) -> StoreResult<Vec<KeyRecord>> {
        self.read(|c| {
            let mut stmt = c.prepare(
                "SELECT k.key_id, k.host_id, k.public_key, k.state, h.revoked_at IS NOT NULL, h.enrolled_at FROM host_keys k JOIN hosts h USING (host_id)",
            )?;
            let rows = stmt.query_map([], |r| {
                let pk: Vec<u8> = r.get(2)?;
                Ok(KeyRecord {
                    key_id: r.get(0)?,
                    host_id: r.get(1)?,
                    public_key: pk.try_into().unwrap_or([0; 32]),
                    state: r.get(3)?,
                    host_revoked: r.get(4)?,
                    host_enrolled_at: r.get(5)?,
                })
            })?;
            rows.collect()
        })
    }

    pub fn approve_key(
        &self,
        host_id: &str,
        key_id: &str,
        now: i64,
        by: &str,
    ) -> StoreResult<bool> {
        self.write(|tx| {
            let pending: Option<(KeyState, Vec<u8>)> = tx
                .query_row(
                    "SELECT state, public_key FROM host_keys WHERE key_id = ?1 AND host_id = ?2",
                    params![key_id, host_id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(db)?;
            let Some((KeyState::Pending, public_key)) = pending else {
                return Ok(false);
            };
            let public_key: [u8; 32] = public_key
                .as_slice()
                .try_into()
                .map_err(|_| StoreError::Corrupt("public key is not 32 bytes".into()))?;
            let previous = activate_key(tx, host_id, key_id, &public_key, "", now)?;
            let authorized_by = format!("admin token {by}");
            record_key_change(
                tx,
                &KeyChange {
                    host_id,
                    event: KeyEventKind::Approved,
                    key_id,
                    public_key: &public_key,
                    previous_key_id: previous.as_deref(),
                    authorized_by: &authorized_by,
                    at: now,
                    proof: None,
                },
            )?;
            Ok(true)
        })
    }

    pub fn rotate_key(&self, r: &KeyRotation) -> StoreResult<Result<EnrollOutcome, RotateRefusal>> {
        self.write(|tx| {
            let revoked: Option<Option<i64>> = tx
                .query_row(
                    "SELECT revoked_at FROM hosts WHERE host_id = ?1",
                    [&r.host_id],
                    |row| row.get(0),
                )
                .optional()
                .map_err(db)?;
            match revoked {
                None => return Ok(Err(RotateRefusal::KeyNotActive)),
                Some(Some(_)) => return Ok(Err(RotateRefusal::HostRevoked)),
                Some(None) => {}
            }
            let state = |key_id: &str| -> StoreResult<Option<(String, KeyState)>> {
                tx.query_row(
                    "SELECT host_id, state FROM host_keys WHERE key_id = ?1",
                    [key_id],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()
                .map_err(db)
            };
            if state(&r.previous_key_id)? != Some((r.host_id.clone(), KeyState::Active)) {
                return Ok(Err(RotateRefusal::KeyNotActive));
            }
            match state(&r.key_id)? {
                None => {}
                Some((h, KeyState::Pending)) if h == r.host_id => {}
                Some(_) => return Ok(Err(RotateRefusal::KeyInUse)),
            }
            let previous = activate_key(tx, &r.host_id, &r.key_id, &r.public_key, "", r.now)?;
            let authorized_by = format!("rotation signed by {}", r.previous_key_id);
            record_key_change(
                tx,
                &KeyChange {
                    host_id: &r.host_id,
                    event: KeyEventKind::Rotated,
                    key_id: &r.key_id,
                    public_key: &r.public_key,
                    previous_key_id: previous.as_deref(),
                    authorized_by: &authorized_by,
                    at: r.now,
                    proof: Some(&r.proof),
                },
            )?;
            let (last_seq, last_digest) = last_of(tx, &r.host_id)?;
            Ok(Ok(EnrollOutcome {
                host_id: r.host_id.clone(),
                key_id: r.key_id.clone(),
                last_seq,
                last_digest,
                event: Some(KeyEventKind::Rotated),
            }))
        })
    }

    /// Revokes a host (once: a second call changes nothing); the revocation is a key event in
    /// the evidence log naming the key that was active, so a bundle proves it.
    pub fn revoke_host(&self, host_id: &str, authorized_by: &str, now: i64) -> StoreResult<bool> {
        self.write(|tx| {
            let revoked_at: Option<Option<i64>> = tx
                .query_row(
                    "SELECT revoked_at FROM hosts WHERE host_id = ?1",
                    [host_id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db)?;
            match revoked_at {
                None => return Ok(false),
                Some(Some(_)) => return Ok(true),
                Some(None) => {}
            }
            tx.execute(
                "UPDATE hosts SET revoked_at = ?2 WHERE host_id = ?1",
                params![host_id, now],
            )
            .map_err(db)?;
            let active: Option<(String, Vec<u8>)> = tx
                .query_row(
                    "SELECT key_id, public_key FROM host_keys WHERE host_id = ?1 AND state = 'active'",
                    [host_id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(db)?;
            if let Some((key_id, public_key)) = active {
                let public_key: [u8; 32] = public_key
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("public key is not 32 bytes".into()))?;
                record_key_change(
                    tx,
                    &KeyChange {
                        host_id,
                        event: KeyEventKind::Revoked,
                        key_id: &key_id,
                        public_key: &public_key,
                        previous_key_id: None,
                        authorized_by,
                        at: now,
                        proof: None,
                    },
                )?;
            }
            Ok(true)
        })
    }

    pub fn create_secret(&self, s: &SecretRecord) -> StoreResult<()> {
        self.write(|tx| {
            tx.execute(
                &format!("INSERT INTO enrollment_secrets ({SECRET_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"),
                params![s.id, s.hash.as_slice(), s.created_at, s.expires_at, s.single_use, s.uses as i64, s.revoked_at, s.note, s.host_id],
            )
            .map_err(db)?;
            Ok(())
        })
    }

    pub fn secrets(&self) -> StoreResult<Vec<SecretRecord>> {
        self.read(|c| {
            c.prepare(&format!(
                "SELECT {SECRET_COLS} FROM enrollment_secrets ORDER BY created_at, id"
            ))?
            .query_map([], secret_row)?
            .collect()
        })
    }

    pub fn revoke_secret(&self, id: &str, now: i64) -> StoreResult<bool> {
        self.write(|tx| {
            Ok(tx
                .execute("UPDATE enrollment_secrets SET revoked_at = COALESCE(revoked_at, ?2) WHERE id = ?1", params![id, now])
                .map_err(db)?
                == 1)
        })
    }

    pub fn create_token(&self, t: &TokenRecord) -> StoreResult<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO api_tokens (id, hash, role, name, created_at, revoked_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![t.id, t.hash.as_slice(), t.role.as_str(), t.name, t.created_at, t.revoked_at],
            )
            .map_err(db)?;
            Ok(())
        })
    }

    pub fn tokens(&self) -> StoreResult<Vec<TokenRecord>> {
        self.read(|c| {
            c.prepare("SELECT id, hash, role, name, created_at, revoked_at FROM api_tokens ORDER BY created_at, id")?
                .query_map([], |r| {
                    let hash: Vec<u8> = r.get(1)?;
                    Ok(TokenRecord {
                        id: r.get(0)?,
                        hash: hash.try_into().unwrap_or([0; 32]),
                        role: r.get(2)?,
                        name: r.get(3)?,
                        created_at: r.get(4)?,
                        revoked_at: r.get(5)?,
                    })
                })?
                .collect()
        })
    }

    pub fn revoke_token(&self, id: &str, now: i64) -> StoreResult<TokenRevocation> {
        self.write(|tx| {
            let role: Option<Role> = tx
                .query_row("SELECT role FROM api_tokens WHERE id = ?1 AND revoked_at IS NULL", [id], |r| r.get(0))
                .optional()
                .map_err(db)?;
            match role {
                None => {
                    let known: bool = tx
                        .query_row("SELECT COUNT(*) > 0 FROM api_tokens WHERE id = ?1", [id], |r| r.get(0))
                        .map_err(db)?;
                    return Ok(if known { TokenRevocation::Revoked } else { TokenRevocation::NotFound });
                }
                Some(Role::Admin) => {
                    let admins: i64 = tx
                        .query_row("SELECT COUNT(*) FROM api_tokens WHERE role = 'admin' AND revoked_at IS NULL", [], |r| r.get(0))
                        .map_err(db)?;
                    if admins <= 1 {
                        return Ok(TokenRevocation::LastAdmin);
                    }
                }
                Some(Role::Reader) => {}
            }
            tx.execute("UPDATE api_tokens SET revoked_at = ?2 WHERE id = ?1", params![id, now]).map_err(db)?;
            Ok(TokenRevocation::Revoked)
        })
    }

    pub fn record_audit(&self, e: &AuditRecord) -> StoreResult<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO audit_events (at, actor, event, target, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![e.at, e.actor, e.event, e.target, e.detail],
            )
            .map_err(db)?;
            Ok(())
        })
    }

    pub fn audit(&self, limit: usize) -> StoreResult<Vec<AuditRecord>> {
        self.read(|c| {
            c.prepare("SELECT at, actor, event, target, detail FROM audit_events ORDER BY id DESC LIMIT ?1")?
                .query_map([limit as i64], |r| {
                    Ok(AuditRecord { at: r.get(0)?, actor: r.get(1)?, event: r.get(2)?, target: r.get(3)?, detail: r.get(4)? })
                })?
                .collect()
        })
    }

    pub fn append_reports(
        &self,
        batch: &[AppendItem],
        signer: &dyn CheckpointSigner,
    ) -> StoreResult<AppendBatch> {
        self.write(|tx| {
            let mut head = super::sqlite_ingest::log_head(tx)?;
            let before = super::sqlite_tree::edge(tx)?;
            let mut leaves = Vec::with_capacity(batch.len());
            let mut results = Vec::with_capacity(batch.len());
            for item in batch {
                results.push(super::sqlite_ingest::append_one(
                    tx,
                    item,
                    &mut head,
                    &mut leaves,
                )?);
            }
            if leaves.is_empty() {
                return Ok(AppendBatch {
                    results,
                    growth: None,
                });
            }
            let mut edge = before.clone();
            leaves.iter().for_each(|leaf| edge.push(*leaf));
            let (size, root) = (edge.size(), edge.root());
            let checkpoint = StoredCheckpoint {
                size,
                root,
                note: signer.sign(size, &root).map_err(StoreError::Signing)?,
                at: crate::time::now_us(),
            };
            super::sqlite_tree::insert_checkpoint(tx, &checkpoint)?;
            Ok(AppendBatch {
                results,
                growth: Some(TreeGrowth {
                    before,
                    leaves,
                    checkpoint,
                }),
            })
        })
    }

    pub fn apply_findings(&self, updates: &[FindingsUpdate], at: i64) -> StoreResult<()> {
        self.write(|tx| {
            for u in updates {
                super::sqlite_ingest::apply_host_findings(tx, &u.host_id, &u.findings, at, None)?;
            }
            Ok(())
        })
    }

    pub fn hosts(&self) -> StoreResult<Vec<HostSummary>> {
        self.read(|c| {
            c.prepare(&format!(
                "SELECT {HOST_COLS} FROM hosts ORDER BY hostname, host_id"
            ))?
            .query_map([], host_row)?
            .collect()
        })
    }

    pub fn host(&self, host_id: &str) -> StoreResult<Option<HostDetail>> {
        super::sqlite_reads::host(self, host_id)
    }

    pub fn latest_facts(&self) -> StoreResult<Vec<(String, Vec<u8>)>> {
        self.read(|c| {
            c.prepare(
                "SELECT l.host_id, e.body FROM latest_facts l
                 JOIN evidence_log e ON e.log_index = l.log_index ORDER BY l.host_id",
            )?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect()
        })
    }

    pub fn for_each_host_at(&self, at: i64, f: &mut dyn FnMut(HostFindings)) -> StoreResult<()> {
        super::sqlite_reads::for_each_host_at(self, at, f)
    }

    pub fn findings_for_checks(&self, checks: &[String]) -> StoreResult<Vec<StoredFinding>> {
        super::sqlite_reads::findings_for_checks(self, checks)
    }

    pub fn report_bytes(&self, log_index: u64) -> StoreResult<Option<Vec<u8>>> {
        self.read(|c| {
            c.query_row(
                "SELECT body FROM evidence_log WHERE log_index = ?1",
                [log_index as i64],
                |r| r.get(0),
            )
            .optional()
        })
    }

    pub fn verify_log(&self) -> StoreResult<Result<(u64, Digest), LogBreak>> {
        super::sqlite_reads::verify_log(self)
    }

    pub fn counts(&self) -> StoreResult<Counts> {
        self.read(|c| {
            let n = |sql: &str| {
                c.query_row(sql, [], |r| r.get::<_, i64>(0))
                    .map(|v| v as u64)
            };
            Ok(Counts {
                hosts: n("SELECT COUNT(*) FROM hosts")?,
                revoked_hosts: n("SELECT COUNT(*) FROM hosts WHERE revoked_at IS NOT NULL")?,
                // The log's length (no scan) less its key events and policy versions.
                reports: n("SELECT COALESCE(MAX(log_index) + 1, 0) - (SELECT COUNT(log_index) FROM key_events)
                            - (SELECT COUNT(log_index) FROM policy_versions) FROM evidence_log")?,
                gaps: n("SELECT COUNT(*) FROM gaps")?,
                transitions: n("SELECT COALESCE(MAX(id), 0) FROM finding_transitions")?,
                pending_keys: n("SELECT COUNT(*) FROM host_keys WHERE state = 'pending'")?,
            })
        })
    }

    /// Benchmarks only: appends bare leaf hashes to the Merkle tree (no log entries), so the
    /// proof benchmark builds a tree of ten million leaves in minutes.
    pub fn append_tree_leaves_for_bench(&self, leaves: &[Digest]) -> StoreResult<()> {
        self.write(|tx| {
            let first =
                evidence_protocol::LeafHashes::len(&super::sqlite_tree::StoredTree::open(tx)?);
            for (index, leaf) in (first..).zip(leaves) {
                super::sqlite_tree::add_leaf_hash(tx, index, *leaf)?;
            }
            Ok(())
        })
    }

    pub fn tree_head(&self) -> StoreResult<(u64, Digest)> {
        self.read_store(super::sqlite_tree::head)
    }

    pub fn inclusion_proof(
        &self,
        index: u64,
        size: u64,
    ) -> StoreResult<Option<(Digest, Vec<Digest>)>> {
        self.read_store(|c| {
            let tree = super::sqlite_tree::StoredTree::open(c)?;
            let proof = evidence_protocol::merkle::inclusion_proof(index, size, &tree)
                .ok()
                .map(|p| (evidence_protocol::merkle::LeafHashes::leaf(&tree, index), p));
            tree.finish(proof)
        })
    }

    pub fn consistency_proof(&self, from: u64, to: u64) -> StoreResult<Option<Vec<Digest>>> {
        self.read_store(|c| {
            let tree = super::sqlite_tree::StoredTree::open(c)?;
            let proof = evidence_protocol::merkle::consistency_proof(from, to, &tree).ok();
            tree.finish(proof)
        })
    }

    pub fn record_checkpoint(&self, cp: &StoredCheckpoint) -> StoreResult<()> {
        self.write(|tx| super::sqlite_tree::insert_checkpoint(tx, cp))
    }

    pub fn latest_checkpoint(&self) -> StoreResult<Option<StoredCheckpoint>> {
        self.read_store(super::sqlite_tree::latest_checkpoint)
    }

    pub fn checkpoint(&self, size: u64) -> StoreResult<Option<StoredCheckpoint>> {
        self.read_store(|c| super::sqlite_tree::checkpoint(c, size))
    }

    pub fn set_policy(&self, policy_json: &str, at: i64, key_id: &str) -> StoreResult<u64> {
        self.write(|tx| super::sqlite_ingest::record_policy(tx, policy_json, at, key_id))
    }

    pub fn log_policy_versions(&self, key_id: &str) -> StoreResult<u64> {
        self.write(|tx| super::sqlite_ingest::log_policy_versions(tx, key_id))
    }

    pub fn policy_at(&self, at: i64) -> StoreResult<Option<String>> {
        self.read(|c| {
            c.query_row("SELECT policy FROM policy_versions WHERE at <= ?1 ORDER BY at DESC, id DESC LIMIT 1", [at], |r| r.get(0))
                .optional()
        })
    }
}

/// [`Sqlite`] as an async [`Store`]: each call runs on tokio's blocking pool.
#[derive(Clone)]
pub struct SqliteStore {
    db: Arc<Sqlite>,
}

impl SqliteStore {
    /// Opens (creating if needed) `path` and applies pending migrations.
    pub fn open(path: &Path) -> StoreResult<Self> {
        Ok(Self {
            db: Arc::new(Sqlite::open(path)?),
        })
    }

    /// The synchronous engine (benchmark population, tests).
    pub fn engine(&self) -> &Sqlite {
        &self.db
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Sqlite) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(|e| StoreError::Db(format!("store task failed: {e}")))?
    }
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn enroll(
        &self,
        attempt: &EnrollAttempt,
    ) -> StoreResult<Result<EnrollOutcome, EnrollRefusal>> {
        let a = attempt.clone();
        self.run(move |db| db.enroll(&a)).await
    }
    async fn keys(&self) -> StoreResult<Vec<KeyRecord>> {
        self.run(|db| db.keys()).await
    }
    async fn approve_key(
        &self,
        host_id: &str,
        key_id: &str,
        now: i64,
        by: &str,
    ) -> StoreResult<bool> {
        let (h, k, b) = (host_id.to_owned(), key_id.to_owned(), by.to_owned());
        self.run(move |db| db.approve_key(&h, &k, now, &b)).await
    }
    async fn rotate_key(
        &self,
        rotation: &KeyRotation,
    ) -> StoreResult<Result<EnrollOutcome, RotateRefusal>> {
        let r = rotation.clone();
        self.run(move |db| db.rotate_key(&r)).await
    }
    async fn revoke_host(&self, host_id: &str, authorized_by: &str, now: i64) -> StoreResult<bool> {
        let (h, by) = (host_id.to_owned(), authorized_by.to_owned());
        self.run(move |db| db.revoke_host(&h, &by, now)).await
    }
    async fn create_secret(&self, secret: &SecretRecord) -> StoreResult<()> {
        let s = secret.clone();
        self.run(move |db| db.create_secret(&s)).await
    }
    async fn secrets(&self) -> StoreResult<Vec<SecretRecord>> {
        self.run(|db| db.secrets()).await
    }
    async fn revoke_secret(&self, id: &str, now: i64) -> StoreResult<bool> {
        let id = id.to_owned();
        self.run(move |db| db.revoke_secret(&id, now)).await
    }
    async fn create_token(&self, token: &TokenRecord) -> StoreResult<()> {
        let t = token.clone();
        self.run(move |db| db.create_token(&t)).await
    }
    async fn tokens(&self) -> StoreResult<Vec<TokenRecord>> {
        self.run(|db| db.tokens()).await
    }
    async fn revoke_token(&self, id: &str, now: i64) -> StoreResult<TokenRevocation> {
        let id = id.to_owned();
        self.run(move |db| db.revoke_token(&id, now)).await
    }
    async fn record_audit(&self, event: &AuditRecord) -> StoreResult<()> {
        let e = event.clone();
        self.run(move |db| db.record_audit(&e)).await
    }
    async fn audit(&self, limit: usize) -> StoreResult<Vec<AuditRecord>> {
        self.run(move |db| db.audit(limit)).await
    }
    async fn append_reports(
        &self,
        batch: &[AppendItem],
        signer: Arc<dyn CheckpointSigner>,
    ) -> StoreResult<AppendBatch> {
        let b = batch.to_vec();
        self.run(move |db| db.append_reports(&b, signer.as_ref()))
            .await
    }
    async fn apply_findings(&self, updates: &[FindingsUpdate], at: i64) -> StoreResult<()> {
        let u = updates.to_vec();
        self.run(move |db| db.apply_findings(&u, at)).await
    }
    async fn hosts(&self) -> StoreResult<Vec<HostSummary>> {
        self.run(|db| db.hosts()).await
    }
    async fn host(&self, host_id: &str) -> StoreResult<Option<HostDetail>> {
        let h = host_id.to_owned();
        self.run(move |db| db.host(&h)).await
    }
    async fn latest_facts(&self) -> StoreResult<Vec<(String, Vec<u8>)>> {
        self.run(|db| db.latest_facts()).await
    }
    async fn fleet_at(
        &self,
        at: i64,
        index: Arc<CheckIndex>,
    ) -> StoreResult<Vec<(String, HostState)>> {
        self.run(move |db| {
            let mut states = Vec::new();
            db.for_each_host_at(at, &mut |h| {
                let state = HostState::from_store(&h, &index);
                states.push((h.host_id, state));
            })?;
            Ok(states)
        })
        .await
    }
    async fn findings_for_checks(&self, checks: &[String]) -> StoreResult<Vec<StoredFinding>> {
        let c = checks.to_vec();
        self.run(move |db| db.findings_for_checks(&c)).await
    }
    async fn report_bytes(&self, log_index: u64) -> StoreResult<Option<Vec<u8>>> {
        self.run(move |db| db.report_bytes(log_index)).await
    }
    async fn verify_log(&self) -> StoreResult<Result<(u64, Digest), LogBreak>> {
        self.run(|db| db.verify_log()).await
    }
    async fn derived_hosts(
        &self,
        after: Option<String>,
        limit: usize,
    ) -> StoreResult<Vec<crate::domain::deep_verify::HostDerived>> {
        self.run(move |db| db.derived_hosts(after.as_deref(), limit))
            .await
    }
    async fn counts(&self) -> StoreResult<Counts> {
        self.run(|db| db.counts()).await
    }
    async fn tree_head(&self) -> StoreResult<(u64, Digest)> {
        self.run(|db| db.tree_head()).await
    }
    async fn inclusion_proof(
        &self,
        index: u64,
        size: u64,
    ) -> StoreResult<Option<(Digest, Vec<Digest>)>> {
        self.run(move |db| db.inclusion_proof(index, size)).await
    }
    async fn consistency_proof(&self, from: u64, to: u64) -> StoreResult<Option<Vec<Digest>>> {
        self.run(move |db| db.consistency_proof(from, to)).await
    }
    async fn record_checkpoint(&self, checkpoint: &StoredCheckpoint) -> StoreResult<()> {
        let cp = checkpoint.clone();
        self.run(move |db| db.record_checkpoint(&cp)).await
    }
    async fn latest_checkpoint(&self) -> StoreResult<Option<StoredCheckpoint>> {
        self.run(|db| db.latest_checkpoint()).await
    }
    async fn checkpoint(&self, size: u64) -> StoreResult<Option<StoredCheckpoint>> {
        self.run(move |db| db.checkpoint(size)).await
    }
    async fn set_policy(&self, policy_json: &str, at: i64, key_id: &str) -> StoreResult<u64> {
        let (p, k) = (policy_json.to_owned(), key_id.to_owned());
        self.run(move |db| db.set_policy(&p, at, &k)).await
    }
    async fn log_policy_versions(&self, key_id: &str) -> StoreResult<u64> {
        let k = key_id.to_owned();
        self.run(move |db| db.log_policy_versions(&k)).await
    }
    async fn log_entries(&self, filter: &EntryFilter) -> StoreResult<Vec<LogEntryMeta>> {
        let f = filter.clone();
        self.run(move |db| super::sqlite_export::log_entries(db, &f))
            .await
    }
    async fn last_reports_before(
        &self,
        hosts: Option<&[String]>,
        before: i64,
        below: u64,
    ) -> StoreResult<Vec<LogEntryMeta>> {
        let h = hosts.map(<[String]>::to_vec);
        self.run(move |db| {
            super::sqlite_export::last_reports_before(db, h.as_deref(), before, below)
        })
        .await
    }
    async fn full_reports_by_digest(
        &self,
        wanted: &[(String, Digest)],
        below: u64,
    ) -> StoreResult<Vec<LogEntryMeta>> {
        let w = wanted.to_vec();
        self.run(move |db| super::sqlite_export::full_reports_by_digest(db, &w, below))
            .await
    }
    async fn log_bodies(&self, indexes: &[u64]) -> StoreResult<Vec<(u64, Vec<u8>)>> {
        let i = indexes.to_vec();
        self.run(move |db| super::sqlite_export::log_bodies(db, &i))
            .await
    }
    async fn checkpoints_between(&self, from: u64, to: u64) -> StoreResult<Vec<StoredCheckpoint>> {
        self.run(move |db| super::sqlite_export::checkpoints_between(db, from, to))
            .await
    }
    async fn leaf_hashes(&self, size: u64) -> StoreResult<Vec<Digest>> {
        self.run(move |db| super::sqlite_export::leaf_hashes(db, size))
            .await
    }
    async fn policy_at(&self, at: i64) -> StoreResult<Option<String>> {
        self.run(move |db| db.policy_at(at)).await
    }
}

/// Makes `key_id` the host's only active key (inserting it when new), retiring the previous
/// active key; returns the previous key's id.
fn activate_key(
    tx: &Transaction,
    host_id: &str,
    key_id: &str,
    public_key: &[u8; 32],
    secret_id: &str,
    now: i64,
) -> StoreResult<Option<String>> {
    let previous: Option<String> = tx
        .query_row(
            "SELECT key_id FROM host_keys WHERE host_id = ?1 AND state = 'active'",
            [host_id],
            |r| r.get(0),
        )
        .optional()
        .map_err(db)?;
    tx.execute(
        "UPDATE host_keys SET state = 'retired', retired_at = ?2 WHERE host_id = ?1 AND state = 'active'",
        params![host_id, now],
    )
    .map_err(db)?;
    tx.execute(
        "INSERT INTO host_keys (key_id, host_id, public_key, state, created_at, secret_id) VALUES (?1, ?2, ?3, 'active', ?4, NULLIF(?5, ''))
         ON CONFLICT (key_id) DO UPDATE SET state = 'active'",
        params![key_id, host_id, public_key.as_slice(), now, secret_id],
    )
    .map_err(db)?;
    Ok(previous)
}

/// The host's last accepted sequence number and report digest.
fn last_of(tx: &Transaction, host_id: &str) -> StoreResult<(u64, Option<Digest>)> {
    let (seq, digest): (i64, Option<Vec<u8>>) = tx
        .query_row(
            "SELECT last_seq, last_digest FROM hosts WHERE host_id = ?1",
            [host_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(db)?;
    Ok((seq as u64, digest_col(digest)?))
}

pub(super) const HOST_COLS: &str =
    "host_id, machine_id, hostname, hardware_serial, enrolled_at, revoked_at, last_seen, last_seq, agent_version";

pub(super) fn host_row(r: &rusqlite::Row) -> rusqlite::Result<HostSummary> {
    Ok(HostSummary {
        host_id: r.get(0)?,
        machine_id: r.get(1)?,
        hostname: r.get(2)?,
        hardware_serial: r.get(3)?,
        enrolled_at: r.get(4)?,
        revoked_at: r.get(5)?,
        last_seen: r.get(6)?,
        last_seq: r.get::<_, i64>(7)? as u64,
        agent_version: r.get(8)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Host `h` (key `k`) enrolled at time 1, then its reports `r1`..`r3`: four log entries.
    fn enrolled_with_three_reports(s: &Sqlite) {
        s.create_secret(&SecretRecord::issued(
            "s".into(),
            [7; 32],
            0,
            3_600,
            false,
            String::new(),
            None,
        ))
        .unwrap();
        s.enroll(&EnrollAttempt {
            secret_id: "s".into(),
            secret_hash: [7; 32],
            public_key: [1; 32],
            key_id: "k".into(),
            identity: evidence_protocol::api::HostIdentity {
                machine_id: "m".into(),
                hostname: "h".into(),
                hardware_serial: None,
            },
            agent_version: "1".into(),
            new_host_id: "h".into(),
            now: 1,
        })
        .unwrap()
        .unwrap();
        for seq in 1..=3u64 {
            let body = format!("r{seq}").into_bytes();
            let item = AppendItem {
                host_id: "h".into(),
                key_id: "k".into(),
                seq,
                prev_digest: None,
                digest: Digest::of(&body),
                bytes: body,
                collected_at: 1,
                received_at: 1,
                dropped_reports: 0,
                agent_version: "1".into(),
                content: AppendContent::Full { findings: vec![] },
                signature: None,
            };
            let signer = crate::service::checkpoints::NoteSigner::new(Arc::new(
                evidence_protocol::SigningKey::generate().unwrap(),
            ));
            s.append_reports(&[item], &signer)
                .unwrap()
                .results
                .remove(0)
                .unwrap();
        }
    }

    #[test]
    fn changing_or_deleting_a_stored_report_breaks_the_log_verification() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let s = Sqlite::open(&path).unwrap();
        enrolled_with_three_reports(&s);
        assert!(s.verify_log().unwrap().is_ok());
        let raw = Connection::open(&path).unwrap();
        raw.execute(
            "UPDATE evidence_log SET body = X'00' WHERE log_index = 1",
            [],
        )
        .unwrap();
        assert_eq!(
            s.verify_log().unwrap().unwrap_err().log_index,
            1,
            "changed bytes"
        );
        raw.execute("DELETE FROM evidence_log WHERE log_index = 1", [])
            .unwrap();
        assert_eq!(
            s.verify_log().unwrap().unwrap_err().log_index,
            2,
            "deleted entry"
        );
    }

    #[test]
    fn removing_the_newest_entries_after_a_checkpoint_breaks_the_log_verification() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let s = Sqlite::open(&path).unwrap();
        enrolled_with_three_reports(&s);
        let (size, root) = s.tree_head().unwrap();
        s.record_checkpoint(&StoredCheckpoint {
            size,
            root,
            note: String::new(),
            at: 1,
        })
        .unwrap();
        assert_eq!(s.verify_log().unwrap().map(|(n, _)| n), Ok(4));
        let raw = Connection::open(&path).unwrap();
        let set_seq = |seq: i64| {
            raw.execute(
                "UPDATE evidence_log SET seq = ?1 WHERE log_index = 2",
                [seq],
            )
            .unwrap()
        };
        // An entry's field (not its bytes) edited: the leaf recorded at append names it.
        set_seq(9);
        let broken = s.verify_log().unwrap().unwrap_err();
        assert_eq!(broken.log_index, 2);
        assert!(broken.problem.contains("Merkle leaf"), "{}", broken.problem);
        // The recorded leaf rewritten to match: the signed checkpoint's root no longer follows.
        let forged = crate::domain::log_entry::LogLeaf {
            kind: evidence_protocol::EntryKind::Full,
            host_id: "h",
            key_id: "k",
            seq: Some(9),
            received_at: 1,
            digest: &Digest::of(b"r2"),
        }
        .hash();
        raw.execute(
            "UPDATE merkle_nodes SET hash = ?1 WHERE level = 0 AND idx = 2",
            [forged.as_bytes().as_slice()],
        )
        .unwrap();
        let broken = s.verify_log().unwrap().unwrap_err();
        assert_eq!(broken.log_index, 3);
        assert!(
            broken.problem.contains("root of the checkpoint"),
            "{}",
            broken.problem
        );
        // The hash chain alone cannot tell that the newest entry is gone; the checkpoint can.
        raw.execute("DELETE FROM evidence_log WHERE log_index = 3", [])
            .unwrap();
        set_seq(2);
        raw.execute("DELETE FROM merkle_nodes", []).unwrap();
        super::super::sqlite_tree::backfill(&raw).unwrap();
        let broken = s.verify_log().unwrap().unwrap_err();
        assert_eq!(broken.log_index, 3);
        assert!(
            broken.problem.contains("entries were removed"),
            "{}",
            broken.problem
        );
    }

    #[test]
    fn reopening_a_store_does_not_reapply_migrations() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        Sqlite::open(&path)
            .unwrap()
            .set_policy("{}", 1, "server")
            .unwrap();
        let again = Sqlite::open(&path).unwrap();
        assert_eq!(again.policy_at(2).unwrap().as_deref(), Some("{}"));
        let v: i64 = Connection::open(&path)
            .unwrap()
            .query_row("SELECT MAX(version) FROM schema_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, MIGRATIONS.last().unwrap().0);
    }
}
