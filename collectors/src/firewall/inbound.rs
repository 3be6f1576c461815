//! The effective inbound verdict per family, from a parsed [`Ruleset`].
//!
//! nftables semantics: a packet traverses every base chain on the input hook that sees its
//! family (ip/ip6/inet tables, legacy iptables too), by priority; `accept` ends only that chain,
//! a drop anywhere is final. So a family is default-deny when at least one input base chain denies
//! by default (policy drop, or a catch-all drop reached), and traffic gets in only if every such
//! chain admits it: the admitted list is the intersection of the deciding chains' admissions.
//! Jumps and gotos are followed; rules the parsers did not understand admit "possibly anything".

use std::collections::BTreeSet;

use evidence_protocol::facts::firewall::{
    Admission, ChainVerdict, FamilyVerdict, PortRange, UnparsedRule,
};

use super::model::{Family, Match, Rule, Ruleset, Table, Verdict};

/// Chains nested deeper than this are not followed (the rule counts as unparsed).
const MAX_DEPTH: usize = 16;
/// Admission lists are capped so a pathological ruleset cannot blow up the intersection.
const MAX_ADMISSIONS: usize = 512;

/// Evaluates the input hook for one family.
pub fn family_verdict(ruleset: &Ruleset, family: Family) -> FamilyVerdict {
    let mut bases = Vec::new();
    for (key, table) in &ruleset.tables {
        if !table.families.contains(&family) {
            continue;
        }
        for (name, chain) in &table.chains {
            if let Some(base) = chain.base.as_ref().filter(|b| b.hook == "input") {
                bases.push((
                    base.priority,
                    format!("{key} {name}"),
                    key,
                    table,
                    name,
                    base.policy_accept,
                ));
            }
        }
    }
    bases.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));

    let mut verdict = FamilyVerdict::default();
    let mut unparsed = BTreeSet::new();
    let mut deciding: Vec<Vec<Admission>> = Vec::new();
    for (priority, label, key, table, name, policy_accept) in bases {
        let mut eval = Eval {
            key,
            table,
            family,
            unparsed: &mut unparsed,
            returned_some: false,
        };
        let mut admits = Vec::new();
        let end = eval.chain(
            name,
            &Admission::default(),
            Some(policy_accept),
            0,
            &mut admits,
        );
        let (default_deny, reason) = match end {
            End::Deny(reason) => (true, reason),
            End::AcceptAll(rule) => (false, format!("accepts everything: {rule}")),
            End::FallThrough if policy_accept => {
                (false, "policy accept, no final drop".to_string())
            }
            End::FallThrough => (true, "policy drop".to_string()),
        };
        if default_deny {
            verdict.deciding_chains.push(label.clone());
            deciding.push(normalise(admits));
        }
        verdict.chains.push(ChainVerdict {
            chain: label,
            priority,
            policy: if policy_accept { "accept" } else { "drop" }.to_string(),
            default_deny,
            reason,
        });
    }
    verdict.default_deny = !deciding.is_empty();
    if let Some((first, rest)) = deciding.split_first() {
        let mut admitted = first.clone();
        for other in rest {
            let mut next = Vec::new();
            for a in &admitted {
                next.extend(other.iter().filter_map(|b| meet(a, b)));
            }
            admitted = normalise(next);
        }
        verdict.admitted = admitted;
    }
    verdict.unparsed_rules = unparsed.into_iter().collect();
    verdict
}

enum End {
    FallThrough,
    Deny(String),
    AcceptAll(String),
}

struct Eval<'a> {
    key: &'a str,
    table: &'a Table,
    family: Family,
    unparsed: &'a mut BTreeSet<UnparsedRule>,
    /// Set when, in the chain being walked, some packets returned to the caller early.
    returned_some: bool,
}

