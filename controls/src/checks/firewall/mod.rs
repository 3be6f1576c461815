//! Checks over the `firewall` collector's facts: is inbound traffic denied by default in both
//! address families, and which ports does the live ruleset still admit (against the policy's
//! allowed list when one is set).

use std::fmt;

use evidence_protocol::facts::firewall::{Admission, FamilyVerdict, InboundFacts, PortRange};
use evidence_protocol::facts::FirewallFacts;
use evidence_protocol::Observation;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{Check, Evaluator};
use crate::{Outcome, Policy, Status};

/// Thresholds for the `firewall` checks; every field has a documented default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FirewallPolicy {
    /// Inbound ports that may stay open, as `"22/tcp"`, `"443/tcp"`, `"60000-61000/udp"`.
    /// Default: unset, meaning admitted ports are listed in the evidence but do not fail
    /// `firewall.inbound_default_deny` (which still fails when a family is not default-deny or
    /// an unparsed rule may admit anything). Set it (`[]` for none) to fail on any other port.
    pub allowed_inbound_ports: Option<Vec<PortSpec>>,
    /// Whether ICMP and ICMPv6 admitted to the host are acceptable when
    /// `allowed_inbound_ports` is set. Default: `true` (IPv6 needs ICMPv6 neighbour discovery).
    pub allow_icmp: bool,
}

impl Default for FirewallPolicy {
    fn default() -> Self {
        Self {
            allowed_inbound_ports: None,
            allow_icmp: true,
        }
    }
}

/// `port/protocol` or `first-last/protocol`, e.g. `22/tcp`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PortSpec {
    pub protocol: String,
    pub ports: PortRange,
}

impl TryFrom<String> for PortSpec {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        let invalid =
            || format!("{text:?} is not PORT/PROTOCOL or FIRST-LAST/PROTOCOL (e.g. 22/tcp)");
        let (ports, protocol) = text.split_once('/').ok_or_else(invalid)?;
        let (first, last) = ports.split_once('-').unwrap_or((ports, ports));
        let first: u16 = first.trim().parse().map_err(|_| invalid())?;
        let last: u16 = last.trim().parse().map_err(|_| invalid())?;
        let protocol = protocol.trim().to_ascii_lowercase();
        if first > last || protocol.is_empty() {
            return Err(invalid());
        }
        Ok(PortSpec {
            protocol,
            ports: PortRange { first, last },
        })
    }
}

impl From<PortSpec> for String {
    fn from(spec: PortSpec) -> String {
        spec.to_string()
    }
}

impl fmt::Display for PortSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ports.first == self.ports.last {
            write!(f, "{}/{}", self.ports.first, self.protocol)
        } else {
            write!(
                f,
                "{}-{}/{}",
                self.ports.first, self.ports.last, self.protocol
            )
        }
    }
}

/// Where these checks' links to controls are (data, reviewed with its sources).
pub const MAPPINGS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/data/checks/firewall.toml"
));

/// This collector's section of the policy.
pub type Settings = FirewallPolicy;

/// The `firewall` checks.
pub const CHECKS: &[Check] = &[Check {
    id: "firewall.inbound_default_deny",
    title: "Inbound traffic is denied by default (IPv4 and IPv6) and only allowed ports are open",
    evaluate: Evaluator::Firewall(inbound_default_deny),
}];

fn inbound_default_deny(facts: &FirewallFacts, policy: &Policy) -> Outcome {
    let policy = &policy.firewall;
    let inbound: &InboundFacts = match &facts.inbound {
        Observation::Observed(inbound) => inbound,
        Observation::Error { reason } => return Outcome::error(reason.clone()),
        Observation::NotApplicable { reason } => {
            // The configured firewalls are still worth showing next to the reason.
            return Outcome {
                status: Status::NotApplicable,
                evidence: json!({ "ufw": facts.ufw, "firewalld": facts.firewalld }),
                reason: Some(reason.clone()),
            };
        }
    };
    let mut failures = Vec::new();
    let mut families = serde_json::Map::new();
    for (name, verdict) in [("ipv4", &inbound.ipv4), ("ipv6", &inbound.ipv6)] {
        let (evidence, problems) = judge_family(name, verdict, policy);
        families.insert(name.to_string(), evidence);
        // With IPv6 off in the kernel no IPv6 packet arrives: its verdict is shown, not judged.
        if !(name == "ipv6" && inbound.ipv6_disabled) {
            failures.extend(problems);
        }
    }
    let evidence = json!({
        "families": families,
        "sources": inbound.sources,
        "ipv6_disabled": inbound.ipv6_disabled,
        "allowed_inbound_ports": policy
            .allowed_inbound_ports
            .as_ref()
            .map(|ports| ports.iter().map(PortSpec::to_string).collect::<Vec<_>>()),
    });
    if failures.is_empty() {
        Outcome::pass(evidence)
    } else {
        Outcome::fail(evidence, failures.join("; "))
    }
}

