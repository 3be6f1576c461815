//! apt's `Release`/`InRelease` files in `/var/lib/apt/lists`: the metadata of one repository
//! suite that apt's pinning matches against (origin, label, suite a.k.a. archive, codename,
//! version) and the `NotAutomatic`/`ButAutomaticUpgrades` flags that set its default priority.
//! `InRelease` is the clearsigned form; the signature is not checked here (apt did that when it
//! accepted the file).

use super::control::{self, ControlError};

/// A suite's metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Release {
    pub origin: Option<String>,
    pub label: Option<String>,
    /// `Suite`, which apt calls the archive (`a=` in pins, shown by `apt list`).
    pub suite: Option<String>,
    pub codename: Option<String>,
    pub version: Option<String>,
    pub not_automatic: bool,
    pub but_automatic_upgrades: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReleaseError {
    #[error("{0}")]
    Control(#[from] ControlError),
    #[error("clearsigned message without its signature (truncated file?)")]
    UnterminatedSignature,
    #[error("no Suite or Codename field (not a Release file?)")]
    NotRelease,
}

/// Parses a `Release` or `InRelease` file.
pub fn parse(data: &[u8]) -> Result<Release, ReleaseError> {
    let body = strip_clearsign(data)?;
    control::check_file(body)?;
    let (line, stanza) = control::stanzas(body)
        .next()
        .ok_or(ReleaseError::NotRelease)?;
    let fields = control::fields(stanza, line)?;
    let text = |name: &str| -> Result<Option<String>, ReleaseError> {
        Ok(control::get_str(&fields, name)?.map(str::to_string))
    };
    let yes =
        |name: &str| control::get(&fields, name).is_some_and(|v| v.eq_ignore_ascii_case(b"yes"));
    let release = Release {
        origin: text("Origin")?,
        label: text("Label")?,
        suite: text("Suite")?,
        codename: text("Codename")?,
        version: text("Version")?,
        not_automatic: yes("NotAutomatic"),
        but_automatic_upgrades: yes("ButAutomaticUpgrades"),
    };
    if release.suite.is_none() && release.codename.is_none() {
        return Err(ReleaseError::NotRelease);
    }
    Ok(release)
}

/// The signed text of a clearsigned message, or the input when it is not clearsigned.
fn strip_clearsign(data: &[u8]) -> Result<&[u8], ReleaseError> {
    const BEGIN: &[u8] = b"-----BEGIN PGP SIGNED MESSAGE-----";
    const SIG: &[u8] = b"\n-----BEGIN PGP SIGNATURE-----";
    if !data.starts_with(BEGIN) {
        return Ok(data);
    }
    // Armor headers (`Hash: ...`) end at the first blank line.
    let start = memchr::memmem::find(data, b"\n\n").ok_or(ReleaseError::UnterminatedSignature)? + 2;
    let end =
        memchr::memmem::find(&data[start..], SIG).ok_or(ReleaseError::UnterminatedSignature)?;
    Ok(&data[start..start + end + 1])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const INRELEASE: &[u8] = include_bytes!("../../tests/data/patch_level/security_InRelease");

    #[test]
    fn the_real_security_inrelease_gives_its_suite_and_codename() {
        let release = parse(INRELEASE).unwrap();
        assert_eq!(release.origin.as_deref(), Some("Debian"));
        assert_eq!(release.label.as_deref(), Some("Debian-Security"));
        assert!(release.suite.as_deref().unwrap().ends_with("-security"));
        assert_eq!(release.codename.as_deref(), Some("bookworm-security"));
        assert!(!release.not_automatic);
    }

    #[test]
    fn not_automatic_flags_are_read() {
        let release =
            parse(b"Suite: experimental\nNotAutomatic: yes\nButAutomaticUpgrades: yes\n").unwrap();
        assert!(release.not_automatic && release.but_automatic_upgrades);
    }

    #[test]
    fn a_clearsigned_file_cut_before_its_signature_is_an_error() {
        let cut = &INRELEASE[..INRELEASE.len() / 2];
        assert_eq!(parse(cut), Err(ReleaseError::UnterminatedSignature));
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(data in any::<Vec<u8>>()) {
            let _ = parse(&data);
            let mut signed = b"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n".to_vec();
            signed.extend_from_slice(&data);
            let _ = parse(&signed);
        }
    }
}
