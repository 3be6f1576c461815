//! The evidence log's Merkle tree: RFC 9162 (RFC 6962) section 2.1 hashing, inclusion proofs and
//! consistency proofs, over SHA-256.
//!
//! The server builds the tree over its log entries (leaf hash `H(0x00 || entry)`, node hash
//! `H(0x01 || left || right)`, no duplicated odd nodes), keeps a [`CompactRange`] in memory to
//! compute the new root after each append in O(log n), and serves the proofs that go into
//! receipts and bundles. The agents, as witnesses, check inclusion proofs before they delete a
//! report from their spool and consistency proofs between the checkpoints they have seen;
//! `evidence-verify` checks both offline. Everything here is pure: the leaf hashes come from a
//! [`LeafHashes`] source (a slice in memory, or the server's store).
//!
//! A proof binds a leaf to a root *for a claimed tree size*; the size and the root must come
//! together from one signed checkpoint (`crate::checkpoint`), never from the party that
//! supplies the proof.

mod compact;
mod extended;

pub use compact::CompactRange;
pub use extended::Extended;

use crate::Digest;

/// Domain-separation byte of a leaf hash (RFC 9162 section 2.1.1).
pub const LEAF_PREFIX: u8 = 0x00;
/// Domain-separation byte of an interior node hash (RFC 9162 section 2.1.1).
pub const NODE_PREFIX: u8 = 0x01;

/// Why a proof could not be produced or does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("leaf index {index} is not below the tree size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("tree size {size} is beyond the {available} leaves available")]
    SizeBeyondLog { size: u64, available: u64 },
    #[error("the old tree size {old} is larger than the new tree size {new}")]
    OldSizeAfterNew { old: u64, new: u64 },
    #[error("a proof for these sizes has {expected} hashes, this one has {actual}")]
    WrongProofLength { expected: usize, actual: usize },
    #[error("the inclusion proof does not lead to the expected root hash")]
    RootMismatch,
    #[error("the consistency proof does not lead to the old root hash")]
    OldRootMismatch,
    #[error("the consistency proof does not lead to the new root hash")]
    NewRootMismatch,
    #[error("two trees of the same size {size} have different root hashes")]
    SameSizeDifferentRoots { size: u64 },
    #[error("a tree of size 0 has the root SHA-256(\"\"), this hash is another")]
    NotTheEmptyRoot,
    #[error("a compact range of size {size} holds {expected} hashes, got {actual}")]
    CompactRangeMismatch {
        size: u64,
        expected: usize,
        actual: usize,
    },
}

/// The leaf hash of a log entry: SHA-256(0x00 || entry).
pub fn leaf_hash(entry: &[u8]) -> Digest {
    Digest::of_parts(&[&[LEAF_PREFIX], entry])
}

/// The hash of an interior node: SHA-256(0x01 || left || right).
pub fn node_hash(left: &Digest, right: &Digest) -> Digest {
    Digest::of_parts(&[&[NODE_PREFIX], left.as_bytes(), right.as_bytes()])
}

/// The root of the empty tree: SHA-256 of the empty string (RFC 9162 section 2.1.1).
pub fn empty_root() -> Digest {
    Digest::of(b"")
}

/// Where the leaf hashes of a tree come from: a slice in memory, or a store.
///
/// Proofs need the roots of perfect (power-of-two, aligned) subtrees. By default they are
/// recomputed from the leaves, which costs O(2^level); a store that keeps interior nodes
/// overrides [`LeafHashes::perfect_subtree`] and every proof then costs O(log^2 n) lookups.
pub trait LeafHashes {
    /// The number of leaves available.
    fn len(&self) -> u64;

    /// Whether there is no leaf.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The leaf hash at `index` (always below [`LeafHashes::len`] when this module asks).
    fn leaf(&self, index: u64) -> Digest;

