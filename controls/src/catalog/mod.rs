//! The ISO/IEC 27002:2022 control catalog: all 93 controls with theme, number, short title,
//! attributes where known, and crosswalks to other frameworks.
//!
//! Data: `data/iso27002_2022.toml` (controls) and `data/crosswalks.toml` (frameworks, reference
//! titles, links), embedded at build time and parsed once. Titles only: no ISO guidance text.
//! Used by the check mappings (control ids must exist here), the evaluation (id ordering) and
//! the server (serving controls with their crosswalks).

mod attributes;
mod crosswalk;
#[cfg(test)]
mod tests;

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

pub use attributes::{
    AttributeType, Attributes, ControlType, CybersecurityConcept, OperationalCapability,
    SecurityDomain, SecurityProperty, Uncertain,
};
pub use crosswalk::{
    crosswalk, crosswalks, framework, frameworks, parse_crosswalks, reference, references, sources,
    Crosswalks, Framework, FrameworkLink, FrameworkRef, LinkRelationship, Source, SourceInfo,
};

/// The embedded control catalog.
const CATALOG_TOML: &str = include_str!("../../data/iso27002_2022.toml");

/// A theme (clause) of ISO/IEC 27002:2022.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Theme {
    /// Clause 5, controls 5.1 - 5.37.
    Organizational,
    /// Clause 6, controls 6.1 - 6.8.
    People,
    /// Clause 7, controls 7.1 - 7.14.
    Physical,
    /// Clause 8, controls 8.1 - 8.34.
    Technological,
}

impl Theme {
    pub const ALL: &'static [Theme] = &[
        Theme::Organizational,
        Theme::People,
        Theme::Physical,
        Theme::Technological,
    ];

    /// The clause number, which is also the first part of its controls' ids.
    pub fn clause(self) -> u32 {
        match self {
            Theme::Organizational => 5,
            Theme::People => 6,
            Theme::Physical => 7,
            Theme::Technological => 8,
        }
    }

    pub fn from_clause(clause: u32) -> Option<Theme> {
        Theme::ALL.iter().copied().find(|t| t.clause() == clause)
    }

    /// The clause heading, e.g. "Technological controls".
    pub fn name(self) -> &'static str {
        match self {
            Theme::Organizational => "Organizational controls",
            Theme::People => "People controls",
            Theme::Physical => "Physical controls",
            Theme::Technological => "Technological controls",
        }
    }
}

/// Another spelling of a title seen in a source (open point: not checked against the ISO text).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TitleVariant {
    pub title: String,
    pub source: String,
    pub note: String,
}

/// One ISO/IEC 27002:2022 control.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Control {
    /// `"8.24"`; ISO/IEC 27001:2022 Annex A writes the same control `A.8.24`.
    pub id: String,
    pub theme: Theme,
    /// Short title only.
    pub title: String,
    /// A remark about the title's spelling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title_note: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title_variant: Option<TitleVariant>,
    /// One of the 11 controls added in the 2022 edition.
    #[serde(default)]
    pub new_in_2022: bool,
    /// The attribute values, where the reference gives them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<Attributes>,
}

/// Why the embedded data is unusable (caught by this module's tests, so a build defect).
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("data/{file}: {message}")]
    Parse { file: &'static str, message: String },
    #[error("control id {0:?} is not <clause>.<number>")]
    BadId(String),
    #[error("control {id} is filed under theme {theme:?}, which is not clause {clause}")]
    ThemeMismatch {
        id: String,
        theme: Theme,
        clause: u32,
    },
    #[error("control {0} is listed twice")]
    Duplicate(String),
    #[error("{0}")]
    Crosswalk(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    control: Vec<Control>,
}

/// Parses and checks a catalog text; the controls come back sorted numerically.
pub fn parse_catalog(text: &str) -> Result<Vec<Control>, CatalogError> {
    let file: CatalogFile = toml::from_str(text).map_err(|e| CatalogError::Parse {
        file: "iso27002_2022.toml",
        message: e.to_string(),
    })?;
    let mut seen = BTreeSet::new();
    for control in &file.control {
        let clause = id_key(&control.id)
            .filter(|key| key.len() == 2 && key[1] > 0)
            .filter(|key| format!("{}.{}", key[0], key[1]) == control.id)
            .map(|key| key[0])
            .ok_or_else(|| CatalogError::BadId(control.id.clone()))?;
        if control.theme.clause() != clause {
            return Err(CatalogError::ThemeMismatch {
                id: control.id.clone(),
                theme: control.theme,
                clause,
            });
        }
        if !seen.insert(control.id.clone()) {
            return Err(CatalogError::Duplicate(control.id.clone()));
        }
    }
    let mut controls = file.control;
    controls.sort_by(|a, b| compare_control_ids(&a.id, &b.id));
    Ok(controls)
}

/// Every control, sorted numerically (5.9 before 5.10). The embedded data is validated by this
/// module's tests, so a parse failure here is a build defect.
pub fn controls() -> &'static [Control] {
    static CONTROLS: OnceLock<Vec<Control>> = OnceLock::new();
    CONTROLS.get_or_init(|| parse_catalog(CATALOG_TOML).expect("embedded catalog is valid"))
}

/// Looks a control up by id (`"8.20"`).
pub fn control(id: &str) -> Option<&'static Control> {
    let all = controls();
    all.binary_search_by(|c| compare_control_ids(&c.id, id))
        .ok()
        .map(|i| &all[i])
}

/// The controls of one theme, in order.
pub fn controls_in(theme: Theme) -> impl Iterator<Item = &'static Control> {
    controls().iter().filter(move |c| c.theme == theme)
}

fn id_key(id: &str) -> Option<Vec<u32>> {
    id.split('.').map(|p| p.parse().ok()).collect()
}

/// Orders control ids numerically: 5.9 < 5.10 < 8.1 < 8.20.
pub fn compare_control_ids(a: &str, b: &str) -> Ordering {
    fn key(id: &str) -> Vec<u32> {
        id.split('.')
            .map(|p| p.parse().unwrap_or(u32::MAX))
            .collect()
    }
    key(a).cmp(&key(b)).then_with(|| a.cmp(b))
}
