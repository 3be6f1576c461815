//! The SQLite store's Merkle tree: each appended leaf and the perfect subtrees it completes go
//! into `merkle_nodes` inside the append's transaction; roots and proofs read those nodes
//! (O(log² n) lookups), and the checkpoints the server signed are kept in `checkpoints`.

use std::cell::RefCell;

use evidence_protocol::merkle::{self, LeafHashes};
use evidence_protocol::CompactRange;
use evidence_protocol::Digest;
use rusqlite::{params, Connection, OptionalExtension};

use super::sqlite::{db, digest_col};
use super::{StoreError, StoreResult, StoredCheckpoint};
use crate::domain::log_entry::{completed_subtrees, parent, LogLeaf};

fn node(conn: &Connection, level: u32, idx: u64) -> rusqlite::Result<Vec<u8>> {
    conn.prepare_cached("SELECT hash FROM merkle_nodes WHERE level = ?1 AND idx = ?2")?
        .query_row(params![level, idx as i64], |r| r.get(0))
}

/// Adds leaf `index` and every perfect subtree it completes; answers the leaf hash.
pub(super) fn add_leaf(conn: &Connection, index: u64, leaf: &LogLeaf) -> StoreResult<Digest> {
    add_leaf_hash(conn, index, leaf.hash())
}

/// [`add_leaf`] given the leaf's hash.
pub(super) fn add_leaf_hash(
    conn: &Connection,
    index: u64,
    leaf_hash: Digest,
) -> StoreResult<Digest> {
    let mut insert = conn
        .prepare_cached("INSERT INTO merkle_nodes (level, idx, hash) VALUES (?1, ?2, ?3)")
        .map_err(db)?;
    let mut hash = leaf_hash;
    insert
        .execute(params![0, index as i64, hash.as_bytes().as_slice()])
        .map_err(db)?;
    for (level, idx) in completed_subtrees(index) {
        let left = digest_col(Some(node(conn, level - 1, idx * 2).map_err(db)?))?
            .ok_or_else(|| StoreError::Corrupt("missing Merkle node".into()))?;
        // The right child is the one just computed.
        hash = parent(&left, &hash);
        insert
            .execute(params![level, idx as i64, hash.as_bytes().as_slice()])
            .map_err(db)?;
    }
    Ok(leaf_hash)
}

/// The tree's right edge (O(log n) lookups): what a batch's proofs are computed from.
pub(super) fn edge(conn: &Connection) -> StoreResult<CompactRange> {
    let tree = StoredTree::open(conn)?;
    let edge = CompactRange::from_tree(&tree, tree.len())
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    tree.finish(edge)
}

/// Records a signed checkpoint unless one of at least its size is recorded (sizes only grow).
pub(super) fn insert_checkpoint(conn: &Connection, cp: &StoredCheckpoint) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO checkpoints (size, root, note, at) SELECT ?1, ?2, ?3, ?4
         WHERE ?1 > COALESCE((SELECT MAX(size) FROM checkpoints), -1)",
    )
    .map_err(db)?
    .execute(params![
        cp.size as i64,
        cp.root.as_bytes().as_slice(),
        cp.note,
        cp.at
    ])
    .map_err(db)?;
    Ok(())
}

/// How many leaves the tree has. Leaves are appended in order from 0, so this is one past the
/// highest: a lookup in the primary key, not a count of every leaf (which start-up and every
/// proof would pay).
fn leaves(conn: &Connection) -> StoreResult<u64> {
    conn.query_row(
        "SELECT COALESCE(MAX(idx) + 1, 0) FROM merkle_nodes WHERE level = 0",
        [],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n as u64)
    .map_err(db)
}

