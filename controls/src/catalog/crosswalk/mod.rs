//! Crosswalks from ISO/IEC 27002:2022 controls to NIST CSF 2.0, CIS Controls v8, SOC 2 and
//! NIST SP 800-53 Rev. 5, with the frameworks, the sources behind each link and reference titles.
//!
//! Data: `data/crosswalks.toml` (from the project reference `controls.md` §2-§3). Published links
//! carry the source's own relationship; links that only share a check topic carry none and name
//! the topic in `via`. Judgment and caveats travel with every link.

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use super::{compare_control_ids, controls, CatalogError, Control};

/// The embedded crosswalk data.
const CROSSWALKS_TOML: &str = include_str!("../../../data/crosswalks.toml");

/// The id of the catalog's own framework, which no crosswalk link may target.
const ISO_FRAMEWORK: &str = "iso27002-2022";

/// A framework the catalog knows (ISO/IEC 27002 itself and the crosswalk targets).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Framework {
    /// `"nist-csf-2.0"`, `"cis-controls-v8"`, `"soc2-tsc-2017"`, `"nist-sp-800-53r5"`.
    pub id: String,
    pub name: String,
    pub version: String,
    pub publisher: String,
}

/// Where a link comes from (keys of `controls.md` §3.0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Source {
    /// NIST OLIR SP 800-53 Rev. 5 -> ISO/IEC 27001:2022.
    #[serde(rename = "OLIR-53")]
    Olir53,
    /// CISO Assistant NIST CSF 2.0 -> ISO/IEC 27001:2022 (intuitem).
    #[serde(rename = "CSF-ISO")]
    CsfIso,
    /// CISO Assistant CIS Controls v8 -> ISO/IEC 27001:2022 (intuitem).
    #[serde(rename = "CIS-ISO")]
    CisIso,
    /// CIS OSCAL CIS Controls v8 -> SP 800-53 Rev. 5 Moderate (test version).
    #[serde(rename = "CIS-53")]
    Cis53,
    /// NIST CSF 2.0 text and implementation examples.
    #[serde(rename = "CSF2")]
    Csf2,
    /// CIS Controls Assessment Specification (safeguard titles).
    #[serde(rename = "CAS")]
    Cas,
    /// AICPA Trust Services Criteria with points of focus.
    #[serde(rename = "TSC")]
    Tsc,
}

/// A source and its provenance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceInfo {
    pub key: Source,
    pub description: String,
}

/// How a published source relates the framework reference to the ISO control, read as
/// "<target> <relationship> <control>" (the direction of the OLIR and CIS mappings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkRelationship {
    Equal,
    Subset,
    Superset,
    Intersect,
}

/// The title of a framework reference (CIS safeguard, SOC 2 criterion), where known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrameworkRef {
    pub framework: String,
    pub id: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caveat: Option<String>,
}

/// One link from an ISO control to a reference in another framework.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrameworkLink {
    /// ISO/IEC 27002:2022 control id, e.g. `"8.20"`.
    pub control: String,
    /// Framework id, e.g. `"nist-csf-2.0"`.
    pub framework: String,
    /// Reference in that framework, e.g. `"PR.IR-01"`.
    pub target: String,
    /// The source's relationship; `None` when no source relates the two directly.
    pub relationship: Option<LinkRelationship>,
    pub source: Source,
    /// For an indirect link, what joins the two (e.g. `"topic firewall"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    /// True where the reference marks the link as the project's judgment (J).
    pub judgment: bool,
    /// An open doubt about the link (`[?]` in the reference).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caveat: Option<String>,
    /// What backs the link (e.g. the point of focus).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// All crosswalk data, checked against the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Crosswalks {
    pub frameworks: Vec<Framework>,
    pub sources: Vec<SourceInfo>,
    /// Sorted by framework, then id.
    pub references: Vec<FrameworkRef>,
    /// Sorted by control (numerically), framework, target, source, via.
    pub links: Vec<FrameworkLink>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CrosswalkFile {
    framework: Vec<Framework>,
    source: Vec<SourceInfo>,
    reference: Vec<FrameworkRef>,
    link: Vec<PublishedLinks>,
    topic: Vec<Topic>,
}

