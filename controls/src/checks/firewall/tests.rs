//! Tests of the `firewall` checks over hand-built verdicts (the verdict computation itself is
//! tested against real rulesets in the collectors crate and in `tests/tests/firewall_netns.rs`).

use evidence_protocol::facts::firewall::{
    Admission, ChainVerdict, FamilyVerdict, InboundFacts, PortRange, UfwConfig, UnparsedRule,
};
use evidence_protocol::facts::FirewallFacts;
use evidence_protocol::Observation;

use super::*;
use crate::Policy;

fn port(protocol: &str, p: u16) -> Admission {
    Admission {
        protocol: Some(protocol.into()),
        ports: Some(PortRange { first: p, last: p }),
        ..Admission::default()
    }
}

fn denying(admitted: Vec<Admission>) -> FamilyVerdict {
    FamilyVerdict {
        default_deny: true,
        chains: vec![ChainVerdict {
            chain: "nft inet filter input".into(),
            priority: 0,
            policy: "drop".into(),
            default_deny: true,
            reason: "policy drop".into(),
        }],
        deciding_chains: vec!["nft inet filter input".into()],
        admitted,
        unparsed_rules: Vec::new(),
    }
}

fn facts(ipv4: FamilyVerdict, ipv6: FamilyVerdict) -> FirewallFacts {
    FirewallFacts {
        inbound: Observation::Observed(InboundFacts {
            sources: Vec::new(),
            ipv6_disabled: false,
            ipv4,
            ipv6,
        }),
        ufw: Observation::Observed(UfwConfig::default()),
        firewalld: Observation::Observed(Default::default()),
    }
}

fn ssh_and_established() -> Vec<Admission> {
    vec![
        port("tcp", 22),
        Admission {
            established_only: true,
            ..Admission::default()
        },
    ]
}

fn policy(toml: &str) -> Policy {
    Policy::from_toml(toml).expect("policy parses")
}

#[test]
fn both_families_default_deny_passes_and_lists_admitted_ports() {
    let f = facts(
        denying(ssh_and_established()),
        denying(ssh_and_established()),
    );
    let out = inbound_default_deny(&f, &Policy::default());
    assert_eq!(out.status, Status::Pass, "{out:?}");
    assert_eq!(
        out.evidence["families"]["ipv4"]["admitted"],
        json!(["22/tcp", "any traffic (established/related)"])
    );
}

#[test]
fn ipv6_left_open_fails() {
    let f = facts(denying(ssh_and_established()), FamilyVerdict::default());
    let out = inbound_default_deny(&f, &Policy::default());
    assert_eq!(out.status, Status::Fail);
    let reason = out.reason.expect("reason");
    assert!(
        reason.contains("ipv6") && !reason.contains("ipv4"),
        "{reason}"
    );
}

#[test]
fn ipv6_left_open_passes_when_the_kernel_has_ipv6_off() {
    let mut f = facts(denying(ssh_and_established()), FamilyVerdict::default());
    if let Observation::Observed(inbound) = &mut f.inbound {
        inbound.ipv6_disabled = true;
    }
    let out = inbound_default_deny(&f, &Policy::default());
    assert_eq!(out.status, Status::Pass, "{out:?}");
    assert_eq!(out.evidence["ipv6_disabled"], json!(true));
}

#[test]
fn empty_ruleset_fails_as_no_firewall() {
    let out = inbound_default_deny(
        &facts(FamilyVerdict::default(), FamilyVerdict::default()),
        &Policy::default(),
    );
    assert_eq!(out.status, Status::Fail);
    assert!(out.reason.expect("reason").contains("empty ruleset"));
}

