//! Tests of the embedded catalog and crosswalk data against the project reference
//! (`controls.md` §1-§3, §5), and of the parsers' refusal of bad data.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use super::*;

const EMBEDDED_CROSSWALKS: &str = include_str!("../../data/crosswalks.toml");

fn ids(theme: Theme) -> Vec<String> {
    controls_in(theme).map(|c| c.id.clone()).collect()
}

#[test]
fn the_embedded_catalog_parses_into_exactly_93_controls() {
    let parsed = parse_catalog(CATALOG_TOML).expect("catalog parses");
    assert_eq!(parsed.len(), 93);
    assert_eq!(controls().len(), 93);
}

#[test]
fn the_themes_hold_37_8_14_and_34_controls() {
    let counts: Vec<usize> = Theme::ALL.iter().map(|t| controls_in(*t).count()).collect();
    assert_eq!(counts, vec![37, 8, 14, 34]);
}

#[test]
fn numbering_is_contiguous_within_each_theme() {
    for theme in Theme::ALL {
        let expected: Vec<String> = (1..=controls_in(*theme).count())
            .map(|n| format!("{}.{n}", theme.clause()))
            .collect();
        assert_eq!(ids(*theme), expected, "theme {theme:?}");
    }
}

#[test]
fn exactly_the_11_controls_of_the_2022_edition_are_flagged_new() {
    let new: Vec<&str> = controls()
        .iter()
        .filter(|c| c.new_in_2022)
        .map(|c| c.id.as_str())
        .collect();
    assert_eq!(
        new,
        ["5.7", "5.23", "5.30", "7.4", "8.9", "8.10", "8.11", "8.12", "8.16", "8.23", "8.28"]
    );
}

#[test]
fn controls_are_sorted_numerically_so_5_9_precedes_5_10() {
    let all = controls();
    for pair in all.windows(2) {
        assert_eq!(
            compare_control_ids(&pair[0].id, &pair[1].id),
            Ordering::Less
        );
    }
    let pos = |id: &str| all.iter().position(|c| c.id == id).unwrap();
    assert!(pos("5.9") < pos("5.10"));
    assert!(pos("8.2") < pos("8.10"));
    assert_eq!(compare_control_ids("8.20", "8.3"), Ordering::Greater);
}

#[test]
fn lookup_finds_every_control_by_id_and_nothing_else() {
    for c in controls() {
        assert_eq!(control(&c.id).map(|found| &found.title), Some(&c.title));
    }
    assert_eq!(control("8.24").unwrap().title, "Use of cryptography");
    assert_eq!(control("5.10").unwrap().theme, Theme::Organizational);
    for missing in ["8.35", "5.0", "4.1", "5.010", "A.8.1", ""] {
        assert!(
            control(missing).is_none(),
            "{missing:?} should not be found"
        );
    }
}

#[test]
fn attribute_enums_hold_exactly_the_value_sets_of_the_standard() {
    let sets: BTreeMap<AttributeType, Vec<&str>> = AttributeType::ALL
        .iter()
        .map(|t| (*t, t.allowed_values()))
        .collect();
    assert_eq!(
        sets[&AttributeType::ControlType],
        ["Preventive", "Detective", "Corrective"]
    );
    assert_eq!(
        sets[&AttributeType::SecurityProperties],
        ["Confidentiality", "Integrity", "Availability"]
    );
    assert_eq!(
        sets[&AttributeType::CybersecurityConcepts],
        ["Identify", "Protect", "Detect", "Respond", "Recover"]
    );
    assert_eq!(
        sets[&AttributeType::OperationalCapabilities],
        [
            "Governance",
            "Asset_management",
            "Information_protection",
            "Human_resource_security",
            "Physical_security",
            "System_and_network_security",
            "Application_security",
            "Secure_configuration",
            "Identity_and_access_management",
            "Threat_and_vulnerability_management",
            "Continuity",
            "Supplier_relationships_security",
            "Legal_and_compliance",
            "Information_security_event_management",
            "Information_security_assurance",
        ]
    );
    assert_eq!(
        sets[&AttributeType::SecurityDomains],
        [
            "Governance_and_Ecosystem",
            "Protection",
            "Defence",
            "Resilience"
        ]
    );
}

#[test]
fn attribute_serde_names_are_the_tags_without_the_hash() {
    for v in OperationalCapability::ALL {
        assert_eq!(serde_json::to_value(v).unwrap(), serde_json::json!(v.tag()));
    }
    for v in SecurityDomain::ALL {
        let back: SecurityDomain = serde_json::from_value(serde_json::json!(v.tag())).unwrap();
        assert_eq!(back, *v);
    }
}

