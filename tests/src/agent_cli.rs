//! Running the built `evidence-agent collect --json` from end-to-end tests and reading the
//! report it prints: the facts under `facts.<collector>`, one finding per check under `findings`.

use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use crate::binary;
use crate::debian_tree::run;

/// Path of the built agent; panics with how to build it when it is missing.
pub fn agent() -> PathBuf {
    let agent = binary("evidence-agent");
    assert!(
        agent.exists(),
        "{} is missing: run `cargo build -p evidence-agent` first",
        agent.display()
    );
    agent
}

/// Runs `[prefix...] evidence-agent collect --json [args...]` and parses the report. `prefix`
/// runs the agent under another program (`setpriv ...` to drop root, `ip netns exec NAME`);
/// a failing run panics with the agent's stderr.
pub fn collect_json(prefix: &[&str], args: &[impl AsRef<OsStr>]) -> Value {
    let agent = agent();
    let mut command = match prefix.split_first() {
        Some((program, rest)) => {
            let mut command = Command::new(program);
            command.args(rest).arg(&agent);
            command
        }
        None => Command::new(&agent),
    };
    command.args(["collect", "--json"]).args(args);
    serde_json::from_str(&run(&mut command)).expect("collect --json prints JSON")
}

/// The finding of `check` in a report; panics listing the findings when there is none.
pub fn finding<'a>(report: &'a Value, check: &str) -> &'a Value {
    report["findings"]
        .as_array()
        .expect("findings array")
        .iter()
        .find(|f| f["check"] == check)
        .unwrap_or_else(|| panic!("no {check} finding in {:#}", report["findings"]))
}

/// The status (`pass`, `fail`, `not_applicable`, `error`) of `check`'s finding.
pub fn status(report: &Value, check: &str) -> String {
    let finding = finding(report, check);
    finding["status"]
        .as_str()
        .unwrap_or_else(|| panic!("{check} finding has no status: {finding:#}"))
        .to_string()
}
