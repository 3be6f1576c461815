//! The patch level of an RPM host, from its tools: `rpm -qa`, `dnf -C check-update` (the
//! metadata cache only, never the network), `dnf -C updateinfo list --security`,
//! `needs-restarting -r` and dnf-automatic's configuration. Under `--root` the tools are
//! pointed at the tree (`rpm --root`, `dnf --installroot`).

use evidence_protocol::facts::patch_level::{
    AutomaticUpdates, IndexRefresh, KernelFacts, PendingUpdate, PendingUpdates, RebootFacts,
};
use evidence_protocol::Observation;

use super::rpm::{self, RpmPackage};
use super::{kernel, newest_mtime, unattended};
use crate::{caps, Host};

/// `rpm -qa` with the query format the parser reads.
pub const QA_FORMAT: &str = "%{NAME}\\t%{EPOCHNUM}:%{VERSION}-%{RELEASE}\\t%{ARCH}\\n";

fn root_args(host: &Host, flag: &str) -> Vec<String> {
    if host.is_live() {
        vec![]
    } else {
        vec![flag.to_string(), host.root().display().to_string()]
    }
}

fn run(host: &Host, program: &str, args: &[String], ok: &[i32]) -> Result<(i32, String), String> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = host.run(program, &args).map_err(|e| e.to_string())?;
    match out.status {
        Some(code) if ok.contains(&code) => Ok((code, out.stdout_lossy())),
        status => Err(format!(
            "{program} {}: exit {status:?}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    }
}

/// Installed packages via `rpm -qa`.
pub fn installed(host: &Host) -> Result<Vec<RpmPackage>, String> {
    let mut args = root_args(host, "--root");
    args.extend([
        "-qa".to_string(),
        "--queryformat".to_string(),
        QA_FORMAT.to_string(),
    ]);
    let (_, text) = run(host, "rpm", &args, &[0])?;
    rpm::parse_rpm_qa(&text).map_err(|e| e.to_string())
}

/// Pending updates via `dnf check-update` and the security advisories.
pub fn pending(host: &Host, packages: &[RpmPackage]) -> Result<PendingUpdates, String> {
    let mut args = root_args(host, "--installroot");
    args.extend(["-q", "-C", "check-update"].map(String::from));
    let (code, text) = run(host, "dnf", &args, &[0, 100])?;
    let updates = if code == 100 {
        rpm::parse_check_update(&text).map_err(|e| e.to_string())?
    } else {
        vec![]
    };
    let mut sec_args = root_args(host, "--installroot");
    sec_args.extend(["-q", "-C", "updateinfo", "list", "--security"].map(String::from));
    let security = if updates.is_empty() {
        Default::default()
    } else {
        rpm::parse_security_updateinfo(&run(host, "dnf", &sec_args, &[0])?.1)
    };
    let mut pending: Vec<PendingUpdate> = updates
        .into_iter()
        .map(|u| {
            let installed_version = packages
                .iter()
                .filter(|p| p.name == u.name && p.arch == u.arch)
                .map(|p| p.evr.clone())
                .max_by(|a, b| rpm::compare_evr(a, b))
                .unwrap_or_default();
            PendingUpdate {
                security: security.contains(&(u.name.clone(), u.arch.clone())),
                name: u.name,
                arch: u.arch,
                installed_version,
                candidate_version: u.evr,
                archives: vec![u.repo],
            }
        })
        .collect();
    pending.sort();
    Ok(PendingUpdates {
        installed_count: packages.len() as u64,
        sources: vec!["dnf check-update".into()],
        pending,
    })
}

/// The running kernel against `kernel-core`/`kernel` packages (live hosts only).
pub fn kernel(host: &Host, packages: &[RpmPackage]) -> Observation<KernelFacts> {
    if let Some(reason) = host.not_live_reason() {
        return Observation::not_applicable(reason);
    }
    let running = match host.read_to_string("/proc/sys/kernel/osrelease", caps::KERNEL_TEXT) {
        Ok(text) => text.trim().to_string(),
        Err(e) => return Observation::error(format!("running kernel: {e}")),
    };
    let installed = packages
        .iter()
        .filter_map(|p| {
            kernel::rpm_kernel_release(&p.name, &p.evr, &p.arch).map(|release| {
                kernel::InstalledKernel {
                    release,
                    package_version: p.evr.clone(),
                }
            })
        })
        .collect();
    match kernel::compare(&running, installed, rpm::compare_evr) {
        Some(facts) => Observation::Observed(facts),
        None => Observation::not_applicable(format!(
            "no kernel package is installed: the running kernel {running} is not managed by rpm"
        )),
    }
}

/// `needs-restarting -r` (exit 1: reboot needed; live hosts only).
pub fn reboot(host: &Host) -> Observation<RebootFacts> {
    if let Some(reason) = host.not_live_reason() {
        return Observation::not_applicable(reason);
    }
    match run(host, "needs-restarting", &["-r".to_string()], &[0, 1]) {
        Ok((code, _)) => Observation::Observed(RebootFacts {
            required: code == 1,
            packages: vec![],
        }),
        Err(e) => Observation::error(format!("cannot tell whether a reboot is pending: {e}")),
    }
}

/// The dnf metadata cache's last refresh.
pub fn index_refresh(host: &Host) -> Observation<IndexRefresh> {
    let paths = [
        "/var/cache/dnf/last_makecache".to_string(),
        "/var/cache/dnf/expired_repos.json".to_string(),
    ];
    newest_mtime(host, &paths).map_or_else(
        || Observation::error("no dnf metadata cache (/var/cache/dnf/last_makecache): the package metadata was never refreshed"),
        Observation::Observed,
    )
}

/// dnf-automatic.
pub fn automatic_updates(host: &Host, packages: &[RpmPackage]) -> AutomaticUpdates {
    let installed = packages.iter().any(|p| p.name == "dnf-automatic");
    let apply = host
        .read_to_string("/etc/dnf/automatic.conf", caps::CONFIG)
        .ok()
        .and_then(|t| unattended::dnf_apply_updates(&t));
    let wants = "/etc/systemd/system/timers.target.wants";
    let timer = host.exists(&format!("{wants}/dnf-automatic.timer"));
    let install_timer = host.exists(&format!("{wants}/dnf-automatic-install.timer"));
    unattended::dnf(installed, apply, timer, install_timer)
}
