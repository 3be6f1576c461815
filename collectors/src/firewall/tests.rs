//! The whole collector against real tool output recorded in network namespaces
//! (`collectors/tests/data/firewall/rulesets/`, made by `capture.sh` there), replayed through
//! [`RecordedRunner`], plus property tests of both parsers on arbitrary and truncated bytes.

use std::sync::Arc;

use evidence_protocol::facts::firewall::{Admission, FamilyVerdict, InboundFacts, PortRange};
use evidence_protocol::Observation;

use super::{collect, iptables_save, live_inbound, model::Family, nft_ruleset};
use crate::{CommandOutput, Host, RecordedRunner};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/firewall/rulesets");

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{DATA}/{name}")).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// A live host whose tools print the recorded outputs; the legacy tools print nothing.
fn host_with(nft_json: &str, extra: &[(&str, &str)]) -> Host {
    let mut runner = RecordedRunner::new()
        .with_stdout("nft -j list ruleset", fixture(nft_json))
        .with_stdout("iptables-legacy-save", "")
        .with_stdout("ip6tables-legacy-save", "");
    for (command, file) in extra {
        runner = runner.with_stdout(command, fixture(file));
    }
    Host::new("/", Arc::new(runner))
}

fn inbound(host: &Host) -> InboundFacts {
    live_inbound(host).expect("inbound observed")
}

fn port(protocol: &str, first: u16, last: u16) -> Admission {
    Admission {
        protocol: Some(protocol.into()),
        ports: Some(PortRange { first, last }),
        ..Admission::default()
    }
}

/// The admissions that let new connections in (not established-only, not loopback-only).
fn exposed(verdict: &FamilyVerdict) -> Vec<Admission> {
    verdict
        .admitted
        .iter()
        .filter(|a| !a.established_only && !a.loopback_only)
        .cloned()
        .collect()
}

#[test]
fn empty_ruleset_is_no_firewall_in_either_family() {
    let facts = inbound(&host_with("empty.nft.json", &[]));
    for verdict in [&facts.ipv4, &facts.ipv6] {
        assert!(!verdict.default_deny);
        assert!(verdict.chains.is_empty());
        assert!(verdict.admitted.is_empty());
    }
    assert_eq!(facts.sources[0].command, "nft -j list ruleset");
    assert_eq!(facts.sources[0].input_chains, 0);
}

#[test]
fn accept_all_policy_is_not_default_deny() {
    let facts = inbound(&host_with("accept_all.nft.json", &[]));
    assert!(!facts.ipv4.default_deny && !facts.ipv6.default_deny);
    assert_eq!(facts.ipv4.chains.len(), 1);
    assert_eq!(facts.ipv4.chains[0].reason, "policy accept, no final drop");
}

#[test]
fn inet_drop_policy_admits_ssh_established_loopback_and_icmp_per_family() {
    let facts = inbound(&host_with("inet_drop_ssh.nft.json", &[]));
    assert!(facts.ipv4.default_deny && facts.ipv6.default_deny);
    assert_eq!(facts.ipv4.deciding_chains, ["nft inet filter input"]);
    let icmp = Admission {
        protocol: Some("icmp".into()),
        ..Admission::default()
    };
    let icmpv6 = Admission {
        protocol: Some("icmpv6".into()),
        ..Admission::default()
    };
    assert_eq!(exposed(&facts.ipv4), [icmp, port("tcp", 22, 22)]);
    assert_eq!(exposed(&facts.ipv6), [icmpv6, port("tcp", 22, 22)]);
    assert!(facts
        .ipv4
        .admitted
        .iter()
        .any(|a| a.established_only && a.protocol.is_none()));
    assert!(facts
        .ipv4
        .admitted
        .iter()
        .any(|a| a.loopback_only && a.protocol.is_none()));
    assert!(facts.ipv4.unparsed_rules.is_empty());
}

