//! Tells systemd's service manager how the server is doing (the sd_notify(3) protocol), when it
//! runs as a `Type=notify` unit (`packaging/systemmanager.service`): `READY=1` once every
//! listener is bound, so the unit is `active` only when clients can connect; `WATCHDOG=1` from
//! the async runtime at half the unit's `WatchdogSec=`, so a frozen or wedged server misses its
//! pings and systemd restarts it; `STOPPING=1` when shutdown begins. Outside systemd
//! (`$NOTIFY_SOCKET` unset) each is a no-op.

use sd_notify::NotifyState;
use tokio_util::sync::CancellationToken;

/// Sends `READY=1` with a one-line `STATUS=` (shown by `systemctl status`).
pub(crate) fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// Sends `STOPPING=1`: systemd shows the unit as deactivating while calls drain.
pub(crate) fn stopping() {
    send(&[
        NotifyState::Stopping,
        NotifyState::Status("finishing calls in flight"),
    ]);
}

/// When the unit set `WatchdogSec=` (`$WATCHDOG_USEC` for this process), pings at half that
/// interval from a task on the runtime until `stop` is cancelled. A task rather than a thread:
/// a runtime whose workers are all stuck stops pinging, which is what the watchdog is for.
pub(crate) fn spawn_watchdog(stop: CancellationToken) {
    let Some(interval) = sd_notify::watchdog_enabled() else {
        return;
    };
    let period = interval / 2;
    tracing::info!(
        watchdog_seconds = interval.as_secs_f64(),
        "systemd watchdog: pinging every {:.1} s",
        period.as_secs_f64()
    );
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = ticks.tick() => send(&[NotifyState::Watchdog]),
            }
        }
    });
}

fn send(states: &[NotifyState]) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    if let Err(error) = sd_notify::notify(states) {
        tracing::warn!(%error, "cannot notify systemd");
    }
}
