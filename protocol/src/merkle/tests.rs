//! The Merkle tree against the published RFC 6962 test vectors, and proofs over random trees.
//!
//! The vectors are the standard eight-leaf tree first published in Google's
//! certificate-transparency `merkle_tree_test.cc` and kept today in transparency-dev/merkle:
//! - leaves, node hashes, roots of sizes 0..=8 and compact trees: `testonly/constants.go`
//!   (`LeafInputs`, `NodeHashes`, `RootHashes`, `CompactTrees`);
//! - inclusion and consistency proofs with their hashes: `proof/verify_test.go`
//!   (`inclusionProofs`, `consistencyProofs`, `roots`, `leaves`; its leaf numbers are 1-based);
//! - which nodes each proof holds, for trees up to eight leaves: `proof/proof_test.go`
//!   (`TestInclusion`, `TestConsistency`; `rehash(a, b)` of two nodes is their parent).

use std::cell::Cell;

use proptest::prelude::*;

use super::*;

fn d(hex_digest: &str) -> Digest {
    hex_digest.parse().expect("a 64-hex-digit vector")
}

/// `testonly/constants.go` `LeafInputs()`.
const LEAF_INPUTS: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];

/// `testonly/constants.go` `NodeHashes()`: level, then index within the level.
const NODE_HASHES: [&[&str]; 4] = [
    &[
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    ],
    &[
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    ],
    &[
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    &["5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"],
];

/// `testonly/constants.go` `RootHashes()`: the roots of the trees of sizes 0..=8.
const ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/// `proof/verify_test.go` `inclusionProofs`, with its 1-based leaf made a 0-based index:
/// (index, size, proof).
const INCLUSION_PROOFS: [(u64, u64, &[&str]); 5] = [
    (0, 1, &[]),
    (
        0,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        &[
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        3,
        &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
    ),
    (
        1,
        5,
        &[
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
];

/// `proof/verify_test.go` `consistencyProofs`: (old size, new size, proof).
const CONSISTENCY_PROOFS: [(u64, u64, &[&str]); 5] = [
    (1, 1, &[]),
    (
        1,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        &[
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
];

/// A node of the vector tree (`compact.NewNodeID(level, index)` in `proof/proof_test.go`).
#[derive(Clone, Copy)]
enum Node {
    Id(usize, usize),
    /// `rehash` of two nodes: their parent, `node_hash(right, left)` of the listed order.
    Rehash(usize, usize, usize, usize),
}

impl Node {
    fn hash(self) -> Digest {
        match self {
            Node::Id(level, index) => d(NODE_HASHES[level][index]),
            Node::Rehash(l1, i1, l2, i2) => {
                node_hash(&Node::Id(l2, i2).hash(), &Node::Id(l1, i1).hash())
            }
        }
    }
}

use Node::{Id, Rehash};

/// In `proof_test.go`'s picture: a..f, j are leaves 0..6, g h i the level-1 nodes, k the
/// level-2 node, and l = hash(i, j) the right half of the tree of seven.
const L7: Node = Rehash(0, 6, 1, 2);

/// `proof/proof_test.go` `TestInclusion`, the cases within the eight-leaf tree:
/// (size, index, nodes).
const INCLUSION_NODES: &[(u64, u64, &[Node])] = &[
    (1, 0, &[]),
    (2, 0, &[Id(0, 1)]),
    (2, 1, &[Id(0, 0)]),
    (3, 1, &[Id(0, 0), Id(0, 2)]),
    (7, 0, &[Id(0, 1), Id(1, 1), L7]),
    (7, 1, &[Id(0, 0), Id(1, 1), L7]),
    (7, 2, &[Id(0, 3), Id(1, 0), L7]),
    (7, 3, &[Id(0, 2), Id(1, 0), L7]),
    (7, 4, &[Id(0, 5), Id(0, 6), Id(2, 0)]),
    (7, 5, &[Id(0, 4), Id(0, 6), Id(2, 0)]),
    (7, 6, &[Id(1, 2), Id(2, 0)]),
    (4, 2, &[Id(0, 3), Id(1, 0)]),
    (5, 3, &[Id(0, 2), Id(1, 0), Id(0, 4)]),
    (6, 3, &[Id(0, 2), Id(1, 0), Id(1, 2)]),
    (6, 4, &[Id(0, 5), Id(2, 0)]),
];

/// `proof/proof_test.go` `TestConsistency`, the cases within the eight-leaf tree:
/// (old size, new size, nodes).
const CONSISTENCY_NODES: &[(u64, u64, &[Node])] = &[
    (1, 2, &[Id(0, 1)]),
    (1, 4, &[Id(0, 1), Id(1, 1)]),
    (1, 6, &[Id(0, 1), Id(1, 1), Id(1, 2)]),
    (2, 3, &[Id(0, 2)]),
    (2, 8, &[Id(1, 1), Id(2, 1)]),
    (3, 7, &[Id(0, 2), Id(0, 3), Id(1, 0), L7]),
    (4, 7, &[L7]),
    (5, 7, &[Id(0, 4), Id(0, 5), Id(0, 6), Id(2, 0)]),
    (6, 7, &[Id(1, 2), Id(0, 6), Id(2, 0)]),
    (7, 8, &[Id(0, 6), Id(0, 7), Id(1, 2), Id(2, 0)]),
    (1, 1, &[]),
    (2, 2, &[]),
    (3, 3, &[]),
    (4, 4, &[]),
    (5, 5, &[]),
    (7, 7, &[]),
    (8, 8, &[]),
    (2, 4, &[Id(1, 1)]),
    (3, 5, &[Id(0, 2), Id(0, 3), Id(1, 0), Id(0, 4)]),
    (3, 6, &[Id(0, 2), Id(0, 3), Id(1, 0), Id(1, 2)]),
    (4, 6, &[Id(1, 2)]),
    (1, 7, &[Id(0, 1), Id(1, 1), L7]),
];

/// `testonly/constants.go` `CompactTrees()`: the compact range of each size 0..=8.
const COMPACT_TREES: [&[Node]; 9] = [
    &[],
    &[Id(0, 0)],
    &[Id(1, 0)],
    &[Id(1, 0), Id(0, 2)],
    &[Id(2, 0)],
    &[Id(2, 0), Id(0, 4)],
    &[Id(2, 0), Id(1, 2)],
    &[Id(2, 0), Id(1, 2), Id(0, 6)],
    &[Id(3, 0)],
];

fn vector_leaves() -> Vec<Digest> {
    LEAF_INPUTS
        .iter()
        .map(|h| leaf_hash(&hex::decode(h).unwrap()))
        .collect()
}

fn hashes(hexes: &[&str]) -> Vec<Digest> {
    hexes.iter().map(|h| d(h)).collect()
}

fn nodes(nodes: &[Node]) -> Vec<Digest> {
    nodes.iter().map(|n| n.hash()).collect()
}

/// Distinct leaves for random trees: `seed` varies the tree between cases.
fn leaves(seed: u64, n: u64) -> Vec<Digest> {
    (0..n)
        .map(|i| leaf_hash(&[seed.to_be_bytes(), i.to_be_bytes()].concat()))
        .collect()
}

fn flip(proof: &[Digest], at: usize) -> Vec<Digest> {
    let mut bad = proof.to_vec();
    bad[at].0[at % 32] ^= 0x10;
    bad
}

#[test]
fn the_empty_tree_root_is_sha256_of_the_empty_string() {
    assert_eq!(empty_root(), d(ROOTS[0]));
    assert_eq!(root(&Vec::new()), d(ROOTS[0]));
    assert_eq!(CompactRange::new().root(), d(ROOTS[0]));
}

#[test]
fn leaf_hashes_of_the_rfc6962_inputs_are_the_published_level_zero_nodes() {
    assert_eq!(vector_leaves(), hashes(NODE_HASHES[0]));
}

#[test]
fn node_hash_of_two_published_leaves_is_their_published_parent() {
    let leaves = vector_leaves();
    assert_eq!(node_hash(&leaves[0], &leaves[1]), d(NODE_HASHES[1][0]));
    assert_ne!(node_hash(&leaves[1], &leaves[0]), d(NODE_HASHES[1][0]));
}

#[test]
fn roots_of_every_prefix_of_the_vector_tree_are_the_published_roots() {
    let leaves = vector_leaves();
    for size in 0..=8 {
        assert_eq!(root(&leaves[..size]), d(ROOTS[size]), "size {size}");
        assert_eq!(
            root_at(&leaves, size as u64).unwrap(),
            d(ROOTS[size]),
            "size {size}"
        );
    }
}

#[test]
fn perfect_subtrees_of_the_vector_tree_are_the_published_node_hashes() {
    let leaves = vector_leaves();
    for (level, row) in NODE_HASHES.iter().enumerate() {
        for (index, hash) in row.iter().enumerate() {
            let start = (index as u64) << level;
            assert_eq!(
                leaves.perfect_subtree(start, level as u32),
                d(hash),
                "level {level} index {index}"
            );
        }
    }
}

#[test]
fn published_inclusion_proofs_are_generated_exactly_and_verify() {
    let leaves = vector_leaves();
    for (index, size, proof) in INCLUSION_PROOFS {
        let want = hashes(proof);
        let got = inclusion_proof(index, size, &leaves).unwrap();
        assert_eq!(got, want, "index {index} size {size}");
        let root = d(ROOTS[size as usize]);
        assert_eq!(
            verify_inclusion(&leaves[index as usize], index, size, &want, &root),
            Ok(())
        );
    }
}

#[test]
fn published_consistency_proofs_are_generated_exactly_and_verify() {
    let leaves = vector_leaves();
    for (old, new, proof) in CONSISTENCY_PROOFS {
        let want = hashes(proof);
        let got = consistency_proof(old, new, &leaves).unwrap();
        assert_eq!(got, want, "{old} -> {new}");
        let (old_root, new_root) = (d(ROOTS[old as usize]), d(ROOTS[new as usize]));
        assert_eq!(
            verify_consistency(old, new, &old_root, &new_root, &want),
            Ok(())
        );
    }
}

#[test]
fn inclusion_proofs_hold_the_reference_nodes() {
    let leaves = vector_leaves();
    for (size, index, want) in INCLUSION_NODES {
        let want = nodes(want);
        assert_eq!(
            inclusion_proof(*index, *size, &leaves).unwrap(),
            want,
            "index {index} size {size}"
        );
        assert_eq!(inclusion_proof_len(*index, *size), want.len());
        let root = d(ROOTS[*size as usize]);
        assert_eq!(
            verify_inclusion(&leaves[*index as usize], *index, *size, &want, &root),
            Ok(())
        );
    }
}

#[test]
fn consistency_proofs_hold_the_reference_nodes() {
    let leaves = vector_leaves();
    for (old, new, want) in CONSISTENCY_NODES {
        let want = nodes(want);
        assert_eq!(
            consistency_proof(*old, *new, &leaves).unwrap(),
            want,
            "{old} -> {new}"
        );
        assert_eq!(consistency_proof_len(*old, *new), want.len());
        let (old_root, new_root) = (d(ROOTS[*old as usize]), d(ROOTS[*new as usize]));
        assert_eq!(
            verify_consistency(*old, *new, &old_root, &new_root, &want),
            Ok(())
        );
    }
}

#[test]
fn compact_ranges_of_the_vector_tree_are_the_published_compact_trees() {
    let leaves = vector_leaves();
    let mut range = CompactRange::new();
    for size in 0..=8 {
        assert_eq!(range.hashes(), nodes(COMPACT_TREES[size]), "size {size}");
        assert_eq!(range.root(), d(ROOTS[size]), "size {size}");
        assert_eq!(
            CompactRange::from_tree(&leaves, size as u64).unwrap(),
            range
        );
        if size < 8 {
            range.push(leaves[size]);
        }
    }
}

/// `proof/verify_test.go` `corruptInclusionProof`: every probe is refused, each for its reason.
#[test]
fn corrupted_published_inclusion_proofs_are_refused() {
    let leaves = vector_leaves();
    let some_hash = d("abacaba000000000000000000000000000000000000000000060061e00123456");
    for (index, size, proof) in INCLUSION_PROOFS.into_iter().skip(1) {
        let proof = hashes(proof);
        let (leaf, root) = (leaves[index as usize], d(ROOTS[size as usize]));
        let check = |leaf: &Digest, index, size, proof: &[Digest], root: &Digest| {
            verify_inclusion(leaf, index, size, proof, root)
        };
        for wrong in [index.wrapping_sub(1), index + 1, index ^ 2] {
            assert!(check(&leaf, wrong, size, &proof, &root).is_err(), "{wrong}");
        }
        for wrong_size in [size * 2, size / 2] {
            assert!(check(&leaf, index, wrong_size, &proof, &root).is_err());
        }
        assert_eq!(
            check(&leaf_hash(b"WrongLeaf"), index, size, &proof, &root),
            Err(ProofError::RootMismatch)
        );
        for wrong_root in [empty_root(), some_hash] {
            assert_eq!(
                check(&leaf, index, size, &proof, &wrong_root),
                Err(ProofError::RootMismatch)
            );
        }
        let longer = [proof.as_slice(), &[root]].concat();
        let preceded = [&[root], proof.as_slice()].concat();
        for bad in [longer, preceded] {
            assert_eq!(
                check(&leaf, index, size, &bad, &root),
                Err(ProofError::WrongProofLength {
                    expected: proof.len(),
                    actual: proof.len() + 1
                })
            );
        }
        for at in 0..proof.len() {
            assert_eq!(
                check(&leaf, index, size, &flip(&proof, at), &root),
                Err(ProofError::RootMismatch)
            );
        }
        assert!(check(&leaf, index, size, &proof[..proof.len() - 1], &root).is_err());
        let inserted = [&proof[..1], &[some_hash], &proof[1..]].concat();
        assert!(check(&leaf, index, size, &inserted, &root).is_err());
    }
}

/// `proof/verify_test.go` `corruptConsistencyProof`: every probe is refused.
#[test]
fn corrupted_published_consistency_proofs_are_refused() {
    for (old, new, proof) in CONSISTENCY_PROOFS.into_iter().skip(1) {
        let proof = hashes(proof);
        let (r1, r2) = (d(ROOTS[old as usize]), d(ROOTS[new as usize]));
        let wrong = d(ROOTS[0]);
        let probes: Vec<(u64, u64, Digest, Digest, Vec<Digest>)> = vec![
            (old - 1, new, r1, r2, proof.clone()),
            (old + 1, new, r1, r2, proof.clone()),
            (old ^ 2, new, r1, r2, proof.clone()),
            (old, new * 2, r1, r2, proof.clone()),
            (old, new / 2, r1, r2, proof.clone()),
            (old, new, wrong, r2, proof.clone()),
            (old, new, r1, wrong, proof.clone()),
            (old, new, r2, r1, proof.clone()),
            (old, new, r1, r2, vec![]),
            (old, new, r1, r2, [proof.as_slice(), &[r1]].concat()),
            (old, new, r1, r2, [proof.as_slice(), &[r2]].concat()),
            (old, new, r1, r2, [&[r1], proof.as_slice()].concat()),
            (old, new, r1, r2, [&[r2], proof.as_slice()].concat()),
            (old, new, r1, r2, [&[proof[0]], proof.as_slice()].concat()),
            (old, new, r1, r2, proof[..proof.len() - 1].to_vec()),
        ];
        for (i, (o, n, a, b, p)) in probes.iter().enumerate() {
            assert!(
                verify_consistency(*o, *n, a, b, p).is_err(),
                "{old} -> {new}, probe {i}"
            );
        }
        for at in 0..proof.len() {
            assert!(verify_consistency(old, new, &r1, &r2, &flip(&proof, at)).is_err());
        }
    }
}

#[test]
fn a_single_leaf_tree_has_its_leaf_hash_as_root_and_an_empty_proof() {
    let leaf = leaf_hash(b"data");
    assert_eq!(root(&[leaf][..]), leaf);
    assert_eq!(inclusion_proof(0, 1, &[leaf][..]).unwrap(), vec![]);
    assert_eq!(verify_inclusion(&leaf, 0, 1, &[], &leaf), Ok(()));
    assert_eq!(
        verify_inclusion(&leaf, 0, 1, &[], &empty_root()),
        Err(ProofError::RootMismatch)
    );
}

#[test]
fn inclusion_refuses_an_index_at_or_past_the_tree_size() {
    let leaves = vector_leaves();
    for (index, size) in [(0, 0), (1, 0), (1, 1), (2, 1), (8, 7), (8, 8)] {
        let err = ProofError::IndexOutOfRange { index, size };
        assert_eq!(inclusion_proof(index, size, &leaves), Err(err.clone()));
        assert_eq!(
            verify_inclusion(&leaves[0], index, size, &[], &empty_root()),
            Err(err)
        );
    }
}

#[test]
fn proofs_refuse_sizes_beyond_the_available_leaves() {
    let leaves = vector_leaves();
    let beyond = ProofError::SizeBeyondLog {
        size: 9,
        available: 8,
    };
    assert_eq!(inclusion_proof(0, 9, &leaves), Err(beyond.clone()));
    assert_eq!(consistency_proof(1, 9, &leaves), Err(beyond.clone()));
    assert_eq!(root_at(&leaves, 9), Err(beyond.clone()));
    assert_eq!(CompactRange::from_tree(&leaves, 9), Err(beyond));
}

#[test]
fn consistency_refuses_an_old_size_after_the_new_one() {
    let leaves = vector_leaves();
    let err = ProofError::OldSizeAfterNew { old: 6, new: 3 };
    assert_eq!(consistency_proof(6, 3, &leaves), Err(err.clone()));
    let (r6, r3) = (d(ROOTS[6]), d(ROOTS[3]));
    assert_eq!(verify_consistency(6, 3, &r6, &r3, &[]), Err(err));
}

#[test]
fn consistency_from_the_empty_tree_needs_no_proof_and_the_empty_root() {
    let leaves = vector_leaves();
    let empty = empty_root();
    let r5 = d(ROOTS[5]);
    assert_eq!(consistency_proof(0, 5, &leaves).unwrap(), vec![]);
    assert_eq!(verify_consistency(0, 5, &empty, &r5, &[]), Ok(()));
    assert_eq!(verify_consistency(0, 0, &empty, &empty, &[]), Ok(()));
    assert_eq!(
        verify_consistency(0, 5, &r5, &r5, &[]),
        Err(ProofError::NotTheEmptyRoot)
    );
    assert_eq!(
        verify_consistency(0, 0, &empty, &r5, &[]),
        Err(ProofError::NotTheEmptyRoot)
    );
    assert_eq!(
        verify_consistency(0, 5, &empty, &r5, &[empty]),
        Err(ProofError::WrongProofLength {
            expected: 0,
            actual: 1
        })
    );
}

#[test]
fn consistency_between_equal_sizes_needs_no_proof_and_equal_roots() {
    let leaves = vector_leaves();
    let (r4, r5) = (d(ROOTS[4]), d(ROOTS[5]));
    assert_eq!(consistency_proof(4, 4, &leaves).unwrap(), vec![]);
    assert_eq!(verify_consistency(4, 4, &r4, &r4, &[]), Ok(()));
    assert_eq!(
        verify_consistency(4, 4, &r4, &r5, &[]),
        Err(ProofError::SameSizeDifferentRoots { size: 4 })
    );
    assert_eq!(
        verify_consistency(4, 4, &r4, &r4, &[r4]),
        Err(ProofError::WrongProofLength {
            expected: 0,
            actual: 1
        })
    );
}

#[test]
fn consistency_names_which_root_the_proof_misses() {
    let leaves = vector_leaves();
    let proof = consistency_proof(3, 7, &leaves).unwrap();
    let (r3, r7) = (d(ROOTS[3]), d(ROOTS[7]));
    assert_eq!(
        verify_consistency(3, 7, &r7, &r7, &proof),
        Err(ProofError::OldRootMismatch)
    );
    assert_eq!(
        verify_consistency(3, 7, &r3, &r3, &proof),
        Err(ProofError::NewRootMismatch)
    );
}

/// The proof alone does not bind the tree size: the leaf-0 proof of the tree of three walks
/// the same path as one in a tree of four, so against the *three*-leaf root it passes for size
/// 4. Against the real root of size 4 it fails. This is why a verifier takes the size and the
/// root together from one signed checkpoint.
#[test]
fn the_tree_size_is_bound_by_the_checkpoint_root_not_by_the_proof() {
    let leaves = vector_leaves();
    let proof = inclusion_proof(0, 3, &leaves).unwrap();
    let (r3, r4) = (d(ROOTS[3]), d(ROOTS[4]));
    assert_eq!(verify_inclusion(&leaves[0], 0, 4, &proof, &r3), Ok(()));
    assert_eq!(
        verify_inclusion(&leaves[0], 0, 4, &proof, &r4),
        Err(ProofError::RootMismatch)
    );
}

#[test]
fn verification_at_the_largest_tree_sizes_neither_overflows_nor_accepts_garbage() {
    let leaf = leaf_hash(b"x");
    let garbage = vec![leaf; 64];
    for (index, size) in [(u64::MAX - 1, u64::MAX), (0, u64::MAX), (1 << 63, u64::MAX)] {
        let expected = inclusion_proof_len(index, size);
        assert!(expected <= 64);
        assert_eq!(
            verify_inclusion(&leaf, index, size, &garbage[..expected], &leaf),
            Err(ProofError::RootMismatch)
        );
    }
    for (old, new) in [(u64::MAX - 1, u64::MAX), (1, u64::MAX), (1 << 63, u64::MAX)] {
        let expected = consistency_proof_len(old, new);
        assert!(expected <= 128);
        let proof = vec![leaf; expected];
        assert!(verify_consistency(old, new, &leaf, &leaf, &proof).is_err());
    }
}

#[test]
fn a_compact_range_rebuilds_from_its_parts_and_refuses_a_wrong_count() {
    let leaves = vector_leaves();
    let range = CompactRange::from_tree(&leaves, 7).unwrap();
    assert_eq!(
        CompactRange::from_parts(7, range.hashes().to_vec()).unwrap(),
        range
    );
    assert_eq!(
        CompactRange::from_parts(8, range.hashes().to_vec()),
        Err(ProofError::CompactRangeMismatch {
            size: 8,
            expected: 1,
            actual: 3
        })
    );
}

#[test]
fn all_proofs_of_all_trees_up_to_40_leaves_verify() {
    let all = leaves(7, 40);
    for new in 0..=40u64 {
        let tree = &all[..new as usize];
        let new_root = root(tree);
        for index in 0..new {
            let proof = inclusion_proof(index, new, tree).unwrap();
            assert_eq!(proof.len(), inclusion_proof_len(index, new));
            let leaf = &tree[index as usize];
            assert_eq!(
                verify_inclusion(leaf, index, new, &proof, &new_root),
                Ok(())
            );
        }
        for old in 0..=new {
            let proof = consistency_proof(old, new, tree).unwrap();
            assert_eq!(proof.len(), consistency_proof_len(old, new));
            let old_root = root(&tree[..old as usize]);
            assert_eq!(
                verify_consistency(old, new, &old_root, &new_root, &proof),
                Ok(()),
                "{old} -> {new}"
            );
        }
    }
}

/// A store that keeps every perfect-subtree root, as the server's will: proofs read O(log^2 n)
/// nodes, never the leaves under them.
struct StoredNodes {
    levels: Vec<Vec<Digest>>,
    lookups: Cell<u64>,
}

impl StoredNodes {
    fn new(leaves: Vec<Digest>) -> Self {
        let mut levels = vec![leaves];
        while levels.last().unwrap().len() > 1 {
            let next = levels
                .last()
                .unwrap()
                .chunks_exact(2)
                .map(|pair| node_hash(&pair[0], &pair[1]))
                .collect();
            levels.push(next);
        }
        Self {
            levels,
            lookups: Cell::new(0),
        }
    }
}

impl LeafHashes for StoredNodes {
    fn len(&self) -> u64 {
        self.levels[0].len() as u64
    }

    fn leaf(&self, index: u64) -> Digest {
        self.perfect_subtree(index, 0)
    }

    fn perfect_subtree(&self, start: u64, level: u32) -> Digest {
        self.lookups.set(self.lookups.get() + 1);
        self.levels[level as usize][(start >> level) as usize]
    }
}

#[test]
fn a_store_with_interior_nodes_serves_the_same_proofs_in_logarithmic_lookups() {
    let size = 40_003;
    let all = leaves(3, size);
    let store = StoredNodes::new(all.clone());
    let store_root = root(&store);
    assert_eq!(store_root, root(&all));
    let log2 = 64 - u64::from(size.leading_zeros());
    for index in [0, 1, 20_000, 32_767, 32_768, 40_001, 40_002] {
        store.lookups.set(0);
        let proof = inclusion_proof(index, size, &store).unwrap();
        assert!(
            store.lookups.get() <= log2 * log2,
            "{}",
            store.lookups.get()
        );
        assert_eq!(
            verify_inclusion(&all[index as usize], index, size, &proof, &store_root),
            Ok(())
        );
    }
    store.lookups.set(0);
    let proof = consistency_proof(12_345, size, &store).unwrap();
    assert!(store.lookups.get() <= log2 * log2);
    let old_root = root(&all[..12_345]);
    assert_eq!(
        verify_consistency(12_345, size, &old_root, &store_root, &proof),
        Ok(())
    );
    assert_eq!(
        CompactRange::from_tree(&store, size).unwrap().root(),
        store_root
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Every inclusion proof verifies; with any one hash flipped, another index, another
    /// tree size (with that size's real root), another root or another leaf it fails.
    #[test]
    fn every_inclusion_proof_verifies_and_any_tampering_fails(
        size in 1u64..=300,
        seed in any::<u64>(),
        other in any::<[u8; 32]>(),
    ) {
        let all = leaves(seed, size * 2 + 1);
        let tree = &all[..size as usize];
        let tree_root = root(tree);
        let wrong_sizes: Vec<u64> = [size - 1, size + 1, size * 2, size / 2]
            .into_iter()
            .filter(|s| *s != size)
            .collect();
        let other_roots: Vec<(u64, Digest)> = wrong_sizes
            .iter()
            .map(|s| (*s, root_at(&all, *s).unwrap()))
            .collect();
        for index in 0..size {
            let leaf = tree[index as usize];
            let proof = inclusion_proof(index, size, tree).unwrap();
            prop_assert_eq!(verify_inclusion(&leaf, index, size, &proof, &tree_root), Ok(()));
            for at in 0..proof.len() {
                prop_assert_eq!(
                    verify_inclusion(&leaf, index, size, &flip(&proof, at), &tree_root),
                    Err(ProofError::RootMismatch)
                );
            }
            for wrong in [index + 1, index.wrapping_sub(1), index ^ 1, index ^ 2, size - 1 - index] {
                if wrong != index {
                    prop_assert!(verify_inclusion(&leaf, wrong, size, &proof, &tree_root).is_err());
                }
            }
            for (wrong_size, wrong_root) in &other_roots {
                prop_assert!(verify_inclusion(&leaf, index, *wrong_size, &proof, wrong_root).is_err());
            }
            prop_assert!(verify_inclusion(&leaf, index, size, &proof, &Digest(other)).is_err());
            let other_leaf = all[(index as usize + 1) % all.len()];
            prop_assert!(verify_inclusion(&other_leaf, index, size, &proof, &tree_root).is_err());
        }
    }

    /// Every consistency proof verifies; with any one hash flipped, a hash added or removed,
    /// the roots swapped, or claimed for other sizes (with those sizes' real roots) it fails,
    /// unless it is, hash for hash, the honest proof of the claimed sizes.
    #[test]
    fn every_consistency_proof_verifies_and_any_tampering_fails(
        new in 1u64..=300,
        seed in any::<u64>(),
    ) {
        let all = leaves(seed, new + 1);
        let tree = &all[..new as usize];
        let new_root = root(tree);
        for old in 0..=new {
            let old_root = root_at(tree, old).unwrap();
            let proof = consistency_proof(old, new, tree).unwrap();
            prop_assert_eq!(verify_consistency(old, new, &old_root, &new_root, &proof), Ok(()));
            for at in 0..proof.len() {
                prop_assert!(
                    verify_consistency(old, new, &old_root, &new_root, &flip(&proof, at)).is_err()
                );
            }
            let longer = [proof.as_slice(), &[new_root]].concat();
            prop_assert!(verify_consistency(old, new, &old_root, &new_root, &longer).is_err());
            if !proof.is_empty() {
                let shorter = &proof[..proof.len() - 1];
                prop_assert!(verify_consistency(old, new, &old_root, &new_root, shorter).is_err());
            }
            if old != new {
                prop_assert!(verify_consistency(old, new, &new_root, &old_root, &proof).is_err());
            }
            for claimed_old in [old + 1, old.wrapping_sub(1)] {
                if claimed_old <= new && claimed_old != old {
                    let claimed_root = root_at(tree, claimed_old).unwrap();
                    let honest = consistency_proof(claimed_old, new, tree).unwrap();
                    prop_assert_eq!(
                        verify_consistency(claimed_old, new, &claimed_root, &new_root, &proof).is_ok(),
                        honest == proof,
                        "{} -> {} claimed as {} -> {}", old, new, claimed_old, new
                    );
                }
            }
            for claimed_new in [new + 1, new - 1] {
                if claimed_new >= old && claimed_new != new {
                    let claimed_root = root_at(&all, claimed_new).unwrap();
                    let honest = consistency_proof(old, claimed_new, &all).unwrap();
                    prop_assert_eq!(
                        verify_consistency(old, claimed_new, &old_root, &claimed_root, &proof).is_ok(),
                        honest == proof,
                        "{} -> {} claimed as {} -> {}", old, new, old, claimed_new
                    );
                }
            }
        }
    }

    /// The incremental range always has the root of the whole tree, and rebuilds from the
    /// tree or from its own parts to the same state.
    #[test]
    fn the_compact_range_root_always_equals_the_tree_root(
        size in 0u64..=300,
        seed in any::<u64>(),
    ) {
        let all = leaves(seed, size);
        let mut range = CompactRange::new();
        for (i, leaf) in all.iter().enumerate() {
            range.push(*leaf);
            let n = i as u64 + 1;
            prop_assert_eq!(range.size(), n);
            prop_assert_eq!(range.hashes().len(), n.count_ones() as usize);
            prop_assert_eq!(range.root(), root(&all[..=i]));
            prop_assert_eq!(&CompactRange::from_tree(&all, n).unwrap(), &range);
        }
        let rebuilt = CompactRange::from_parts(range.size(), range.hashes().to_vec()).unwrap();
        prop_assert_eq!(rebuilt, range);
    }
}
