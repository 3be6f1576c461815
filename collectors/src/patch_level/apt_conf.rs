//! apt's configuration syntax (apt.conf(5)) as found in `/etc/apt/apt.conf.d/*` and
//! `/etc/apt/apt.conf`: `Key::Sub "value";`, nested `Key { Sub "value"; };` scopes, `//`, `#`
//! and `/* */` comments, `#clear`. Only scalar settings are kept (lists are skipped); keys are
//! compared case-insensitively, the last setting wins. Read for `APT::Periodic::*` and
//! `APT::Default-Release`.

use std::collections::BTreeMap;

/// Settings by lower-cased full key (`apt::periodic::unattended-upgrade`).
pub type AptConf = BTreeMap<String, String>;

/// Adds the settings of one file to `conf` (later files override earlier ones).
pub fn parse_into(text: &str, conf: &mut AptConf) {
    let mut scopes: Vec<String> = Vec::new();
    let mut pending: Vec<String> = Vec::new();
    for token in tokens(text) {
        match token {
            Token::Open => {
                let prefix = scopes.last().cloned().unwrap_or_default();
                let scope = match pending.first() {
                    Some(key) => format!("{prefix}{}::", key.to_ascii_lowercase()),
                    None => prefix,
                };
                scopes.push(scope);
                pending.clear();
            }
            Token::Close => {
                scopes.pop();
                pending.clear();
            }
            Token::End => {
                let prefix = scopes.last().cloned().unwrap_or_default();
                match pending.as_slice() {
                    [directive, key, ..] if directive == "#clear" => {
                        let key = format!("{prefix}{}", key.to_ascii_lowercase());
                        conf.retain(|k, _| k != &key && !k.starts_with(&format!("{key}::")));
                    }
                    [key, value, ..] if !key.starts_with('#') => {
                        conf.insert(
                            format!("{prefix}{}", key.to_ascii_lowercase()),
                            value.clone(),
                        );
                    }
                    _ => {}
                }
                pending.clear();
            }
            Token::Word(word) => pending.push(word),
        }
    }
}

/// Whether a file in a `*.d` directory is read by apt: letters, digits, `_`, `-`, `.` only, and
/// either no extension or the given one.
pub fn apt_reads_part(name: &str, ext: &str) -> bool {
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'));
    valid
        && match name.rsplit_once('.') {
            None => true,
            Some((stem, e)) => !stem.is_empty() && e == ext,
        }
}

#[derive(Debug, PartialEq)]
enum Token {
    Word(String),
    Open,
    Close,
    End,
}

fn tokens(text: &str) -> Vec<Token> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if b[i..].starts_with(b"//")
            || (c == b'#' && !b[i..].starts_with(b"#clear") && !b[i..].starts_with(b"#include"))
        {
            i = memchr::memchr(b'\n', &b[i..]).map_or(b.len(), |n| i + n);
        } else if b[i..].starts_with(b"/*") {
            i = memchr::memmem::find(&b[i + 2..], b"*/").map_or(b.len(), |n| i + 2 + n + 2);
        } else if c == b'{' {
            out.push(Token::Open);
            i += 1;
        } else if c == b'}' {
            out.push(Token::Close);
            i += 1;
        } else if c == b';' {
            out.push(Token::End);
            i += 1;
        } else if c == b'"' {
            let end = memchr::memchr(b'"', &b[i + 1..]).map_or(b.len(), |n| i + 1 + n);
            out.push(Token::Word(text[i + 1..end].to_string()));
            i = end + 1;
        } else {
            let start = i;
            while i < b.len()
                && !b[i].is_ascii_whitespace()
                && !matches!(b[i], b'{' | b'}' | b';' | b'"')
            {
                i += 1;
            }
            out.push(Token::Word(text[start..i].to_string()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn flat_and_nested_settings_are_read_and_the_last_wins() {
        let mut conf = AptConf::new();
        parse_into("// c\nAPT::Periodic::Update-Package-Lists \"1\";\nAPT::Periodic::Unattended-Upgrade \"1\";\n", &mut conf);
        parse_into(
            "APT { Periodic { Unattended-Upgrade \"0\"; }; };\n/* APT::Default-Release \"x\"; */",
            &mut conf,
        );
        assert_eq!(
            conf.get("apt::periodic::unattended-upgrade")
                .map(String::as_str),
            Some("0")
        );
        assert_eq!(
            conf.get("apt::periodic::update-package-lists")
                .map(String::as_str),
            Some("1")
        );
        assert!(!conf.contains_key("apt::default-release"));
    }

    #[test]
    fn lists_are_skipped_and_clear_removes_a_subtree() {
        let mut conf = AptConf::new();
        parse_into("Unattended-Upgrade::Origins-Pattern { \"origin=Debian\"; };\nAPT::Periodic::X \"1\";\n#clear APT::Periodic;\n", &mut conf);
        assert!(conf.is_empty(), "{conf:?}");
    }

    #[test]
    fn apt_reads_only_parts_without_extension_or_with_its_own() {
        assert!(apt_reads_part("20auto-upgrades", "conf"));
        assert!(apt_reads_part("x.conf", "conf"));
        assert!(!apt_reads_part("20auto-upgrades.dpkg-old", "conf"));
        assert!(!apt_reads_part("nodesource.pref~", "pref"));
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_text(text in ".*") {
            let mut conf = AptConf::new();
            parse_into(&text, &mut conf);
        }
    }
}
