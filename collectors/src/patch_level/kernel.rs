//! The running kernel against the installed kernel packages, and the pending-reboot marker.
//!
//! Debian installs kernels as `linux-image-<release>` (plus `-unsigned` and `-dbg` variants;
//! the `linux-image-amd64` metapackage has no digit after the prefix); RPM hosts as
//! `kernel-core` or `kernel` whose release is `version-release.arch`. The running release is
//! `/proc/sys/kernel/osrelease` (`uname -r`). Debian's `update-notifier-common` and
//! `needrestart` hooks write `/run/reboot-required` and list the packages in
//! `/run/reboot-required.pkgs`.

use std::cmp::Ordering;

use evidence_protocol::facts::patch_level::{KernelFacts, RebootFacts};

/// One installed kernel: its release string and the package version that orders it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledKernel {
    pub release: String,
    pub package_version: String,
}

/// The kernel release of a Debian package name, if it is a kernel image package.
pub fn debian_kernel_release(package: &str) -> Option<&str> {
    let release = package.strip_prefix("linux-image-")?;
    if !release.starts_with(|c: char| c.is_ascii_digit())
        || release.ends_with("-dbg")
        || release.ends_with("-dbgsym")
    {
        return None;
    }
    Some(release.strip_suffix("-unsigned").unwrap_or(release))
}

/// The kernel release of an RPM package, if it is a kernel package (`kernel-core` or
/// `kernel`), from its `version-release` and arch.
pub fn rpm_kernel_release(name: &str, evr: &str, arch: &str) -> Option<String> {
    if name != "kernel" && name != "kernel-core" {
        return None;
    }
    let vr = evr.split_once(':').map_or(evr, |(_, vr)| vr);
    Some(format!("{vr}.{arch}"))
}

/// Compares the running release with the installed kernels, ordered with `cmp` on their
/// package versions. `None` when no kernel package is installed.
pub fn compare(
    running: &str,
    mut installed: Vec<InstalledKernel>,
    cmp: fn(&str, &str) -> Ordering,
) -> Option<KernelFacts> {
    installed.sort_by(|a, b| {
        cmp(&a.package_version, &b.package_version).then_with(|| a.release.cmp(&b.release))
    });
    installed.dedup_by(|a, b| a.release == b.release);
    let newest = installed.last()?.release.clone();
    Some(KernelFacts {
        running: running.to_string(),
        running_is_newest: running == newest,
        newest_installed: newest,
        installed: installed.into_iter().map(|k| k.release).collect(),
    })
}

/// `/run/reboot-required.pkgs`: one package per line, sorted and deduplicated.
pub fn parse_reboot_packages(text: &str) -> RebootFacts {
    let mut packages: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    packages.sort();
    packages.dedup();
    RebootFacts {
        required: true,
        packages,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patch_level::deb_version;
    use proptest::prelude::*;

    fn k(release: &str, version: &str) -> InstalledKernel {
        InstalledKernel {
            release: release.into(),
            package_version: version.into(),
        }
    }

    #[test]
    fn kernel_image_packages_are_recognised_and_metapackages_are_not() {
        assert_eq!(
            debian_kernel_release("linux-image-6.1.0-18-amd64"),
            Some("6.1.0-18-amd64")
        );
        assert_eq!(
            debian_kernel_release("linux-image-6.1.0-18-amd64-unsigned"),
            Some("6.1.0-18-amd64")
        );
        assert_eq!(debian_kernel_release("linux-image-amd64"), None);
        assert_eq!(
            debian_kernel_release("linux-image-6.1.0-18-amd64-dbg"),
            None
        );
        assert_eq!(
            rpm_kernel_release("kernel-core", "0:5.14.0-362.8.1.el9_3", "x86_64").as_deref(),
            Some("5.14.0-362.8.1.el9_3.x86_64")
        );
    }

    #[test]
    fn an_older_running_kernel_is_not_the_newest() {
        let installed = vec![
            k("6.1.0-21-amd64", "6.1.90-1"),
            k("6.1.0-18-amd64", "6.1.76-1"),
        ];
        let facts = compare("6.1.0-18-amd64", installed, deb_version::compare).unwrap();
        assert_eq!(facts.newest_installed, "6.1.0-21-amd64");
        assert!(!facts.running_is_newest);
        assert_eq!(facts.installed, vec!["6.1.0-18-amd64", "6.1.0-21-amd64"]);
        assert!(compare("6.1.0-18-amd64", vec![], deb_version::compare).is_none());
    }

    #[test]
    fn reboot_packages_are_sorted_and_unique() {
        let facts = parse_reboot_packages("linux-image-6.1.0-21-amd64\nlibc6\nlibc6\n");
        assert_eq!(facts.packages, vec!["libc6", "linux-image-6.1.0-21-amd64"]);
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_text(text in ".*") {
            let _ = debian_kernel_release(&text);
            let _ = parse_reboot_packages(&text);
        }
    }
}
