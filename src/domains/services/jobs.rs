//! `service_start`, `service_stop`, `service_restart` and `service_reload`: one systemd job
//! each, waited for (bounded by `services.job_timeout_seconds`), answered with the state before
//! and after. A job that fails answers with the unit's result, exit status and last journal
//! lines. Protected units are never stopped, restarted or reloaded.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::bus::unit_name;
use super::protection::{Action, Protection};
use super::status::{UnitState, Units};
use crate::render;
use crate::tool::{Declaration, Domain, Render, Tool, ToolContext, ToolError};

pub(crate) static SERVICE_START: Declaration = Declaration::operate(
    Domain::Services,
    "service_start",
    "Start a systemd unit",
    "Starts a unit (`systemctl start`) and waits for the job: answers with the state before \
     and after; a start that fails (or a service that fails within half a second of it) \
     answers with the unit's result, exit status and last journal lines. Starting an active \
     unit changes nothing.",
)
.idempotent();

pub(crate) static SERVICE_STOP: Declaration = Declaration::operate(
    Domain::Services,
    "service_stop",
    "Stop a systemd unit",
    "Stops a unit (`systemctl stop`) and waits for the job; answers with the state before and \
     after. Protected units (services.protected_units: ssh, dbus, systemd-*, this server…) \
     are refused for every role.",
)
.idempotent();

pub(crate) static SERVICE_RESTART: Declaration = Declaration::operate(
    Domain::Services,
    "service_restart",
    "Restart a systemd unit",
    "Restarts a unit (`systemctl restart`; starts it when inactive) and waits for the job; \
     answers with the state and main pid before and after. Protected units are refused for \
     every role.",
);

pub(crate) static SERVICE_RELOAD: Declaration = Declaration::operate(
    Domain::Services,
    "service_reload",
    "Reload a systemd unit",
    "Asks a running unit to reload its configuration (`systemctl reload`, the unit's \
     ExecReload) and waits for the job; a unit that cannot reload says so. Protected units \
     are refused for every role.",
)
.idempotent();

/// How long after a start job is done a service that fails at once is caught failing.
const SETTLE: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Job {
    Start,
    Stop,
    Restart,
    Reload,
}

impl Job {
    pub(crate) const ALL: [Job; 4] = [Job::Start, Job::Stop, Job::Restart, Job::Reload];

