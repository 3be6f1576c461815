//! The evidence log's leaves ([`LogLeaf`], defined in protocol so agents and evidence-verify
//! recompute them) and which perfect subtrees an append completes: the interior nodes a backend stores so
//! that any proof takes O(log² n) lookups.

pub use evidence_protocol::log_entry::LogLeaf;
use evidence_protocol::merkle::node_hash;
use evidence_protocol::Digest;

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
}
