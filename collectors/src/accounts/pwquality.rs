//! pwquality configuration (`/etc/security/pwquality.conf`, then `pwquality.conf.d/*.conf`)
//! -> `key = value` settings.
//!
//! Pure: the collector reads the files through the host seam and hands each text here.

use std::collections::BTreeMap;

use super::ParseError;

/// Adds one file's settings to `settings` (later files override earlier ones, as libpwquality
/// reads them). A bare word such as `enforce_for_root` is a flag with an empty value.
pub fn parse_into(text: &str, settings: &mut BTreeMap<String, String>) -> Result<(), ParseError> {
    for (index, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let (key, value) = match line.split_once('=') {
            Some((key, value)) => (key.trim(), value.trim()),
            None => (line, ""),
        };
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(ParseError::line(
                index + 1,
                format!("not a setting: {line:?}"),
            ));
        }
        settings.insert(key.to_string(), value.to_string());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const PACKAGED: &str =
        include_str!("../../tests/data/accounts/modified/etc/security/pwquality.conf");
    const LOCAL: &str = include_str!(
        "../../tests/data/accounts/modified/etc/security/pwquality.conf.d/50-local.conf"
    );

    #[test]
    fn the_packaged_file_sets_nothing_and_a_drop_in_sets_minlen_and_a_flag() {
        let mut settings = BTreeMap::new();
        parse_into(PACKAGED, &mut settings).unwrap();
        assert!(settings.is_empty(), "{settings:?}");
        parse_into(LOCAL, &mut settings).unwrap();
        assert_eq!(settings["minlen"], "14");
        assert_eq!(settings["enforce_for_root"], "");
    }

    #[test]
    fn a_later_file_overrides_an_earlier_one() {
        let mut settings = BTreeMap::new();
        parse_into("minlen = 8\n", &mut settings).unwrap();
        parse_into("minlen=12 # stricter\n", &mut settings).unwrap();
        assert_eq!(settings["minlen"], "12");
    }

    #[test]
    fn a_line_that_is_not_a_setting_is_an_error() {
        let err = parse_into("min len = 8\n", &mut BTreeMap::new()).unwrap_err();
        assert!(
            err.to_string().starts_with("line 1: not a setting"),
            "{err}"
        );
    }

    proptest! {
        #[test]
        fn parse_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_into(&String::from_utf8_lossy(&bytes), &mut BTreeMap::new());
        }
    }
}