/// Fills the tree for entries appended before the tree existed (migration 0004), in order.
pub(super) fn backfill(conn: &Connection) -> StoreResult<()> {
    let have = leaves(conn)? as i64;
    let mut stmt = conn
        .prepare(
            "SELECT log_index, kind, host_id, key_id, seq, received_at, digest FROM evidence_log
             WHERE log_index >= ?1 ORDER BY log_index",
        )
        .map_err(db)?;
    let mut rows = stmt.query([have]).map_err(db)?;
    while let Some(r) = rows.next().map_err(db)? {
        let index = r.get::<_, i64>(0).map_err(db)? as u64;
        let (kind, host_id, key_id): (String, String, String) = (
            r.get(1).map_err(db)?,
            r.get(2).map_err(db)?,
            r.get(3).map_err(db)?,
        );
        let seq: Option<i64> = r.get(4).map_err(db)?;
        let digest = digest_col(Some(r.get(6).map_err(db)?))?.unwrap_or(Digest::ZERO);
        let kind = evidence_protocol::EntryKind::parse(&kind).ok_or_else(|| {
            StoreError::Corrupt(format!("entry {index} has unknown kind {kind:?}"))
        })?;
        add_leaf(
            conn,
            index,
            &LogLeaf {
                kind,
                host_id: &host_id,
                key_id: &key_id,
                seq: seq.map(|s| s as u64),
                received_at: r.get(5).map_err(db)?,
                digest: &digest,
            },
        )?;
    }
    Ok(())
}

/// The stored tree as the Merkle module's leaf source; the first read error is kept and
/// reported by [`StoredTree::finish`] (the trait's reads cannot fail).
pub(super) struct StoredTree<'a> {
    conn: &'a Connection,
    size: u64,
    error: RefCell<Option<rusqlite::Error>>,
}

impl<'a> StoredTree<'a> {
    pub fn open(conn: &'a Connection) -> StoreResult<Self> {
        Ok(Self {
            size: leaves(conn)?,
            conn,
            error: RefCell::new(None),
        })
    }

    fn read(&self, level: u32, idx: u64) -> Digest {
        match node(self.conn, level, idx) {
            Ok(bytes) => bytes
                .as_slice()
                .try_into()
                .map(Digest)
                .unwrap_or(Digest::ZERO),
            Err(e) => {
                self.error.borrow_mut().get_or_insert(e);
                Digest::ZERO
            }
        }
    }

    /// `value`, unless a read failed on the way.
    pub fn finish<T>(self, value: T) -> StoreResult<T> {
        match self.error.into_inner() {
            Some(e) => Err(db(e)),
            None => Ok(value),
        }
    }
}

impl LeafHashes for StoredTree<'_> {
    fn len(&self) -> u64 {
        self.size
    }

    fn leaf(&self, index: u64) -> Digest {
        self.read(0, index)
    }

    fn perfect_subtree(&self, start: u64, level: u32) -> Digest {
        self.read(level, start >> level)
    }
}

/// (size, root) of the whole tree.
pub(super) fn head(conn: &Connection) -> StoreResult<(u64, Digest)> {
    let tree = StoredTree::open(conn)?;
    let size = tree.len();
    let root = merkle::root(&tree);
    tree.finish((size, root))
}

pub(super) fn latest_checkpoint(conn: &Connection) -> StoreResult<Option<StoredCheckpoint>> {
    checkpoint_where(conn, "ORDER BY size DESC LIMIT 1", None)
}

pub(super) fn checkpoint(conn: &Connection, size: u64) -> StoreResult<Option<StoredCheckpoint>> {
    checkpoint_where(conn, "WHERE size = ?1", Some(size))
}

fn checkpoint_where(
    conn: &Connection,
    clause: &str,
    size: Option<u64>,
) -> StoreResult<Option<StoredCheckpoint>> {
    let sql = format!("SELECT size, root, note, at FROM checkpoints {clause}");
    let args: Vec<i64> = size.map(|s| s as i64).into_iter().collect();
    conn.query_row(&sql, rusqlite::params_from_iter(args), |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, Vec<u8>>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, i64>(3)?,
        ))
    })
    .optional()
    .map_err(db)?
    .map(checkpoint_row)
    .transpose()
}

/// A `checkpoints` row (size, root, note, at) as a [`StoredCheckpoint`].
pub(super) fn checkpoint_row(
    (size, root, note, at): (i64, Vec<u8>, String, i64),
) -> StoreResult<StoredCheckpoint> {
    Ok(StoredCheckpoint {
        size: size as u64,
        root: digest_col(Some(root))?.unwrap_or(Digest::ZERO),
        note,
        at,
    })
}
