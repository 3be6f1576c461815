//! A tree known only by its right edge before a batch and the batch's new leaves: enough to
//! prove every new leaf without reading the stored tree.
//!
//! Every sibling on the audit path of a leaf at or after `before.size()` is either a perfect
//! subtree of the old tree whose parent reaches past the old size (exactly one of the old
//! edge's subtrees), or lies partly or wholly in the new leaves. So the server's writer, which
//! has both after a group commit, answers each receipt's inclusion proof in memory.

use std::collections::HashMap;

use super::{node_hash, CompactRange, LeafHashes};
use crate::Digest;

/// The old tree's edge plus the leaves appended after it.
#[derive(Debug, Clone)]
pub struct Extended<'a> {
    before: &'a CompactRange,
    leaves: &'a [Digest],
    /// Every aligned perfect subtree wholly within the new leaves, by (level, position),
    /// hashed once (O(new leaves)), so each proof then costs O(log n) hashes.
    new_subtrees: HashMap<(u32, u64), Digest>,
}

impl<'a> Extended<'a> {
    pub fn new(before: &'a CompactRange, leaves: &'a [Digest]) -> Self {
        let start = before.size();
        let mut new_subtrees = HashMap::with_capacity(leaves.len() * 2);
        let mut level_nodes: Vec<(u64, Digest)> =
            (start..).zip(leaves.iter().copied()).collect();
        let mut level = 0;
        while level_nodes.len() > 1 {
            let mut parents = Vec::with_capacity(level_nodes.len() / 2);
            for pair in level_nodes.windows(2) {
                let ((left_pos, left), (right_pos, right)) = (pair[0], pair[1]);
                if left_pos % 2 == 0 && right_pos == left_pos + 1 {
                    parents.push((left_pos / 2, node_hash(&left, &right)));
                }
            }
            for (pos, hash) in level_nodes {
                new_subtrees.insert((level, pos), hash);
            }
            level_nodes = parents;
            level += 1;
        }
        for (pos, hash) in level_nodes {
            new_subtrees.insert((level, pos), hash);
        }
        Self {
            before,
            leaves,
            new_subtrees,
        }
    }

    /// The old edge's subtree starting at `start` with `2^level` leaves, if it is one.
    fn edge_subtree(&self, start: u64, level: u32) -> Option<Digest> {
        let size = self.before.size();
        let mut at = 0;
        let mut hashes = self.before.hashes().iter();
        for l in (0..64).rev() {
            if size & (1u64 << l) != 0 {
                let hash = hashes.next()?;
                if at == start && l == level {
                    return Some(*hash);
                }
                at += 1u64 << l;
            }
        }
        None
    }
}

impl LeafHashes for Extended<'_> {
    fn len(&self) -> u64 {
        self.before.size() + self.leaves.len() as u64
    }

    /// A new leaf, or an old one the edge holds as a single-leaf subtree. Other old leaves are
    /// not known here: this source only answers proofs of new leaves (see the module doc), and
    /// asking it anything else answers the zero hash, which no proof verifies with.
    fn leaf(&self, index: u64) -> Digest {
        match index.checked_sub(self.before.size()) {
            Some(i) => self.leaves[usize::try_from(i).expect("a batch fits in memory")],
            None => self.edge_subtree(index, 0).unwrap_or(Digest::ZERO),
        }
    }

    fn perfect_subtree(&self, start: u64, level: u32) -> Digest {
        if let Some(hash) = self.new_subtrees.get(&(level, start >> level)) {
            return *hash;
        }
        if let Some(hash) = self.edge_subtree(start, level) {
            return hash;
        }
        if level == 0 {
            return self.leaf(start);
        }
        let half = 1u64 << (level - 1);
        node_hash(
            &self.perfect_subtree(start, level - 1),
            &self.perfect_subtree(start + half, level - 1),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{inclusion_proof, leaf_hash, root};

    #[test]
    fn proofs_of_new_leaves_equal_those_of_the_whole_tree_for_every_split() {
        let leaves: Vec<Digest> = (0..40u32).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        for total in 1..=leaves.len() {
            for old in 0..total {
                let mut edge = CompactRange::new();
                leaves[..old].iter().for_each(|l| edge.push(*l));
                let tree = Extended::new(&edge, &leaves[old..total]);
                let whole = &leaves[..total];
                assert_eq!(root(&tree), root(whole), "root at {old}+{}", total - old);
                for index in old..total {
                    assert_eq!(
                        inclusion_proof(index as u64, total as u64, &tree),
                        inclusion_proof(index as u64, total as u64, whole),
                        "leaf {index} of {total}, edge at {old}"
                    );
                }
            }
        }
    }
}