/// A published mapping: every target relates to every control the same way.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PublishedLinks {
    source: Source,
    framework: String,
    relationship: LinkRelationship,
    targets: Vec<String>,
    controls: Vec<String>,
    caveat: Option<String>,
    note: Option<String>,
}

/// A check topic: its primary ISO controls and the framework references tied to it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Topic {
    id: String,
    controls: Vec<String>,
    reference: Vec<TopicRef>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TopicRef {
    framework: String,
    target: String,
    source: Source,
    #[serde(default)]
    judgment: bool,
    caveat: Option<String>,
    note: Option<String>,
}

fn invalid(message: String) -> CatalogError {
    CatalogError::Crosswalk(message)
}

/// Parses a crosswalk text and checks every control, framework and source it names.
pub fn parse_crosswalks(text: &str, catalog: &[Control]) -> Result<Crosswalks, CatalogError> {
    let file: CrosswalkFile = toml::from_str(text).map_err(|e| CatalogError::Parse {
        file: "crosswalks.toml",
        message: e.to_string(),
    })?;
    let mut framework_ids = BTreeSet::new();
    for f in &file.framework {
        if !framework_ids.insert(f.id.as_str()) {
            return Err(invalid(format!("framework {} is listed twice", f.id)));
        }
    }
    let source_keys: BTreeSet<Source> = file.source.iter().map(|s| s.key).collect();
    let known_control = |id: &str| catalog.iter().any(|c| c.id == id);
    let check_target = |framework: &str, source: Source| -> Result<(), CatalogError> {
        if framework == ISO_FRAMEWORK || !framework_ids.contains(framework) {
            return Err(invalid(format!("link to unknown framework {framework:?}")));
        }
        if !source_keys.contains(&source) {
            return Err(invalid(format!("link from undescribed source {source:?}")));
        }
        Ok(())
    };

    let mut links = Vec::new();
    for group in &file.link {
        check_target(&group.framework, group.source)?;
        if group.targets.is_empty() || group.controls.is_empty() {
            return Err(invalid(format!("empty {:?} link group", group.source)));
        }
        for control in &group.controls {
            for target in &group.targets {
                links.push(FrameworkLink {
                    control: control.clone(),
                    framework: group.framework.clone(),
                    target: target.clone(),
                    relationship: Some(group.relationship),
                    source: group.source,
                    via: None,
                    judgment: false,
                    caveat: group.caveat.clone(),
                    note: group.note.clone(),
                });
            }
        }
    }
    let published: BTreeSet<(String, String, String)> = links
        .iter()
        .map(|l| (l.control.clone(), l.framework.clone(), l.target.clone()))
        .collect();
    for topic in &file.topic {
        for r in &topic.reference {
            check_target(&r.framework, r.source)?;
            for control in &topic.controls {
                let key = (control.clone(), r.framework.clone(), r.target.clone());
                if published.contains(&key) {
                    continue; // the published link says more
                }
                links.push(FrameworkLink {
                    control: control.clone(),
                    framework: r.framework.clone(),
                    target: r.target.clone(),
                    relationship: None,
                    source: r.source,
                    via: Some(format!("topic {}", topic.id)),
                    judgment: r.judgment,
                    caveat: r.caveat.clone(),
                    note: r.note.clone(),
                });
            }
        }
    }
    for link in &links {
        if !known_control(&link.control) {
            return Err(invalid(format!(
                "link from unknown control {}",
                link.control
            )));
        }
    }
    let framework_rank = |id: &str| file.framework.iter().position(|f| f.id == id);
    links.sort_by(|a, b| {
        compare_control_ids(&a.control, &b.control)
            .then_with(|| framework_rank(&a.framework).cmp(&framework_rank(&b.framework)))
            .then_with(|| compare_refs(&a.target, &b.target))
            .then_with(|| (a.source, &a.via).cmp(&(b.source, &b.via)))
    });
    if let Some(pair) = links.windows(2).find(|w| same_link(&w[0], &w[1])) {
        let l = &pair[0];
        return Err(invalid(format!(
            "link {} -> {} {} ({:?}) is listed twice",
            l.control, l.framework, l.target, l.source
        )));
    }

    let mut references = file.reference;
    for r in &references {
        if !framework_ids.contains(r.framework.as_str()) {
            return Err(invalid(format!(
                "reference to unknown framework {}",
                r.framework
            )));
        }
    }
    references.sort_by(|a, b| {
        framework_rank(&a.framework)
            .cmp(&framework_rank(&b.framework))
            .then_with(|| compare_refs(&a.id, &b.id))
    });
    if let Some(pair) = references
        .windows(2)
        .find(|w| w[0].framework == w[1].framework && w[0].id == w[1].id)
    {
        return Err(invalid(format!(
            "reference {} {} is listed twice",
            pair[0].framework, pair[0].id
        )));
    }

    Ok(Crosswalks {
        frameworks: file.framework,
        sources: file.source,
        references,
        links,
    })
}