    fn declaration(self) -> &'static Declaration {
        match self {
            Job::Start => &SERVICE_START,
            Job::Stop => &SERVICE_STOP,
            Job::Restart => &SERVICE_RESTART,
            Job::Reload => &SERVICE_RELOAD,
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Job::Start => "start",
            Job::Stop => "stop",
            Job::Restart => "restart",
            Job::Reload => "reload",
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct JobArguments {
    /// `nginx`, `nginx.service`, `backup.timer`.
    pub unit: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct JobDone {
    pub unit: String,
    /// start, stop, restart or reload.
    pub action: String,
    /// systemd's job result: done (or, for an action with nothing to do, done at once).
    pub job_result: String,
    pub before: UnitState,
    pub after: UnitState,
}

impl Render for JobDone {
    fn render_text(&self) -> String {
        let state = |state: &UnitState| {
            let mut text = format!("{} ({})", state.active_state, state.sub_state);
            if let Some(pid) = state.main_pid {
                text.push_str(&format!(", pid {pid}"));
            }
            text
        };
        format!(
            "{} {}: {}; was {}, now {}",
            self.action,
            render::text(&self.unit),
            self.job_result,
            state(&self.before),
            state(&self.after)
        )
    }
}

pub(crate) struct ServiceJobTool {
    pub units: Arc<Units>,
    pub protection: Arc<Protection>,
    pub job: Job,
    pub timeout: Duration,
}

impl Tool for ServiceJobTool {
    type Arguments = JobArguments;
    type Output = JobDone;

    fn declaration(&self) -> &'static Declaration {
        self.job.declaration()
    }

    async fn run(
        &self,
        arguments: JobArguments,
        context: ToolContext,
    ) -> Result<JobDone, ToolError> {
        let unit = unit_name(&arguments.unit)?;
        let action = match self.job {
            Job::Start => Action::Start,
            Job::Stop => Action::Stop,
            Job::Restart => Action::Restart,
            Job::Reload => Action::Reload,
        };
        self.protection.check(&self.units, &unit, action).await?;
        let path = self.units.path(&unit).await?;
        let before = self.units.state(&path, &unit).await?;
        let systemd = &self.units.systemd;
        let manager = systemd.manager().await?;
        // Signals flow only to subscribers, and the stream must exist before the job does.
        match manager.subscribe().await {
            Ok(()) => {}
            // One subscription per connection serves every call.
            Err(zbus::Error::MethodError(name, _, _))
                if name.as_str() == "org.freedesktop.systemd1.AlreadySubscribed" => {}
            Err(error) => return Err(systemd.explain(error)),
        }
        let mut removed = manager
            .receive_job_removed()
            .await
            .map_err(|error| systemd.explain(error))?;
        let name = unit.clone();
        let mode = "replace".to_string();
        let queued = match self.job {
            Job::Start => manager.start_unit(name, mode).await,
            Job::Stop => manager.stop_unit(name, mode).await,
            Job::Restart => manager.restart_unit(name, mode).await,
            Job::Reload => manager.reload_unit(name, mode).await,
        }
        .map_err(|error| systemd.explain(error))?;
        let wait = async {
            while let Some(signal) = removed.next().await {
                if let Ok(args) = signal.args()
                    && args.job == queued
                {
                    return Some(args.result.clone());
                }
            }
            None
        };
        let job_result = tokio::select! {
            result = tokio::time::timeout(self.timeout, wait) => match result {
                Ok(Some(result)) => result,
                Ok(None) => {
                    systemd.forget();
                    return Err(ToolError::unavailable(
                        "systemd's bus closed while the job ran; ask service_status for the \
                         outcome",
                    ));
                }
                Err(_) => return Err(ToolError::failed(format!(
                    "the {} job of {} did not finish within {} s \
                     (services.job_timeout_seconds); it still runs: ask service_status",
                    self.job.verb(),
                    render::text(&unit),
                    self.timeout.as_secs()
                ))),
            },
            () = context.cancel.cancelled() => return Err(ToolError::failed(
                "the call was cancelled; the job still runs: ask service_status",
            )),
        };
        let mut after = self.units.state(&path, &unit).await?;
        let starts = matches!(self.job, Job::Start | Job::Restart);
        if starts && job_result == "done" && after.active_state == "active" {
            // A simple service's start job is done once it is forked: one that fails at once
            // fails a moment later. Look again after a moment, so that counts as a failed start.
            tokio::time::sleep(SETTLE).await;
            after = self.units.state(&path, &unit).await?;
        }
        // Failed: systemd says so, or the unit is not up and its last run did not succeed (a
        // service restarting in a loop is `activating`; a oneshot that did its work and ended
        // is `inactive` with result `success`, which is no failure).
        let result = if unit.ends_with(".service") {
            systemd
                .properties(&path, "org.freedesktop.systemd1.Service")
                .await
                .ok()
                .and_then(|service| service.some_text("Result"))
        } else {
            None
        };
        let up = matches!(after.active_state.as_str(), "active" | "reloading");
        let failed_start = starts
            && (after.active_state == "failed"
                || (!up && result.as_deref().is_some_and(|result| result != "success")));
        if job_result != "done" || failed_start {
            return Err(self.failure(&unit, &job_result, &before).await);
        }
        Ok(JobDone {
            unit,
            action: self.job.verb().into(),
            job_result,
            before,
            after,
        })
    }
}

impl ServiceJobTool {
    /// Why the job failed, in the unit's own words: its result, exit status and last lines.
    async fn failure(&self, unit: &str, job_result: &str, before: &UnitState) -> ToolError {
        let mut message = format!(
            "{} {} failed (systemd's job: {job_result}); it was {} ({})",
            self.job.verb(),
            render::text(unit),
            before.active_state,
            before.sub_state
        );
        if let Ok(status) = self.units.status(unit, 10).await {
            message.push_str(&format!(
                " and is now {} ({})",
                status.state.active_state, status.state.sub_state
            ));
            if let Some(result) = &status.result {
                message.push_str(&format!("; result {result}"));
            }
            if let (Some(code), Some(exit)) = (&status.exit_code, status.exit_status) {
                message.push_str(&format!(", main process {code} with status {exit}"));
            }
            if !status.journal.is_empty() {
                let lines: Vec<String> = status
                    .journal
                    .iter()
                    .map(|entry| format!("[{}] {}", entry.time, entry.message))
                    .collect();
                message.push_str(&format!(". Last journal lines: {}", lines.join(" | ")));
            }
        }
        ToolError::failed(message)
    }
}
