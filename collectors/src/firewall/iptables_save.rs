//! Parses `iptables-save` / `ip6tables-save` output (legacy or nf_tables variant) into the
//! [`Ruleset`] model: `*table` sections, `:CHAIN POLICY [counters]` lines and `-A CHAIN ...` rules.
//! Every built-in `INPUT` chain is a base chain on the input hook at its table's priority. Match
//! modules it does not know make the rule unparsed, never ignored.

use std::collections::BTreeMap;

use super::model::{
    normalise_protocol, parse_port_range, BaseChain, Chain, Family, Match, Rule, Ruleset, Table,
    Verdict,
};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SaveError {
    #[error("line {line}: {message}")]
    Syntax { line: usize, message: String },
}

/// Hook priorities of the iptables tables that have an INPUT chain.
fn input_priority(table: &str) -> Option<i64> {
    match table {
        "mangle" => Some(-150),
        "filter" => Some(0),
        "security" => Some(50),
        "nat" => Some(100),
        _ => None,
    }
}

/// Modules that restrict packets in ways the model does not track (kept as textual conditions).
#[rustfmt::skip]
const LOOSE_MODULES: &[&str] = &[
    "limit", "hashlimit", "recent", "addrtype", "mark", "connmark", "owner", "pkttype", "length",
    "ttl", "hl", "tos", "dscp", "time", "statistic", "connlimit", "rpfilter", "physdev", "socket",
    "string", "u32", "bpf", "helper", "rt", "frag", "ipv6header", "ah", "esp", "policy",
    "devgroup", "quota", "connbytes", "nfacct", "cpu", "cgroup", "ecn", "realm", "cluster", "icmp",
    "icmp6", "icmpv6", "hbh", "dst", "mh", "tcpmss", "connlabel", "ipvs", "osf", "l2tp",
];

/// Targets that do not end the chain.
#[rustfmt::skip]
const CONTINUE_TARGETS: &[&str] = &[
    "LOG", "NFLOG", "ULOG", "MARK", "CONNMARK", "CT", "NOTRACK", "TRACE", "AUDIT", "CLASSIFY",
    "TCPMSS", "DSCP", "TOS", "TTL", "HL", "SET", "CHECKSUM", "CONNSECMARK", "SECMARK", "IDLETIMER",
    "LED", "RATEEST",
];

/// Parses one save file; `source` labels its tables (`iptables-legacy`, `iptables-nft`).
pub fn parse(text: &str, family: Family, source: &str) -> Result<Ruleset, SaveError> {
    let fam = match family {
        Family::Ipv4 => "ip",
        Family::Ipv6 => "ip6",
    };
    let mut ruleset = Ruleset::default();
    let mut current: Option<(String, Table)> = None;
    for (index, raw) in text.lines().enumerate() {
        let line_no = index + 1;
        let line = raw.trim();
        let syntax = |message: &str| SaveError::Syntax {
            line: line_no,
            message: message.into(),
        };
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix('*') {
            if current.is_some() {
                return Err(syntax("table opened before COMMIT"));
            }
            let table = Table {
                families: vec![family],
                ..Table::default()
            };
            current = Some((name.to_string(), table));
        } else if line == "COMMIT" {
            let (name, table) = current
                .take()
                .ok_or_else(|| syntax("COMMIT outside a table"))?;
            ruleset
                .tables
                .insert(format!("{source} {fam} {name}"), table);
        } else if let Some(decl) = line.strip_prefix(':') {
            let (name, table) = current
                .as_mut()
                .ok_or_else(|| syntax("chain outside a table"))?;
            let mut parts = decl.split_whitespace();
            let chain = parts.next().ok_or_else(|| syntax("chain without a name"))?;
            let policy = parts
                .next()
                .ok_or_else(|| syntax("chain without a policy"))?;
            let base = match (chain, input_priority(name), policy) {
                (_, _, "-") => None,
                ("INPUT", Some(priority), "ACCEPT" | "DROP") => Some(BaseChain {
                    hook: "input".into(),
                    priority,
                    policy_accept: policy == "ACCEPT",
                }),
                (_, _, "ACCEPT" | "DROP") => Some(BaseChain {
                    hook: chain.to_ascii_lowercase(),
                    priority: input_priority(name).unwrap_or(0),
                    policy_accept: policy == "ACCEPT",
                }),
                _ => return Err(syntax("unknown chain policy")),
            };
            table.chains.insert(
                chain.to_string(),
                Chain {
                    base,
                    rules: Vec::new(),
                },
            );
        } else if let Some(rest) = line.strip_prefix("-A ") {
            let (_, table) = current
                .as_mut()
                .ok_or_else(|| syntax("rule outside a table"))?;
            let tokens = tokenize(rest).ok_or_else(|| syntax("unbalanced quotes"))?;
            let (chain, args) = tokens
                .split_first()
                .ok_or_else(|| syntax("rule without a chain"))?;
            let rule = parse_rule(line, args, &table.chains);
            table
                .chains
                .entry(chain.clone())
                .or_default()
                .rules
                .push(rule);
        } else {
            return Err(syntax("unrecognised line"));
        }
    }
    if current.is_some() {
        return Err(SaveError::Syntax {
            line: text.lines().count(),
            message: "missing COMMIT (truncated output?)".into(),
        });
    }
    Ok(ruleset)
}