#[test]
fn ip_only_drop_leaves_ipv6_open() {
    let facts = inbound(&host_with("ip_only_drop.nft.json", &[]));
    assert!(facts.ipv4.default_deny);
    assert_eq!(exposed(&facts.ipv4), [port("tcp", 22, 22)]);
    assert!(!facts.ipv6.default_deny);
    assert!(facts.ipv6.chains.is_empty());
}

#[test]
fn accept_in_one_base_chain_does_not_bypass_a_drop_in_another() {
    let facts = inbound(&host_with("two_chains.nft.json", &[]));
    for verdict in [&facts.ipv4, &facts.ipv6] {
        assert!(verdict.default_deny);
        assert_eq!(verdict.deciding_chains, ["nft inet strict input"]);
        assert_eq!(verdict.admitted, [port("tcp", 443, 443)]);
        assert_eq!(verdict.chains.len(), 2);
        assert!(
            !verdict.chains[0].default_deny,
            "the accept-all chain runs first"
        );
    }
}

#[test]
fn sets_ranges_vmaps_and_jumps_are_followed() {
    let facts = inbound(&host_with("rich.nft.json", &[]));
    let v4 = &facts.ipv4;
    assert!(v4.default_deny, "{v4:?}");
    assert!(
        v4.chains[0].reason.starts_with("final rule:"),
        "{}",
        v4.chains[0].reason
    );
    let from_ten = |p: u16| Admission {
        conditions: vec!["ip saddr 10.0.0.0/8".into()],
        ..port("tcp", p, p)
    };
    assert_eq!(
        exposed(v4),
        [
            port("tcp", 53, 53),
            port("tcp", 80, 80),
            port("tcp", 443, 443),
            from_ten(2222),
            from_ten(8443),
            port("udp", 60000, 61000)
        ]
    );
    assert!(v4.admitted.iter().any(|a| a.established_only));
    let v6 = exposed(&facts.ipv6);
    assert!(
        v6.iter().all(|a| a.conditions.is_empty()),
        "ip saddr rules are IPv4 only: {v6:?}"
    );
    assert!(v6.contains(&Admission {
        protocol: Some("icmpv6".into()),
        ..Admission::default()
    }));
    assert!(
        !v6.iter().any(|a| a.ports
            == Some(PortRange {
                first: 25,
                last: 25
            })),
        "vmap 25 : drop"
    );
}

#[test]
fn gotos_returns_and_conditional_jumps_follow_nftables_semantics() {
    let facts = inbound(&host_with("gotos.nft.json", &[]));
    // inet: 80/tcp via eth9 (goto, then the policy drops the rest), 22/tcp; the return of
    // 8080 meets policy drop; the conditional jump to a drop-all chain ends nothing.
    let web = Admission {
        conditions: vec!["iifname eth9".into()],
        ..port("tcp", 80, 80)
    };
    assert_eq!(facts.ipv6.admitted, [port("tcp", 22, 22), web]);
    assert!(facts.ipv6.default_deny);
    // ip: 9000 returns to policy accept, the rest goes to a chain admitting 22 then dropping;
    // packets must pass both chains, so only 22/tcp gets in.
    assert_eq!(
        facts.ipv4.deciding_chains,
        ["nft inet gotos input", "nft ip policyaccept input"]
    );
    assert_eq!(facts.ipv4.admitted, [port("tcp", 22, 22)]);
    assert!(
        facts.ipv4.chains[1].reason.contains("via chain deny_rest"),
        "{:?}",
        facts.ipv4.chains[1]
    );
}

#[test]
fn iptables_nft_ruleset_is_seen_through_nft_in_both_families() {
    let facts = inbound(&host_with("iptables_nft_ssh.nft.json", &[]));
    assert_eq!(facts.ipv4.deciding_chains, ["nft ip filter INPUT"]);
    assert_eq!(facts.ipv6.deciding_chains, ["nft ip6 filter INPUT"]);
    assert_eq!(facts.ipv4.admitted, [port("tcp", 22, 22)]);
    assert_eq!(facts.ipv6.admitted, [port("tcp", 22, 22)]);
}