#[test]
fn ports_outside_the_allowed_list_fail_and_are_named() {
    let f = facts(
        denying(vec![port("tcp", 22), port("tcp", 443)]),
        denying(vec![port("tcp", 22)]),
    );
    let out = inbound_default_deny(
        &f,
        &policy("[firewall]\nallowed_inbound_ports = [\"22/tcp\"]\n"),
    );
    assert_eq!(out.status, Status::Fail);
    assert_eq!(
        out.evidence["families"]["ipv4"]["not_allowed"],
        json!(["443/tcp"])
    );
    assert_eq!(out.evidence["families"]["ipv6"]["not_allowed"], json!([]));
    let ok = inbound_default_deny(
        &f,
        &policy("[firewall]\nallowed_inbound_ports = [\"22/tcp\", \"400-500/tcp\"]\n"),
    );
    assert_eq!(ok.status, Status::Pass, "{ok:?}");
}

#[test]
fn an_empty_allowed_list_fails_any_open_port_but_not_established_loopback_or_icmp() {
    let mut admitted = ssh_and_established();
    admitted.push(Admission {
        loopback_only: true,
        ..Admission::default()
    });
    admitted.push(Admission {
        protocol: Some("icmp".into()),
        ..Admission::default()
    });
    let f = facts(denying(admitted), denying(Vec::new()));
    let out = inbound_default_deny(&f, &policy("[firewall]\nallowed_inbound_ports = []\n"));
    assert_eq!(out.status, Status::Fail);
    assert_eq!(
        out.evidence["families"]["ipv4"]["not_allowed"],
        json!(["22/tcp"])
    );
    let strict = policy("[firewall]\nallowed_inbound_ports = [\"22/tcp\"]\nallow_icmp = false\n");
    let out = inbound_default_deny(&f, &strict);
    assert_eq!(
        out.evidence["families"]["ipv4"]["not_allowed"],
        json!(["icmp"])
    );
}

#[test]
fn an_unparsed_rule_that_may_accept_fails_even_without_a_port_list() {
    let mut v4 = denying(vec![Admission {
        unparsed: true,
        ..Admission::default()
    }]);
    v4.unparsed_rules.push(UnparsedRule {
        chain: "c".into(),
        rule: "r".into(),
        reason: "xt match foo".into(),
    });
    let out = inbound_default_deny(&facts(v4, denying(Vec::new())), &Policy::default());
    assert_eq!(out.status, Status::Fail);
    assert!(out.reason.expect("reason").contains("cannot parse"));
}

#[test]
fn another_tree_is_not_applicable_with_the_configured_firewalls_as_evidence() {
    let f = FirewallFacts {
        inbound: Observation::not_applicable("reading the tree at /mnt"),
        ufw: Observation::Observed(UfwConfig {
            installed: true,
            enabled: true,
            default_input_policy: Some("DROP".into()),
        }),
        firewalld: Observation::Observed(Default::default()),
    };
    let out = inbound_default_deny(&f, &Policy::default());
    assert_eq!(out.status, Status::NotApplicable);
    assert_eq!(out.evidence["ufw"]["observed"]["enabled"], json!(true));
}

#[test]
fn an_unreadable_ruleset_is_an_error() {
    let f = FirewallFacts {
        inbound: Observation::error("nft: Operation not permitted"),
        ..facts(FamilyVerdict::default(), FamilyVerdict::default())
    };
    assert_eq!(
        inbound_default_deny(&f, &Policy::default()).status,
        Status::Error
    );
}

#[test]
fn malformed_port_specs_and_unknown_keys_are_refused() {
    assert!(Policy::from_toml("[firewall]\nallowed_inbound_ports = [\"22\"]\n").is_err());
    assert!(Policy::from_toml("[firewall]\nallowed_inbound_ports = [\"90-80/tcp\"]\n").is_err());
    assert!(Policy::from_toml("[firewall]\nallowed_ports = []\n").is_err());
    let p = policy("[firewall]\nallowed_inbound_ports = [\"60000-61000/UDP\"]\n");
    assert_eq!(
        p.firewall.allowed_inbound_ports.expect("set")[0].to_string(),
        "60000-61000/udp"
    );
    assert!(FirewallPolicy::default().allowed_inbound_ports.is_none());
}
