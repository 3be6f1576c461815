//! Checks over the `host` collector's facts: none yet (identity and hardware are inventory, not
//! a control's evidence), so no mappings and no policy settings.

use super::Check;

pub const CHECKS: &[Check] = &[];

pub const MAPPINGS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/data/checks/host.toml"
));

pub type Settings = crate::policy::NoSettings;
