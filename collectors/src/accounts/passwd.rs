//! `/etc/passwd` lines -> [`PasswdEntry`], and what a password field or login shell means.
//!
//! Pure: the collector reads the file through the host seam and hands the text here.

use evidence_protocol::facts::accounts::{PasswdEntry, PasswordState};

use super::colon_file::records;
use super::ParseError;

/// Shells that let nobody log in interactively (matched on the file name).
const NON_LOGIN_SHELLS: &[&str] = &["nologin", "false", "true", "sync", "shutdown", "halt"];

/// Parses `/etc/passwd`. Blank lines and `#` comments are skipped; any other line must have
/// seven `:`-separated fields with numeric uid and gid.
pub fn parse(text: &str) -> Result<Vec<PasswdEntry>, ParseError> {
    let mut entries = Vec::new();
    for record in records(text, 7) {
        let (line_no, fields) = record?;
        let number = |i: usize, what: &str| {
            fields[i].parse::<u32>().map_err(|_| {
                ParseError::line(line_no, format!("{what} {:?} is not a number", fields[i]))
            })
        };
        entries.push(PasswdEntry {
            name: fields[0].to_string(),
            uid: number(2, "uid")?,
            gid: number(3, "gid")?,
            gecos: fields[4].to_string(),
            home: fields[5].to_string(),
            shell: fields[6].to_string(),
            password: password_state(fields[1]),
            interactive: is_interactive_shell(fields[6]),
        });
    }
    Ok(entries)
}

/// True when `shell` is a real login shell. An empty shell field means `/bin/sh` to login(1).
pub fn is_interactive_shell(shell: &str) -> bool {
    let name = shell.trim().rsplit('/').next().unwrap_or_default();
    !NON_LOGIN_SHELLS.contains(&name)
}

/// Classifies a password field (from `/etc/passwd` or `/etc/shadow`) without keeping the hash.
pub fn password_state(field: &str) -> PasswordState {
    if field.is_empty() {
        return PasswordState::Empty;
    }
    if field == "x" {
        return PasswordState::Shadowed;
    }
    if field.starts_with('!') {
        return PasswordState::Locked;
    }
    match hash_scheme(field) {
        Some(scheme) => PasswordState::Hash {
            scheme: scheme.to_string(),
        },
        None => PasswordState::NoPassword,
    }
}

/// The crypt(3) scheme of a hash, or `None` when the field cannot be a hash (`*`, `x`, ...).
fn hash_scheme(field: &str) -> Option<&'static str> {
    let prefixed = [
        ("$y$", "yescrypt"),
        ("$gy$", "gost-yescrypt"),
        ("$7$", "scrypt"),
        ("$2b$", "bcrypt"),
        ("$2a$", "bcrypt"),
        ("$2y$", "bcrypt"),
        ("$6$", "sha512crypt"),
        ("$5$", "sha256crypt"),
        ("$1$", "md5crypt"),
        ("$sha1$", "sha1crypt"),
    ];
    if let Some((_, scheme)) = prefixed.iter().find(|(p, _)| field.starts_with(p)) {
        return Some(scheme);
    }
    let des_alphabet = |c: char| c.is_ascii_alphanumeric() || c == '.' || c == '/';
    if field.len() == 13 && field.chars().all(des_alphabet) {
        return Some("des");
    }
    if field.starts_with('_') && field.len() == 20 {
        return Some("bsdicrypt");
    }
    if field.starts_with('$') {
        return Some("unknown");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CLEAN: &str = include_str!("../../tests/data/accounts/clean/etc/passwd");
    const MODIFIED: &str = include_str!("../../tests/data/accounts/modified/etc/passwd");

    #[test]
    fn debootstrap_passwd_has_root_as_the_only_interactive_account() {
        let entries = parse(CLEAN).unwrap();
        assert_eq!(entries.len(), 18);
        let interactive: Vec<&str> = entries
            .iter()
            .filter(|e| e.interactive)
            .map(|e| e.name.as_str())
            .collect();
        assert_eq!(interactive, ["root"]);
        let nobody = entries.iter().find(|e| e.name == "nobody").unwrap();
        assert_eq!((nobody.uid, nobody.gid), (65534, 65534));
        assert!(entries
            .iter()
            .all(|e| e.password == PasswordState::Shadowed));
    }

    #[test]
    fn useradd_accounts_are_parsed_with_uid_gecos_home_and_shell() {
        let entries = parse(MODIFIED).unwrap();
        let toor = entries.iter().find(|e| e.name == "toor").unwrap();
        assert_eq!((toor.uid, toor.gid, toor.interactive), (0, 0, true));
        let bob = entries.iter().find(|e| e.name == "bob").unwrap();
        assert_eq!(bob.gecos, "Bob Builder");
        assert_eq!(bob.home, "/home/bob");
        let carol = entries.iter().find(|e| e.name == "carol").unwrap();
        assert_eq!(carol.shell, "/bin/sh");
        assert!(carol.interactive);
    }

    #[test]
    fn a_line_with_missing_fields_or_a_non_numeric_uid_is_an_error_naming_the_line() {
        let err = parse("root:x:0:0:root:/root:/bin/bash\nbroken:x:1\n").unwrap_err();
        assert_eq!(err.to_string(), "line 2: expected 7 fields, found 3");
        let err = parse("a:x:zero:0::/:/bin/sh\n").unwrap_err();
        assert!(err.to_string().contains("uid \"zero\""), "{err}");
    }

    #[test]
    fn password_fields_are_classified_without_keeping_the_hash() {
        assert_eq!(password_state(""), PasswordState::Empty);
        assert_eq!(password_state("x"), PasswordState::Shadowed);
        assert_eq!(password_state("!"), PasswordState::Locked);
        assert_eq!(password_state("!$y$j9T$abc$def"), PasswordState::Locked);
        assert_eq!(password_state("*"), PasswordState::NoPassword);
        assert_eq!(
            password_state("$6$salt$hash"),
            PasswordState::Hash {
                scheme: "sha512crypt".into()
            }
        );
        assert_eq!(
            password_state("abJnggxhB/yWI"),
            PasswordState::Hash {
                scheme: "des".into()
            }
        );
    }

    #[test]
    fn nologin_false_and_sync_are_not_interactive_but_bash_sh_and_empty_are() {
        for shell in [
            "/usr/sbin/nologin",
            "/bin/false",
            "/bin/sync",
            "/sbin/shutdown",
        ] {
            assert!(!is_interactive_shell(shell), "{shell}");
        }
        for shell in ["/bin/bash", "/bin/sh", "/usr/bin/zsh", ""] {
            assert!(is_interactive_shell(shell), "{shell}");
        }
    }

    proptest! {
        #[test]
        fn parse_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse(&String::from_utf8_lossy(&bytes));
        }
    }
}