#[test]
fn attributes_cover_the_25_controls_the_reference_gives_all_unverified_and_non_empty() {
    let with: Vec<&Control> = controls()
        .iter()
        .filter(|c| c.attributes.is_some())
        .collect();
    assert_eq!(with.len(), 25);
    for c in with {
        let a = c.attributes.as_ref().unwrap();
        assert!(!a.verified, "{} claims verified attributes", c.id);
        for t in AttributeType::ALL {
            assert!(!a.tags(*t).is_empty(), "{} has no {t:?}", c.id);
        }
    }
    let a = control("8.7").unwrap().attributes.as_ref().unwrap();
    assert_eq!(a.control_type, ControlType::ALL);
    assert_eq!(
        a.security_domains,
        [SecurityDomain::Protection, SecurityDomain::Defence]
    );
    let a = control("8.17").unwrap().attributes.as_ref().unwrap();
    assert_eq!(a.security_properties, [SecurityProperty::Integrity]);
}

#[test]
fn the_three_disputed_attribute_values_are_marked_uncertain() {
    let mut marked = Vec::new();
    for c in controls() {
        for u in c.attributes.iter().flat_map(|a| &a.uncertain) {
            assert!(!u.note.trim().is_empty());
            marked.push((c.id.as_str(), u.attribute));
        }
    }
    assert_eq!(
        marked,
        [
            ("8.1", AttributeType::OperationalCapabilities),
            ("8.16", AttributeType::ControlType),
            ("8.21", AttributeType::ControlType),
        ]
    );
}

#[test]
fn the_two_disputed_titles_carry_their_variant() {
    let variants: Vec<(&str, &str)> = controls()
        .iter()
        .filter_map(|c| Some((c.id.as_str(), c.title_variant.as_ref()?.title.as_str())))
        .collect();
    assert_eq!(
        variants,
        [
            (
                "5.22",
                "Monitor, review and change management of supplier services"
            ),
            ("8.1", "User end point devices"),
        ]
    );
}

#[test]
fn a_misspelt_attribute_value_fails_to_parse() {
    let text = r#"
        [[control]]
        id = "8.9"
        theme = "technological"
        title = "Configuration management"
        [control.attributes]
        verified = false
        control_type = ["Preventive"]
        security_properties = ["Confidentiality"]
        cybersecurity_concepts = ["Protect"]
        operational_capabilities = ["Secure_Configuration"]
        security_domains = ["Protection"]
    "#;
    let err = parse_catalog(text).unwrap_err().to_string();
    assert!(err.contains("Secure_Configuration"), "{err}");
    assert!(parse_catalog(&text.replace("Secure_Configuration", "Secure_configuration")).is_ok());
}

#[test]
fn a_control_under_the_wrong_theme_a_duplicate_or_a_malformed_id_is_refused() {
    let one = |id: &str, theme: &str| {
        format!("[[control]]\nid = \"{id}\"\ntheme = \"{theme}\"\ntitle = \"t\"\n")
    };
    let wrong_theme = parse_catalog(&one("8.1", "people"));
    assert!(matches!(
        wrong_theme,
        Err(CatalogError::ThemeMismatch { .. })
    ));
    let twice = format!("{}{}", one("6.1", "people"), one("6.1", "people"));
    assert!(matches!(
        parse_catalog(&twice),
        Err(CatalogError::Duplicate(_))
    ));
    for bad in ["6", "6.0", "6.01", "6.1.1", "A.6.1"] {
        let result = parse_catalog(&one(bad, "people"));
        assert!(
            matches!(result, Err(CatalogError::BadId(_))),
            "{bad}: {result:?}"
        );
    }
}

#[test]
fn the_frameworks_include_the_four_crosswalk_targets_with_name_and_version() {
    let ids: Vec<&str> = frameworks().iter().map(|f| f.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "iso27002-2022",
            "nist-csf-2.0",
            "cis-controls-v8",
            "soc2-tsc-2017",
            "nist-sp-800-53r5"
        ]
    );
    for f in frameworks() {
        assert!(!f.name.is_empty() && !f.version.is_empty() && !f.publisher.is_empty());
    }
    assert_eq!(framework("nist-csf-2.0").unwrap().version, "2.0");
}

#[test]
fn every_link_names_a_known_control_a_crosswalk_framework_and_a_described_source() {
    let links = &crosswalks().links;
    assert!(links.len() > 100, "only {} links", links.len());
    for l in links {
        assert!(control(&l.control).is_some(), "unknown control in {l:?}");
        assert!(
            framework(&l.framework).is_some(),
            "unknown framework in {l:?}"
        );
        assert_ne!(l.framework, "iso27002-2022");
        assert!(
            sources().iter().any(|s| s.key == l.source),
            "undescribed source in {l:?}"
        );
    }
    for r in references() {
        assert!(
            framework(&r.framework).is_some(),
            "unknown framework in {r:?}"
        );
    }
}

#[test]
fn published_links_carry_a_relationship_and_topic_links_carry_only_their_topic() {
    for l in &crosswalks().links {
        match (&l.relationship, &l.via) {
            (Some(_), None) => assert!(!l.judgment, "published link marked judgment: {l:?}"),
            (None, Some(via)) => assert!(via.starts_with("topic "), "{l:?}"),
            _ => panic!("link is neither published nor via a topic: {l:?}"),
        }
    }
}

