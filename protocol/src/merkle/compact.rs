//! The right edge of a growing tree: the roots of its perfect subtrees, largest first (one per
//! set bit of the size, so at most 64 and about log2(n) hashes).
//!
//! The server keeps one in memory beside its log: appending a leaf merges equal-sized subtrees
//! (amortised O(1) hashes) and the tree's root folds the edge from the right in O(log n),
//! without touching the stored leaves. After a restart it is rebuilt from the store with
//! [`CompactRange::from_tree`] (O(log n) perfect-subtree lookups).

use super::{empty_root, node_hash, LeafHashes, ProofError};
use crate::Digest;

/// The perfect-subtree roots along the right edge of a tree of `size` leaves.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompactRange {
    size: u64,
    /// Roots of the perfect subtrees, largest (leftmost) first: one per set bit of `size`.
    hashes: Vec<Digest>,
}

impl CompactRange {
    /// The range of the empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// A range from its stored parts: `hashes` must hold one root per set bit of `size`.
    pub fn from_parts(size: u64, hashes: Vec<Digest>) -> Result<Self, ProofError> {
        let expected = size.count_ones() as usize;
        if hashes.len() != expected {
            return Err(ProofError::CompactRangeMismatch {
                size,
                expected,
                actual: hashes.len(),
            });
        }
        Ok(Self { size, hashes })
    }

    /// The range of the first `size` leaves of `tree`.
    pub fn from_tree<H: LeafHashes + ?Sized>(tree: &H, size: u64) -> Result<Self, ProofError> {
        let available = tree.len();
        if size > available {
            return Err(ProofError::SizeBeyondLog { size, available });
        }
        let mut hashes = Vec::with_capacity(size.count_ones() as usize);
        let mut start = 0;
        for level in (0..64).rev() {
            if size & (1u64 << level) != 0 {
                hashes.push(tree.perfect_subtree(start, level));
                start += 1u64 << level;
            }
        }
        Ok(Self { size, hashes })
    }

    /// The number of leaves appended so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The perfect-subtree roots, largest first (what to store to rebuild with
    /// [`CompactRange::from_parts`]).
    pub fn hashes(&self) -> &[Digest] {
        &self.hashes
    }

    /// Appends one leaf hash ([`super::leaf_hash`] of the entry).
    pub fn push(&mut self, leaf_hash: Digest) {
        let mut hash = leaf_hash;
        // Each trailing one bit of the old size is a subtree of the same size as the one being
        // carried: merge them, as a binary counter carries.
        let mut carry = self.size;
        while carry & 1 == 1 {
            let left = self.hashes.pop().expect("one hash per set bit of the size");
            hash = node_hash(&left, &hash);
            carry >>= 1;
        }
        self.hashes.push(hash);
        self.size = self
            .size
            .checked_add(1)
            .expect("a log holds fewer than 2^64 entries");
    }

    /// The Merkle Tree Hash of the tree: the edge folded from the right.
    pub fn root(&self) -> Digest {
        let mut hashes = self.hashes.iter().rev();
        let Some(last) = hashes.next() else {
            return empty_root();
        };
        hashes.fold(*last, |right, left| node_hash(left, &right))
    }
}
