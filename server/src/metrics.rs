//! Counters for `/metrics` (Prometheus text exposition format 0.0.4).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use crate::store::Counts;

/// Upper bounds (seconds) of the ingest latency histogram.
const BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0];

#[derive(Default)]
pub struct Metrics {
    accepted: AtomicU64,
    duplicates: AtomicU64,
    refused: Mutex<BTreeMap<&'static str, u64>>,
    security: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    connections_refused: AtomicU64,
    bodies_refused: AtomicU64,
    /// Seconds from the last render to the TLS certificate's expiry (set at start).
    pub tls_not_after: std::sync::atomic::AtomicI64,
    enrollments: AtomicU64,
    batches: AtomicU64,
    batch_items: AtomicU64,
    latency: [AtomicU64; 10],
    latency_sum_us: AtomicU64,
}

impl Metrics {
    pub fn accepted(&self, duplicate: bool, seconds: f64) {
        if duplicate {
            &self.duplicates
        } else {
            &self.accepted
        }
        .fetch_add(1, Relaxed);
        let i = BUCKETS
            .iter()
            .position(|b| seconds <= *b)
            .unwrap_or(BUCKETS.len());
        self.latency[i].fetch_add(1, Relaxed);
        self.latency_sum_us
            .fetch_add((seconds * 1e6) as u64, Relaxed);
    }

    pub fn refused(&self, code: &'static str) {
        *self
            .refused
            .lock()
            .expect("metrics lock")
            .entry(code)
            .or_default() += 1;
    }

    /// A security event (see `crate::audit`), by event and outcome.
    pub fn security_event(&self, event: &'static str, outcome: &'static str) {
        *self
            .security
            .lock()
            .expect("metrics lock")
            .entry((event, outcome))
            .or_default() += 1;
    }

    /// A connection closed at once because the server holds as many as it allows.
    pub fn connection_refused(&self) {
        self.connections_refused.fetch_add(1, Relaxed);
    }

    /// A request body refused because in-flight bodies hold as much memory as allowed.
    pub fn body_refused(&self) {
        self.bodies_refused.fetch_add(1, Relaxed);
    }

    pub fn enrolled(&self) {
        self.enrollments.fetch_add(1, Relaxed);
    }

    pub fn batch(&self, items: usize) {
        self.batches.fetch_add(1, Relaxed);
        self.batch_items.fetch_add(items as u64, Relaxed);
    }

    /// Renders the metrics and the store's counts.
    pub fn render(&self, counts: &Counts, stale_hosts: u64, open_connections: u64) -> String {
        let mut out = String::new();
        let mut line = |name: &str, kind: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        };
        line(
            "evidence_reports_accepted_total",
            "counter",
            "Reports committed to the evidence log.",
            self.accepted.load(Relaxed),
        );
        line(
            "evidence_reports_duplicate_total",
            "counter",
            "Re-sent reports answered with their original receipt.",
            self.duplicates.load(Relaxed),
        );
        line(
            "evidence_enrollments_total",
            "counter",
            "Successful enrollments.",
            self.enrollments.load(Relaxed),
        );
        line(
            "evidence_ingest_batches_total",
            "counter",
            "Ingest transactions committed.",
            self.batches.load(Relaxed),
        );
        line(
            "evidence_ingest_batch_items_total",
            "counter",
            "Reports in ingest transactions.",
            self.batch_items.load(Relaxed),
        );
        line("evidence_hosts", "gauge", "Enrolled hosts.", counts.hosts);
        line(
            "evidence_hosts_revoked",
            "gauge",
            "Revoked hosts.",
            counts.revoked_hosts,
        );
        line(
            "evidence_hosts_stale",
            "gauge",
            "Hosts that missed their report intervals.",
            stale_hosts,
        );
        line(
            "evidence_keys_pending",
            "gauge",
            "Host keys waiting for an admin's approval (a known host asked to change its key).",
            counts.pending_keys,
        );
        line(
            "evidence_log_entries",
            "gauge",
            "Reports in the evidence log (key events not counted).",
            counts.reports,
        );
        line(
            "evidence_gap_events",
            "gauge",
            "Gap events (chain breaks, dropped reports).",
            counts.gaps,
        );
        line(
            "evidence_connections_open",
            "gauge",
            "TLS connections held open now.",
            open_connections,
        );
        line(
            "evidence_connections_refused_total",
            "counter",
            "Connections closed on arrival: the connection limit was reached.",
            self.connections_refused.load(Relaxed),
        );
        line(
            "evidence_bodies_refused_total",
            "counter",
            "Requests refused with 503: in-flight bodies held the memory allowed.",
            self.bodies_refused.load(Relaxed),
        );
        let not_after = self.tls_not_after.load(Relaxed);
        let _ = writeln!(
            out,
            "# HELP evidence_tls_certificate_expiry_seconds Seconds until the TLS certificate expires (negative: expired).\n# TYPE evidence_tls_certificate_expiry_seconds gauge\nevidence_tls_certificate_expiry_seconds {}",
            not_after - crate::time::now_us() / 1_000_000
        );
        let _ = writeln!(out, "# HELP evidence_security_events_total Security events (authentication, enrollment, keys, tokens, secrets, policy), by event and outcome.\n# TYPE evidence_security_events_total counter");
        for ((event, outcome), n) in self.security.lock().expect("metrics lock").iter() {
            let _ = writeln!(
                out,
                "evidence_security_events_total{{event=\"{event}\",outcome=\"{outcome}\"}} {n}"
            );
        }
        let _ = writeln!(out, "# HELP evidence_reports_refused_total Reports refused, by reason.\n# TYPE evidence_reports_refused_total counter");
        for (code, n) in self.refused.lock().expect("metrics lock").iter() {
            let _ = writeln!(
                out,
                "evidence_reports_refused_total{{reason=\"{code}\"}} {n}"
            );
        }
        let _ = writeln!(out, "# HELP evidence_ingest_seconds Time to verify, commit and answer a report.\n# TYPE evidence_ingest_seconds histogram");
        let mut cumulative = 0;
        for (i, b) in BUCKETS.iter().enumerate() {
            cumulative += self.latency[i].load(Relaxed);
            let _ = writeln!(
                out,
                "evidence_ingest_seconds_bucket{{le=\"{b}\"}} {cumulative}"
            );
        }
        cumulative += self.latency[BUCKETS.len()].load(Relaxed);
        let _ = writeln!(
            out,
            "evidence_ingest_seconds_bucket{{le=\"+Inf\"}} {cumulative}"
        );
        let _ = writeln!(
            out,
            "evidence_ingest_seconds_sum {}",
            self.latency_sum_us.load(Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "evidence_ingest_seconds_count {cumulative}");
        out
    }
}
