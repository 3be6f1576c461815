//! The running server's shared state: configuration, store, server key, and the in-memory
//! caches (agent keys, API tokens, policy, fleet status) that keep the hot paths off the database.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use evidence_protocol::SigningKey;

use crate::auth::Tokens;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::policy::OrgPolicy;
use crate::status::{CheckIndex, Fleet, HostState};
use crate::store::{KeyRecord, Store, StoreResult};

pub struct AppState {
    pub config: Config,
    pub store: Arc<dyn Store>,
    pub server_key: SigningKey,
    /// Agent keys by key id.
    pub keys: RwLock<HashMap<String, KeyRecord>>,
    pub tokens: Tokens,
    /// Policy version (bumped on every change) and the policy.
    pub policy: RwLock<(u64, Arc<OrgPolicy>)>,
    pub fleet: Fleet,
    pub index: CheckIndex,
    pub writer: tokio::sync::mpsc::Sender<crate::writer::Job>,
    pub metrics: Metrics,
}

impl AppState {
    /// Reloads the key and token caches from the store.
    pub fn reload_credentials(&self) -> StoreResult<()> {
        let keys = self.store.keys()?;
        *self.keys.write().expect("keys lock") =
            keys.into_iter().map(|k| (k.key_id.clone(), k)).collect();
        self.tokens.load(&self.store.tokens()?);
        Ok(())
    }

    /// Loads the fleet's current state from the store (at start).
    pub fn load_fleet(&self) -> StoreResult<()> {
        let mut map = std::collections::HashMap::new();
        self.store.for_each_host_at(i64::MAX, &mut |h| {
            map.insert(h.host_id.clone(), HostState::from_store(&h, &self.index));
        })?;
        *self.fleet.hosts.write().expect("fleet lock") = map;
        Ok(())
    }

    pub fn policy(&self) -> (u64, Arc<OrgPolicy>) {
        let p = self.policy.read().expect("policy lock");
        (p.0, p.1.clone())
    }
}