impl Eval<'_> {
    /// Walks chain `name` for packets described by `ctx`. `base_accepts` is the policy that
    /// applies when the walk falls through (`None` in a jumped-to chain: back to the caller).
    fn chain(
        &mut self,
        name: &str,
        ctx: &Admission,
        base_accepts: Option<bool>,
        depth: usize,
        admits: &mut Vec<Admission>,
    ) -> End {
        let Some(chain) = self.table.chains.get(name) else {
            return End::FallThrough;
        };
        let outer = std::mem::replace(&mut self.returned_some, false);
        let mut end = End::FallThrough;
        for rule in &chain.rules {
            if let Some(found) = self.rule(name, rule, ctx, base_accepts, depth, admits) {
                end = found;
                break;
            }
        }
        // Some packets already went back to the caller: a final drop or accept here only
        // covers the rest, so for the caller the chain is not a catch-all either way.
        if std::mem::replace(&mut self.returned_some, outer) {
            end = End::FallThrough;
        }
        end
    }

    fn rule(
        &mut self,
        chain: &str,
        rule: &Rule,
        ctx: &Admission,
        base_accepts: Option<bool>,
        depth: usize,
        admits: &mut Vec<Admission>,
    ) -> Option<End> {
        let derived = apply_all(ctx, &rule.matches, self.family);
        if derived.is_empty() {
            return None; // cannot match packets of this family in this context
        }
        let may_accept = !matches!(
            rule.verdict,
            Verdict::Drop | Verdict::Return | Verdict::Continue
        );
        if !rule.unparsed.is_empty() {
            self.record(chain, rule, &rule.unparsed.join("; "));
            if may_accept {
                admits.extend(derived.into_iter().map(possibly_anything));
            }
            return None;
        }
        let narrowed = rule.is_narrowed();
        match &rule.verdict {
            Verdict::Continue => None,
            Verdict::Accept => {
                admits.extend(derived);
                (!narrowed).then(|| End::AcceptAll(rule.text.clone()))
            }
            Verdict::Drop => (!narrowed).then(|| End::Deny(format!("final rule: {}", rule.text))),
            Verdict::Return if !narrowed => Some(End::FallThrough),
            Verdict::Return => {
                match base_accepts {
                    Some(true) => admits.extend(derived),
                    Some(false) => {}
                    None => self.returned_some = true,
                }
                None
            }
            Verdict::Jump(target) | Verdict::Goto(target) => {
                let goto = matches!(rule.verdict, Verdict::Goto(_));
                if depth >= MAX_DEPTH || !self.table.chains.contains_key(target) {
                    self.record(chain, rule, &format!("cannot follow to chain {target}"));
                    admits.extend(derived.into_iter().map(possibly_anything));
                    return None;
                }
                let mut ends = Vec::new();
                for d in &derived {
                    let sub_base = if goto { base_accepts } else { None };
                    let end = self.chain(target, d, sub_base, depth + 1, admits);
                    if narrowed && goto && matches!(end, End::FallThrough) {
                        match base_accepts {
                            Some(true) => admits.push(d.clone()),
                            Some(false) => {}
                            None => self.returned_some = true,
                        }
                    }
                    ends.push(end);
                }
                if narrowed {
                    return None;
                }
                match ends.pop()? {
                    End::Deny(reason) => Some(End::Deny(format!("via chain {target}: {reason}"))),
                    End::AcceptAll(text) => {
                        Some(End::AcceptAll(format!("via chain {target}: {text}")))
                    }
                    End::FallThrough if goto => Some(End::FallThrough),
                    End::FallThrough => None,
                }
            }
            Verdict::Map(entries) => {
                for (key, verdict) in entries {
                    let entry = Rule {
                        text: rule.text.clone(),
                        matches: rule.matches.iter().chain(key).cloned().collect(),
                        loose: rule.loose + 1, // every entry is conditional on its key
                        unparsed: Vec::new(),
                        verdict: verdict.clone(),
                    };
                    self.rule(chain, &entry, ctx, base_accepts, depth + 1, admits);
                }
                None
            }
            Verdict::Unknown(what) => {
                self.record(chain, rule, &format!("verdict {what}"));
                admits.extend(derived.into_iter().map(possibly_anything));
                None
            }
        }
    }

    fn record(&mut self, chain: &str, rule: &Rule, reason: &str) {
        self.unparsed.insert(UnparsedRule {
            chain: format!("{} {chain}", self.key),
            rule: rule.text.clone(),
            reason: format!("{reason} (taken to admit possibly anything when it can accept)"),
        });
    }
}

fn possibly_anything(mut admission: Admission) -> Admission {
    admission.unparsed = true;
    admission
}

/// The admissions `ctx` narrowed by every match (several when a port match lists several ranges).
fn apply_all(ctx: &Admission, matches: &[Match], family: Family) -> Vec<Admission> {
    let mut out = vec![ctx.clone()];
    for m in matches {
        let mut next = Vec::new();
        for a in &out {
            next.extend(apply(a, m, family));
        }
        out = next;
    }
    out
}