/// Splits on whitespace, honouring double quotes with backslash escapes.
fn tokenize(text: &str) -> Option<Vec<String>> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut in_token = false;
    let mut quoted = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' if quoted => current.push(chars.next()?),
            '"' => {
                quoted = !quoted;
                in_token = true;
            }
            c if c.is_whitespace() && !quoted => {
                if in_token {
                    tokens.push(std::mem::take(&mut current));
                    in_token = false;
                }
            }
            c => {
                current.push(c);
                in_token = true;
            }
        }
    }
    if quoted {
        return None;
    }
    if in_token {
        tokens.push(current);
    }
    Some(tokens)
}

fn parse_rule(line: &str, args: &[String], chains: &BTreeMap<String, Chain>) -> Rule {
    let mut rule = Rule {
        text: line.to_string(),
        ..Rule::default()
    };
    let mut module = String::new();
    let mut negate = false;
    let mut i = 0;
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or("");
    while i < args.len() {
        let token = arg(i);
        i += 1;
        if token == "!" {
            negate = true;
            continue;
        }
        let was_negated = std::mem::take(&mut negate);
        match token {
            "-p" | "--protocol" => {
                let proto = normalise_protocol(arg(i));
                i += 1;
                if was_negated {
                    rule.matches.push(Match::Condition(format!("! -p {proto}")));
                } else if proto != "all" && proto != "0" {
                    rule.matches.push(Match::Protocol(proto));
                }
            }
            "-s" | "--source" | "-d" | "--destination" => {
                let what = if token.starts_with("-s") || token == "--source" {
                    "saddr"
                } else {
                    "daddr"
                };
                let value = arg(i);
                i += 1;
                if was_negated {
                    rule.matches
                        .push(Match::Condition(format!("not {what} {value}")));
                } else {
                    rule.matches
                        .push(Match::Condition(format!("{what} {value}")));
                }
            }
            "-i" | "--in-interface" => {
                let name = arg(i).to_string();
                i += 1;
                if was_negated {
                    rule.matches.push(Match::Condition(format!("! -i {name}")));
                } else {
                    rule.matches.push(Match::InInterface(name));
                }
            }
            "-o" | "--out-interface" => {
                let neg = if was_negated { "! " } else { "" };
                rule.matches
                    .push(Match::Condition(format!("{neg}-o {}", arg(i))));
                i += 1;
            }
            "-f" | "--fragment" => {
                let neg = if was_negated { "! " } else { "" };
                rule.matches.push(Match::Condition(format!("{neg}-f")));
            }
            "-m" | "--match" => {
                module = arg(i).to_string();
                i += 1;
                let known = matches!(
                    module.as_str(),
                    "tcp"
                        | "udp"
                        | "udplite"
                        | "sctp"
                        | "dccp"
                        | "multiport"
                        | "conntrack"
                        | "state"
                        | "comment"
                        | "iprange"
                        | "set"
                        | "mac"
                );
                if !known && !LOOSE_MODULES.contains(&module.as_str()) {
                    rule.unparsed.push(format!("match module {module}"));
                }
            }
            "-j" | "--jump" | "-g" | "--goto" => {
                let target = arg(i).to_string();
                let goto = token == "-g" || token == "--goto";
                rule.verdict = target_verdict(&target, goto, chains, &mut rule.unparsed);
                // Target options follow; none of them changes what the rule matches.
                break;
            }
            option if option.starts_with("--") => {
                let mut values = Vec::new();
                while i < args.len() && !arg(i).starts_with('-') && arg(i) != "!" {
                    values.push(arg(i).to_string());
                    i += 1;
                }
                module_option(&module, option, &values, was_negated, &mut rule);
            }
            other => rule.unparsed.push(format!("option {other}")),
        }
    }
    rule
}

