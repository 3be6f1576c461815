//! Helpers for the end-to-end tests in `tests/tests/`: locating the built binaries and
//! reporting loudly when a test needs privileges or tools this machine does not give.

use std::path::PathBuf;

pub mod agent_cli;
pub mod debian_tree;

/// Path to a workspace binary built by cargo for this test run (`target/<profile>/<name>`).
pub fn binary(name: &str) -> PathBuf {
    let mut dir = std::env::current_exe().expect("test executable path");
    dir.pop();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir.join(name)
}

/// True when running as root (network namespaces, loop devices, debootstrap need it).
pub fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// True when `program` is on PATH.
pub fn has_tool(program: &str) -> bool {
    std::process::Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Call at the top of a test that needs root and some tools. Under CI (`CI` set) anything
/// missing is a failure; elsewhere the test is skipped with a loud message on stderr.
#[must_use]
pub fn require(test: &str, root: bool, tools: &[&str]) -> bool {
    let mut missing = Vec::new();
    if root && !is_root() {
        missing.push("root".to_string());
    }
    for tool in tools {
        if !has_tool(tool) {
            missing.push(format!("the {tool} tool"));
        }
    }
    if missing.is_empty() {
        return true;
    }
    let what = missing.join(", ");
    if std::env::var_os("CI").is_some() {
        panic!(
            "{test} needs {what}; CI must provide it (.ci/run installs the tools and runs as root)"
        );
    }
    eprintln!("\n*** SKIPPED: {test} needs {what}, which this machine does not give ***\n");
    false
}
