//! apt's candidate-version choice (apt_preferences(5), apt's `pkgPolicy`): every package file
//! gets a default priority (500; 1 for `NotAutomatic: yes`; 100 with `ButAutomaticUpgrades: yes`
//! and for dpkg's status file; 990 for `APT::Default-Release`), overridden by the first
//! matching general pin (`Package: *`) in `/etc/apt/preferences` and
//! `/etc/apt/preferences.d/*`. A version's priority is that of a package-specific pin matching
//! it, else the highest of its files. The candidate is the highest-priority version, newest
//! first among equals, never one older than the installed version unless pinned >= 1000.

use std::cmp::Ordering;

use super::apt_release::Release;
use super::control;
use super::deb_version;

/// What a pin matches (the `Pin:` line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinKind {
    /// `release a=...,n=...,c=...,o=...,l=...,v=...,b=...` (a bare value means `v=`).
    Release(Vec<(char, String)>),
    /// `origin host`: the site the index came from (empty: local files).
    Origin(String),
    /// `version 1.2*`.
    Version(String),
}

/// One preferences stanza.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    /// `*` or package name patterns (globs).
    pub packages: Vec<String>,
    pub kind: PinKind,
    pub priority: i32,
}

impl Pin {
    fn is_general(&self) -> bool {
        self.packages.iter().any(|p| p == "*")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PreferencesError {
    #[error("{0}")]
    Control(#[from] control::ControlError),
    #[error("stanza at line {line}: {message}")]
    Bad { line: usize, message: String },
}

/// Parses one preferences file.
pub fn parse_preferences(data: &[u8]) -> Result<Vec<Pin>, PreferencesError> {
    control::check_file(data)?;
    let mut pins = Vec::new();
    for (line, stanza) in control::stanzas(data) {
        let fields = control::fields(stanza, line)?;
        if fields.is_empty() {
            continue; // only comments
        }
        let bad = |message: &str| PreferencesError::Bad {
            line,
            message: message.to_string(),
        };
        let package =
            control::get_str(&fields, "Package")?.ok_or_else(|| bad("no Package field"))?;
        // As apt: a stanza without a usable Pin or a non-zero Pin-Priority is skipped.
        let Some(pin) = control::get_str(&fields, "Pin")? else {
            continue;
        };
        let priority = control::get_str(&fields, "Pin-Priority")?
            .and_then(|p| p.trim().parse::<i32>().ok())
            .unwrap_or(0);
        if priority == 0 {
            continue;
        }
        let (kind, value) = pin.split_once(char::is_whitespace).unwrap_or((pin, ""));
        let value = value.trim();
        let kind = match kind.to_ascii_lowercase().as_str() {
            "release" => PinKind::Release(parse_release_pin(value)),
            "origin" => PinKind::Origin(value.trim_matches('"').to_string()),
            "version" if package.trim() != "*" => PinKind::Version(value.to_string()),
            _ => continue,
        };
        let packages = package
            .split_ascii_whitespace()
            .map(str::to_string)
            .collect();
        pins.push(Pin {
            packages,
            kind,
            priority,
        });
    }
    Ok(pins)
}

/// `a=x, n=y` (or a bare version) into (key, value) pairs.
pub fn parse_release_pin(value: &str) -> Vec<(char, String)> {
    if !value.contains('=') {
        // A bare value: a release version when it starts with a digit, else an archive or
        // codename (`r`).
        let key = if value.starts_with(|c: char| c.is_ascii_digit()) {
            'v'
        } else {
            'r'
        };
        return vec![(key, value.to_string())];
    }
    value
        .split(',')
        .filter_map(|part| {
            let (k, v) = part.trim().split_once('=')?;
            Some((k.trim().chars().next()?, v.trim().to_string()))
        })
        .collect()
}

/// A package file as the policy sees it: apt's per-file metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackageFile {
    /// The suite's Release metadata (absent for dpkg's status file or an unsigned flat index).
    pub release: Option<Release>,
    pub component: String,
    pub site: String,
    pub arch: String,
    /// dpkg's status file (apt's `NotSource`).
    pub is_status: bool,
}

/// The policy: per-file priorities and the package-specific pins.
pub struct Policy {
    file_priority: Vec<i32>,
    specific: Vec<Pin>,
}

impl Policy {
    /// Builds the policy over `files` from `pins` (in file order) and `APT::Default-Release`.
    pub fn new(files: &[PackageFile], pins: &[Pin], default_release: Option<&str>) -> Self {
        let mut general: Vec<Pin> = Vec::new();
        if let Some(rel) = default_release.filter(|r| !r.is_empty()) {
            general.push(Pin {
                packages: vec!["*".into()],
                kind: PinKind::Release(parse_release_pin(rel)),
                priority: 990,
            });
        }
        general.extend(pins.iter().filter(|p| p.is_general()).cloned());
        let file_priority = files
            .iter()
            .map(|file| {
                let flags = file.release.as_ref();
                let default = if file.is_status
                    || flags.is_some_and(|r| r.not_automatic && r.but_automatic_upgrades)
                {
                    100
                } else if flags.is_some_and(|r| r.not_automatic) {
                    1
                } else {
                    500
                };
                general
                    .iter()
                    .find(|pin| file_matches(&pin.kind, file))
                    .map_or(default, |pin| pin.priority)
            })
            .collect();
        let specific = pins.iter().filter(|p| !p.is_general()).cloned().collect();
        Self {
            file_priority,
            specific,
        }
    }

    /// The priority of one version of `package` offered by the given file ids.
    pub fn version_priority(
        &self,
        package: &str,
        arch: &str,
        version: &str,
        files: &[usize],
        all: &[PackageFile],
    ) -> i32 {
        for pin in self.specific.iter().filter(|p| {
            p.packages
                .iter()
                .any(|pat| package_matches(pat, package, arch))
        }) {
            let matched = match &pin.kind {
                PinKind::Version(pattern) => glob(pattern, version),
                kind => files
                    .iter()
                    .any(|&f| !all[f].is_status && file_matches(kind, &all[f])),
            };
            if matched {
                return pin.priority;
            }
        }
        files
            .iter()
            .map(|&f| self.file_priority[f])
            .max()
            .unwrap_or(0)
    }
}

/// One version of a package and the files offering it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    pub version: String,
    pub files: Vec<usize>,
}

/// apt's candidate among `offers` (the installed version's offer includes the status file).
pub fn candidate<'a>(
    policy: &Policy,
    package: &str,
    arch: &str,
    installed: &str,
    offers: &'a mut [Offer],
    files: &[PackageFile],
) -> Option<&'a Offer> {
    offers.sort_by(|a, b| deb_version::compare(&b.version, &a.version));
    let mut best: Option<(i32, usize)> = None;
    for (i, offer) in offers.iter().enumerate() {
        let priority = policy.version_priority(package, arch, &offer.version, &offer.files, files);
        if priority <= 0 || best.is_some_and(|(p, _)| priority <= p) {
            continue;
        }
        if priority < 1000 && deb_version::compare(&offer.version, installed) == Ordering::Less {
            continue;
        }
        best = Some((priority, i));
    }
    best.map(|(_, i)| &offers[i])
}

