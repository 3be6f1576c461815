//! End-to-end: the `firewall` collector inside network namespaces this test creates, each loaded
//! with a real ruleset (nft, iptables-nft, iptables-legacy), read by the real `evidence-agent
//! collect --only firewall --json` run under `ip netns exec`. The nft sources are the ones the
//! collectors crate's recorded fixtures were made from (`collectors/tests/data/firewall/rulesets`).
//!
//! Needs root, nft, ip, iptables, ip6tables, iptables-legacy, sysctl and a built agent
//! (`cargo build -p evidence-agent`).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use evidence_tests::agent_cli::{collect_json, status};
use serde_json::Value;

const TOOLS: &[&str] = &[
    "nft",
    "ip",
    "iptables",
    "ip6tables",
    "iptables-legacy",
    "sysctl",
];

fn ruleset_source(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../collectors/tests/data/firewall/rulesets")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A network namespace, deleted on drop.
struct Netns {
    name: String,
}

impl Netns {
    fn new(tag: &str) -> Self {
        let name = format!("evfw-{tag}-{}", std::process::id());
        let out = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .expect("run ip");
        assert!(
            out.status.success(),
            "ip netns add {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Netns { name }
    }

    fn exec(&self, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(args)
            .output()
            .expect("run ip netns exec")
    }

    fn must(&self, args: &[&str]) {
        let out = self.exec(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn load_nft(&self, source: &str) {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.name, "nft", "-f", "-"])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run nft");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(source.as_bytes())
            .expect("write ruleset");
        let out = child.wait_with_output().expect("wait nft");
        assert!(
            out.status.success(),
            "nft -f: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The agent's JSON report for the firewall collector, with an optional policy file.
    fn collect(&self, policy: Option<&str>) -> Value {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut args = vec!["--only".to_string(), "firewall".into()];
        if let Some(policy) = policy {
            let path = dir.path().join("policy.toml");
            std::fs::write(&path, policy).expect("write policy");
            args.extend(["--policy".into(), path.display().to_string()]);
        }
        collect_json(&["ip", "netns", "exec", &self.name], &args)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

fn inbound(report: &Value) -> &Value {
    let inbound = &report["facts"]["firewall"]["observed"]["inbound"]["observed"];
    assert!(inbound.is_object(), "inbound not observed: {report:#}");
    inbound
}

fn default_deny(report: &Value, family: &str) -> bool {
    inbound(report)[family]["default_deny"]
        .as_bool()
        .expect("default_deny")
}

/// Admitted `port/proto` entries that let new connections in (not established-only, not loopback).
fn exposed(report: &Value, family: &str) -> Vec<String> {
    inbound(report)[family]["admitted"]
        .as_array()
        .expect("admitted")
        .iter()
        .filter(|a| a["established_only"] == false && a["loopback_only"] == false)
        .map(|a| {
            let proto = a["protocol"].as_str().unwrap_or("any");
            match (&a["ports"]["first"], &a["ports"]["last"]) {
                (Value::Number(f), Value::Number(l)) if f == l => format!("{f}/{proto}"),
                (Value::Number(f), Value::Number(l)) => format!("{f}-{l}/{proto}"),
                _ => proto.to_string(),
            }
        })
        .collect()
}

fn finding_status(report: &Value) -> String {
    status(report, "firewall.inbound_default_deny")
}

#[test]
fn empty_namespace_has_no_firewall_and_fails() {
    if !evidence_tests::require("empty_namespace_has_no_firewall_and_fails", true, TOOLS) {
        return;
    }
    let ns = Netns::new("empty");
    let report = ns.collect(None);
    assert!(!default_deny(&report, "ipv4") && !default_deny(&report, "ipv6"));
    assert_eq!(inbound(&report)["ipv4"]["chains"], serde_json::json!([]));
    assert_eq!(finding_status(&report), "fail");
}

#[test]
fn accept_all_ruleset_is_not_default_deny() {
    if !evidence_tests::require("accept_all_ruleset_is_not_default_deny", true, TOOLS) {
        return;
    }
    let ns = Netns::new("acceptall");
    ns.load_nft(&ruleset_source("accept_all.nft"));
    let report = ns.collect(None);
    assert!(!default_deny(&report, "ipv4") && !default_deny(&report, "ipv6"));
    assert_eq!(finding_status(&report), "fail");
}

#[test]
fn inet_default_drop_admits_only_ssh_and_icmp_and_obeys_the_port_policy() {
    if !evidence_tests::require("inet_default_drop_admits_only_ssh", true, TOOLS) {
        return;
    }
    let ns = Netns::new("inetssh");
    ns.load_nft(&ruleset_source("inet_drop_ssh.nft"));
    let report = ns.collect(None);
    assert!(default_deny(&report, "ipv4") && default_deny(&report, "ipv6"));
    assert_eq!(exposed(&report, "ipv4"), ["icmp", "22/tcp"]);
    assert_eq!(exposed(&report, "ipv6"), ["icmpv6", "22/tcp"]);
    assert_eq!(finding_status(&report), "pass");
    let strict = ns.collect(Some("[firewall]\nallowed_inbound_ports = []\n"));
    assert_eq!(finding_status(&strict), "fail");
    let ssh_allowed = ns.collect(Some("[firewall]\nallowed_inbound_ports = [\"22/tcp\"]\n"));
    assert_eq!(finding_status(&ssh_allowed), "pass");
}

#[test]
fn ip_only_drop_leaves_ipv6_open_and_fails() {
    if !evidence_tests::require("ip_only_drop_leaves_ipv6_open", true, TOOLS) {
        return;
    }
    let ns = Netns::new("iponly");
    ns.load_nft(&ruleset_source("ip_only_drop.nft"));
    let report = ns.collect(None);
    assert!(default_deny(&report, "ipv4"));
    assert!(!default_deny(&report, "ipv6"));
    assert_eq!(exposed(&report, "ipv4"), ["22/tcp"]);
    assert_eq!(finding_status(&report), "fail");
    assert_eq!(inbound(&report)["ipv6_disabled"], false);
    // With IPv6 off in the namespace's kernel, the open IPv6 side no longer matters.
    for scope in ["all", "default"] {
        ns.must(&[
            "sysctl",
            "-qw",
            &format!("net.ipv6.conf.{scope}.disable_ipv6=1"),
        ]);
    }
    let report = ns.collect(None);
    assert_eq!(inbound(&report)["ipv6_disabled"], true);
    assert_eq!(finding_status(&report), "pass");
}

#[test]
fn accept_all_chain_does_not_open_what_another_input_chain_drops() {
    if !evidence_tests::require("accept_all_chain_does_not_open", true, TOOLS) {
        return;
    }
    let ns = Netns::new("twochains");
    ns.load_nft(&ruleset_source("two_chains.nft"));
    let report = ns.collect(None);
    for family in ["ipv4", "ipv6"] {
        assert!(default_deny(&report, family));
        assert_eq!(exposed(&report, family), ["443/tcp"]);
        assert_eq!(
            inbound(&report)[family]["deciding_chains"],
            serde_json::json!(["nft inet strict input"])
        );
    }
}

#[test]
fn iptables_nft_rules_in_both_families_are_seen() {
    if !evidence_tests::require("iptables_nft_rules_in_both_families_are_seen", true, TOOLS) {
        return;
    }
    let ns = Netns::new("iptnft");
    for tool in ["iptables", "ip6tables"] {
        ns.must(&[tool, "-P", "INPUT", "DROP"]);
        ns.must(&[
            tool, "-A", "INPUT", "-p", "tcp", "--dport", "22", "-j", "ACCEPT",
        ]);
        ns.must(&[
            tool,
            "-A",
            "INPUT",
            "-m",
            "conntrack",
            "--ctstate",
            "ESTABLISHED,RELATED",
            "-j",
            "ACCEPT",
        ]);
    }
    let report = ns.collect(None);
    for family in ["ipv4", "ipv6"] {
        assert!(default_deny(&report, family));
        assert_eq!(exposed(&report, family), ["22/tcp"], "{family}");
        assert_eq!(
            inbound(&report)[family]["unparsed_rules"],
            serde_json::json!([])
        );
    }
    assert_eq!(finding_status(&report), "pass");
}

#[test]
fn iptables_legacy_rules_invisible_to_nft_are_seen() {
    if !evidence_tests::require(
        "iptables_legacy_rules_invisible_to_nft_are_seen",
        true,
        TOOLS,
    ) {
        return;
    }
    let ns = Netns::new("legacy");
    ns.must(&["iptables-legacy", "-P", "INPUT", "DROP"]);
    ns.must(&[
        "iptables-legacy",
        "-A",
        "INPUT",
        "-p",
        "tcp",
        "--dport",
        "22",
        "-j",
        "ACCEPT",
    ]);
    let report = ns.collect(None);
    assert!(default_deny(&report, "ipv4"));
    assert_eq!(
        inbound(&report)["ipv4"]["deciding_chains"],
        serde_json::json!(["iptables-legacy ip filter INPUT"])
    );
    assert_eq!(exposed(&report, "ipv4"), ["22/tcp"]);
    assert!(!default_deny(&report, "ipv6"));
}

#[test]
fn ufw_enabled_in_a_namespace_is_default_deny_with_its_allowed_port() {
    let mut tools = TOOLS.to_vec();
    tools.push("ufw");
    if !evidence_tests::require("ufw_enabled_in_a_namespace_is_default_deny", true, &tools) {
        return;
    }
    // ufw's configuration is relocated to a scratch root so the host's /etc/ufw is untouched.
    let root = tempfile::tempdir().expect("tempdir");
    let r = root.path();
    for dir in ["etc/default", "lib", "usr/share"] {
        std::fs::create_dir_all(r.join(dir)).expect("mkdir");
    }
    for (from, to) in [
        ("/etc/ufw", "etc/"),
        ("/etc/default/ufw", "etc/default/"),
        ("/lib/ufw", "lib/"),
        ("/usr/share/ufw", "usr/share/"),
    ] {
        let out = Command::new("cp")
            .args(["-a", from])
            .arg(r.join(to))
            .output()
            .expect("cp");
        assert!(
            out.status.success(),
            "cp {from}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::os::unix::fs::symlink("/usr/sbin", r.join("usr/sbin")).expect("symlink");
    let rootdir = format!("--rootdir={}", r.display());
    let datadir = format!("--datadir={}", r.display());
    let ns = Netns::new("ufw");
    ns.must(&["ufw", &rootdir, &datadir, "allow", "22/tcp"]);
    ns.must(&["ufw", &rootdir, &datadir, "--force", "enable"]);
    let report = ns.collect(None);
    for family in ["ipv4", "ipv6"] {
        assert!(default_deny(&report, family), "{family}");
        let open = exposed(&report, family);
        assert!(open.contains(&"22/tcp".to_string()), "{family}: {open:?}");
        assert!(!open.contains(&"any".to_string()), "{family}: {open:?}");
        assert_eq!(
            inbound(&report)[family]["unparsed_rules"],
            serde_json::json!([])
        );
    }
    assert_eq!(finding_status(&report), "pass");
    let strict = ns.collect(Some("[firewall]\nallowed_inbound_ports = [\"22/tcp\"]\n"));
    assert_eq!(
        finding_status(&strict),
        "fail",
        "DHCP and mDNS ports are open too"
    );
}
