//! Signed checkpoints of the evidence log's Merkle tree (C2SP `tlog-checkpoint` in a
//! `signed-note`, signed with the server's key), and the proofs against them. Every group
//! commit of reports signs one inside its transaction ([`NoteSigner`]); otherwise (the log grew
//! by key events or policy versions) one is signed when asked for. Sizes only grow, and the
//! tree is append-only, so no two checkpoints the server signs are inconsistent.

use std::sync::Arc;

use evidence_protocol::{Checkpoint, Digest, SigningKey};
use serde::Serialize;

use super::{ErrorCode, ServiceError, ServiceResult, Services};
use crate::store::{CheckpointSigner, Store, StoredCheckpoint};

/// Signs checkpoint notes with the server key under the log's origin.
pub struct NoteSigner {
    key: Arc<SigningKey>,
    origin: String,
}

impl NoteSigner {
    pub fn new(key: Arc<SigningKey>) -> Self {
        Self {
            origin: origin(&key),
            key,
        }
    }
}

impl CheckpointSigner for NoteSigner {
    fn sign(&self, size: u64, root: &Digest) -> Result<String, String> {
        Checkpoint::new(self.origin.clone(), size, *root)
            .sign(&self.key, &self.origin)
            .map_err(|e| e.to_string())
    }
}

pub(super) struct Checkpointer {
    store: Arc<dyn Store>,
    key: Arc<SigningKey>,
    /// The log's origin line, also the signing key's name.
    origin: String,
    /// One signer at a time, so two callers never sign the same size twice.
    lock: tokio::sync::Mutex<()>,
}

impl Checkpointer {
    pub fn new(store: Arc<dyn Store>, key: Arc<SigningKey>) -> Self {
        Self {
            origin: origin(&key),
            store,
            key,
            lock: Default::default(),
        }
    }

    /// Refuses a store whose tree no longer extends the last checkpoint this server signed
    /// (entries removed, or history rewritten under it): signing on would make two checkpoints
    /// inconsistent with each other. Checked when the services start.
    pub async fn check_extends_last(&self) -> crate::store::StoreResult<()> {
        let Some(last) = self.store.latest_checkpoint().await? else {
            return Ok(());
        };
        let (size, root) = self.store.tree_head().await?;
        let consistent = match self.store.consistency_proof(last.size, size).await? {
            Some(proof) => evidence_protocol::merkle::verify_consistency(
                last.size, size, &last.root, &root, &proof,
            )
            .is_ok(),
            None => false,
        };
        if consistent {
            return Ok(());
        }
        Err(crate::store::StoreError::Corrupt(format!(
            "the evidence log ({size} entries) does not extend the checkpoint of {} entries this server signed: entries were removed or rewritten; refusing to sign over it (run verify-log)",
            last.size
        )))
    }

    /// The latest checkpoint, signing one first when the log grew since the last.
    pub async fn latest(&self) -> ServiceResult<StoredCheckpoint> {
        let _one_signer = self.lock.lock().await;
        let (size, root) = self.store.tree_head().await?;
        if let Some(last) = self.store.latest_checkpoint().await? {
            if last.size == size {
                return Ok(last);
            }
            if last.size > size {
                return Err(ServiceError::internal(format!(
                    "the evidence log has {size} entries but the server signed a checkpoint of {}: entries were removed",
                    last.size
                )));
            }
        }
        let note = Checkpoint::new(self.origin.clone(), size, root)
            .sign(&self.key, &self.origin)
            .map_err(ServiceError::internal)?;
        let checkpoint = StoredCheckpoint {
            size,
            root,
            note,
            at: crate::time::now_us(),
        };
        self.store.record_checkpoint(&checkpoint).await?;
        Ok(checkpoint)
    }
}

/// Checks that a stored checkpoint's note is signed by `key` for this log (`verify-log` and the
/// API's log verification).
pub fn check_signature(
    key: &SigningKey,
    checkpoint: &StoredCheckpoint,
) -> Result<(), evidence_protocol::CheckpointError> {
    let origin = origin(key);
    evidence_protocol::checkpoint::verify_note(&checkpoint.note, &origin, &key.public_key())
        .map(|_| ())
}

/// The log's origin (and the note key's name): `evidence-server/<server key id>`.
pub fn origin(key: &SigningKey) -> String {
    evidence_protocol::receipt::server_origin(&key.public_key())
}

/// An entry's inclusion proof against a tree size.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InclusionProof {
    pub index: u64,
    pub size: u64,
    #[schema(value_type = String)]
    pub leaf_hash: Digest,
    /// The RFC 9162 audit path, hex, leaf to root.
    #[schema(value_type = Vec<String>)]
    pub proof: Vec<Digest>,
}

/// A consistency proof between two tree sizes.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConsistencyProof {
    pub from: u64,
    pub to: u64,
    /// The RFC 9162 consistency proof, hex.
    #[schema(value_type = Vec<String>)]
    pub proof: Vec<Digest>,
}

impl Services {
    /// The latest signed checkpoint note.
    pub async fn checkpoint(&self) -> ServiceResult<String> {
        Ok(self.checkpoints.latest().await?.note)
    }

    /// The inclusion proof of entry `index` against the tree of `size` leaves (default: the
    /// latest checkpoint's).
    pub async fn inclusion_proof(
        &self,
        index: u64,
        size: Option<u64>,
    ) -> ServiceResult<InclusionProof> {
        let size = match size {
            Some(size) => size,
            None => self.checkpoints.latest().await?.size,
        };
        let (leaf_hash, proof) = self
            .store
            .inclusion_proof(index, size)
            .await?
            .ok_or_else(|| {
                ServiceError::new(
                    ErrorCode::InvalidField,
                    format!("no entry {index} in a tree of {size} entries (the log has fewer, or index is not below size)"),
                )
            })?;
        Ok(InclusionProof {
            index,
            size,
            leaf_hash,
            proof,
        })
    }

    /// The consistency proof from the tree of `from` leaves to the tree of `to` leaves
    /// (default: the latest checkpoint's).
    pub async fn consistency_proof(
        &self,
        from: u64,
        to: Option<u64>,
    ) -> ServiceResult<ConsistencyProof> {
        let to = match to {
            Some(to) => to,
            None => self.checkpoints.latest().await?.size,
        };
        let proof = self.store.consistency_proof(from, to).await?.ok_or_else(|| {
            ServiceError::new(
                ErrorCode::InvalidField,
                format!("no consistency proof from {from} to {to} entries (from must not exceed to, nor to the log)"),
            )
        })?;
        Ok(ConsistencyProof { from, to, proof })
    }
}
