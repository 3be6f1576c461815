//! Which ISO/IEC 27002:2022 controls each check evidences: data in `data/checks/*.toml`, one
//! file per collector, embedded by its checks module (`MAPPINGS`).
//!
//! Every link records its relationship, its source (a published crosswalk, or none) and whether
//! it is the project's own judgment, so those caveats travel with the data.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// How a check relates to a control (set vocabulary of NIST OLIR and CIS mappings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Relationship {
    /// The check evidences part of what the control asks.
    Subset,
    /// The check and the control overlap; neither contains the other.
    Intersect,
}

/// One check -> control link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlLink {
    /// ISO/IEC 27002:2022 control id, e.g. `"8.20"`.
    pub control: String,
    pub relationship: Relationship,
    /// Where the link comes from (a published crosswalk chain), or why we judged it.
    pub source: String,
    /// True when no public source asserts the link: the project's own judgment.
    pub judgment: bool,
}

/// One check's links.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckMapping {
    pub id: String,
    pub iso27002: Vec<ControlLink>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MappingFile {
    #[serde(default)]
    check: Vec<CheckMapping>,
}

#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    #[error("data/checks/{file}.toml: {message}")]
    Parse { file: String, message: String },
    #[error("data/checks/{file}.toml: check {check} does not belong to collector {file}")]
    WrongFile { file: String, check: String },
    #[error("check {0} is mapped twice")]
    Duplicate(String),
}

/// Parses the embedded mapping files (fallible form, for tests).
pub fn load_check_mappings() -> Result<BTreeMap<String, CheckMapping>, MappingError> {
    let mut all = BTreeMap::new();
    for (file, text) in crate::checks::MAPPING_FILES {
        let parsed: MappingFile = toml::from_str(text).map_err(|e| MappingError::Parse {
            file: file.to_string(),
            message: e.to_string(),
        })?;
        for mapping in parsed.check {
            if !mapping.id.starts_with(&format!("{file}.")) {
                return Err(MappingError::WrongFile {
                    file: file.to_string(),
                    check: mapping.id,
                });
            }
            if all.contains_key(&mapping.id) {
                return Err(MappingError::Duplicate(mapping.id));
            }
            all.insert(mapping.id.clone(), mapping);
        }
    }
    Ok(all)
}

/// The check -> control mappings, parsed once. The embedded data is validated by the crate's
/// tests, so a parse failure here is a build defect.
pub fn check_mappings() -> &'static BTreeMap<String, CheckMapping> {
    static MAPPINGS: OnceLock<BTreeMap<String, CheckMapping>> = OnceLock::new();
    MAPPINGS.get_or_init(|| load_check_mappings().expect("embedded check mappings are valid"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_check_is_mapped_to_at_least_one_catalog_control_and_every_mapping_names_a_check() {
        let mappings = load_check_mappings().expect("mapping files parse");
        let checks = crate::checks::all();
        for check in &checks {
            let mapping = mappings
                .get(check.id)
                .unwrap_or_else(|| panic!("check {} has no mapping", check.id));
            assert!(!mapping.iso27002.is_empty(), "{} maps to nothing", check.id);
            for link in &mapping.iso27002 {
                assert!(
                    crate::catalog::control(&link.control).is_some(),
                    "{} maps to unknown control {}",
                    check.id,
                    link.control
                );
                assert!(
                    !link.source.trim().is_empty(),
                    "{} -> {} has no source",
                    check.id,
                    link.control
                );
            }
        }
        for id in mappings.keys() {
            assert!(
                checks.iter().any(|c| c.id == id),
                "mapping for unknown check {id}"
            );
        }
    }
}
