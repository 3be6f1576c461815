//! What a leaf of the evidence log's Merkle tree commits to. Each entry's leaf is the hash of a
//! small canonical text naming everything an auditor relies on (the kind of entry, the host,
//! the signing key, the report's sequence number, when the server received it, and the digest
//! of the stored bytes), so an inclusion proof proves those, not only the bytes.
//! And which perfect subtrees an append completes: the interior nodes a backend stores so
//! that any proof takes O(log² n) lookups.

use evidence_protocol::merkle::{leaf_hash, node_hash};
use evidence_protocol::Digest;

/// One evidence-log entry as its Merkle leaf sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLeaf<'a> {
    /// `full`, `attestation` or `key_event`.
    pub kind: &'a str,
    pub host_id: &'a str,
    pub key_id: &'a str,
    /// The report's sequence number (`None` for key events).
    pub seq: Option<u64>,
    pub received_at: i64,
    /// SHA-256 of the entry's stored bytes.
    pub digest: &'a Digest,
}

impl LogLeaf<'_> {
    /// The canonical text: a version line, then one `key=value` line per field, in this order.
    pub fn bytes(&self) -> Vec<u8> {
        format!(
            "evidence-log-entry-v1\nkind={}\nhost_id={}\nkey_id={}\nseq={}\nreceived_at={}\ndigest={}\n",
            self.kind,
            self.host_id,
            self.key_id,
            self.seq.map_or_else(|| "-".to_string(), |s| s.to_string()),
            crate::time::fmt(self.received_at),
            self.digest.to_hex(),
        )
        .into_bytes()
    }

    /// The leaf hash, `SHA-256(0x00 || bytes)`.
    pub fn hash(&self) -> Digest {
        leaf_hash(&self.bytes())
    }
}

/// The perfect subtrees that appending leaf `index` completes, as `(level, position)`, lowest
/// first: level `l` covers `2^l` leaves, position `p` the leaves `p * 2^l ..`.
pub fn completed_subtrees(index: u64) -> impl Iterator<Item = (u32, u64)> {
    let size = index + 1;
    (1..=size.trailing_zeros()).map(move |level| (level, (size >> level) - 1))
}

/// The hash of a completed subtree from its two children.
pub fn parent(left: &Digest, right: &Digest) -> Digest {
    node_hash(left, right)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appending_a_leaf_completes_the_subtrees_its_new_size_is_a_multiple_of() {
        let all = |i| completed_subtrees(i).collect::<Vec<_>>();
        assert_eq!(all(0), vec![]);
        assert_eq!(all(1), vec![(1, 0)]);
        assert_eq!(all(2), vec![]);
        assert_eq!(all(3), vec![(1, 1), (2, 0)]);
        assert_eq!(all(7), vec![(1, 3), (2, 1), (3, 0)]);
    }

    #[test]
    fn the_leaf_names_every_field_so_changing_one_changes_the_hash() {
        let digest = Digest::of(b"report");
        let leaf = LogLeaf {
            kind: "full",
            host_id: "h",
            key_id: "k",
            seq: Some(7),
            received_at: 0,
            digest: &digest,
        };
        assert_eq!(
            String::from_utf8(leaf.bytes()).unwrap(),
            format!(
                "evidence-log-entry-v1\nkind=full\nhost_id=h\nkey_id=k\nseq=7\nreceived_at={}\ndigest={}\n",
                crate::time::fmt(0),
                digest.to_hex()
            )
        );
        let other = LogLeaf {
            seq: Some(8),
            ..leaf.clone()
        };
        assert_ne!(leaf.hash(), other.hash());
    }
}
