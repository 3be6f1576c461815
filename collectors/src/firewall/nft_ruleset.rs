//! Parses the JSON of `nft -j list ruleset` (libnftables JSON schema 1) into the [`Ruleset`]
//! model: tables, chains (base chains with hook, priority, policy), named sets, and each rule's
//! expressions reduced to the matches and verdict the inbound evaluation needs. Expressions it
//! does not know are kept as `unparsed` reasons, never dropped.

use std::collections::BTreeMap;

use serde_json::Value;

use super::model::BaseChain;
use super::model::{normalise_protocol, Family, Match, Rule, Ruleset, Table, Verdict};
use super::nft_text;

#[path = "nft_values.rs"]
mod nft_values;
use nft_values::{compact, ports, resolve_set, strings, values};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NftError {
    #[error("nft -j list ruleset: not JSON: {0}")]
    NotJson(String),
    #[error("nft -j list ruleset: no top-level \"nftables\" array")]
    NotRuleset,
}

/// The source label of tables read through nft.
pub const SOURCE: &str = "nft";

/// Parses the output of `nft -j list ruleset`.
pub fn parse(bytes: &[u8]) -> Result<Ruleset, NftError> {
    let doc: Value = serde_json::from_slice(bytes).map_err(|e| NftError::NotJson(e.to_string()))?;
    let items = doc
        .get("nftables")
        .and_then(Value::as_array)
        .ok_or(NftError::NotRuleset)?;
    let mut ruleset = Ruleset::default();
    // Named sets by table key, for `@name` lookups.
    let mut sets: BTreeMap<(String, String), Vec<Value>> = BTreeMap::new();
    for item in items {
        if let Some(table) = item.get("table") {
            let (Some(family), Some(name)) = (str_field(table, "family"), str_field(table, "name"))
            else {
                continue;
            };
            table_mut(&mut ruleset, family, name);
        } else if let Some(set) = item.get("set").or_else(|| item.get("map")) {
            let Some((family, table, name)) = in_table(set, "name") else {
                continue;
            };
            let elems = set
                .get("elem")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            sets.insert((table_key(family, table), name.to_string()), elems);
        } else if let Some(chain) = item.get("chain") {
            let Some((family, table, name)) = in_table(chain, "name") else {
                continue;
            };
            let base = str_field(chain, "hook").map(|hook| BaseChain {
                hook: hook.to_string(),
                priority: chain.get("prio").and_then(Value::as_i64).unwrap_or(0),
                policy_accept: str_field(chain, "policy") != Some("drop"),
            });
            table_mut(&mut ruleset, family, table)
                .chains
                .entry(name.to_string())
                .or_default()
                .base = base;
        } else if let Some(rule) = item.get("rule") {
            let Some((family, table, chain)) = in_table(rule, "chain") else {
                continue;
            };
            let key = table_key(family, table);
            let parsed = parse_rule(rule, &|name| {
                sets.get(&(key.clone(), name.to_string())).cloned()
            });
            let table = table_mut(&mut ruleset, family, table);
            table.has_xt |= parsed.unparsed.iter().any(|u| u.starts_with("xt "));
            table
                .chains
                .entry(chain.to_string())
                .or_default()
                .rules
                .push(parsed);
        }
    }
    Ok(ruleset)
}

fn table_key(family: &str, name: &str) -> String {
    format!("{SOURCE} {family} {name}")
}

fn table_mut<'a>(ruleset: &'a mut Ruleset, family: &str, name: &str) -> &'a mut Table {
    ruleset
        .tables
        .entry(table_key(family, name))
        .or_insert_with(|| Table {
            families: families_of(family),
            ..Table::default()
        })
}

fn families_of(family: &str) -> Vec<Family> {
    match family {
        "ip" => vec![Family::Ipv4],
        "ip6" => vec![Family::Ipv6],
        "inet" => vec![Family::Ipv4, Family::Ipv6],
        // arp, bridge, netdev: not on the IP input hook.
        _ => Vec::new(),
    }
}

fn str_field<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

/// The `family` and `table` a set, chain or rule belongs to, and its own `key` (its name, or
/// for a rule its chain); `None` when one is missing.
fn in_table<'a>(value: &'a Value, key: &str) -> Option<(&'a str, &'a str, &'a str)> {
    Some((
        str_field(value, "family")?,
        str_field(value, "table")?,
        str_field(value, key)?,
    ))
}

