//! Host identity and hardware, read through sysinfo.

use serde::{Deserialize, Serialize};

/// Who this host is and what it runs on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostFacts {
    pub hostname: Option<String>,
    /// `/etc/machine-id` (Linux), the platform UUID elsewhere.
    pub machine_id: Option<String>,
    pub os_name: Option<String>,
    pub os_version: Option<String>,
    /// `ID` from os-release (`debian`, `ubuntu`, `rhel`, ...).
    pub distribution_id: Option<String>,
    pub kernel_version: Option<String>,
    pub architecture: Option<String>,
    /// Hardware serial number (DMI `product_serial`), where the platform exposes it.
    pub hardware_serial: Option<String>,
    /// Hardware vendor and model (DMI `sys_vendor`, `product_name`).
    pub hardware_model: Option<String>,
    pub uptime_seconds: Option<u64>,
    pub cpu_brand: Option<String>,
    pub cpu_count: Option<u64>,
    pub memory_bytes: Option<u64>,
    /// Mounted disks, sorted by mount point.
    pub disks: Vec<HostDisk>,
}

/// One mounted disk as sysinfo sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostDisk {
    pub mount_point: String,
    pub device: String,
    pub file_system: String,
    pub total_bytes: u64,
    pub available_bytes: u64,
    pub removable: bool,
}
