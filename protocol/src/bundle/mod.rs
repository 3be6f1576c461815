//! Evidence bundles, format `evidence-bundle-v1`: what an auditor takes away from the server and
//! checks offline with `evidence-verify`.
//!
//! A bundle is a deterministic, uncompressed ustar archive ([`BundleWriter`], read back under
//! limits by [`Bundle::read`]) holding the signed log entries of a selection of hosts and a
//! period (each with its Merkle inclusion proof), the server's signed checkpoints and the
//! consistency proofs between them, each host's report chain with its stated gaps
//! ([`chain_of`]), and the findings and control status rows derived from the facts (the
//! derivation itself lives in `evidence_controls`, which knows the checks). `manifest.json`
//! names every other file by digest and `manifest.sig` is the server's signed note over it.
//!
//! The server's `export-bundle` writes bundles with these types; `evidence-verify` reads them.

mod archive;
mod chain;
mod csv;
mod types;

pub use archive::{
    checkpoint_path, entry_body_path, entry_meta_path, is_bundle_path, manifest_sig_text,
    max_file_bytes, parse_checkpoint_path, parse_entry_path, write_archive, Bundle, BundleError,
    BundleWriter, CheckpointFile, EntryFile, FINAL_CHECKPOINT, MANIFEST, MANIFEST_SIG,
    MAX_ARCHIVE_BYTES, MAX_FILES, MAX_FILE_BYTES, MAX_TABLE_BYTES,
};
pub use chain::{chain_of, ChainLink};
pub use csv::{csv_cell, findings_csv, status_csv};
pub use types::{
    BundleManifest, CatalogIdentity, ChainGap, CheckVerdict, ConsistencyStep, ControlVerdict,
    EntryKind, EntryMeta, FindingRow, GapKind, HostChain, KeyEventBody, Period, Selection,
    StatusRow, TreeHead, CHAINS, CONSISTENCY, FINDINGS_CSV, FINDINGS_JSON, FORMAT, STATUS_CSV,
    STATUS_JSON,
};

#[cfg(test)]
mod tests;
