//! `/etc/login.defs` -> [`LoginDefs`]: `KEY value` lines, password-aging keys parsed as numbers.
//!
//! Pure: the collector reads the file through the host seam and hands the text here.

use std::collections::BTreeMap;

use evidence_protocol::facts::accounts::LoginDefs;

use super::ParseError;

/// Parses `login.defs`. A later line for the same key wins (as in shadow-utils). A
/// password-aging key whose value is not an integer is an error: silently dropping it would
/// let a typo pass the checks.
pub fn parse(text: &str) -> Result<LoginDefs, ParseError> {
    let mut settings = BTreeMap::new();
    let mut lines = BTreeMap::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = match line.split_once(|c: char| c.is_whitespace()) {
            Some((key, value)) => (key, value.trim()),
            None => (line, ""),
        };
        let value = value.trim_matches('"');
        settings.insert(key.to_string(), value.to_string());
        lines.insert(key.to_string(), index + 1);
    }
    let number = |key: &str| -> Result<Option<i64>, ParseError> {
        match settings.get(key) {
            None => Ok(None),
            Some(value) => value.parse::<i64>().map(Some).map_err(|_| {
                ParseError::line(lines[key], format!("{key} {value:?} is not a number"))
            }),
        }
    };
    Ok(LoginDefs {
        pass_max_days: number("PASS_MAX_DAYS")?,
        pass_min_days: number("PASS_MIN_DAYS")?,
        pass_warn_age: number("PASS_WARN_AGE")?,
        settings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const DEBIAN: &str = include_str!("../../tests/data/accounts/clean/etc/login.defs");

    #[test]
    fn debian_login_defs_has_no_password_maximum_age_in_practice() {
        let defs = parse(DEBIAN).unwrap();
        assert_eq!(defs.pass_max_days, Some(99999));
        assert_eq!(defs.pass_min_days, Some(0));
        assert_eq!(defs.pass_warn_age, Some(7));
        assert_eq!(defs.settings["ENCRYPT_METHOD"], "SHA512");
        assert_eq!(defs.settings["UID_MIN"], "1000");
    }

    #[test]
    fn the_last_line_for_a_key_wins_and_a_missing_key_is_unset() {
        let defs = parse("PASS_MAX_DAYS 99999\nPASS_MAX_DAYS\t90\n").unwrap();
        assert_eq!(defs.pass_max_days, Some(90));
        assert_eq!(defs.pass_min_days, None);
    }

    #[test]
    fn a_non_numeric_aging_value_is_an_error_naming_its_line() {
        let err = parse("# c\nPASS_MAX_DAYS ninety\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 2: PASS_MAX_DAYS \"ninety\" is not a number"
        );
    }

    proptest! {
        #[test]
        fn parse_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse(&String::from_utf8_lossy(&bytes));
        }
    }
}