/// Whether a `Package:` pattern (`name`, glob, optionally `:arch`) names this package.
fn package_matches(pattern: &str, package: &str, arch: &str) -> bool {
    match pattern.rsplit_once(':') {
        Some((name, want_arch)) => glob(want_arch, arch) && glob(name, package),
        None => glob(pattern, package),
    }
}

/// Whether a release/origin pin matches a package file.
fn file_matches(kind: &PinKind, file: &PackageFile) -> bool {
    match kind {
        PinKind::Version(_) => false,
        PinKind::Origin(site) => !file.is_status && glob(site, &file.site),
        PinKind::Release(terms) => {
            if file.is_status {
                return false;
            }
            let rel = file.release.clone().unwrap_or_default();
            terms.iter().all(|(key, want)| {
                let have = match key {
                    'a' => rel.suite.as_deref(),
                    'n' => rel.codename.as_deref(),
                    'o' => rel.origin.as_deref(),
                    'l' => rel.label.as_deref(),
                    'v' => rel.version.as_deref(),
                    'r' => {
                        let codename = rel.codename.as_deref().is_some_and(|c| glob(want, c));
                        return codename || rel.suite.as_deref().is_some_and(|a| glob(want, a));
                    }
                    'c' => Some(file.component.as_str()),
                    'b' => Some(file.arch.as_str()),
                    _ => None,
                };
                have.is_some_and(|have| glob(want, have))
            })
        }
    }
}

/// fnmatch-style `*` and `?` matching (exact otherwise).
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests;
