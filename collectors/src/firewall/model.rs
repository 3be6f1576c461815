//! The ruleset model both parsers produce (`nft -j list ruleset` in `nft_ruleset`, `iptables-save`
//! in `iptables_save`) and `inbound` evaluates: tables of chains of rules, each rule reduced to the
//! matches that decide what inbound traffic it concerns and its verdict.

use std::collections::BTreeMap;

use evidence_protocol::facts::firewall::PortRange;

/// An address family as the input hook sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Family {
    Ipv4,
    Ipv6,
}

/// Tables by display key (`nft inet filter`, `iptables-legacy ip6 filter`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ruleset {
    pub tables: BTreeMap<String, Table>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    /// The families whose packets this table sees (`inet` sees both).
    pub families: Vec<Family>,
    pub chains: BTreeMap<String, Chain>,
    /// True when some rule holds an iptables extension (`xt`) nft cannot show in JSON.
    pub has_xt: bool,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Chain {
    /// Set on base chains: where and when the chain is attached.
    pub base: Option<BaseChain>,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BaseChain {
    pub hook: String,
    pub priority: i64,
    /// True for `policy accept`, false for `policy drop`.
    pub policy_accept: bool,
}

/// One rule, reduced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rule {
    /// The rule as the tool printed it (JSON for nft, the `-A` line for iptables).
    pub text: String,
    pub matches: Vec<Match>,
    /// Statements that restrict which packets go on without matching on a header (rate limits,
    /// quotas). A drop carrying one is not a catch-all; for an accept they are ignored, which can
    /// only widen what the rule is taken to admit.
    pub loose: usize,
    /// Expressions not understood at all; a rule with any is reported as unparsed.
    pub unparsed: Vec<String>,
    pub verdict: Verdict,
}

impl Rule {
    /// True when the rule matches only some packets.
    pub fn is_narrowed(&self) -> bool {
        !self.matches.is_empty() || self.loose > 0 || !self.unparsed.is_empty()
    }
}

/// A match the inbound evaluation understands.
#[derive(Debug, Clone, PartialEq)]
pub enum Match {
    /// Only packets of this family (`ip saddr ...`, `meta nfproto ipv6`).
    Family(Family),
    /// Transport protocol, normalised (`tcp`, `udp`, `icmp`, `icmpv6`...).
    Protocol(String),
    /// Destination ports (any of the ranges).
    DestPorts(Vec<PortRange>),
    /// Connection tracking states (lower case).
    CtState(Vec<String>),
    /// Input interface name.
    InInterface(String),
    /// Another narrowing condition, as text (`ip saddr 10.0.0.0/8`, `-m addrtype --dst-type LOCAL`,
    /// negations): carried into the admission's conditions, not interpreted.
    Condition(String),
}

/// What a rule does with the packets it matches.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Verdict {
    /// No verdict (counter, log...): the packet goes on to the next rule.
    #[default]
    Continue,
    Accept,
    /// Drop or reject: final.
    Drop,
    Return,
    Jump(String),
    Goto(String),
    /// A verdict map: each entry is a match on the key and a verdict.
    Map(Vec<(Vec<Match>, Verdict)>),
    /// A verdict the model does not know (queue, an iptables target...): may accept.
    Unknown(String),
}

/// Normalises a transport protocol name or number to one spelling.
pub fn normalise_protocol(name: &str) -> String {
    match name.to_ascii_lowercase().as_str() {
        "6" => "tcp".into(),
        "17" => "udp".into(),
        "1" => "icmp".into(),
        "58" | "ipv6-icmp" | "icmp6" | "icmpv6" => "icmpv6".into(),
        "132" => "sctp".into(),
        "33" => "dccp".into(),
        other => other.into(),
    }
}

/// Parses `22`, `8000:8080` or `8000-8080`.
pub fn parse_port_range(text: &str) -> Option<PortRange> {
    let text = text.trim();
    let (first, last) = match text.split_once([':', '-']) {
        Some((a, b)) => (a, b),
        None => (text, text),
    };
    let first: u16 = if first.is_empty() {
        0
    } else {
        first.parse().ok()?
    };
    let last: u16 = if last.is_empty() {
        u16::MAX
    } else {
        last.parse().ok()?
    };
    (first <= last).then_some(PortRange { first, last })
}