#[test]
fn crosswalks_of_8_20_8_17_and_8_7_match_the_reference() {
    let has = |control: &str, target: &str, source: Source, rel: Option<LinkRelationship>| {
        crosswalk(control)
            .iter()
            .any(|l| l.target == target && l.source == source && l.relationship == rel)
    };
    use LinkRelationship::*;
    assert!(has("8.20", "PR.IR-01", Source::CsfIso, Some(Intersect)));
    assert!(has("8.20", "SC-7", Source::Olir53, Some(Intersect)));
    assert!(has("8.17", "8.4", Source::CisIso, Some(Equal)));
    assert!(has("8.1", "3.6", Source::CisIso, Some(Subset)));
    let dm = crosswalk("8.7")
        .into_iter()
        .find(|l| l.target == "DE.CM-09")
        .unwrap();
    assert!(dm.judgment && dm.relationship.is_none());
    assert_eq!(dm.via.as_deref(), Some("topic antivirus"));
    assert!(
        crosswalk("7.14").is_empty(),
        "7.14 has no crosswalk in the reference"
    );
    assert!(crosswalk("99.1").is_empty());
}

#[test]
fn soc2_links_of_screen_lock_ssh_clock_and_listening_services_are_judgment() {
    for topic in [
        "screen_lock",
        "ssh_config",
        "clock_sync",
        "listening_services",
    ] {
        let via = format!("topic {topic}");
        let soc2: Vec<&FrameworkLink> = crosswalks()
            .links
            .iter()
            .filter(|l| l.framework == "soc2-tsc-2017" && l.via.as_deref() == Some(&via))
            .collect();
        assert!(!soc2.is_empty(), "{topic} has no SOC 2 link");
        assert!(soc2.iter().all(|l| l.judgment), "{topic}: {soc2:?}");
    }
}

#[test]
fn every_soc2_criterion_linked_has_a_title() {
    for l in crosswalks()
        .links
        .iter()
        .filter(|l| l.framework == "soc2-tsc-2017")
    {
        assert!(
            reference(&l.framework, &l.target).is_some(),
            "no title for {}",
            l.target
        );
    }
    assert_eq!(
        reference("cis-controls-v8", "4.5").unwrap().title,
        "Implement and Manage a Firewall on End-User Devices"
    );
}

#[test]
fn links_and_references_are_sorted_deterministically() {
    let links = &crosswalks().links;
    for pair in links.windows(2) {
        assert_ne!(
            compare_control_ids(&pair[0].control, &pair[1].control),
            Ordering::Greater
        );
    }
    let cis: Vec<&str> = references()
        .iter()
        .filter(|r| r.framework == "cis-controls-v8")
        .map(|r| r.id.as_str())
        .collect();
    let pos = |id: &str| cis.iter().position(|x| *x == id).unwrap();
    assert!(pos("3.6") < pos("3.11") && pos("8.9") < pos("8.10") && pos("8.10") < pos("10.1"));
}

#[test]
fn crosswalks_naming_an_unknown_control_or_framework_are_refused() {
    let bad_control = EMBEDDED_CROSSWALKS.replace(
        "targets = [\"SI-3\"]\ncontrols = [\"8.7\"]",
        "targets = [\"SI-3\"]\ncontrols = [\"8.35\"]",
    );
    assert_ne!(bad_control, EMBEDDED_CROSSWALKS);
    let err = parse_crosswalks(&bad_control, controls())
        .unwrap_err()
        .to_string();
    assert!(err.contains("8.35"), "{err}");
    let bad_framework = EMBEDDED_CROSSWALKS.replacen(
        "framework = \"nist-sp-800-53r5\"\nrelationship",
        "framework = \"nist-sp-800-53\"\nrelationship",
        1,
    );
    assert_ne!(bad_framework, EMBEDDED_CROSSWALKS);
    let err = parse_crosswalks(&bad_framework, controls())
        .unwrap_err()
        .to_string();
    assert!(err.contains("nist-sp-800-53"), "{err}");
    let twice = format!(
        "{EMBEDDED_CROSSWALKS}\n[[link]]\nsource = \"OLIR-53\"\nframework = \"nist-sp-800-53r5\"\n\
         relationship = \"intersect\"\ntargets = [\"SI-3\"]\ncontrols = [\"8.7\"]\n"
    );
    let err = parse_crosswalks(&twice, controls())
        .unwrap_err()
        .to_string();
    assert!(err.contains("twice"), "{err}");
}

#[test]
fn controls_and_crosswalks_survive_a_serde_round_trip() {
    let json = serde_json::to_string(controls()).unwrap();
    assert!(json.contains("\"Asset_management\"") && json.contains("\"technological\""));
    let back: Vec<Control> = serde_json::from_str(&json).unwrap();
    assert_eq!(back, controls());
    let json = serde_json::to_string(crosswalks()).unwrap();
    assert!(json.contains("\"OLIR-53\"") && json.contains("\"intersect\""));
    let back: Crosswalks = serde_json::from_str(&json).unwrap();
    assert_eq!(&back, crosswalks());
}