fn parse_rule(rule: &Value, sets: &dyn Fn(&str) -> Option<Vec<Value>>) -> Rule {
    let mut out = Rule {
        text: rule
            .get("expr")
            .and_then(Value::as_array)
            .map(|exprs| nft_text::render(exprs))
            .unwrap_or_else(|| rule.to_string()),
        ..Rule::default()
    };
    let Some(exprs) = rule.get("expr").and_then(Value::as_array) else {
        out.unparsed.push("rule without expressions".into());
        return out;
    };
    for expr in exprs {
        let Some((kind, body)) = expr.as_object().and_then(|o| o.iter().next()) else {
            out.unparsed.push(format!("expression {expr}"));
            continue;
        };
        match kind.as_str() {
            "match" => parse_match(body, sets, &mut out),
            "accept" => out.verdict = Verdict::Accept,
            "drop" | "reject" => out.verdict = Verdict::Drop,
            "return" => out.verdict = Verdict::Return,
            "continue" => out.verdict = Verdict::Continue,
            "jump" | "goto" => match body.get("target").and_then(Value::as_str) {
                Some(target) if kind == "jump" => out.verdict = Verdict::Jump(target.into()),
                Some(target) => out.verdict = Verdict::Goto(target.into()),
                None => out.verdict = Verdict::Unknown(format!("{kind} {body}")),
            },
            "vmap" => out.verdict = parse_vmap(body, sets, &mut out),
            // Statements that neither match nor decide.
            "counter" | "log" | "mangle" | "set" | "notrack" | "ct helper" | "ct timeout"
            | "ct expectation" | "meter" => {}
            // Statements that restrict which packets go on.
            "limit" | "quota" | "ct count" => out.loose += 1,
            "xt" => {
                let name = body.get("name").and_then(Value::as_str).unwrap_or("?");
                let what = body.get("type").and_then(Value::as_str).unwrap_or("?");
                out.unparsed.push(format!("xt {what} {name}"));
                if what == "target" {
                    out.verdict = Verdict::Unknown(format!("xt target {name}"));
                }
            }
            other => {
                out.unparsed.push(format!("statement {other}"));
                out.verdict = Verdict::Unknown(other.to_string());
            }
        }
    }
    out
}

/// The match a `left` expression and `right` value make, or `None` with the reason recorded.
fn parse_match(body: &Value, sets: &dyn Fn(&str) -> Option<Vec<Value>>, out: &mut Rule) {
    let op = body.get("op").and_then(Value::as_str).unwrap_or("==");
    let (Some(left), Some(right)) = (body.get("left"), body.get("right")) else {
        out.unparsed.push(format!("match {body}"));
        return;
    };
    let right = resolve_set(right, sets);
    match key_match(left, &right, op) {
        Ok(matches) => out.matches.extend(matches),
        // Understood to narrow, in a way the verdict does not model: kept as its text.
        Err(Reason::Loose) => out.matches.push(Match::Condition(nft_text::render(&[
            serde_json::json!({ "match": body }),
        ]))),
        Err(Reason::Unparsed(reason)) => out.unparsed.push(reason),
    }
}

enum Reason {
    Loose,
    Unparsed(String),
}