fn apply(a: &Admission, m: &Match, family: Family) -> Vec<Admission> {
    let with = |change: &dyn Fn(&mut Admission)| {
        let mut b = a.clone();
        change(&mut b);
        vec![b]
    };
    match m {
        Match::Family(f) if *f != family => Vec::new(),
        Match::Family(_) => vec![a.clone()],
        // ICMP belongs to IPv4 and ICMPv6 to IPv6, whatever the table.
        Match::Protocol(p)
            if (p == "icmp" && family == Family::Ipv6)
                || (p == "icmpv6" && family == Family::Ipv4) =>
        {
            Vec::new()
        }
        Match::Protocol(p) => match &a.protocol {
            Some(q) if q != p => Vec::new(),
            _ => with(&|b| b.protocol = Some(p.clone())),
        },
        Match::DestPorts(ranges) => ranges
            .iter()
            .filter_map(|r| {
                let ports = intersect(a.ports, Some(*r))?;
                Some(Admission { ports, ..a.clone() })
            })
            .collect(),
        Match::CtState(states) => {
            let established = states.iter().all(|s| s == "established" || s == "related");
            let new = states.iter().any(|s| s == "new");
            if established {
                with(&|b| b.established_only = true)
            } else if new {
                vec![a.clone()]
            } else {
                with(&|b| add_condition(b, format!("ct state {}", states.join(","))))
            }
        }
        Match::InInterface(name) if name == "lo" => with(&|b| b.loopback_only = true),
        Match::InInterface(name) => with(&|b| add_condition(b, format!("iifname {name}"))),
        Match::Condition(text) => with(&|b| add_condition(b, text.clone())),
    }
}

fn add_condition(a: &mut Admission, text: String) {
    if !a.conditions.contains(&text) {
        a.conditions.push(text);
        a.conditions.sort();
    }
}

/// `Some(None)` = any port; `None` = disjoint.
fn intersect(a: Option<PortRange>, b: Option<PortRange>) -> Option<Option<PortRange>> {
    match (a, b) {
        (None, other) | (other, None) => Some(other),
        (Some(a), Some(b)) => {
            let first = a.first.max(b.first);
            let last = a.last.min(b.last);
            (first <= last).then_some(Some(PortRange { first, last }))
        }
    }
}

/// What both admissions let in, if anything.
fn meet(a: &Admission, b: &Admission) -> Option<Admission> {
    let protocol = match (&a.protocol, &b.protocol) {
        (Some(x), Some(y)) if x != y => return None,
        (Some(x), _) | (_, Some(x)) => Some(x.clone()),
        (None, None) => None,
    };
    let mut out = Admission {
        protocol,
        ports: intersect(a.ports, b.ports)?,
        established_only: a.established_only || b.established_only,
        loopback_only: a.loopback_only || b.loopback_only,
        conditions: a.conditions.clone(),
        unparsed: a.unparsed || b.unparsed,
    };
    for c in &b.conditions {
        add_condition(&mut out, c.clone());
    }
    Some(out)
}

/// True when `a` lets in everything `b` does (same unparsed flag).
fn subsumes(a: &Admission, b: &Admission) -> bool {
    a.unparsed == b.unparsed
        && (a.protocol.is_none() || a.protocol == b.protocol)
        && match (a.ports, b.ports) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(x), Some(y)) => x.first <= y.first && y.last <= x.last,
        }
        && (!a.established_only || b.established_only)
        && (!a.loopback_only || b.loopback_only)
        && a.conditions.iter().all(|c| b.conditions.contains(c))
}

/// Sorted, without duplicates or admissions another one already covers, capped.
fn normalise(mut list: Vec<Admission>) -> Vec<Admission> {
    list.sort();
    list.dedup();
    let mut kept: Vec<Admission> = Vec::new();
    for (i, a) in list.iter().enumerate() {
        let covered = list
            .iter()
            .enumerate()
            .any(|(j, b)| j != i && subsumes(b, a) && (!subsumes(a, b) || j < i));
        if !covered {
            kept.push(a.clone());
        }
        if kept.len() >= MAX_ADMISSIONS {
            break;
        }
    }
    kept
}
