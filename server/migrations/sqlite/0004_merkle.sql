-- The evidence log as an RFC 9162 Merkle tree: every perfect subtree's hash (level 0: the
-- leaves, `domain::log_entry::LogLeaf`), filled for existing entries when the store opens, and
-- the checkpoints the server signed.
CREATE TABLE merkle_nodes (
    level INTEGER NOT NULL,
    idx   INTEGER NOT NULL,
    hash  BLOB NOT NULL,
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;
CREATE TABLE checkpoints (
    size INTEGER PRIMARY KEY,
    root BLOB NOT NULL,
    note TEXT NOT NULL,
    at   INTEGER NOT NULL
);
