//! The service's process lifecycle: the signals that stop it (SIGTERM from systemd, SIGINT from
//! a terminal) and the systemd watchdog pings. Readiness (`READY=1`) and `STOPPING=1` are sent by
//! the service loop itself, at the moments they describe.

use sd_notify::NotifyState;
use tokio::sync::watch;

/// Waits for SIGTERM or SIGINT.
pub async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => std::future::pending::<()>().await,
    }
}

/// Pings systemd's watchdog at half its interval while the runtime thread is alive.
pub async fn watchdog(mut stop: watch::Receiver<bool>) {
    let Some(interval) = sd_notify::watchdog_enabled() else {
        return;
    };
    loop {
        let _ = sd_notify::notify(&[NotifyState::Watchdog]);
        tokio::select! {
            _ = tokio::time::sleep(interval / 2) => {}
            _ = stop.changed() => return,
        }
    }
}
