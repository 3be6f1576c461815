//! The `firewall` collector: what inbound packets meet in the live ruleset, per family, plus
//! ufw's and firewalld's configuration state.
//!
//! Live ruleset (only when the host is live; `NotApplicable` under `--root`):
//! - `nft -j list ruleset` ([`nft_ruleset`]): every nftables table, including those iptables-nft
//!   manages. Where such a table holds iptables extensions nft cannot show in JSON (`xt`), the
//!   table is read instead from `iptables-nft-save` / `ip6tables-nft-save` ([`iptables_save`]).
//! - Without nft: `iptables-save` / `ip6tables-save`.
//! - `iptables-legacy-save` / `ip6tables-legacy-save` when installed: legacy tables are
//!   invisible to nft but packets still meet them.
//!
//! [`inbound`] turns the merged ruleset into the verdict. ufw ([`ufw`]) and firewalld
//! ([`firewalld`]) configuration come from the tree's files and are read under `--root` too.

pub mod firewalld;
pub mod inbound;
pub mod iptables_save;
pub mod model;
pub mod nft_ruleset;
pub mod nft_text;
pub mod ufw;

use evidence_protocol::facts::firewall::{InboundFacts, RulesetSource};
use evidence_protocol::facts::FirewallFacts;
use evidence_protocol::{Observation, Platform};

use crate::{caps, Host, RunError, Source};
use model::{Family, Ruleset};

pub const PLATFORMS: &[Platform] = &[Platform::Linux];

/// What the collector reads besides the live ruleset (which comes from `nft` and the
/// `iptables-save` family): ufw's and firewalld's configuration (their whole directories, which
/// `ufw allow` and `firewall-cmd --permanent` rewrite) and the kernel's IPv6 switches.
pub const READS: &[Source] = &[
    Source::Watched("/etc/ufw"),
    Source::Watched(ufw::UFW_DEFAULTS),
    Source::Watched("/etc/firewalld"),
    Source::Watched("/usr/lib/firewalld/zones"),
    Source::Watched("/etc/systemd/system/multi-user.target.wants/firewalld.service"),
    Source::Watched("/etc/systemd/system/sysinit.target.wants/firewalld.service"),
    Source::Polled("/proc/sys/net/ipv4"),
    Source::Polled("/proc/sys/net/ipv6"),
];

/// Observes the host's firewall.
pub fn collect(host: &Host) -> Observation<FirewallFacts> {
    Observation::Observed(FirewallFacts {
        inbound: match host.not_live_reason() {
            Some(reason) => Observation::not_applicable(reason),
            None => live_inbound(host).into(),
        },
        ufw: ufw::collect(host),
        firewalld: firewalld::collect(host),
    })
}

/// Reads the live ruleset from every source and evaluates it.
pub fn live_inbound(host: &Host) -> Result<InboundFacts, String> {
    let mut ruleset = Ruleset::default();
    let mut sources = Vec::new();
    let mut legacy_seen = false;
    match run(host, "nft", &["-j", "list", "ruleset"])? {
        Some(stdout) => {
            let parsed = nft_ruleset::parse(&stdout).map_err(|e| e.to_string())?;
            sources.push(source("nft -j list ruleset", true, &parsed, None));
            ruleset.tables.extend(parsed.tables);
            replace_xt_tables(host, &mut ruleset, &mut sources)?;
        }
        None => {
            sources.push(RulesetSource {
                command: "nft -j list ruleset".into(),
                available: false,
                input_chains: 0,
                note: Some("nft is not installed: native nftables tables cannot be seen".into()),
            });
            let mut any = false;
            for (tool, family) in [
                ("iptables-save", Family::Ipv4),
                ("ip6tables-save", Family::Ipv6),
            ] {
                let Some(stdout) = run(host, tool, &[])? else {
                    sources.push(unavailable(tool));
                    continue;
                };
                any = true;
                let text = utf8(tool, stdout)?;
                let label = variant(&text);
                legacy_seen |= label == "iptables-legacy";
                let parsed = iptables_save::parse(&text, family, label)
                    .map_err(|e| format!("{tool}: {e}"))?;
                sources.push(source(tool, true, &parsed, None));
                ruleset.tables.extend(parsed.tables);
            }
            if !any {
                return Err(
                    "neither nft nor iptables-save is installed: the live ruleset cannot be read"
                        .into(),
                );
            }
        }
    }
    if !legacy_seen {
        for (tool, family) in [
            ("iptables-legacy-save", Family::Ipv4),
            ("ip6tables-legacy-save", Family::Ipv6),
        ] {
            let Some(stdout) = run(host, tool, &[])? else {
                sources.push(unavailable(tool));
                continue;
            };
            let text = utf8(tool, stdout)?;
            let parsed = iptables_save::parse(&text, family, "iptables-legacy")
                .map_err(|e| format!("{tool}: {e}"))?;
            sources.push(source(tool, true, &parsed, None));
            ruleset.tables.extend(parsed.tables);
        }
    }
    Ok(InboundFacts {
        sources,
        ipv6_disabled: ipv6_disabled(host),
        ipv4: inbound::family_verdict(&ruleset, Family::Ipv4),
        ipv6: inbound::family_verdict(&ruleset, Family::Ipv6),
    })
}

