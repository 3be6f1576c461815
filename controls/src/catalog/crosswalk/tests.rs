//! Tests of the embedded crosswalk data against the project reference (`controls.md` §2, §3,
//! §5), and of the crosswalk parser's refusal of bad data.

use std::cmp::Ordering;

use super::*;
use crate::catalog::control;

const EMBEDDED_CROSSWALKS: &str = include_str!("../../../data/crosswalks.toml");

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