fn same_link(a: &FrameworkLink, b: &FrameworkLink) -> bool {
    (&a.control, &a.framework, &a.target, a.source, &a.via)
        == (&b.control, &b.framework, &b.target, b.source, &b.via)
}

/// Orders reference ids with their numbers compared as numbers: 3.6 < 3.11, SC-7 < SC-28.
fn compare_refs(a: &str, b: &str) -> Ordering {
    fn key(id: &str) -> Vec<Result<u64, String>> {
        let mut parts = Vec::new();
        let mut rest = id;
        while !rest.is_empty() {
            let digits = rest.chars().take_while(|c| c.is_ascii_digit()).count();
            let len = if digits > 0 {
                digits
            } else {
                rest.chars()
                    .take_while(|c| !c.is_ascii_digit())
                    .map(char::len_utf8)
                    .sum()
            };
            let (head, tail) = rest.split_at(len);
            parts.push(head.parse::<u64>().map_err(|_| head.to_string()));
            rest = tail;
        }
        parts
    }
    key(a).cmp(&key(b)).then_with(|| a.cmp(b))
}

/// The crosswalk data, parsed once. The embedded data is validated by the catalog's tests, so a
/// parse failure here is a build defect.
pub fn crosswalks() -> &'static Crosswalks {
    static CROSSWALKS: OnceLock<Crosswalks> = OnceLock::new();
    CROSSWALKS.get_or_init(|| {
        parse_crosswalks(CROSSWALKS_TOML, controls()).expect("embedded crosswalks are valid")
    })
}

/// Every link from one control, sorted by framework, target, source.
pub fn crosswalk(control_id: &str) -> Vec<&'static FrameworkLink> {
    crosswalks()
        .links
        .iter()
        .filter(|l| l.control == control_id)
        .collect()
}

/// Every known framework, the catalog's own first.
pub fn frameworks() -> &'static [Framework] {
    &crosswalks().frameworks
}

pub fn framework(id: &str) -> Option<&'static Framework> {
    frameworks().iter().find(|f| f.id == id)
}

/// The sources behind the links, with their provenance.
pub fn sources() -> &'static [SourceInfo] {
    &crosswalks().sources
}

/// Every framework reference with a known title.
pub fn references() -> &'static [FrameworkRef] {
    &crosswalks().references
}

/// The title entry of one framework reference, if the catalog has one.
pub fn reference(framework: &str, id: &str) -> Option<&'static FrameworkRef> {
    references()
        .iter()
        .find(|r| r.framework == framework && r.id == id)
}

#[cfg(test)]
mod tests;
