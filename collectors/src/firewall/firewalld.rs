//! firewalld's configuration state from the tree's files: `DefaultZone` in
//! `/etc/firewalld/firewalld.conf`, that zone's `target` attribute (from `/etc/firewalld/zones/`
//! or the packaged `/usr/lib/firewalld/zones/`), and whether systemd starts the service at boot.
//! Read under `--root` too: it is configuration, not live state.

use evidence_protocol::facts::firewall::FirewalldConfig;
use evidence_protocol::Observation;

use super::ufw::{parse_assignments, read_optional};
use crate::Host;

pub const FIREWALLD_CONF: &str = "/etc/firewalld/firewalld.conf";
const ZONE_DIRS: &[&str] = &["/etc/firewalld/zones", "/usr/lib/firewalld/zones"];
const WANTS_LINKS: &[&str] = &[
    "/etc/systemd/system/multi-user.target.wants/firewalld.service",
    "/etc/systemd/system/sysinit.target.wants/firewalld.service",
];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ZoneError {
    #[error("zone file is not valid XML: {0}")]
    Xml(String),
    #[error("zone file's root element is <{0}>, not <zone>")]
    NotZone(String),
}

/// Reads firewalld's configuration; an absent `firewalld.conf` means not installed.
pub fn collect(host: &Host) -> Observation<FirewalldConfig> {
    let conf = match read_optional(host, FIREWALLD_CONF) {
        Ok(Some(text)) => text,
        Ok(None) => return Observation::Observed(FirewalldConfig::default()),
        Err(reason) => return Observation::error(reason),
    };
    let default_zone = parse_assignments(&conf).get("DefaultZone").cloned();
    let mut config = FirewalldConfig {
        installed: true,
        service_enabled: WANTS_LINKS
            .iter()
            .any(|link| host.symlink_metadata(link).is_ok()),
        default_zone: default_zone.clone(),
        default_zone_target: None,
    };
    if let Some(zone) = default_zone.filter(|z| !z.is_empty() && !z.contains('/') && z != "..") {
        for dir in ZONE_DIRS {
            let path = format!("{dir}/{zone}.xml");
            match read_optional(host, &path) {
                Ok(Some(xml)) => match zone_target(&xml) {
                    Ok(target) => {
                        config.default_zone_target = Some(target);
                        break;
                    }
                    Err(err) => return Observation::error(format!("{path}: {err}")),
                },
                Ok(None) => continue,
                Err(reason) => return Observation::error(reason),
            }
        }
    }
    Observation::Observed(config)
}

/// The zone's `target` attribute; firewalld's default when absent is `default`.
pub fn zone_target(xml: &str) -> Result<String, ZoneError> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| ZoneError::Xml(e.to_string()))?;
    let root = doc.root_element();
    if root.tag_name().name() != "zone" {
        return Err(ZoneError::NotZone(root.tag_name().name().to_string()));
    }
    Ok(root.attribute("target").unwrap_or("default").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const TREE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/firewall/trees/firewalld_debian_default"
    );

    #[test]
    fn packaged_zones_give_their_targets() {
        let read = |z: &str| {
            std::fs::read_to_string(format!("{TREE}/usr/lib/firewalld/zones/{z}.xml"))
                .expect("fixture")
        };
        assert_eq!(zone_target(&read("public")).as_deref(), Ok("default"));
        assert_eq!(zone_target(&read("drop")).as_deref(), Ok("DROP"));
        assert_eq!(zone_target(&read("trusted")).as_deref(), Ok("ACCEPT"));
        assert_eq!(zone_target(&read("block")).as_deref(), Ok("%%REJECT%%"));
    }

    #[test]
    fn debian_default_tree_has_public_zone_with_default_target() {
        let host = Host::new(TREE, Arc::new(crate::RecordedRunner::new()));
        let Observation::Observed(cfg) = collect(&host) else {
            panic!("not observed")
        };
        assert!(cfg.installed);
        assert!(!cfg.service_enabled);
        assert_eq!(cfg.default_zone.as_deref(), Some("public"));
        assert_eq!(cfg.default_zone_target.as_deref(), Some("default"));
    }

    #[test]
    fn absent_config_is_not_installed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let host = Host::new(dir.path(), Arc::new(crate::RecordedRunner::new()));
        assert_eq!(
            collect(&host),
            Observation::Observed(FirewalldConfig::default())
        );
    }

    #[test]
    fn truncated_zone_file_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("etc/firewalld/zones")).expect("mkdir");
        std::fs::write(
            dir.path().join("etc/firewalld/firewalld.conf"),
            "DefaultZone=drop\n",
        )
        .expect("write");
        let drop = std::fs::read_to_string(format!("{TREE}/usr/lib/firewalld/zones/drop.xml"))
            .expect("fixture");
        std::fs::write(
            dir.path().join("etc/firewalld/zones/drop.xml"),
            &drop[..drop.len() / 2],
        )
        .expect("write");
        let host = Host::new(dir.path(), Arc::new(crate::RecordedRunner::new()));
        assert!(matches!(collect(&host), Observation::Error { .. }));
    }

    proptest::proptest! {
        #[test]
        fn zone_target_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = zone_target(&String::from_utf8_lossy(&bytes));
        }
    }
}
