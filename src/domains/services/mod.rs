//! The `services` domain: systemd's units through systemd's own D-Bus API (`zbus`), and the
//! journal through `journalctl` (see `journal.rs` for why).
//!
//! Registered only where systemd runs (`/run/systemd/system` under `[host] rootfs`, as
//! `sd_booted()` checks) and `services.enabled`: in a container or under another init there is
//! nothing to ask. The bus is reached on first use and again after it went away.

mod bus;
mod dependencies;
mod jobs;
mod journal;
mod list;
mod protection;
mod status;
mod timers;
mod unit_files;

use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::tool::Registry;

pub(crate) fn register(registry: &mut Registry, config: &Config) {
    if !config.services.enabled || !config.host.rootfs.join("run/systemd/system").is_dir() {
        return;
    }
    let systemd = Arc::new(bus::Systemd::new());
    let journal = Arc::new(journal::Journal {
        directory: config.host.journal.clone(),
    });
    let units = Arc::new(status::Units {
        systemd: Arc::clone(&systemd),
        journal: Arc::clone(&journal),
    });
    let protection = Arc::new(protection::Protection::new(
        &config.services.protected_units,
        protection::own_unit(),
    ));
    registry.register(list::ServiceListTool {
        systemd: Arc::clone(&systemd),
    });
    registry.register(status::ServiceStatusTool {
        units: Arc::clone(&units),
    });
    registry.register(dependencies::ServiceDependenciesTool {
        units: Arc::clone(&units),
    });
    registry.register(timers::TimerListTool {
        systemd: Arc::clone(&systemd),
    });
    registry.register(journal::JournalQueryTool {
        journal: Arc::clone(&journal),
    });
    registry.register(journal::JournalBootsTool { journal });
    // A second below the call's own timeout, so the tool answers "the job still runs".
    let timeout = Duration::from_secs(
        config
            .services
            .job_timeout_seconds
            .get()
            .min(config.limits.call_timeout_seconds.get().saturating_sub(1))
            .max(1),
    );
    for job in jobs::Job::ALL {
        registry.register(jobs::ServiceJobTool {
            units: Arc::clone(&units),
            protection: Arc::clone(&protection),
            job,
            timeout,
        });
    }
    for change in unit_files::FileChange::ALL {
        registry.register(unit_files::UnitFileTool {
            units: Arc::clone(&units),
            protection: Arc::clone(&protection),
            change,
        });
    }
    registry.register(unit_files::DaemonReloadTool { units });
}
