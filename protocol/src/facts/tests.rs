//! The JSON form of [`Facts`]: sorted keys, unknown collectors kept byte for byte (and signed
//! reports carrying them still verify), unknown fields inside a known collector refused.

use super::*;
use crate::report::{Report, ReportKind};
use crate::{signing, Digest, SigningKey};

fn host_facts() -> HostFacts {
    HostFacts {
        hostname: Some("web-1".into()),
        ..HostFacts::default()
    }
}

/// A report as a newer agent would sign it: `facts` holds collectors this build does not know,
/// one sorting before every known name and one after, with unsorted nested keys and a float.
fn newer_agents_report_bytes() -> Vec<u8> {
    let known = Facts {
        host: Some(Observation::Observed(host_facts())),
        firewall: Some(Observation::error("nft hung")),
        ..Facts::default()
    };
    let known = serde_json::to_string(&known).unwrap();
    let body = &known[1..known.len() - 1];
    let facts = format!(
        r#"{{"aaa_new":{{"observed":{{"zeta":1,"alpha":[2.5,1e-7]}}}},{body},"zz_new":{{"error":{{"reason":"x"}}}}}}"#
    );
    format!(
        r#"{{"host_id":"h-1","key_id":"k-1","seq":3,"prev_digest":null,"collected_at":"2026-11-27T23:00:00Z","agent_version":"9.0.0","collector_versions":{{}},"dropped_reports":0,"kind":{{"full":{{"facts":{facts}}}}}}}"#
    )
    .into_bytes()
}

#[test]
fn a_report_with_unknown_collectors_round_trips_byte_for_byte_and_its_signature_verifies() {
    let key = SigningKey::generate().unwrap();
    let bytes = newer_agents_report_bytes();
    let signature = key.sign(&bytes);

    let report = Report::from_bytes(&bytes).expect("unknown collectors are not refused");
    let facts = report.facts().unwrap();
    assert_eq!(facts.host, Some(Observation::Observed(host_facts())));
    assert_eq!(
        facts.unknown.keys().collect::<Vec<_>>(),
        ["aaa_new", "zz_new"]
    );
    assert_eq!(
        facts.unknown["aaa_new"].json(),
        r#"{"observed":{"zeta":1,"alpha":[2.5,1e-7]}}"#
    );

    let again = report.to_bytes();
    assert_eq!(
        String::from_utf8(again.clone()).unwrap(),
        String::from_utf8(bytes).unwrap()
    );
    assert_eq!(
        signing::verify(&key.public_key(), &again, &signature),
        Ok(())
    );
}

#[test]
fn unknown_collectors_survive_a_round_trip_through_a_json_value() {
    let bytes = newer_agents_report_bytes();
    let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let facts: Facts = serde_json::from_value(value["kind"]["full"]["facts"].clone()).unwrap();
    assert_eq!(facts.unknown.len(), 2);
    assert_eq!(
        facts.unknown["zz_new"].json(),
        r#"{"error":{"reason":"x"}}"#
    );
}

#[test]
fn an_unknown_field_inside_a_known_collector_is_refused() {
    let text = r#"{"host":{"observed":{"hostname":"a","surprise":1}}}"#;
    let err = serde_json::from_str::<Facts>(text).unwrap_err();
    assert!(err.to_string().contains("surprise"), "{err}");
    let report = String::from_utf8(newer_agents_report_bytes())
        .unwrap()
        .replace(
            r#""hostname":"web-1""#,
            r#""hostname":"web-1","surprise":1"#,
        );
    assert!(Report::from_bytes(report.as_bytes()).is_err());
}

#[test]
fn a_collector_named_twice_is_refused() {
    let text = r#"{"zz":1,"zz":2}"#;
    assert!(serde_json::from_str::<Facts>(text).is_err());
    let text = r#"{"host":{"error":{"reason":"a"}},"host":{"error":{"reason":"b"}}}"#;
    assert!(serde_json::from_str::<Facts>(text).is_err());
}

#[test]
fn facts_serialise_with_their_keys_sorted_and_absent_collectors_left_out() {
    let facts = Facts {
        host: Some(Observation::error("a")),
        accounts: Some(Observation::not_applicable("b")),
        ..Facts::default()
    };
    assert_eq!(
        serde_json::to_string(&facts).unwrap(),
        r#"{"accounts":{"not_applicable":{"reason":"b"}},"host":{"error":{"reason":"a"}}}"#
    );
    assert_eq!(serde_json::to_string(&Facts::default()).unwrap(), "{}");
    let back: Facts = serde_json::from_str(r#"{"host":null}"#).unwrap();
    assert_eq!(back, Facts::default(), "null is an absent collector");
}

#[test]
fn all_failed_gives_every_named_collector_the_reason_and_no_other() {
    let names = [CollectorName::ALL[0], CollectorName::ALL[2]];
    let facts = Facts::all_failed(&names, "collection thread panicked");
    assert_eq!(facts.collectors(), names);
    let value = serde_json::to_value(&facts).unwrap();
    for name in names {
        assert_eq!(
            value[name.as_str()]["error"]["reason"],
            "collection thread panicked"
        );
    }
    let every = Facts::all_failed(CollectorName::ALL, "x");
    assert_eq!(every.collectors(), CollectorName::ALL);
}

#[test]
fn overlay_replaces_only_the_collectors_present_in_the_fresh_facts() {
    let mut base = Facts {
        accounts: Some(Observation::error("old")),
        firewall: Some(Observation::error("kept")),
        ..Facts::default()
    };
    base.unknown.insert(
        "ssh".into(),
        RawFacts::from_json(r#"{"error":{"reason":"old"}}"#).unwrap(),
    );
    let mut fresh = Facts {
        accounts: Some(Observation::error("new")),
        ..Facts::default()
    };
    fresh.unknown.insert(
        "ssh".into(),
        RawFacts::from_json(r#"{"error":{"reason":"new"}}"#).unwrap(),
    );
    base.overlay(fresh);
    assert_eq!(base.accounts, Some(Observation::error("new")));
    assert_eq!(base.firewall, Some(Observation::error("kept")));
    assert_eq!(base.unknown["ssh"].json(), r#"{"error":{"reason":"new"}}"#);
}

#[test]
fn this_builds_reports_round_trip_through_their_bytes() {
    let report = Report {
        host_id: "h".into(),
        key_id: "k".into(),
        seq: 1,
        prev_digest: Some(Digest::of(b"p")),
        collected_at: "2026-11-27T23:00:00Z".parse().unwrap(),
        agent_version: "0.1.0".into(),
        collector_versions: Default::default(),
        dropped_reports: 0,
        witnessed: None,
        kind: ReportKind::Full {
            facts: Facts::all_failed(CollectorName::ALL, "r"),
        },
    };
    let bytes = report.to_bytes();
    assert_eq!(Report::from_bytes(&bytes).unwrap().to_bytes(), bytes);
}
