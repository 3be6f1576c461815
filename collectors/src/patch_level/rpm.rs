//! RPM hosts: installed packages from
//! `rpm -qa --queryformat '%{NAME}\t%{EPOCHNUM}:%{VERSION}-%{RELEASE}\t%{ARCH}\n'`, pending
//! updates from `dnf check-update` (exit 100 = updates listed, 0 = none; lines
//! `name.arch  [epoch:]version-release  repo`, long names wrapped onto the next line, an
//! `Obsoleting Packages` section that is not an update list), security updates from
//! `dnf updateinfo list --security` (`ADVISORY  SEVERITY/Sec.  name-[epoch:]version-release.arch`)
//! and rpm's version ordering (`rpmvercmp`) for the installed kernels.

use std::cmp::Ordering;
use std::collections::BTreeSet;

/// One installed package.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RpmPackage {
    pub name: String,
    /// `epoch:version-release`.
    pub evr: String,
    pub arch: String,
}

/// One update offered by `dnf check-update`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct DnfUpdate {
    pub name: String,
    pub arch: String,
    pub evr: String,
    pub repo: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RpmError {
    #[error("rpm -qa line {line}: expected NAME<TAB>EPOCH:VERSION-RELEASE<TAB>ARCH")]
    BadQaLine { line: usize },
    #[error("rpm -qa printed no package")]
    NoPackages,
    #[error("dnf check-update line {line}: expected `name.arch version repo`")]
    BadUpdateLine { line: usize },
}

/// Parses the `rpm -qa` query-format output.
pub fn parse_rpm_qa(text: &str) -> Result<Vec<RpmPackage>, RpmError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let parts: Vec<&str> = line.split('\t').collect();
        match parts.as_slice() {
            [name, evr, arch]
                if !name.is_empty()
                    && evr.contains(':')
                    && evr.contains('-')
                    && !arch.is_empty() =>
            {
                out.push(RpmPackage {
                    name: name.to_string(),
                    evr: evr.to_string(),
                    arch: arch.to_string(),
                })
            }
            _ => return Err(RpmError::BadQaLine { line: i + 1 }),
        }
    }
    if out.is_empty() {
        return Err(RpmError::NoPackages);
    }
    out.sort();
    Ok(out)
}

/// Parses `dnf check-update` output (with exit status 100).
pub fn parse_check_update(text: &str) -> Result<Vec<DnfUpdate>, RpmError> {
    let mut out = Vec::new();
    let mut carried: Option<String> = None;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.starts_with("Obsoleting Packages") || trimmed.starts_with("Obsoleting packages")
        {
            break;
        }
        if trimmed.is_empty()
            || trimmed.starts_with("Last metadata expiration check")
            || trimmed.starts_with("Security:")
        {
            continue;
        }
        let mut words: Vec<String> = trimmed.split_whitespace().map(str::to_string).collect();
        if let Some(name) = carried.take() {
            words.insert(0, name);
        }
        match words.as_slice() {
            [name_arch] if !line.starts_with(' ') => carried = Some(name_arch.clone()),
            [name_arch, evr, repo] => {
                let (name, arch) = name_arch
                    .rsplit_once('.')
                    .ok_or(RpmError::BadUpdateLine { line: i + 1 })?;
                out.push(DnfUpdate {
                    name: name.into(),
                    arch: arch.into(),
                    evr: evr.clone(),
                    repo: repo.clone(),
                });
            }
            _ => return Err(RpmError::BadUpdateLine { line: i + 1 }),
        }
    }
    if carried.is_some() {
        return Err(RpmError::BadUpdateLine {
            line: text.lines().count(),
        });
    }
    out.sort();
    Ok(out)
}

/// The (name, arch) of packages named by `dnf updateinfo list --security`.
pub fn parse_security_updateinfo(text: &str) -> BTreeSet<(String, String)> {
    text.lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let nevra = words.get(2)?;
            let (nevr, arch) = nevra.rsplit_once('.')?;
            let (nev, _release) = nevr.rsplit_once('-')?;
            let (name, _version) = nev.rsplit_once('-')?;
            Some((name.to_string(), arch.to_string()))
        })
        .collect()
}

/// Compares `[epoch:]version-release` strings the way rpm does.
pub fn compare_evr(a: &str, b: &str) -> Ordering {
    let split = |s: &str| {
        let (epoch, vr) = s.split_once(':').map_or(("0", s), |(e, vr)| (e, vr));
        let (v, r) = vr.rsplit_once('-').unwrap_or((vr, ""));
        (
            epoch.parse::<u64>().unwrap_or(0),
            v.to_string(),
            r.to_string(),
        )
    };
    let (ea, va, ra) = split(a);
    let (eb, vb, rb) = split(b);
    ea.cmp(&eb)
        .then_with(|| rpmvercmp(&va, &vb))
        .then_with(|| rpmvercmp(&ra, &rb))
}

