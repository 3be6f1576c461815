//! dpkg's database of installed packages, `/var/lib/dpkg/status`: which packages are
//! installed (any state but `not-installed` and `config-files`, as apt counts them), at which
//! version and architecture. `Architecture: all` packages belong to the native architecture
//! (the architecture of the `dpkg` package itself), as in apt's cache.

use super::control::{self, ControlError};

/// One installed package.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Installed {
    pub name: String,
    /// The architecture apt files it under (`all` resolved to the native one).
    pub arch: String,
    pub version: String,
}

/// The parsed status file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DpkgStatus {
    /// The native architecture, from the `dpkg` package.
    pub native_arch: String,
    /// Installed packages, sorted by name and architecture.
    pub installed: Vec<Installed>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatusError {
    #[error("{0}")]
    Control(#[from] ControlError),
    #[error("stanza at line {line}: no {field} field")]
    Missing { line: usize, field: &'static str },
    #[error("stanza at line {line}: Status {status:?} is not `want flag state`")]
    BadStatus { line: usize, status: String },
    #[error("no installed package at all (empty or truncated status file?)")]
    Empty,
}

/// Parses dpkg's status file.
pub fn parse(data: &[u8]) -> Result<DpkgStatus, StatusError> {
    control::check_file(data)?;
    let mut installed = Vec::new();
    let mut native_arch = None;
    for (line, stanza) in control::stanzas(data) {
        let fields = control::fields(stanza, line)?;
        let name = control::get_str(&fields, "Package")?.ok_or(StatusError::Missing {
            line,
            field: "Package",
        })?;
        let status = control::get_str(&fields, "Status")?.ok_or(StatusError::Missing {
            line,
            field: "Status",
        })?;
        let words: Vec<&str> = status.split_ascii_whitespace().collect();
        if words.len() != 3 {
            return Err(StatusError::BadStatus {
                line,
                status: status.to_string(),
            });
        }
        if matches!(words[2], "not-installed" | "config-files") {
            continue;
        }
        let version = control::get_str(&fields, "Version")?.ok_or(StatusError::Missing {
            line,
            field: "Version",
        })?;
        let arch = control::get_str(&fields, "Architecture")?.ok_or(StatusError::Missing {
            line,
            field: "Architecture",
        })?;
        if name == "dpkg" && arch != "all" {
            native_arch = Some(arch.to_string());
        }
        installed.push(Installed {
            name: name.to_string(),
            arch: arch.to_string(),
            version: version.to_string(),
        });
    }
    if installed.is_empty() {
        return Err(StatusError::Empty);
    }
    let native_arch = native_arch.unwrap_or_else(|| most_common_arch(&installed));
    for package in &mut installed {
        if package.arch == "all" {
            package.arch.clone_from(&native_arch);
        }
    }
    installed.sort();
    Ok(DpkgStatus {
        native_arch,
        installed,
    })
}

/// Without a `dpkg` stanza (a partial tree), the most common concrete architecture.
fn most_common_arch(installed: &[Installed]) -> String {
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    for p in installed.iter().filter(|p| p.arch != "all") {
        *counts.entry(&p.arch).or_default() += 1;
    }
    counts
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .map_or_else(|| "all".to_string(), |(a, _)| a.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SAMPLE: &[u8] = b"Package: dpkg\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.21.22\n\nPackage: gone\nStatus: deinstall ok config-files\nArchitecture: amd64\nVersion: 1\n\nPackage: tzdata\nStatus: install ok installed\nArchitecture: all\nVersion: 2024a-0+deb12u1\nDescription: x\n more\n";

    #[test]
    fn config_files_packages_are_not_installed_and_all_is_native() {
        let status = parse(SAMPLE).unwrap();
        assert_eq!(status.native_arch, "amd64");
        let names: Vec<_> = status
            .installed
            .iter()
            .map(|p| (&*p.name, &*p.arch))
            .collect();
        assert_eq!(names, vec![("dpkg", "amd64"), ("tzdata", "amd64")]);
    }

    #[test]
    fn a_truncated_status_file_is_an_error() {
        let cut = &SAMPLE[..SAMPLE.len() - 3];
        assert_eq!(
            parse(cut),
            Err(StatusError::Control(ControlError::Truncated))
        );
        assert!(parse(b"").is_err());
        assert!(matches!(
            parse(b"Package: a\nStatus: install ok installed\nArchitecture: all\n"),
            Err(StatusError::Missing {
                field: "Version",
                ..
            })
        ));
    }

    #[test]
    fn the_real_status_file_of_this_machine_parses() {
        let Ok(data) = std::fs::read("/var/lib/dpkg/status") else {
            eprintln!("*** SKIPPED: no /var/lib/dpkg/status on this machine ***");
            return;
        };
        let status = parse(&data).unwrap();
        assert!(status.installed.len() > 50);
        assert!(status.installed.iter().any(|p| p.name == "dpkg"));
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(data in any::<Vec<u8>>()) {
            let _ = parse(&data);
        }
    }
}