/// True only when the kernel positively says IPv6 is off; unknown counts as on.
fn ipv6_disabled(host: &Host) -> bool {
    let flag = |path: &str| {
        host.read_to_string(path, caps::KERNEL_TEXT)
            .map(|t| t.trim() == "1")
    };
    match (
        flag("/proc/sys/net/ipv6/conf/all/disable_ipv6"),
        flag("/proc/sys/net/ipv6/conf/default/disable_ipv6"),
    ) {
        (Ok(all), Ok(default)) => all && default,
        // Booted with ipv6.disable=1: procfs is there but has no IPv6 directory.
        (Err(e), _) if e.is_not_found() => {
            host.is_dir("/proc/sys/net/ipv4") && !host.exists("/proc/sys/net/ipv6")
        }
        _ => false,
    }
}

/// nft shows iptables-nft's extensions only as `xt` placeholders in JSON; the nf_tables variant
/// of iptables-save prints them in full, so those tables are read from it instead.
fn replace_xt_tables(
    host: &Host,
    ruleset: &mut Ruleset,
    sources: &mut Vec<RulesetSource>,
) -> Result<(), String> {
    for (tool, family, fam) in [
        ("iptables-nft-save", Family::Ipv4, "ip"),
        ("ip6tables-nft-save", Family::Ipv6, "ip6"),
    ] {
        let prefix = format!("{} {fam} ", nft_ruleset::SOURCE);
        let xt_tables: Vec<String> = ruleset
            .tables
            .iter()
            .filter(|(key, table)| key.starts_with(&prefix) && table.has_xt)
            .map(|(key, _)| key.clone())
            .collect();
        if xt_tables.is_empty() {
            continue;
        }
        let Some(stdout) = run(host, tool, &[])? else {
            let mut note = unavailable(tool);
            note.note = Some(format!(
                "{} hold iptables extensions nft cannot show; their rules count as unparsed",
                xt_tables.join(", ")
            ));
            sources.push(note);
            continue;
        };
        let text = utf8(tool, stdout)?;
        let parsed = iptables_save::parse(&text, family, "iptables-nft")
            .map_err(|e| format!("{tool}: {e}"))?;
        let mut replaced = Vec::new();
        for key in &xt_tables {
            let name = &key[prefix.len()..];
            if let Some(table) = parsed.tables.get(&format!("iptables-nft {fam} {name}")) {
                ruleset.tables.remove(key);
                ruleset
                    .tables
                    .insert(format!("iptables-nft {fam} {name}"), table.clone());
                replaced.push(key.clone());
            }
        }
        let note = format!(
            "read instead of nft's JSON for {} (iptables extensions)",
            replaced.join(", ")
        );
        sources.push(source(tool, true, &parsed, Some(note)));
    }
    Ok(())
}

/// The tool's stdout; `None` when it is not installed; an error when it fails or hangs.
fn run(host: &Host, program: &str, args: &[&str]) -> Result<Option<Vec<u8>>, String> {
    let line = std::iter::once(program)
        .chain(args.iter().copied())
        .collect::<Vec<_>>()
        .join(" ");
    match host.run(program, args) {
        Ok(out) if out.success() => Ok(Some(out.stdout)),
        Ok(out) => Err(format!(
            "{line} exited with {}: {}",
            out.status
                .map_or("a signal".to_string(), |c| format!("status {c}")),
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(RunError::NotInstalled { .. }) => Ok(None),
        Err(err) => Err(format!("{line}: {err}")),
    }
}

fn utf8(tool: &str, bytes: Vec<u8>) -> Result<String, String> {
    String::from_utf8(bytes).map_err(|_| format!("{tool}: output is not UTF-8 text"))
}

/// Which iptables variant wrote a save file, from its header comment (the nf_tables variant
/// says so; the legacy one of iptables 1.8 does not).
fn variant(text: &str) -> &'static str {
    match text.lines().find(|l| l.starts_with("# Generated by")) {
        Some(l) if l.contains("(nf_tables)") => "iptables-nft",
        Some(_) => "iptables-legacy",
        None => "iptables",
    }
}

fn source(command: &str, available: bool, parsed: &Ruleset, note: Option<String>) -> RulesetSource {
    let input_chains = parsed
        .tables
        .values()
        .flat_map(|t| t.chains.values())
        .filter(|c| c.base.as_ref().is_some_and(|b| b.hook == "input"))
        .count();
    RulesetSource {
        command: command.into(),
        available,
        input_chains: u32::try_from(input_chains).unwrap_or(u32::MAX),
        note,
    }
}

fn unavailable(tool: &str) -> RulesetSource {
    RulesetSource {
        command: tool.into(),
        available: false,
        input_chains: 0,
        note: Some(format!("{tool} is not installed")),
    }
}

#[cfg(test)]
mod tests;
