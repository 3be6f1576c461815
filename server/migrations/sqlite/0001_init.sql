-- Version 1 of the evidence store (SQLite). Times are microseconds since the Unix epoch (UTC).

CREATE TABLE hosts (
    host_id          TEXT PRIMARY KEY,
    machine_id       TEXT NOT NULL UNIQUE,
    hostname         TEXT NOT NULL,
    hardware_serial  TEXT,
    enrolled_at      INTEGER NOT NULL,
    revoked_at       INTEGER,
    last_seq         INTEGER NOT NULL DEFAULT 0,
    last_digest      BLOB,
    last_full_digest BLOB,
    last_seen        INTEGER,
    agent_version    TEXT
);

-- Agent keys: 'active' (signs reports), 'pending' (awaiting admin approval), 'retired'.
CREATE TABLE host_keys (
    key_id      TEXT PRIMARY KEY,
    host_id     TEXT NOT NULL REFERENCES hosts(host_id),
    public_key  BLOB NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('active', 'pending', 'retired')),
    created_at  INTEGER NOT NULL
);
CREATE INDEX host_keys_host ON host_keys(host_id);

CREATE TABLE enrollment_secrets (
    id          TEXT PRIMARY KEY,
    hash        BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    single_use  INTEGER NOT NULL,
    uses        INTEGER NOT NULL DEFAULT 0,
    revoked_at  INTEGER,
    note        TEXT NOT NULL DEFAULT ''
);

CREATE TABLE api_tokens (
    id          TEXT PRIMARY KEY,
    hash        BLOB NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('admin', 'reader')),
    name        TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);

-- The append-only evidence log: verbatim signed report bytes, hash-chained.
CREATE TABLE evidence_log (
    log_index    INTEGER PRIMARY KEY,
    host_id      TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    key_id       TEXT NOT NULL,
    digest       BLOB NOT NULL,
    received_at  INTEGER NOT NULL,
    collected_at INTEGER NOT NULL,
    kind         TEXT NOT NULL,
    chain_hash   BLOB NOT NULL,
    body         BLOB NOT NULL,
    UNIQUE (host_id, seq)
);
CREATE INDEX evidence_log_host_received ON evidence_log(host_id, received_at);

-- Gaps: a previous-digest mismatch (chain break) or reports the agent had to drop.
CREATE TABLE gaps (
    id         INTEGER PRIMARY KEY,
    host_id    TEXT NOT NULL,
    log_index  INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    detail     TEXT NOT NULL,
    dropped    INTEGER NOT NULL DEFAULT 0,
    at         INTEGER NOT NULL
);
CREATE INDEX gaps_host ON gaps(host_id);

CREATE TABLE latest_facts (
    host_id      TEXT PRIMARY KEY,
    log_index    INTEGER NOT NULL,
    collected_at INTEGER NOT NULL
);

CREATE TABLE current_findings (
    host_id   TEXT NOT NULL,
    check_id  TEXT NOT NULL,
    status    TEXT NOT NULL,
    reason    TEXT,
    evidence  TEXT NOT NULL,
    since     INTEGER NOT NULL,
    PRIMARY KEY (host_id, check_id)
) WITHOUT ROWID;
CREATE INDEX current_findings_check ON current_findings(check_id, status);

-- One row only when a check's status (or reason) changes on a host.
CREATE TABLE finding_transitions (
    id         INTEGER PRIMARY KEY,
    host_id    TEXT NOT NULL,
    check_id   TEXT NOT NULL,
    status     TEXT NOT NULL,
    reason     TEXT,
    at         INTEGER NOT NULL,
    log_index  INTEGER
);
CREATE INDEX finding_transitions_at ON finding_transitions(at);
CREATE INDEX finding_transitions_host ON finding_transitions(host_id, check_id, at);

-- Per control and host, the current status derived from the findings (stale overlay at read).
CREATE TABLE control_status (
    host_id     TEXT NOT NULL,
    control_id  TEXT NOT NULL,
    status      TEXT NOT NULL,
    reason      TEXT,
    since       INTEGER NOT NULL,
    PRIMARY KEY (host_id, control_id)
) WITHOUT ROWID;

CREATE TABLE policy_versions (
    id      INTEGER PRIMARY KEY,
    at      INTEGER NOT NULL,
    policy  TEXT NOT NULL
);