fn module_option(module: &str, option: &str, values: &[String], negated: bool, rule: &mut Rule) {
    let value = values.first().map(String::as_str).unwrap_or("");
    // Understood to narrow, in a way the verdict does not model: kept as its text.
    let as_text = || {
        let neg = if negated { "! " } else { "" };
        Match::Condition(
            format!("-m {module} {neg}{option} {}", values.join(" "))
                .trim_end()
                .to_string(),
        )
    };
    if negated {
        if module != "comment" {
            rule.matches.push(as_text());
        }
        return;
    }
    match (module, option) {
        ("tcp" | "udp" | "udplite" | "sctp" | "dccp", "--dport" | "--destination-port")
        | ("multiport", "--dports" | "--destination-ports") => {
            let ranges: Option<Vec<_>> = value.split(',').map(parse_port_range).collect();
            match ranges {
                Some(ranges) => rule.matches.push(Match::DestPorts(ranges)),
                None => rule.unparsed.push(format!("{option} {value}")),
            }
        }
        ("tcp" | "udp" | "udplite" | "sctp" | "dccp", "--sport" | "--source-port")
        | ("multiport", "--sports" | "--source-ports") => rule
            .matches
            .push(Match::Condition(format!("sport {value}"))),
        ("conntrack", "--ctstate") | ("state", "--state") => rule.matches.push(Match::CtState(
            value.split(',').map(str::to_ascii_lowercase).collect(),
        )),
        ("comment", _) => {}
        ("iprange" | "set" | "mac", _) => rule
            .matches
            .push(Match::Condition(format!("{option} {}", values.join(" ")))),
        ("tcp" | "udp" | "udplite" | "sctp" | "dccp" | "multiport" | "conntrack" | "state", _) => {
            rule.matches.push(as_text())
        }
        (m, _) if LOOSE_MODULES.contains(&m) => rule.matches.push(as_text()),
        // The unknown module was already reported when it was loaded.
        _ => {}
    }
}

fn target_verdict(
    target: &str,
    goto: bool,
    chains: &BTreeMap<String, Chain>,
    unparsed: &mut Vec<String>,
) -> Verdict {
    match target {
        "ACCEPT" => Verdict::Accept,
        "DROP" | "REJECT" => Verdict::Drop,
        "RETURN" => Verdict::Return,
        t if chains.contains_key(t) && goto => Verdict::Goto(t.into()),
        t if chains.contains_key(t) => Verdict::Jump(t.into()),
        t if CONTINUE_TARGETS.contains(&t) => Verdict::Continue,
        other => {
            unparsed.push(format!("target {other}"));
            Verdict::Unknown(other.into())
        }
    }
}
