//! The in-memory copies that keep the hot paths off the store: agent keys by id, API tokens,
//! the policy in force (with a version bumped on every change) and the fleet's current state
//! (compact, see `domain::status`). Owned by the services and changed only by them, after the
//! store has committed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

use crate::auth::{Role, Tokens};
use crate::domain::records::{KeyRecord, KeyState, NewFinding, TokenRecord};
use crate::domain::status::{CheckIndex, HostState};
use evidence_controls::OrgPolicy;

pub(super) struct Caches {
    /// Agent keys by key id.
    keys: RwLock<HashMap<String, KeyRecord>>,
    tokens: Tokens,
    /// When the token cache was last reloaded on a miss (microseconds).
    token_reload_at: AtomicI64,
    /// Policy version (bumped on every change) and the policy.
    policy: RwLock<(u64, Arc<OrgPolicy>)>,
    /// Every host's current state, by host id.
    fleet: RwLock<HashMap<String, HostState>>,
    pub index: Arc<CheckIndex>,
}

impl Caches {
    pub fn new(policy: OrgPolicy, index: Arc<CheckIndex>) -> Self {
        Self {
            keys: Default::default(),
            tokens: Default::default(),
            token_reload_at: Default::default(),
            policy: RwLock::new((0, Arc::new(policy))),
            fleet: Default::default(),
            index,
        }
    }

    // ---- keys ----

    pub fn set_keys(&self, keys: Vec<KeyRecord>) {
        *self.keys.write().expect("keys lock") =
            keys.into_iter().map(|k| (k.key_id.clone(), k)).collect();
    }

    pub fn key(&self, key_id: &str) -> Option<KeyRecord> {
        self.keys.read().expect("keys lock").get(key_id).cloned()
    }

    /// Whether a host is revoked (`None`: no such host). Every host has a key here.
    pub fn host_revoked(&self, host_id: &str) -> Option<bool> {
        self.keys
            .read()
            .expect("keys lock")
            .values()
            .find(|k| k.host_id == host_id)
            .map(|k| k.host_revoked)
    }

    /// After a key became a host's active key: retires the host's other active key and holds
    /// the new one.
    pub fn activate_key(
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
            if k.host_id == host_id && k.key_id != key_id && k.state == KeyState::Active {
                k.state = KeyState::Retired;
            }
        }
        keys.insert(
            key_id.to_string(),
            KeyRecord {
                key_id: key_id.to_string(),
                host_id: host_id.to_string(),
                public_key,
                state: KeyState::Active,
                host_revoked: false,
                host_enrolled_at: enrolled_at,
            },
        );
    }

    // ---- tokens ----

    pub fn set_tokens(&self, tokens: &[TokenRecord]) {
        self.tokens.load(tokens);
    }

    pub fn check_token(&self, bearer: &str) -> Option<(String, Role)> {
        self.tokens.check(bearer)
    }

    /// A well-formed token unknown here, and no reload in the last 2 s: worth one reload (a
    /// token minted by `evidence-server admin-token` while this server runs). Unknown tokens
    /// cannot make every request read the store.
    pub fn may_reload_for(&self, bearer: &str) -> bool {
        if !self.tokens.unknown_id(bearer) {
            return false;
        }
        let now = crate::time::now_us();
        let last = self.token_reload_at.load(Ordering::Relaxed);
        now - last > 2_000_000
            && self
                .token_reload_at
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    // ---- policy ----

    pub fn policy(&self) -> (u64, Arc<OrgPolicy>) {
        let p = self.policy.read().expect("policy lock");
        (p.0, p.1.clone())
    }

    pub fn set_policy(&self, policy: Arc<OrgPolicy>) {
        let mut p = self.policy.write().expect("policy lock");
        *p = (p.0 + 1, policy);
    }

    // ---- fleet ----

    pub fn set_fleet(&self, hosts: Vec<(String, HostState)>) {
        *self.fleet.write().expect("fleet lock") = hosts.into_iter().collect();
    }

    /// A newly enrolled host appears in the fleet (without reports yet).
    pub fn host_enrolled(&self, host_id: &str, hostname: &str) {
        self.fleet
            .write()
            .expect("fleet lock")
            .entry(host_id.to_string())
            .or_insert_with(|| HostState {
                hostname: hostname.into(),
                last_seen: None,
                revoked: false,
                findings: Box::new([]),
            });
    }

    pub fn host_revoked_now(&self, host_id: &str) {
        if let Some(h) = self.fleet.write().expect("fleet lock").get_mut(host_id) {
            h.revoked = true;
        }
    }

    /// After commits: each host's last report time and, for full reports, its findings.
    pub fn reports_committed<'a>(
        &self,
        reports: impl Iterator<Item = (&'a str, i64, Option<&'a [NewFinding]>)>,
    ) {
        let mut fleet = self.fleet.write().expect("fleet lock");
        for (host_id, received_at, findings) in reports {
            let host = fleet
                .entry(host_id.to_string())
                .or_insert_with(|| HostState {
                    hostname: host_id.into(),
                    last_seen: None,
                    revoked: false,
                    findings: Box::new([]),
                });
            host.last_seen = Some(received_at);
            if let Some(findings) = findings {
                host.set_findings(findings, &self.index);
            }
        }
    }

    /// After a re-evaluation: hosts' new findings.
    pub fn findings_replaced<'a>(
        &self,
        updates: impl Iterator<Item = (&'a str, &'a [NewFinding])>,
    ) {
        let mut fleet = self.fleet.write().expect("fleet lock");
        for (host_id, findings) in updates {
            if let Some(h) = fleet.get_mut(host_id) {
                h.set_findings(findings, &self.index);
            }
        }
    }

    /// Runs `f` over the current fleet (read lock held for the call).
    pub fn with_fleet<T>(&self, f: impl FnOnce(&HashMap<String, HostState>) -> T) -> T {
        f(&self.fleet.read().expect("fleet lock"))
    }
}
