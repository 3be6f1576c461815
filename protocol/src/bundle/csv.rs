//! `findings.csv` and `status.csv`: the rows of `findings.json` and `status.json` for
//! spreadsheets. RFC 4180 (CRLF line ends, a header row, fields holding a comma, quote or line
//! break quoted with quotes doubled), and a guard against spreadsheet formula injection: a cell
//! starting with `=`, `+`, `-`, `@`, tab or carriage return is prefixed with `'`.
//!
//! The exporter writes these from the same rows as the JSON; `evidence-verify` writes them again
//! from the JSON rows and compares bytes.

use std::borrow::Cow;

use super::types::{FindingRow, StatusRow};

/// One cell: guarded, then quoted when needed.
pub fn csv_cell(value: &str) -> Cow<'_, str> {
    let guarded: Cow<'_, str> = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{value}"))
    } else {
        Cow::Borrowed(value)
    };
    if guarded.contains([',', '"', '\r', '\n']) {
        Cow::Owned(format!("\"{}\"", guarded.replace('"', "\"\"")))
    } else {
        guarded
    }
}

fn write_row(out: &mut String, cells: &[&str]) {
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&csv_cell(cell));
    }
    out.push_str("\r\n");
}

fn opt<T: ToString>(value: &Option<T>) -> String {
    value.as_ref().map(ToString::to_string).unwrap_or_default()
}

/// `findings.csv`: host_id, check, status, reason, log_index, report_digest, policy_log_index.
pub fn findings_csv(rows: &[FindingRow]) -> Vec<u8> {
    let mut out = String::new();
    write_row(
        &mut out,
        &[
            "host_id",
            "check",
            "status",
            "reason",
            "log_index",
            "report_digest",
            "policy_log_index",
        ],
    );
    for r in rows {
        write_row(
            &mut out,
            &[
                &r.host_id,
                &r.check,
                r.status.as_str(),
                r.reason.as_deref().unwrap_or(""),
                &r.log_index.to_string(),
                &r.report_digest.to_hex(),
                &opt(&r.policy_log_index),
            ],
        );
    }
    out.into_bytes()
}

/// `status.csv`: host_id, control, status, reason, log_index, report_digest.
pub fn status_csv(rows: &[StatusRow]) -> Vec<u8> {
    let mut out = String::new();
    write_row(
        &mut out,
        &[
            "host_id",
            "control",
            "status",
            "reason",
            "log_index",
            "report_digest",
        ],
    );
    for r in rows {
        write_row(
            &mut out,
            &[
                &r.host_id,
                &r.control,
                r.status.as_str(),
                r.reason.as_deref().unwrap_or(""),
                &opt(&r.log_index),
                &opt(&r.report_digest),
            ],
        );
    }
    out.into_bytes()
}