#[test]
fn iptables_extensions_are_read_from_iptables_nft_save() {
    let host = host_with(
        "iptables_nft_rich.nft.json",
        &[("iptables-nft-save", "iptables_nft_rich.iptables-save")],
    );
    let facts = inbound(&host);
    let v4 = &facts.ipv4;
    assert_eq!(v4.deciding_chains, ["iptables-nft ip filter INPUT"]);
    assert!(v4.unparsed_rules.is_empty(), "{:?}", v4.unparsed_rules);
    let snmp = Admission {
        conditions: vec!["saddr 192.168.1.0/24".into()],
        ..port("udp", 161, 161)
    };
    let icmp = Admission {
        protocol: Some("icmp".into()),
        ..Admission::default()
    };
    assert_eq!(
        exposed(v4),
        [
            icmp,
            port("tcp", 25, 25),
            port("tcp", 80, 80),
            port("tcp", 443, 443),
            port("tcp", 8000, 8080),
            snmp
        ]
    );
    assert!(v4.admitted.iter().any(|a| a.established_only));
}

#[test]
fn iptables_extensions_without_iptables_nft_save_are_unparsed_and_admit_possibly_anything() {
    let facts = inbound(&host_with("iptables_nft_rich.nft.json", &[]));
    let v4 = &facts.ipv4;
    assert!(v4
        .unparsed_rules
        .iter()
        .any(|r| r.reason.contains("xt match conntrack")));
    assert!(v4
        .admitted
        .iter()
        .any(|a| a.unparsed && !a.established_only && !a.loopback_only));
    let source = facts
        .sources
        .iter()
        .find(|s| s.command == "iptables-nft-save")
        .expect("noted");
    assert!(!source.available);
}

#[test]
fn ufw_rules_behind_a_chain_with_early_returns_and_a_final_drop_still_count() {
    // ufw-before-input jumps to ufw-not-local, which RETURNs local traffic and DROPs the rest:
    // its final drop is not a catch-all, so the user rule admitting 22/tcp further on counts.
    let host = host_with(
        "ufw_enabled.nft.json",
        &[
            ("iptables-nft-save", "ufw_enabled.iptables-save"),
            ("ip6tables-nft-save", "ufw_enabled.ip6tables-save"),
        ],
    );
    let facts = inbound(&host);
    for verdict in [&facts.ipv4, &facts.ipv6] {
        assert!(verdict.default_deny);
        assert!(
            verdict.unparsed_rules.is_empty(),
            "{:?}",
            verdict.unparsed_rules
        );
        let open = exposed(verdict);
        assert!(open.contains(&port("tcp", 22, 22)), "{open:?}");
        assert!(open.iter().any(|a| a.ports
            == Some(PortRange {
                first: 5353,
                last: 5353
            })));
    }
    assert_eq!(facts.ipv4.deciding_chains, ["iptables-nft ip filter INPUT"]);
}

#[test]
fn legacy_tables_invisible_to_nft_are_included() {
    let runner = RecordedRunner::new()
        .with_stdout("nft -j list ruleset", fixture("legacy_ssh.nft.json"))
        .with_stdout(
            "iptables-legacy-save",
            fixture("legacy_ssh.iptables-legacy-save"),
        )
        .with_stdout(
            "ip6tables-legacy-save",
            fixture("legacy_ssh.ip6tables-legacy-save"),
        );
    let facts = inbound(&Host::new("/", Arc::new(runner)));
    assert!(facts.ipv4.default_deny);
    assert_eq!(
        facts.ipv4.deciding_chains,
        ["iptables-legacy ip filter INPUT"]
    );
    assert_eq!(exposed(&facts.ipv4), [port("tcp", 22, 22)]);
    assert!(!facts.ipv6.default_deny);
}

