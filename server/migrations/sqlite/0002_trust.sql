-- Version 2: host-bound enrollment secrets, key history (also in the evidence log), the audit
-- trail of admin and policy changes.

-- A secret with a host_id re-keys that one host only; NULL: a fleet secret (new hosts only).
ALTER TABLE enrollment_secrets ADD COLUMN host_id TEXT;

-- The secret a pending key came with (caps per secret), and when a key stopped being active.
ALTER TABLE host_keys ADD COLUMN secret_id TEXT;
ALTER TABLE host_keys ADD COLUMN retired_at INTEGER;

-- The evidence log also holds key events (the server's record of a key change, seq NULL), so a
-- report chain that continues under a new key is never silent. Rebuilt to make seq nullable.
CREATE TABLE evidence_log_v2 (
    log_index    INTEGER PRIMARY KEY,
    host_id      TEXT NOT NULL,
    seq          INTEGER,
    key_id       TEXT NOT NULL,
    digest       BLOB NOT NULL,
    received_at  INTEGER NOT NULL,
    collected_at INTEGER NOT NULL,
    kind         TEXT NOT NULL,
    chain_hash   BLOB NOT NULL,
    body         BLOB NOT NULL,
    UNIQUE (host_id, seq)
);
INSERT INTO evidence_log_v2 SELECT log_index, host_id, seq, key_id, digest, received_at,
    collected_at, kind, chain_hash, body FROM evidence_log;
DROP TABLE evidence_log;
ALTER TABLE evidence_log_v2 RENAME TO evidence_log;
CREATE INDEX evidence_log_host_received ON evidence_log(host_id, received_at);

-- Every key change of a host: enrolled, pending, rotated (signed by the previous key),
-- rekeyed (host-bound secret), approved (admin), with who authorised it.
CREATE TABLE key_events (
    id               INTEGER PRIMARY KEY,
    host_id          TEXT NOT NULL,
    event            TEXT NOT NULL,
    key_id           TEXT NOT NULL,
    previous_key_id  TEXT,
    authorized_by    TEXT NOT NULL,
    at               INTEGER NOT NULL,
    log_index        INTEGER
);
CREATE INDEX key_events_host ON key_events(host_id, id);

-- Admin and policy changes: who (token id) did what, when.
CREATE TABLE audit_events (
    id      INTEGER PRIMARY KEY,
    at      INTEGER NOT NULL,
    actor   TEXT NOT NULL,
    event   TEXT NOT NULL,
    target  TEXT NOT NULL DEFAULT '',
    detail  TEXT NOT NULL DEFAULT ''
);
