//! Tests of the embedded control catalog against the project reference (`controls.md` §1, §5),
//! and of the catalog parser's refusal of bad data.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use super::*;

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
