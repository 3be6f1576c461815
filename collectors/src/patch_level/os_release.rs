//! os-release(5): `/etc/os-release`, falling back to `/usr/lib/os-release`; `KEY=value` lines
//! with optional shell quoting.

use evidence_protocol::facts::patch_level::OsRelease;

/// Parses an os-release file; `None` without an `ID` line.
pub fn parse(text: &str) -> Option<OsRelease> {
    let mut release = OsRelease::default();
    for line in text.lines().map(str::trim) {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(value)
            .to_string();
        match key.trim() {
            "ID" => release.id = value,
            "VERSION_ID" => release.version_id = Some(value),
            "VERSION_CODENAME" => release.codename = Some(value),
            "PRETTY_NAME" => release.pretty_name = Some(value),
            _ => {}
        }
    }
    (!release.id.is_empty()).then_some(release)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn quoted_and_bare_values_are_read() {
        let r = parse("PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID='12'\nVERSION_CODENAME=bookworm\n").unwrap();
        assert_eq!(r.id, "debian");
        assert_eq!(r.version_id.as_deref(), Some("12"));
        assert_eq!(
            r.pretty_name.as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
        assert!(parse("NAME=x\n").is_none());
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_text(text in ".*") {
            let _ = parse(&text);
        }
    }
}
