//! `/etc/shadow` lines -> [`ShadowEntry`]: nine `:`-separated fields, empty numbers unset.
//!
//! Pure: the collector reads the file (root only) and hands the text here. The hash itself is
//! reduced to a [`PasswordState`](evidence_protocol::facts::accounts::PasswordState).

use evidence_protocol::facts::accounts::ShadowEntry;

use super::colon_file::records;
use super::passwd::password_state;
use super::ParseError;

/// Parses `/etc/shadow`. Blank lines and `#` comments are skipped; any other line must have
/// nine fields, and its day counts must be empty or integers.
pub fn parse(text: &str) -> Result<Vec<ShadowEntry>, ParseError> {
    let mut entries = Vec::new();
    for record in records(text, 9) {
        let (line_no, fields) = record?;
        let days = |i: usize, what: &str| -> Result<Option<i64>, ParseError> {
            let field = fields[i].trim();
            if field.is_empty() {
                return Ok(None);
            }
            field
                .parse::<i64>()
                .map(Some)
                .map_err(|_| ParseError::line(line_no, format!("{what} {field:?} is not a number")))
        };
        entries.push(ShadowEntry {
            name: fields[0].to_string(),
            password: password_state(fields[1]),
            last_change: days(2, "last change")?,
            min_days: days(3, "minimum age")?,
            max_days: days(4, "maximum age")?,
            warn_days: days(5, "warning period")?,
            inactive_days: days(6, "inactivity period")?,
            expire: days(7, "expiry date")?,
        });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use evidence_protocol::facts::accounts::PasswordState;
    use proptest::prelude::*;

    const CLEAN: &str = include_str!("../../tests/data/accounts/clean/etc/shadow");
    const MODIFIED: &str = include_str!("../../tests/data/accounts/modified/etc/shadow");

    fn entry<'a>(entries: &'a [ShadowEntry], name: &str) -> &'a ShadowEntry {
        entries.iter().find(|e| e.name == name).unwrap()
    }

    #[test]
    fn debootstrap_shadow_has_no_passwords_and_debian_aging_defaults() {
        let entries = parse(CLEAN).unwrap();
        assert_eq!(entries.len(), 18);
        let root = entry(&entries, "root");
        assert_eq!(root.password, PasswordState::NoPassword);
        assert_eq!(root.max_days, Some(99999));
        assert_eq!(root.warn_days, Some(7));
        assert_eq!(root.inactive_days, None);
        assert_eq!(root.expire, None);
    }

    #[test]
    fn passwd_d_empties_usermod_l_locks_chage_m_sets_max_and_chpasswd_hashes() {
        let entries = parse(MODIFIED).unwrap();
        assert_eq!(entry(&entries, "alice").password, PasswordState::Empty);
        assert_eq!(entry(&entries, "dave").password, PasswordState::Locked);
        assert_eq!(entry(&entries, "toor").password, PasswordState::Locked);
        let bob = entry(&entries, "bob");
        assert_eq!(
            bob.password,
            PasswordState::Hash {
                scheme: "yescrypt".into()
            }
        );
        assert_eq!(bob.max_days, Some(30));
    }

    #[test]
    fn a_short_line_or_a_non_numeric_day_count_is_an_error() {
        assert_eq!(
            parse("root:*:1:0:99999:7::\n").unwrap_err().to_string(),
            "line 1: expected 9 fields, found 8"
        );
        let err = parse("root:*:1:0:never:7:::\n").unwrap_err();
        assert!(err.to_string().contains("maximum age \"never\""), "{err}");
    }

    proptest! {
        #[test]
        fn parse_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse(&String::from_utf8_lossy(&bytes));
        }
    }
}
