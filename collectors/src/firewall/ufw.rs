//! ufw's configuration state from the tree's files: `ENABLED` in `/etc/ufw/ufw.conf` and
//! `DEFAULT_INPUT_POLICY` in `/etc/default/ufw` (shell-style `KEY=value` files). Read under
//! `--root` too: it is configuration, not live state.

use std::collections::BTreeMap;

use evidence_protocol::facts::firewall::UfwConfig;
use evidence_protocol::Observation;

use crate::{caps, Host};

pub const UFW_CONF: &str = "/etc/ufw/ufw.conf";
pub const UFW_DEFAULTS: &str = "/etc/default/ufw";

/// Reads ufw's configuration; both files absent means ufw is not installed.
pub fn collect(host: &Host) -> Observation<UfwConfig> {
    let conf = match read_optional(host, UFW_CONF) {
        Ok(text) => text,
        Err(reason) => return Observation::error(reason),
    };
    let defaults = match read_optional(host, UFW_DEFAULTS) {
        Ok(text) => text,
        Err(reason) => return Observation::error(reason),
    };
    Observation::Observed(config(conf.as_deref(), defaults.as_deref()))
}

/// The configuration from the two files' text (`None` = file absent).
pub fn config(conf: Option<&str>, defaults: Option<&str>) -> UfwConfig {
    let conf_vars = conf.map(parse_assignments).unwrap_or_default();
    let default_vars = defaults.map(parse_assignments).unwrap_or_default();
    UfwConfig {
        installed: conf.is_some() || defaults.is_some(),
        enabled: conf_vars
            .get("ENABLED")
            .is_some_and(|v| v.eq_ignore_ascii_case("yes")),
        default_input_policy: default_vars.get("DEFAULT_INPUT_POLICY").cloned(),
    }
}

/// `KEY=value` lines, comments and blanks skipped, one level of quotes removed.
pub fn parse_assignments(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(v);
            (k.trim().to_string(), v.to_string())
        })
        .collect()
}

/// The file's text, `None` when absent, an error reason when unreadable.
pub(crate) fn read_optional(host: &Host, path: &str) -> Result<Option<String>, String> {
    match host.read_to_string(path, caps::CONFIG) {
        Ok(text) => Ok(Some(text)),
        Err(err) if err.is_not_found() => Ok(None),
        Err(err) => Err(err.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(path: &str) -> String {
        let base = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/firewall/trees/ufw_debian_default"
        );
        std::fs::read_to_string(format!("{base}{path}")).expect("fixture")
    }

    #[test]
    fn debian_default_ufw_is_installed_disabled_with_drop_default() {
        let cfg = config(Some(&fixture(UFW_CONF)), Some(&fixture(UFW_DEFAULTS)));
        assert!(cfg.installed);
        assert!(!cfg.enabled);
        assert_eq!(cfg.default_input_policy.as_deref(), Some("DROP"));
    }

    #[test]
    fn enabled_yes_is_enabled() {
        let conf = fixture(UFW_CONF).replace("ENABLED=no", "ENABLED=yes");
        assert!(config(Some(&conf), None).enabled);
    }

    #[test]
    fn absent_files_mean_not_installed() {
        assert_eq!(config(None, None), UfwConfig::default());
    }

    #[test]
    fn empty_tree_is_observed_not_installed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let host = Host::new(
            dir.path(),
            std::sync::Arc::new(crate::RecordedRunner::new()),
        );
        assert_eq!(collect(&host), Observation::Observed(UfwConfig::default()));
    }

    #[test]
    fn binary_config_file_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("etc/ufw")).expect("mkdir");
        std::fs::write(dir.path().join("etc/ufw/ufw.conf"), [0xff, 0xfe, 0x00]).expect("write");
        let host = Host::new(
            dir.path(),
            std::sync::Arc::new(crate::RecordedRunner::new()),
        );
        assert!(matches!(collect(&host), Observation::Error { .. }));
    }

    proptest::proptest! {
        #[test]
        fn assignments_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let text = String::from_utf8_lossy(&bytes);
            let _ = config(Some(&text), Some(&text));
        }
    }
}