#[test]
fn nft_failure_is_an_error_not_an_empty_ruleset() {
    let runner = RecordedRunner::new().with_result(
        "nft -j list ruleset",
        Ok(CommandOutput {
            status: Some(1),
            stdout: Vec::new(),
            stderr: b"netlink: Error: cache initialization failed: Operation not permitted"
                .to_vec(),
        }),
    );
    let err = live_inbound(&Host::new("/", Arc::new(runner))).expect_err("error");
    assert!(err.contains("Operation not permitted"), "{err}");
}

#[test]
fn no_ruleset_tool_at_all_is_an_error() {
    let err = live_inbound(&Host::new("/", Arc::new(RecordedRunner::new()))).expect_err("error");
    assert!(err.contains("cannot be read"), "{err}");
}

#[test]
fn without_nft_iptables_save_is_read() {
    let runner = RecordedRunner::new()
        .with_stdout("iptables-save", fixture("iptables_nft_ssh.iptables-save"))
        .with_stdout("ip6tables-save", fixture("iptables_nft_ssh.ip6tables-save"));
    let facts = inbound(&Host::new("/", Arc::new(runner)));
    assert_eq!(facts.ipv4.deciding_chains, ["iptables-nft ip filter INPUT"]);
    assert_eq!(facts.ipv6.admitted, [port("tcp", 22, 22)]);
    assert!(facts.sources[0]
        .note
        .as_deref()
        .unwrap_or("")
        .contains("not installed"));
}

#[test]
fn a_tree_under_root_has_no_live_ruleset_but_its_ufw_config_is_read() {
    let tree = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/firewall/trees/ufw_debian_default"
    );
    let host = Host::new(tree, Arc::new(RecordedRunner::new()));
    let Observation::Observed(facts) = collect(&host) else {
        panic!("observed")
    };
    assert!(
        matches!(facts.inbound, Observation::NotApplicable { ref reason } if reason.contains("live kernel state"))
    );
    let ufw = facts.ufw.observed().expect("ufw observed");
    assert!(ufw.installed && !ufw.enabled);
    assert_eq!(facts.firewalld, Observation::Observed(Default::default()));
}

#[test]
fn truncated_outputs_are_errors_not_empty_rulesets() {
    let json = fixture("inet_drop_ssh.nft.json");
    assert!(nft_ruleset::parse(&json[..json.len() / 2]).is_err());
    let save = String::from_utf8(fixture("iptables_nft_rich.iptables-save")).expect("utf8");
    let cut = save.find("COMMIT").expect("commit");
    assert!(iptables_save::parse(&save[..cut], Family::Ipv4, "t").is_err());
}

proptest::proptest! {
    #[test]
    fn nft_parser_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..1024)) {
        if let Ok(ruleset) = nft_ruleset::parse(&bytes) {
            let _ = super::inbound::family_verdict(&ruleset, Family::Ipv4);
        }
    }

    #[test]
    fn iptables_save_parser_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..1024)) {
        let text = String::from_utf8_lossy(&bytes);
        if let Ok(ruleset) = iptables_save::parse(&text, Family::Ipv6, "t") {
            let _ = super::inbound::family_verdict(&ruleset, Family::Ipv6);
        }
    }

    #[test]
    fn parsers_never_panic_on_mutated_real_output(cut in 0usize..4096, flip in 0usize..4096, byte in proptest::num::u8::ANY) {
        for name in ["rich.nft.json", "iptables_nft_rich.nft.json"] {
            let mut json = fixture(name);
            let at = flip % json.len();
            json[at] = byte;
            json.truncate(cut.max(1).min(json.len()));
            if let Ok(ruleset) = nft_ruleset::parse(&json) {
                let _ = super::inbound::family_verdict(&ruleset, Family::Ipv4);
            }
        }
        let mut save = fixture("iptables_nft_rich.iptables-save");
        let at = flip % save.len();
        save[at] = byte;
        let text = String::from_utf8_lossy(&save);
        if let Ok(ruleset) = iptables_save::parse(&text, Family::Ipv4, "t") {
            let _ = super::inbound::family_verdict(&ruleset, Family::Ipv4);
        }
    }
}
