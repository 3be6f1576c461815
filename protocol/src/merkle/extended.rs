//! The newest part of a growing tree, in memory: the right edge at some size (the window's
//! start) and every leaf appended since, with the perfect subtrees they complete. Enough to
//! prove every leaf of the window and the consistency of any size within the window with the
//! whole tree, without reading the stored tree.
//!
//! Why that suffices: every hash on such a proof is a perfect subtree whose parent reaches past
//! the window's start (exactly one of the start edge's subtrees), or lies partly or wholly in
//! the window's leaves. So the server's ingest writer, which keeps a window over the last
//! batches, answers each receipt's inclusion proof and the consistency proof from the
//! checkpoint its agent last verified in memory.

use super::{node_hash, CompactRange, LeafHashes};
use crate::Digest;

/// The tree's edge at the window's start plus the leaves appended after it. From the empty
/// edge it is a whole tree in memory (the exporter's, over every leaf of the log).
#[derive(Debug, Clone, Default)]
pub struct Extended {
    start: CompactRange,
    /// `levels[l]`: every aligned perfect subtree of `2^l` leaves wholly within the window, in
    /// order from position `first_position(l)`; level 0 holds the window's leaves. Hashed once
    /// as the leaves arrive (amortised O(1) per leaf).
    levels: Vec<Vec<Digest>>,
}

impl Extended {
    /// A window starting at the tree whose edge is `start`, holding `leaves`.
    pub fn new(start: CompactRange, leaves: impl IntoIterator<Item = Digest>) -> Self {
        let mut window = Self {
            start,
            levels: vec![Vec::new()],
        };
        leaves.into_iter().for_each(|leaf| window.push(leaf));
        window
    }

    /// The size at which the window starts: sizes from here on can be proven from it.
    pub fn start_size(&self) -> u64 {
        self.start.size()
    }

    /// The number of leaves in the window.
    pub fn window_len(&self) -> usize {
        self.levels.first().map_or(0, Vec::len)
    }

    /// The position of the first subtree of level `level` wholly within the window.
    fn first_position(&self, level: u32) -> u64 {
        self.start.size().div_ceil(1u64 << level)
    }

    /// The window's subtree at (`level`, `position`), if it holds it.
    fn subtree(&self, level: u32, position: u64) -> Option<Digest> {
        let nodes = self.levels.get(level as usize)?;
        let i = usize::try_from(position.checked_sub(self.first_position(level))?).ok()?;
        nodes.get(i).copied()
    }

    /// Appends a leaf and the perfect subtrees it completes within the window.
    pub fn push(&mut self, leaf: Digest) {
        let size = self.len() + 1;
        if self.levels.is_empty() {
            self.levels.push(Vec::new());
        }
        self.levels[0].push(leaf);
        let mut hash = leaf;
        for level in 1..=size.trailing_zeros() {
            let first = size - (1u64 << level);
            if first < self.start.size() {
                break;
            }
            // The left half is the subtree just before the one being carried up.
            let Some(left) = self.subtree(level - 1, first >> (level - 1)) else {
                break;
            };
            hash = node_hash(&left, &hash);
            if self.levels.len() <= level as usize {
                self.levels.push(Vec::new());
            }
            self.levels[level as usize].push(hash);
        }
    }

    /// The start edge's subtree starting at `start` with `2^level` leaves, if it is one.
    fn edge_subtree(&self, start: u64, level: u32) -> Option<Digest> {
        let size = self.start.size();
        let mut at = 0;
        let mut hashes = self.start.hashes().iter();
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

impl LeafHashes for Extended {
    fn len(&self) -> u64 {
        self.start.size() + self.window_len() as u64
    }

    /// A window leaf, or an older one the edge holds as a single-leaf subtree. Other older
    /// leaves are not known here: this source only answers proofs within the window (see the
    /// module doc), and asking it anything else answers the zero hash, which no proof verifies
    /// with.
    fn leaf(&self, index: u64) -> Digest {
        self.subtree(0, index)
            .or_else(|| self.edge_subtree(index, 0))
            .unwrap_or(Digest::ZERO)
    }

    fn perfect_subtree(&self, start: u64, level: u32) -> Digest {
        if let Some(hash) = self.subtree(level, start >> level) {
            return hash;
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
    use crate::merkle::{consistency_proof, inclusion_proof, leaf_hash, root};

    #[test]
    fn proofs_within_the_window_equal_those_of_the_whole_tree_for_every_split() {
        let leaves: Vec<Digest> = (0..40u32).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        for total in 1..=leaves.len() {
            for old in 0..total {
                let mut edge = CompactRange::new();
                leaves[..old].iter().for_each(|l| edge.push(*l));
                let tree = Extended::new(edge, leaves[old..total].iter().copied());
                let whole = &leaves[..total];
                let (n, at) = (total as u64, format!("window {old}..{total}"));
                assert_eq!(root(&tree), root(whole), "root, {at}");
                for index in old as u64..n {
                    assert_eq!(
                        inclusion_proof(index, n, &tree),
                        inclusion_proof(index, n, whole),
                        "leaf {index}, {at}"
                    );
                }
                for from in old as u64..=n {
                    assert_eq!(
                        consistency_proof(from, n, &tree),
                        consistency_proof(from, n, whole),
                        "from {from}, {at}"
                    );
                }
            }
        }
    }
}
