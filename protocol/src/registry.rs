//! The collector registry: the one list of the collectors this build knows.
//!
//! Every other list of collectors is generated from [`for_each_collector!`]: the fact modules
//! and [`crate::Facts`] here, [`crate::CollectorName`], the collectors crate's modules and
//! dispatch, the controls crate's checks, evaluator, policy and mappings, and the agent's watch
//! list. Adding a collector is one line below plus its own new files: its facts type
//! (`protocol/src/facts/<name>.rs`), its collector (`collectors/src/<name>/`), and its checks
//! (`controls/src/checks/<name>.rs` with `controls/data/checks/<name>.toml`).

/// Calls `$callback! { name => Variant(FactsType), ... }` once with every collector, in the
/// order of this list (the order of [`crate::CollectorName`]).
///
/// `name` is the collector's stable name: its key in `facts` on the wire, its module in each
/// crate, its policy section and the prefix of its check ids. `Variant` names it in
/// [`crate::CollectorName`]; `FactsType` is what it observes, in `crate::facts::<name>`.
#[macro_export]
macro_rules! for_each_collector {
    ($callback:ident) => {
        $callback! {
            host => Host(HostFacts),
            disk_encryption => DiskEncryption(DiskEncryptionFacts),
            patch_level => PatchLevel(PatchLevelFacts),
            firewall => Firewall(FirewallFacts),
            accounts => Accounts(AccountsFacts),
        }
    };
}
