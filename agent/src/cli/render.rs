//! The human-readable table: findings grouped by ISO/IEC 27002:2022 control.

use std::collections::BTreeMap;
use std::io::Write;

use evidence_controls::{catalog, Finding, Status};
use serde_json::Value;

use crate::cli::collect::LocalReport;

/// Longest rendering of one evidence value before it is cut.
const MAX_VALUE_CHARS: usize = 160;

pub fn table(out: &mut impl Write, report: &LocalReport) -> std::io::Result<()> {
    if let Some(host) = report.facts.host.as_ref().and_then(|h| h.observed()) {
        writeln!(
            out,
            "host {}  {} {}  kernel {}  (root {})",
            host.hostname.as_deref().unwrap_or("?"),
            host.os_name.as_deref().unwrap_or("?"),
            host.os_version.as_deref().unwrap_or(""),
            host.kernel_version.as_deref().unwrap_or("n/a"),
            report.root
        )?;
    }
    let mut by_control: BTreeMap<ControlKey, Vec<&Finding>> = BTreeMap::new();
    for finding in &report.findings {
        for control in &finding.controls {
            by_control
                .entry(ControlKey(control.clone()))
                .or_default()
                .push(finding);
        }
    }
    for (control, findings) in &by_control {
        let title = catalog::control(&control.0)
            .map(|c| c.title.to_string())
            .unwrap_or_default();
        writeln!(out, "\nISO/IEC 27002:2022 {} {}", control.0, title)?;
        for finding in findings {
            writeln!(
                out,
                "  {:<15} {:<45} {}",
                label(finding.status),
                finding.check,
                finding.title
            )?;
            if let Some(reason) = &finding.reason {
                writeln!(out, "  {:<15} why: {}", "", reason)?;
            }
            if let Value::Object(fields) = &finding.evidence {
                for (key, value) in fields {
                    writeln!(out, "  {:<15} {}: {}", "", key, short(value))?;
                }
            } else if !finding.evidence.is_null() {
                writeln!(out, "  {:<15} {}", "", short(&finding.evidence))?;
            }
        }
    }
    let count = |s: Status| report.findings.iter().filter(|f| f.status == s).count();
    writeln!(
        out,
        "\n{} checks: {} pass, {} fail, {} not applicable, {} error",
        report.findings.len(),
        count(Status::Pass),
        count(Status::Fail),
        count(Status::NotApplicable),
        count(Status::Error)
    )
}

fn label(status: Status) -> &'static str {
    match status {
        Status::Pass => "PASS",
        Status::Fail => "FAIL",
        Status::NotApplicable => "NOT APPLICABLE",
        Status::Error => "ERROR",
    }
}

fn short(value: &Value) -> String {
    let text = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.chars().count() > MAX_VALUE_CHARS {
        let cut: String = text.chars().take(MAX_VALUE_CHARS).collect();
        format!("{cut}...")
    } else {
        text
    }
}

/// Orders control ids numerically (8.2 before 8.10).
#[derive(Debug, PartialEq, Eq)]
struct ControlKey(String);

impl Ord for ControlKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        catalog::compare_control_ids(&self.0, &other.0)
    }
}

impl PartialOrd for ControlKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
