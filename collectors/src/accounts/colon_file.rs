//! The shared shape of `/etc/passwd`, `/etc/group` and `/etc/shadow`: one record per line,
//! `:`-separated fields, blank lines and `#` comments skipped.
//!
//! Pure: the per-file parsers (`passwd`, `group`, `shadow`) turn each record's fields into
//! their entries.

use super::ParseError;

/// The records of `text`: each non-blank, non-comment line's 1-based number and its fields, or
/// an error for a line that does not have exactly `count` fields.
pub fn records(
    text: &str,
    count: usize,
) -> impl Iterator<Item = Result<(usize, Vec<&str>), ParseError>> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !(line.trim().is_empty() || line.starts_with('#')))
        .map(move |(index, line)| {
            let line_no = index + 1;
            let fields: Vec<&str> = line.split(':').collect();
            if fields.len() != count {
                return Err(ParseError::line(
                    line_no,
                    format!("expected {count} fields, found {}", fields.len()),
                ));
            }
            Ok((line_no, fields))
        })
}
