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
    pub limits: Limits,
}

/// The server's explicit resource limits that live in memory: enrollment attempts per secret,
/// bytes held by request bodies being read, open connections.
pub struct Limits {
    pub enroll: crate::limits::RateLimiter,
    /// One permit per byte of request body being read (`max_inflight_body_bytes`).
    pub body_bytes: Arc<tokio::sync::Semaphore>,
    pub connections: Arc<tokio::sync::Semaphore>,
    /// When the token cache was last reloaded on a miss (microseconds).
    pub token_reload_at: std::sync::atomic::AtomicI64,
}

impl Limits {
    pub fn new(config: &Config) -> Self {
        Self {
            enroll: crate::limits::RateLimiter::new(
                config.enroll_burst_per_secret,
                config.enroll_per_minute_per_secret,
            ),
            body_bytes: Arc::new(tokio::sync::Semaphore::new(config.max_inflight_body_bytes)),
            connections: Arc::new(tokio::sync::Semaphore::new(config.max_connections)),
            token_reload_at: Default::default(),
        }
    }
}

impl AppState {
    /// Reloads the key and token caches from the store.
    pub fn reload_credentials(&self) -> StoreResult<()> {
        let keys = self.store.keys()?;
        *self.keys.write().expect("keys lock") =
            keys.into_iter().map(|k| (k.key_id.clone(), k)).collect();
        self.reload_tokens()
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

    /// After a key became a host's active key: the cache retires the host's other active key
    /// and holds the new one.
    pub fn activate_cached_key(
        &self,
        host_id: &str,
        key_id: &str,
        public_key: [u8; 32],
        host_enrolled_at: i64,
    ) {
        let mut keys = self.keys.write().expect("keys lock");
        let enrolled_at = keys
            .values()
            .find(|k| k.host_id == host_id)
            .map_or(host_enrolled_at, |k| k.host_enrolled_at);
        for k in keys.values_mut() {
            if k.host_id == host_id && k.key_id != key_id && k.state == "active" {
                k.state = "retired".into();
            }
        }
        keys.insert(
            key_id.to_string(),
            KeyRecord {
                key_id: key_id.to_string(),
                host_id: host_id.to_string(),
                public_key,
                state: "active".into(),
                host_revoked: false,
                host_enrolled_at: enrolled_at,
            },
        );
    }

    /// What an agent is told when its key is (again) the host's active key.
    pub fn enroll_response(
        &self,
        outcome: crate::store::EnrollOutcome,
    ) -> evidence_protocol::api::EnrollResponse {
        evidence_protocol::api::EnrollResponse {
            host_id: outcome.host_id,
            key_id: outcome.key_id,
            server_public_key: self.server_key.public_key_b64(),
            report_interval_secs: self.config.report_interval_secs,
            stale_after_intervals: self.config.stale_after_intervals,
            last_seq: outcome.last_seq,
            last_digest: outcome.last_digest,
        }
    }

    /// Reloads the token cache from the store.
    pub fn reload_tokens(&self) -> StoreResult<()> {
        self.tokens.load(&self.store.tokens()?);
        Ok(())
    }

    /// At most one token reload on a cache miss every 2 s, so unknown tokens cannot make every
    /// request read the store.
    pub fn may_reload_tokens(&self) -> bool {
        use std::sync::atomic::Ordering;
        let now = crate::time::now_us();
        let last = self.limits.token_reload_at.load(Ordering::Relaxed);
        now - last > 2_000_000
            && self
                .limits
                .token_reload_at
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    pub fn policy(&self) -> (u64, Arc<OrgPolicy>) {
        let p = self.policy.read().expect("policy lock");
        (p.0, p.1.clone())
    }
}