/// One family's evidence and what fails in it.
fn judge_family(
    name: &str,
    verdict: &FamilyVerdict,
    policy: &FirewallPolicy,
) -> (Value, Vec<String>) {
    let mut problems = Vec::new();
    let exposed: Vec<&Admission> = verdict
        .admitted
        .iter()
        .filter(|a| !a.established_only && !a.loopback_only)
        .collect();
    let unparsed_open: Vec<String> = exposed
        .iter()
        .filter(|a| a.unparsed)
        .map(|a| describe(a))
        .collect();
    let not_allowed: Vec<String> = match &policy.allowed_inbound_ports {
        Some(allowed) => exposed
            .iter()
            .filter(|a| !a.unparsed && !is_allowed(a, allowed, policy.allow_icmp))
            .map(|a| describe(a))
            .collect(),
        None => Vec::new(),
    };
    if !verdict.default_deny {
        problems.push(if verdict.chains.is_empty() {
            format!("{name}: no input chain at all (an empty ruleset is no firewall)")
        } else {
            format!("{name}: no input chain denies by default")
        });
    } else {
        if !unparsed_open.is_empty() {
            problems.push(format!(
                "{name}: {} rule(s) the collector cannot parse may admit anything",
                unparsed_open.len()
            ));
        }
        if !not_allowed.is_empty() {
            problems.push(format!(
                "{name}: admits ports the policy does not allow: {}",
                not_allowed.join(", ")
            ));
        }
    }
    let evidence = json!({
        "default_deny": verdict.default_deny,
        "deciding_chains": verdict.deciding_chains,
        "chains": verdict.chains.iter().map(|c| json!({
            "chain": c.chain, "policy": c.policy, "default_deny": c.default_deny, "reason": c.reason,
        })).collect::<Vec<_>>(),
        "admitted": verdict.admitted.iter().map(describe).collect::<Vec<_>>(),
        "not_allowed": not_allowed,
        "unparsed_admissions": unparsed_open,
        "unparsed_rules": verdict.unparsed_rules,
    });
    (evidence, problems)
}

fn is_allowed(admission: &Admission, allowed: &[PortSpec], allow_icmp: bool) -> bool {
    match (admission.protocol.as_deref(), admission.ports) {
        (Some("icmp" | "icmpv6"), _) => allow_icmp,
        (Some(protocol), Some(ports)) => allowed.iter().any(|spec| {
            spec.protocol == protocol
                && spec.ports.first <= ports.first
                && ports.last <= spec.ports.last
        }),
        // Any port, or any protocol: only a full-range allowance covers it.
        (Some(protocol), None) => allowed.iter().any(|spec| {
            spec.protocol == protocol && spec.ports.first == 0 && spec.ports.last == u16::MAX
        }),
        (None, _) => false,
    }
}

/// `22/tcp`, `8000-8080/tcp from ip saddr 10.0.0.0/8`, `all ports/udp`, `any traffic (established/related)`.
fn describe(a: &Admission) -> String {
    let ports = match a.ports {
        Some(PortRange { first, last }) if first == last => first.to_string(),
        Some(PortRange { first, last }) => format!("{first}-{last}"),
        None => "all ports".to_string(),
    };
    let mut text = match (a.protocol.as_deref(), a.ports) {
        (Some(p @ ("icmp" | "icmpv6")), None) => p.to_string(),
        (Some(p), _) => format!("{ports}/{p}"),
        (None, None) => "any traffic".to_string(),
        (None, Some(_)) => format!("{ports}/any protocol"),
    };
    let mut notes = Vec::new();
    if a.established_only {
        notes.push("established/related".to_string());
    }
    if a.loopback_only {
        notes.push("loopback".to_string());
    }
    if a.unparsed {
        notes.push("unparsed rule: possibly anything".to_string());
    }
    if !a.conditions.is_empty() {
        text.push_str(&format!(" when {}", a.conditions.join(" and ")));
    }
    if !notes.is_empty() {
        text.push_str(&format!(" ({})", notes.join(", ")));
    }
    text
}

#[cfg(test)]
mod tests;
