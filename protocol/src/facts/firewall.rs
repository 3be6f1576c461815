//! Facts of the `firewall` collector: the effective inbound verdict of the live ruleset
//! (nftables via `nft -j list ruleset`, iptables-legacy via `iptables-legacy-save`, both
//! families) and the ufw and firewalld configuration read from the tree's files.
//!
//! Filled in by `evidence-collectors::firewall`; read by the `firewall.*` checks.

use serde::{Deserialize, Serialize};

use crate::Observation;

/// What the `firewall` collector observed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirewallFacts {
    /// What inbound packets meet in the running kernel. `NotApplicable` when the agent reads
    /// another tree (`--root`): the live ruleset belongs to the machine running the agent.
    pub inbound: Observation<InboundFacts>,
    /// ufw's configuration files (`/etc/ufw/ufw.conf`, `/etc/default/ufw`).
    pub ufw: Observation<UfwConfig>,
    /// firewalld's configuration files (`/etc/firewalld/firewalld.conf` and the zone files).
    pub firewalld: Observation<FirewalldConfig>,
}

/// The effective inbound policy of the live ruleset, per address family.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboundFacts {
    /// The ruleset sources consulted, in the order read.
    pub sources: Vec<RulesetSource>,
    /// True when the kernel has IPv6 turned off (`ipv6.disable=1`, or `disable_ipv6 = 1` for
    /// both `all` and `default`): no IPv6 packet arrives, whatever the IPv6 verdict says.
    #[serde(default)]
    pub ipv6_disabled: bool,
    pub ipv4: FamilyVerdict,
    pub ipv6: FamilyVerdict,
}

/// One ruleset source: a command and what it gave.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesetSource {
    /// The command line, e.g. `nft -j list ruleset`.
    pub command: String,
    /// False when the tool is not installed (its rules, if any, could not be seen).
    pub available: bool,
    /// Input-hook base chains this source contributed.
    pub input_chains: u32,
    /// Why the source was skipped or what to know about it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// What packets of one family (IPv4 or IPv6) meet on the input hook.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FamilyVerdict {
    /// True when at least one input base chain denies by default (policy drop, or a final
    /// catch-all drop or reject): packets not explicitly admitted are dropped.
    pub default_deny: bool,
    /// Every base chain on the input hook that sees this family, in traversal order.
    pub chains: Vec<ChainVerdict>,
    /// The chains that deny by default (a packet must be admitted by all of them).
    pub deciding_chains: Vec<String>,
    /// What still gets in: admitted by every deciding chain. Empty when not default-deny
    /// (then everything gets in).
    pub admitted: Vec<Admission>,
    /// Rules whose expressions the collector does not understand; each is assumed to admit
    /// possibly anything when it accepts.
    pub unparsed_rules: Vec<UnparsedRule>,
}

/// One input-hook base chain.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainVerdict {
    /// `<source> <family> <table> <chain>`, e.g. `nft inet filter input`.
    pub chain: String,
    /// Hook priority (lower runs first).
    pub priority: i64,
    /// The chain policy: `accept` or `drop`.
    pub policy: String,
    pub default_deny: bool,
    /// Why the chain denies by default (`policy drop`, `final rule: ...`) or why not.
    pub reason: String,
}

/// Traffic an input chain admits: a protocol/port combination under conditions.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Admission {
    /// Transport protocol (`tcp`, `udp`, ...); `None` means any protocol.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// Destination port range; `None` means any port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<PortRange>,
    /// Only packets of established or related connections (no new connection gets in).
    pub established_only: bool,
    /// Only packets arriving on the loopback interface.
    pub loopback_only: bool,
    /// Other narrowing conditions, as text (`ip saddr 10.0.0.0/8`, `iifname eth1`, ...).
    pub conditions: Vec<String>,
    /// True when derived from a rule the collector could not parse: possibly anything.
    pub unparsed: bool,
}

/// An inclusive destination port range (`first == last` for one port).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

/// A rule the collector did not understand.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnparsedRule {
    pub chain: String,
    /// The rule as the tool printed it.
    pub rule: String,
    /// What was not understood.
    pub reason: String,
}

/// ufw's configuration state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UfwConfig {
    /// True when ufw's configuration files exist.
    pub installed: bool,
    /// `ENABLED=yes` in `/etc/ufw/ufw.conf`.
    pub enabled: bool,
    /// `DEFAULT_INPUT_POLICY` from `/etc/default/ufw` (`DROP`, `REJECT`, `ACCEPT`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_input_policy: Option<String>,
}

/// firewalld's configuration state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirewalldConfig {
    /// True when `/etc/firewalld/firewalld.conf` exists.
    pub installed: bool,
    /// True when systemd starts `firewalld.service` at boot (a `*.wants` link exists).
    pub service_enabled: bool,
    /// `DefaultZone` from `firewalld.conf`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_zone: Option<String>,
    /// The default zone's `target` (`default`, `ACCEPT`, `DROP`, `%%REJECT%%`), from
    /// `/etc/firewalld/zones/<zone>.xml` or `/usr/lib/firewalld/zones/<zone>.xml`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_zone_target: Option<String>,
}
