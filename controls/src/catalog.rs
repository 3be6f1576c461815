//! The ISO/IEC 27002:2022 control catalog (skeleton: the full data is to be filled in).

use std::cmp::Ordering;

/// One control: number and short title.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Control {
    pub id: &'static str,
    pub title: &'static str,
}

const CONTROLS: &[Control] = &[
    Control { id: "5.15", title: "Access control" },
    Control { id: "5.16", title: "Identity management" },
    Control { id: "5.17", title: "Authentication information" },
    Control { id: "5.18", title: "Access rights" },
    Control { id: "7.10", title: "Storage media" },
    Control { id: "8.1", title: "User endpoint devices" },
    Control { id: "8.2", title: "Privileged access rights" },
    Control { id: "8.5", title: "Secure authentication" },
    Control { id: "8.8", title: "Management of technical vulnerabilities" },
    Control { id: "8.9", title: "Configuration management" },
    Control { id: "8.19", title: "Installation of software on operational systems" },
    Control { id: "8.20", title: "Networks security" },
    Control { id: "8.22", title: "Segregation of networks" },
    Control { id: "8.24", title: "Use of cryptography" },
];

/// Looks a control up by id (`"8.20"`).
pub fn control(id: &str) -> Option<&'static Control> {
    CONTROLS.iter().find(|c| c.id == id)
}

/// Orders control ids numerically: 5.9 < 5.10 < 8.1 < 8.20.
pub fn compare_control_ids(a: &str, b: &str) -> Ordering {
    fn key(id: &str) -> Vec<u32> {
        id.split('.').map(|p| p.parse().unwrap_or(u32::MAX)).collect()
    }
    key(a).cmp(&key(b)).then_with(|| a.cmp(b))
}