/// The matches `left op right` makes. Negations and keys the model does not track are `Loose`:
/// the caller keeps them as a textual condition.
fn key_match(left: &Value, right: &Value, op: &str) -> Result<Vec<Match>, Reason> {
    let positive = matches!(op, "==" | "in");
    if let Some(payload) = left.get("payload") {
        let proto = str_field(payload, "protocol").unwrap_or("");
        let field = str_field(payload, "field").unwrap_or("");
        let mut out = Vec::new();
        match proto {
            "ip" => out.push(Match::Family(Family::Ipv4)),
            "ip6" => out.push(Match::Family(Family::Ipv6)),
            "icmp" => out.extend([Match::Family(Family::Ipv4), Match::Protocol("icmp".into())]),
            "icmpv6" => out.extend([
                Match::Family(Family::Ipv6),
                Match::Protocol("icmpv6".into()),
            ]),
            "tcp" | "udp" | "udplite" | "sctp" | "dccp" => out.push(Match::Protocol(proto.into())),
            "th" => {}
            "" => return Err(Reason::Unparsed(format!("raw payload match {left}"))),
            _ => return Err(Reason::Loose),
        }
        if !positive {
            // A negated field still pins the header it reads (family, protocol).
            return if out.is_empty() {
                Err(Reason::Loose)
            } else {
                Ok(out)
            };
        }
        match (proto, field) {
            ("ip", "protocol") | ("ip6", "nexthdr") => {
                let names = strings(right).ok_or_else(|| unparsed_value(left, right))?;
                if names.len() == 1 {
                    out.push(Match::Protocol(normalise_protocol(&names[0])));
                }
            }
            ("ip" | "ip6", "saddr" | "daddr") => out.push(Match::Condition(format!(
                "{proto} {field} {}",
                compact(right)
            ))),
            (_, "dport") => out.push(Match::DestPorts(
                ports(right).ok_or_else(|| unparsed_value(left, right))?,
            )),
            (_, "sport") => out.push(Match::Condition(format!(
                "{proto} sport {}",
                compact(right)
            ))),
            _ => {}
        }
        return Ok(out);
    }
    if let Some(meta) = left.get("meta") {
        let key = str_field(meta, "key").unwrap_or("");
        if !positive {
            return Err(Reason::Loose);
        }
        return match key {
            "l4proto" => {
                let names = strings(right).ok_or_else(|| unparsed_value(left, right))?;
                Ok(if names.len() == 1 {
                    vec![Match::Protocol(normalise_protocol(&names[0]))]
                } else {
                    Vec::new()
                })
            }
            "nfproto" => match right.as_str() {
                Some("ipv4") => Ok(vec![Match::Family(Family::Ipv4)]),
                Some("ipv6") => Ok(vec![Match::Family(Family::Ipv6)]),
                _ => Err(Reason::Loose),
            },
            "iif" | "iifname" => match right.as_str() {
                Some(name) => Ok(vec![Match::InInterface(name.into())]),
                None => Ok(vec![Match::Condition(format!("{key} {}", compact(right)))]),
            },
            _ => Err(Reason::Loose),
        };
    }
    if let Some(ct) = left.get("ct") {
        let key = str_field(ct, "key").unwrap_or("");
        if key == "state" && positive {
            let states = strings(right).ok_or_else(|| unparsed_value(left, right))?;
            return Ok(vec![Match::CtState(states)]);
        }
        return Err(Reason::Loose);
    }
    // fib, socket, rt, exthdr, osf, numgen...: understood to restrict, not modelled.
    if left.is_object() {
        return Err(Reason::Loose);
    }
    Err(Reason::Unparsed(format!("match {left} {op} {right}")))
}

fn unparsed_value(left: &Value, right: &Value) -> Reason {
    Reason::Unparsed(format!("value {right} for {left}"))
}

/// A verdict map: `<key> vmap { value : verdict, ... }`.
fn parse_vmap(body: &Value, sets: &dyn Fn(&str) -> Option<Vec<Value>>, out: &mut Rule) -> Verdict {
    let (Some(key), Some(data)) = (body.get("key"), body.get("data")) else {
        out.unparsed.push(format!("vmap {body}"));
        return Verdict::Unknown("vmap".into());
    };
    let data = resolve_set(data, sets);
    let mut entries = Vec::new();
    for entry in values(&data) {
        let pair = entry.as_array().filter(|p| p.len() == 2);
        let Some(pair) = pair else {
            out.unparsed.push(format!("vmap entry {entry}"));
            return Verdict::Unknown("vmap".into());
        };
        let mut probe = Rule::default();
        parse_rule_verdict(&pair[1], &mut probe);
        match key_match(key, &pair[0], "==") {
            Ok(matches) => entries.push((matches, probe.verdict)),
            Err(_) => {
                out.unparsed.push(format!("vmap key {key}"));
                return Verdict::Unknown("vmap".into());
            }
        }
    }
    Verdict::Map(entries)
}

fn parse_rule_verdict(value: &Value, out: &mut Rule) {
    let wrapped = serde_json::json!({ "expr": [value] });
    *out = parse_rule(&wrapped, &|_| None);
}