/// rpm's `rpmvercmp`: alternating digit and letter segments, `~` sorts before everything,
/// `^` after the end but before anything else.
pub fn rpmvercmp(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    let sep = |c: u8| !c.is_ascii_alphanumeric() && c != b'~' && c != b'^';
    loop {
        while i < a.len() && sep(a[i]) {
            i += 1;
        }
        while j < b.len() && sep(b[j]) {
            j += 1;
        }
        let (ca, cb) = (a.get(i).copied(), b.get(j).copied());
        if ca == Some(b'~') || cb == Some(b'~') {
            if ca != Some(b'~') {
                return Ordering::Greater;
            }
            if cb != Some(b'~') {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }
        if ca == Some(b'^') || cb == Some(b'^') {
            match (ca, cb) {
                (None, _) => return Ordering::Less,
                (_, None) => return Ordering::Greater,
                (Some(x), _) if x != b'^' => return Ordering::Greater,
                (_, Some(y)) if y != b'^' => return Ordering::Less,
                _ => {}
            }
            i += 1;
            j += 1;
            continue;
        }
        let (Some(x), Some(_)) = (ca, cb) else { break };
        let numeric = x.is_ascii_digit();
        let class = |c: &u8| {
            if numeric {
                c.is_ascii_digit()
            } else {
                c.is_ascii_alphabetic()
            }
        };
        let sa = &a[i..i + a[i..].iter().take_while(|c| class(c)).count()];
        let sb = &b[j..j + b[j..].iter().take_while(|c| class(c)).count()];
        i += sa.len();
        j += sb.len();
        if sb.is_empty() {
            return if numeric {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        let ord = if numeric {
            let za = &sa[sa.iter().take_while(|&&c| c == b'0').count()..];
            let zb = &sb[sb.iter().take_while(|&&c| c == b'0').count()..];
            za.len().cmp(&zb.len()).then_with(|| za.cmp(zb))
        } else {
            sa.cmp(sb)
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    match (i < a.len(), j < b.len()) {
        (false, false) => Ordering::Equal,
        (true, _) => Ordering::Greater,
        (false, true) => Ordering::Less,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const QA: &str = include_str!("../../tests/data/patch_level/rpm_qa.txt");
    const CHECK_UPDATE: &str = include_str!("../../tests/data/patch_level/dnf_check_update.txt");
    const SECURITY: &str = include_str!("../../tests/data/patch_level/dnf_updateinfo_security.txt");

    #[test]
    fn rpm_qa_fixture_gives_name_evr_and_arch() {
        let packages = parse_rpm_qa(QA).unwrap();
        let openssl = packages.iter().find(|p| p.name == "openssl-libs").unwrap();
        assert_eq!(
            (openssl.evr.as_str(), openssl.arch.as_str()),
            ("1:3.0.7-24.el9", "x86_64")
        );
        assert!(parse_rpm_qa("garbage\n").is_err());
        assert!(parse_rpm_qa("").is_err());
    }

    #[test]
    fn check_update_fixture_skips_headers_joins_wrapped_names_and_stops_at_obsoletes() {
        let updates = parse_check_update(CHECK_UPDATE).unwrap();
        let names: Vec<_> = updates.iter().map(|u| u.name.as_str()).collect();
        assert!(
            names.contains(&"python3-libselinux-extra-long-package-name"),
            "{names:?}"
        );
        assert!(names.contains(&"openssl-libs"));
        assert!(
            !names.contains(&"grub2-tools-efi"),
            "obsoleting section is not an update list"
        );
        assert_eq!(
            updates
                .iter()
                .find(|u| u.name == "openssl-libs")
                .unwrap()
                .evr,
            "1:3.0.7-27.el9"
        );
    }

    #[test]
    fn security_advisories_name_their_packages() {
        let security = parse_security_updateinfo(SECURITY);
        assert!(security.contains(&("openssl-libs".to_string(), "x86_64".to_string())));
    }

    #[test]
    fn rpm_version_order_matches_rpm_rules() {
        assert_eq!(rpmvercmp("1.0", "1.0"), Ordering::Equal);
        assert_eq!(rpmvercmp("1.0~rc1", "1.0"), Ordering::Less);
        assert_eq!(rpmvercmp("1.0^1", "1.0"), Ordering::Greater);
        assert_eq!(rpmvercmp("1.0a", "1.0.1"), Ordering::Less);
        assert_eq!(rpmvercmp("2.10", "2.9"), Ordering::Greater);
        assert_eq!(compare_evr("1:1.0-1", "2.0-1"), Ordering::Greater);
        assert_eq!(
            compare_evr("0:5.14.0-362.el9", "0:5.14.0-70.el9"),
            Ordering::Greater
        );
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_text(text in ".*", a in ".*", b in ".*") {
            let _ = parse_rpm_qa(&text);
            let _ = parse_check_update(&text);
            let _ = parse_security_updateinfo(&text);
            prop_assert_eq!(rpmvercmp(&a, &b), rpmvercmp(&b, &a).reverse());
        }
    }
}
