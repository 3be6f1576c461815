//! The `host` collector: identity and hardware through sysinfo (live machine) or the tree's
//! files (`--root`).

use evidence_protocol::facts::{host::HostDisk, HostFacts};
use evidence_protocol::{Observation, Platform};

use crate::{caps, Host, Source};

pub const PLATFORMS: &[Platform] = &[Platform::Linux];

/// What the collector reads; on a live host sysinfo also reads `/proc` (CPU, memory, uptime,
/// mounts) and the mounted filesystems' sizes.
pub const READS: &[Source] = &[
    Source::Watched("/etc/os-release"),
    Source::Watched("/usr/lib/os-release"),
    Source::Watched("/etc/machine-id"),
    Source::Watched("/etc/hostname"),
    Source::Polled("/sys/class/dmi/id"),
    Source::Polled("/proc"),
];

/// Who this host is. Under a `--root` other than `/`, identity comes from the tree's files and
/// the live-only values (kernel, uptime, CPU, memory, disks) are left empty.
pub fn collect(host: &Host) -> Observation<HostFacts> {
    let os_release = host
        .read_to_string("/etc/os-release", caps::CONFIG)
        .ok()
        .or_else(|| {
            host.read_to_string("/usr/lib/os-release", caps::CONFIG)
                .ok()
        })
        .map(|text| parse_os_release(&text))
        .unwrap_or_default();
    let field = |key: &str| os_release.get(key).cloned();
    let machine_id = host
        .read_to_string("/etc/machine-id", caps::CONFIG)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    let file_hostname = host
        .read_to_string("/etc/hostname", caps::CONFIG)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());

    let mut facts = HostFacts {
        hostname: file_hostname,
        machine_id,
        os_name: field("NAME"),
        os_version: field("VERSION_ID").or_else(|| field("VERSION")),
        distribution_id: field("ID"),
        ..HostFacts::default()
    };
    if !host.is_live() {
        return Observation::Observed(facts);
    }

    use sysinfo::{CpuRefreshKind, Disks, MemoryRefreshKind, RefreshKind, System};
    facts.hostname = System::host_name().ok().or(facts.hostname);
    facts.os_name = System::name().ok().or(facts.os_name);
    facts.os_version = System::os_version().ok().or(facts.os_version);
    facts.kernel_version = System::kernel_version().ok();
    facts.architecture = Some(System::cpu_arch());
    facts.uptime_seconds = System::uptime().ok();
    facts.hardware_serial = dmi(host, "product_serial");
    facts.hardware_model = match (dmi(host, "sys_vendor"), dmi(host, "product_name")) {
        (Some(vendor), Some(model)) => Some(format!("{vendor} {model}")),
        (vendor, model) => vendor.or(model),
    };
    if let Ok(system) = System::new_with_specifics(
        RefreshKind::nothing()
            .with_cpu(CpuRefreshKind::nothing())
            .with_memory(MemoryRefreshKind::nothing().with_ram()),
    ) {
        facts.cpu_brand = system.cpus().first().map(|c| c.brand().trim().to_string());
        facts.cpu_count = Some(system.cpus().len() as u64);
        facts.memory_bytes = Some(system.total_memory());
    }
    let disks = Disks::new_with_refreshed_list().ok();
    let mut list: Vec<HostDisk> = disks
        .iter()
        .flat_map(|disks| disks.iter())
        .map(|d| HostDisk {
            mount_point: d.mount_point().display().to_string(),
            device: d.name().to_string_lossy().into_owned(),
            file_system: d.file_system().to_string_lossy().into_owned(),
            total_bytes: d.total_space(),
            available_bytes: d.available_space(),
            removable: d.is_removable(),
        })
        .collect();
    list.sort_by(|a, b| a.mount_point.cmp(&b.mount_point));
    facts.disks = list;
    Observation::Observed(facts)
}

/// One DMI identity value; placeholders that firmware vendors leave in are treated as absent.
fn dmi(host: &Host, name: &str) -> Option<String> {
    let value = host
        .read_to_string(&format!("/sys/class/dmi/id/{name}"), caps::KERNEL_TEXT)
        .ok()?
        .trim()
        .to_string();
    let placeholder = value.is_empty()
        || [
            "to be filled by o.e.m.",
            "default string",
            "not specified",
            "none",
            "0",
        ]
        .contains(&value.to_ascii_lowercase().as_str());
    (!placeholder).then_some(value)
}

/// Parses os-release (`KEY=value`, values optionally quoted).
pub fn parse_os_release(text: &str) -> std::collections::BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            if line.starts_with('#') {
                return None;
            }
            let (key, value) = line.split_once('=')?;
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(value);
            Some((key.trim().to_string(), value.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release_values_are_unquoted() {
        let parsed = parse_os_release(
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n# comment\n",
        );
        assert_eq!(parsed["ID"], "debian");
        assert_eq!(parsed["VERSION_ID"], "12");
        assert_eq!(parsed["NAME"], "Debian GNU/Linux");
    }

    proptest::proptest! {
        #[test]
        fn os_release_parser_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = parse_os_release(&String::from_utf8_lossy(&bytes));
        }
    }
}
