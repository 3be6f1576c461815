//! An `authorized_keys` file -> its keys: type, SHA-256 fingerprint, comment and options.
//!
//! Format (sshd(8) "AUTHORIZED_KEYS FILE FORMAT"): `[options] keytype base64-blob [comment]`,
//! options comma-separated with double-quoted values that may hold spaces and commas. The
//! fingerprint is what `ssh-keygen -lf` prints: `SHA256:` and the unpadded base64 of the
//! SHA-256 of the decoded blob. Pure: the collector reads each account's file and hands the
//! text here.

use base64::Engine as _;
use evidence_protocol::facts::accounts::{AuthorizedKey, AuthorizedKeys};

/// Parses one file. Lines that are neither blank, `#` comments nor valid keys are listed in
/// `invalid_lines` with the reason; they never stop the rest of the file from being read.
pub fn parse(text: &str) -> AuthorizedKeys {
    let mut parsed = AuthorizedKeys::default();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line_no = u32::try_from(index + 1).unwrap_or(u32::MAX);
        match parse_line(line, line_no) {
            Ok(key) => parsed.keys.push(key),
            Err(why) => parsed.invalid_lines.push(format!("line {line_no}: {why}")),
        }
    }
    parsed
}

fn parse_line(line: &str, line_no: u32) -> Result<AuthorizedKey, String> {
    let first = line.split_whitespace().next().unwrap_or_default();
    let (options, rest) = if is_key_type(first) {
        (Vec::new(), line)
    } else {
        let (options, rest) = split_options(line)?;
        (options, rest.trim_start())
    };
    let mut parts = rest.splitn(3, char::is_whitespace);
    let key_type = parts.next().unwrap_or_default();
    if !is_key_type(key_type) {
        return Err(format!("{key_type:?} is not an SSH key type"));
    }
    let blob_text = parts.next().unwrap_or_default();
    let comment = parts.next().unwrap_or_default().trim().to_string();
    let blob = base64::engine::general_purpose::STANDARD
        .decode(blob_text)
        .map_err(|e| format!("the {key_type} key is not valid base64 ({e})"))?;
    let inner = blob_key_type(&blob)
        .ok_or_else(|| format!("the {key_type} key blob is too short to name its type"))?;
    if inner != key_type.as_bytes() {
        return Err(format!(
            "the line says {key_type} but the blob holds a {} key",
            String::from_utf8_lossy(inner)
        ));
    }
    Ok(AuthorizedKey {
        line: line_no,
        key_type: key_type.to_string(),
        fingerprint: fingerprint(&blob),
        comment,
        options,
    })
}

/// `SHA256:` + unpadded base64 of the blob's SHA-256, as `ssh-keygen -l` prints it.
pub fn fingerprint(blob: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, blob);
    format!(
        "SHA256:{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest.as_ref())
    )
}

/// True for the key type names OpenSSH writes (`ssh-ed25519`, `ecdsa-sha2-nistp256`,
/// `sk-ssh-ed25519@openssh.com`, certificate types ...).
fn is_key_type(word: &str) -> bool {
    ["ssh-", "ecdsa-sha2-", "sk-ssh-", "sk-ecdsa-sha2-"]
        .iter()
        .any(|prefix| word.starts_with(prefix))
}

/// The key type string at the start of an SSH wire-format blob (u32 big-endian length + bytes).
fn blob_key_type(blob: &[u8]) -> Option<&[u8]> {
    let len = u32::from_be_bytes(blob.get(0..4)?.try_into().ok()?) as usize;
    blob.get(4..4usize.checked_add(len)?)
}

/// Splits the options field off the front of `line`: up to the first whitespace outside
/// double quotes, then on commas outside double quotes.
fn split_options(line: &str) -> Result<(Vec<String>, &str), String> {
    let mut options = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut escaped = false;
    for (at, c) in line.char_indices() {
        if escaped {
            current.push(c);
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => {
                current.push(c);
                escaped = true;
            }
            '"' => {
                current.push(c);
                quoted = !quoted;
            }
            ',' if !quoted => options.push(std::mem::take(&mut current)),
            c if c.is_whitespace() && !quoted => {
                options.push(current);
                return Ok((options, &line[at..]));
            }
            c => current.push(c),
        }
    }
    if quoted {
        return Err("unterminated quote in the options".to_string());
    }
    Err("no key after the options".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Keys made by ssh-keygen; options written as an administrator would.
    const BOB: &str =
        include_str!("../../tests/data/accounts/modified/home/bob/.ssh/authorized_keys");
    /// `ssh-keygen -lf` of that file: the reference fingerprints.
    const SSH_KEYGEN_LF: &str =
        include_str!("../../tests/data/accounts/authorized_keys.ssh-keygen-lf.txt");

    #[test]
    fn fingerprints_match_ssh_keygen() {
        let parsed = parse(BOB);
        let ours: Vec<&str> = parsed.keys.iter().map(|k| k.fingerprint.as_str()).collect();
        let theirs: Vec<&str> = SSH_KEYGEN_LF
            .lines()
            .map(|l| l.split_whitespace().nth(1).unwrap())
            .collect();
        assert_eq!(ours, theirs);
    }

    #[test]
    fn types_comments_and_quoted_options_are_kept() {
        let parsed = parse(BOB);
        let types: Vec<&str> = parsed.keys.iter().map(|k| k.key_type.as_str()).collect();
        assert_eq!(types, ["ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256"]);
        assert_eq!(parsed.keys[0].comment, "bob@laptop");
        assert!(parsed.keys[0].options.is_empty());
        assert_eq!(parsed.keys[1].comment, "deploy key");
        assert_eq!(
            parsed.keys[1].options,
            [
                "from=\"10.0.0.0/8,192.0.2.1\"",
                "command=\"/usr/bin/rsync --server --sender -e.Lsfx . /srv\"",
                "no-pty"
            ]
        );
        assert_eq!(parsed.keys[2].options, ["restrict"]);
        assert_eq!(parsed.keys[2].comment, "");
        assert_eq!(
            parsed.keys.iter().map(|k| k.line).collect::<Vec<_>>(),
            [2, 4, 5]
        );
    }

    #[test]
    fn a_line_whose_blob_is_not_base64_is_listed_as_invalid() {
        let parsed = parse(BOB);
        assert_eq!(parsed.invalid_lines.len(), 1);
        assert!(
            parsed.invalid_lines[0].starts_with("line 6: the ssh-ed25519 key is not valid base64")
        );
    }

    #[test]
    fn a_blob_of_another_type_and_an_unterminated_quote_are_invalid() {
        let ed = BOB.lines().nth(1).unwrap();
        let lying = ed.replacen("ssh-ed25519", "ssh-rsa", 1);
        let parsed = parse(&format!("{lying}\ncommand=\"/bin/true {ed}\n"));
        assert!(parsed.keys.is_empty());
        assert!(
            parsed.invalid_lines[0].contains("holds a ssh-ed25519 key"),
            "{:?}",
            parsed.invalid_lines
        );
        assert!(
            parsed.invalid_lines[1].contains("unterminated quote"),
            "{:?}",
            parsed.invalid_lines
        );
    }

    proptest! {
        #[test]
        fn parse_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse(&String::from_utf8_lossy(&bytes));
        }

        #[test]
        fn parse_never_panics_on_key_like_lines(options in "[a-z=\",\\\\ ]{0,20}", blob in "[A-Za-z0-9+/=]{0,64}") {
            let _ = parse(&format!("{options} ssh-ed25519 {blob} c"));
        }
    }
}
