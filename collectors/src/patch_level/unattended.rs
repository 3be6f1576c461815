//! Automatic updates: on dpkg hosts the `unattended-upgrades` package plus
//! `APT::Periodic::Unattended-Upgrade` (apt.conf, an interval in days: `0` or unset means off);
//! on RPM hosts the `dnf-automatic` package plus `apply_updates = yes` in
//! `/etc/dnf/automatic.conf` with its timer enabled (or `dnf-automatic-install.timer`, which
//! applies updates whatever the file says).

use evidence_protocol::facts::patch_level::AutomaticUpdates;

use super::apt_conf::AptConf;

/// The apt key that enables unattended-upgrades.
pub const APT_KEY: &str = "apt::periodic::unattended-upgrade";

/// unattended-upgrades on a dpkg host.
pub fn apt(installed: bool, conf: &AptConf) -> AutomaticUpdates {
    let setting = conf.get(APT_KEY).cloned();
    let on = setting.as_deref().is_some_and(|v| {
        let v = v.trim();
        v.eq_ignore_ascii_case("always") || v.parse::<i64>().is_ok_and(|days| days > 0)
    });
    AutomaticUpdates {
        tool: "unattended-upgrades".into(),
        installed,
        setting,
        enabled: installed && on,
    }
}

/// `apply_updates` in the `[commands]` section of dnf-automatic's INI file.
pub fn dnf_apply_updates(ini: &str) -> Option<String> {
    let mut section = String::new();
    let mut value = None;
    for line in ini.lines().map(str::trim) {
        if line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim().to_string();
        } else if let Some((k, v)) = line.split_once('=') {
            if section == "commands" && k.trim() == "apply_updates" {
                value = Some(v.trim().to_string());
            }
        }
    }
    value
}

/// dnf-automatic on an RPM host.
pub fn dnf(
    installed: bool,
    apply_updates: Option<String>,
    timer: bool,
    install_timer: bool,
) -> AutomaticUpdates {
    let applies = apply_updates
        .as_deref()
        .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "yes" | "true" | "1" | "on"));
    AutomaticUpdates {
        tool: "dnf-automatic".into(),
        installed,
        setting: apply_updates,
        enabled: installed && (install_timer || (timer && applies)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patch_level::apt_conf;
    use proptest::prelude::*;

    #[test]
    fn unattended_upgrades_needs_the_package_and_a_positive_interval() {
        let mut conf = AptConf::new();
        apt_conf::parse_into("APT::Periodic::Update-Package-Lists \"1\";\nAPT::Periodic::Unattended-Upgrade \"1\";\n", &mut conf);
        assert!(apt(true, &conf).enabled);
        assert!(!apt(false, &conf).enabled);
        apt_conf::parse_into("APT::Periodic::Unattended-Upgrade \"0\";", &mut conf);
        assert!(!apt(true, &conf).enabled);
        assert!(!apt(true, &AptConf::new()).enabled);
    }

    #[test]
    fn dnf_automatic_applies_only_with_apply_updates_and_a_timer() {
        let ini = "[commands]\n# apply_updates = yes\napply_updates = no\n[emitters]\napply_updates = yes\n";
        assert_eq!(dnf_apply_updates(ini).as_deref(), Some("no"));
        assert!(!dnf(true, dnf_apply_updates(ini), true, false).enabled);
        assert!(dnf(true, Some("yes".into()), true, false).enabled);
        assert!(dnf(true, None, false, true).enabled);
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_text(text in ".*") {
            let _ = dnf_apply_updates(&text);
        }
    }
}