    /// The root of the perfect subtree of `2^level` leaves starting at `start` (a multiple of
    /// `2^level`; `start + 2^level` is at most [`LeafHashes::len`] when this module asks).
    fn perfect_subtree(&self, start: u64, level: u32) -> Digest {
        debug_assert_eq!(start % (1u64 << level), 0, "perfect subtrees are aligned");
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

impl LeafHashes for [Digest] {
    fn len(&self) -> u64 {
        <[Digest]>::len(self) as u64
    }

    fn leaf(&self, index: u64) -> Digest {
        self[usize::try_from(index).expect("a leaf index within the slice")]
    }
}

impl LeafHashes for Vec<Digest> {
    fn len(&self) -> u64 {
        LeafHashes::len(self.as_slice())
    }

    fn leaf(&self, index: u64) -> Digest {
        self.as_slice().leaf(index)
    }
}

/// The largest power of two strictly below `n` (`n >= 2`): the RFC's split point `k`.
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// MTH(D[start:end]) for a subtree the RFC's recursion reaches (`start` a multiple of the
/// smallest power of two at least `end - start`): the left parts are perfect subtrees, so only
/// the right edge is descended.
fn subtree_root<H: LeafHashes + ?Sized>(hashes: &H, start: u64, end: u64) -> Digest {
    let n = end - start;
    if n.is_power_of_two() {
        return hashes.perfect_subtree(start, n.trailing_zeros());
    }
    let k = split(n);
    node_hash(
        &hashes.perfect_subtree(start, k.trailing_zeros()),
        &subtree_root(hashes, start + k, end),
    )
}

fn check_size<H: LeafHashes + ?Sized>(hashes: &H, size: u64) -> Result<(), ProofError> {
    let available = hashes.len();
    if size > available {
        return Err(ProofError::SizeBeyondLog { size, available });
    }
    Ok(())
}

/// The Merkle Tree Hash (MTH) of all the leaves `hashes` holds.
pub fn root<H: LeafHashes + ?Sized>(hashes: &H) -> Digest {
    match hashes.len() {
        0 => empty_root(),
        n => subtree_root(hashes, 0, n),
    }
}

/// The Merkle Tree Hash of the first `size` leaves (the root the log had at that size).
pub fn root_at<H: LeafHashes + ?Sized>(hashes: &H, size: u64) -> Result<Digest, ProofError> {
    check_size(hashes, size)?;
    Ok(match size {
        0 => empty_root(),
        n => subtree_root(hashes, 0, n),
    })
}

/// The audit path PATH(index, D[0:size]) of RFC 9162 section 2.1.3.1, bottom to top.
pub fn inclusion_proof<H: LeafHashes + ?Sized>(
    index: u64,
    size: u64,
    hashes: &H,
) -> Result<Vec<Digest>, ProofError> {
    check_size(hashes, size)?;
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    // Walk down from the root; each level contributes the sibling of the side holding `index`.
    let mut proof = Vec::new();
    let (mut start, mut end) = (0, size);
    while end - start > 1 {
        let k = split(end - start);
        if index < start + k {
            proof.push(subtree_root(hashes, start + k, end));
            end = start + k;
        } else {
            proof.push(hashes.perfect_subtree(start, k.trailing_zeros()));
            start += k;
        }
    }
    proof.reverse();
    Ok(proof)
}

/// The number of hashes in the inclusion proof of `index` in a tree of `size` (`index < size`).
pub fn inclusion_proof_len(index: u64, size: u64) -> usize {
    let (mut start, mut end, mut len) = (0, size, 0);
    while end - start > 1 {
        let k = split(end - start);
        if index < start + k {
            end = start + k;
        } else {
            start += k;
        }
        len += 1;
    }
    len
}

/// The root that `proof` leads to from `leaf_hash` at `index` in a tree of `size`, computed
/// exactly as RFC 9162 section 2.1.3.2 prescribes (the caller compares it with a trusted root).
pub fn root_from_inclusion_proof(
    leaf_hash: &Digest,
    index: u64,
    size: u64,
    proof: &[Digest],
) -> Result<Digest, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let expected = inclusion_proof_len(index, size);
    let wrong_length = ProofError::WrongProofLength {
        expected,
        actual: proof.len(),
    };
    if proof.len() != expected {
        return Err(wrong_length);
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf_hash;
    for p in proof {
        if sn == 0 {
            return Err(wrong_length);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(wrong_length);
    }
    Ok(r)
}

/// Verifies that `leaf_hash` is the leaf at `index` of the tree of `size` leaves whose root is
/// `root` (RFC 9162 section 2.1.3.2).
pub fn verify_inclusion(
    leaf_hash: &Digest,
    index: u64,
    size: u64,
    proof: &[Digest],
    root: &Digest,
) -> Result<(), ProofError> {
    if root_from_inclusion_proof(leaf_hash, index, size, proof)? != *root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// The consistency proof PROOF(old_size, D[0:new_size]) of RFC 9162 section 2.1.4.1. Empty when
/// `old_size` is 0 or equals `new_size` (nothing to prove beyond the roots themselves).
pub fn consistency_proof<H: LeafHashes + ?Sized>(
    old_size: u64,
    new_size: u64,
    hashes: &H,
) -> Result<Vec<Digest>, ProofError> {
    check_size(hashes, new_size)?;
    if old_size > new_size {
        return Err(ProofError::OldSizeAfterNew {
            old: old_size,
            new: new_size,
        });
    }
    let mut proof = Vec::new();
    if old_size == 0 || old_size == new_size {
        return Ok(proof);
    }
    // SUBPROOF(m, D[start:end], complete), walked down from the root.
    let (mut start, mut end, mut m, mut complete) = (0, new_size, old_size, true);
    loop {
        let n = end - start;
        if m == n {
            if !complete {
                proof.push(subtree_root(hashes, start, end));
            }
            break;
        }
        let k = split(n);
        if m <= k {
            proof.push(subtree_root(hashes, start + k, end));
            end = start + k;
        } else {
            proof.push(hashes.perfect_subtree(start, k.trailing_zeros()));
            start += k;
            m -= k;
            complete = false;
        }
    }
    proof.reverse();
    Ok(proof)
}

/// The number of hashes in the consistency proof from `old_size` to `new_size`
/// (`old_size <= new_size`).
pub fn consistency_proof_len(old_size: u64, new_size: u64) -> usize {
    if old_size == 0 || old_size >= new_size {
        return 0;
    }
    let (mut start, mut end, mut m, mut complete, mut len) = (0, new_size, old_size, true, 0);
    loop {
        let n = end - start;
        if m == n {
            return len + usize::from(!complete);
        }
        let k = split(n);
        if m <= k {
            end = start + k;
        } else {
            start += k;
            m -= k;
            complete = false;
        }
        len += 1;
    }
}

/// Verifies that the tree of `old_size` leaves with root `old_root` is a prefix of the tree of
/// `new_size` leaves with root `new_root` (RFC 9162 section 2.1.4.2).
///
/// Edge cases: from size 0 the proof is empty and `old_root` must be the empty tree's root (a
/// checkpoint of size 0 with another root is refused); between equal sizes the proof is empty
/// and the roots must be equal.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Digest,
    new_root: &Digest,
    proof: &[Digest],
) -> Result<(), ProofError> {
    if old_size > new_size {
        return Err(ProofError::OldSizeAfterNew {
            old: old_size,
            new: new_size,
        });
    }
    let expected = consistency_proof_len(old_size, new_size);
    let wrong_length = ProofError::WrongProofLength {
        expected,
        actual: proof.len(),
    };
    if proof.len() != expected {
        return Err(wrong_length);
    }
    if old_size == 0 {
        if *old_root != empty_root() || (new_size == 0 && *new_root != empty_root()) {
            return Err(ProofError::NotTheEmptyRoot);
        }
        return Ok(());
    }
    if old_size == new_size {
        if old_root != new_root {
            return Err(ProofError::SameSizeDifferentRoots { size: old_size });
        }
        return Ok(());
    }
    // 0 < old_size < new_size: the RFC's algorithm. When old_size is a power of two the old
    // tree is a perfect subtree of the new one and its root is the path's first element.
    let mut path = std::iter::once(old_root)
        .filter(|_| old_size.is_power_of_two())
        .chain(proof);
    let first = path.next().ok_or_else(|| wrong_length.clone())?;
    let (mut fn_, mut sn) = (old_size - 1, new_size - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in path {
        if sn == 0 {
            return Err(wrong_length);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(wrong_length);
    }
    if fr != *old_root {
        return Err(ProofError::OldRootMismatch);
    }
    if sr != *new_root {
        return Err(ProofError::NewRootMismatch);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
