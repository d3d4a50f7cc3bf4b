//! `service_status`: one unit as `systemctl status` shows it, from its properties, with its last
//! journal lines.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::bus::{Properties, Systemd, UNIT_INTERFACE, type_interface, unit_name};
use super::journal::{Journal, JournalEntry};
use crate::render;
use crate::tool::{Declaration, Domain, Render, Tool, ToolContext, ToolError};

pub(crate) static SERVICE_STATUS: Declaration = Declaration::read(
    Domain::Services,
    "service_status",
    "systemd unit status",
    "One unit in depth, like `systemctl status`: active and sub state and since when, main \
     pid, restarts (NRestarts), the result and exit status of its last run, memory, CPU time \
     and tasks, the unit file and drop-ins, whether it is enabled (enabled, disabled, static, \
     masked), what triggers it, and its last journal lines (lines, default 10, at most 100). \
     A name without a type is a service (`nginx` is nginx.service).",
);

const DEFAULT_LINES: u64 = 10;
const MAX_LINES: u64 = 100;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct StatusArguments {
    /// `nginx`, `nginx.service`, `logrotate.timer`.
    pub unit: String,
    /// Journal lines to show (default 10, at most 100; 0 for none).
    pub lines: Option<u64>,
}

/// A unit's state, as the operate tools report it before and after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub(crate) struct UnitState {
    /// active, reloading, inactive, failed, activating, deactivating.
    pub active_state: String,
    pub sub_state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub main_pid: Option<u32>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct UnitStatus {
    pub unit: String,
    pub description: String,
    /// loaded, not-found, bad-setting, error, masked.
    pub load_state: String,
    #[serde(flatten)]
    pub state: UnitState,
    /// When the unit entered its current active state (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// enabled, disabled, static, masked, indirect, generated, transient, …
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit_file_state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit_file: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub drop_ins: Vec<String>,
    /// Units that start this one (a timer, a socket, a path).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub triggered_by: Vec<String>,
    /// How many times systemd restarted the service (`NRestarts`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restarts: Option<u64>,
    /// The result of the last run: success, exit-code, signal, core-dump, timeout, …
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// How the main process ended: exited, killed or dumped (`ExecMainCode`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<String>,
    /// Its exit status, or the signal that killed it (`ExecMainStatus`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_status: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
    /// Seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tasks: Option<u64>,
    /// The unit's last journal lines, oldest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub journal: Vec<JournalEntry>,
}

impl Render for UnitStatus {
    fn render_text(&self) -> String {
        let mut lines = vec![format!(
            "{} - {}",
            render::text(&self.unit),
            render::text(&self.description)
        )];
        let mut loaded = format!("loaded: {}", self.load_state);
        if let Some(file) = &self.unit_file {
            loaded.push_str(&format!(" ({})", render::text(file)));
        }
        if let Some(state) = &self.unit_file_state {
            loaded.push_str(&format!("; {state}"));
        }
        lines.push(loaded);
        let mut active = format!(
            "active: {} ({})",
            self.state.active_state, self.state.sub_state
        );
        if let Some(since) = &self.since {
            active.push_str(&format!(" since {since}"));
        }
        lines.push(active);
        if let Some(pid) = self.state.main_pid {
            lines.push(format!("main pid: {pid}"));
        }
        if let Some(result) = &self.result {
            let mut last = format!("last run: {result}");
            if let (Some(code), Some(status)) = (&self.exit_code, self.exit_status) {
                last.push_str(&format!(", {code} with status {status}"));
            }
            if let Some(restarts) = self.restarts {
                last.push_str(&format!(
                    "; {}",
                    render::count(restarts, "restart", "restarts")
                ));
            }
            lines.push(last);
        }
        let mut usage = Vec::new();
        if let Some(tasks) = self.tasks {
            usage.push(render::count(tasks, "task", "tasks"));
        }
        if let Some(memory) = self.memory_bytes {
            usage.push(format!("memory {}", render::bytes(memory)));
        }
        if let Some(cpu) = self.cpu_seconds {
            usage.push(format!("cpu {cpu:.2} s"));
        }
        if !usage.is_empty() {
            lines.push(usage.join(", "));
        }
        if !self.triggered_by.is_empty() {
            lines.push(format!(
                "triggered by: {}",
                render::join(&self.triggered_by, ", ")
            ));
        }
        for drop_in in &self.drop_ins {
            lines.push(format!("drop-in: {}", render::text(drop_in)));
        }
        for entry in &self.journal {
            // Journal fields are already escaped (see journal.rs).
            lines.push(format!(
                "{} {}: {}",
                entry.time,
                entry.identifier.as_deref().unwrap_or_default(),
                entry.message
            ));
        }
        lines.join("\n")
    }
}

/// Reads units' state and status from systemd.
pub(crate) struct Units {
    pub systemd: Arc<Systemd>,
    pub journal: Arc<Journal>,
}

impl Units {
    /// The unit's bus object, loading its unit file when systemd has not yet; a unit with no
    /// file is not found.
    pub(crate) async fn path(&self, unit: &str) -> Result<zbus::OwnedObjectPath, ToolError> {
        let manager = self.systemd.manager().await?;
        let path = manager
            .load_unit(unit.to_string())
            .await
            .map_err(|error| self.systemd.explain(error))?;
        let properties = self.systemd.properties(&path, UNIT_INTERFACE).await?;
        if properties.text("LoadState") == "not-found" {
            return Err(ToolError::not_found(format!(
                "no unit {}: systemd has no unit file for it (service_list with all: true \
                 lists the units there are)",
                render::text(unit)
            )));
        }
        Ok(path)
    }

    /// Active and sub state and main pid, now.
    pub(crate) async fn state(
        &self,
        path: &zbus::OwnedObjectPath,
        unit: &str,
    ) -> Result<UnitState, ToolError> {
        let properties = self.systemd.properties(path, UNIT_INTERFACE).await?;
        let main_pid = match type_interface(unit) {
            Some(interface) if unit.ends_with(".service") => self
                .systemd
                .properties(path, interface)
                .await?
                .number("MainPID")
                .and_then(|pid| u32::try_from(pid).ok())
                .filter(|pid| *pid > 0),
            _ => None,
        };
        Ok(UnitState {
            active_state: properties.text("ActiveState"),
            sub_state: properties.text("SubState"),
            main_pid,
        })
    }

    pub(crate) async fn status(&self, unit: &str, lines: u64) -> Result<UnitStatus, ToolError> {
        let path = self.path(unit).await?;
        let properties = self.systemd.properties(&path, UNIT_INTERFACE).await?;
        let typed = match type_interface(unit) {
            Some(interface) => Some(self.systemd.properties(&path, interface).await?),
            None => None,
        };
        let typed_number = |name: &str| typed.as_ref().and_then(|p: &Properties| p.number(name));
        let service = unit.ends_with(".service");
        let journal = if lines > 0 {
            self.journal.last_lines(unit, lines).await
        } else {
            Vec::new()
        };
        let since_field = match properties.text("ActiveState").as_str() {
            "active" | "reloading" => "ActiveEnterTimestamp",
            "inactive" | "failed" => "InactiveEnterTimestamp",
            _ => "StateChangeTimestamp",
        };
        Ok(UnitStatus {
            unit: properties
                .some_text("Id")
                .unwrap_or_else(|| unit.to_string()),
            description: properties.text("Description"),
            load_state: properties.text("LoadState"),
            state: UnitState {
                active_state: properties.text("ActiveState"),
                sub_state: properties.text("SubState"),
                main_pid: typed_number("MainPID")
                    .and_then(|pid| u32::try_from(pid).ok())
                    .filter(|pid| *pid > 0),
            },
            since: properties.time(since_field),
            unit_file_state: properties.some_text("UnitFileState"),
            unit_file: properties.some_text("FragmentPath"),
            drop_ins: properties.list("DropInPaths"),
            triggered_by: properties.list("TriggeredBy"),
            restarts: service.then(|| typed_number("NRestarts")).flatten(),
            result: typed.as_ref().and_then(|p| p.some_text("Result")),
            exit_code: typed
                .as_ref()
                .and_then(|p| match p.signed("ExecMainCode")? {
                    1 => Some("exited".to_string()),
                    2 => Some("killed".to_string()),
                    3 => Some("dumped".to_string()),
                    _ => None,
                }),
            exit_status: typed
                .as_ref()
                .filter(|p| p.signed("ExecMainCode").is_some_and(|code| code > 0))
                .and_then(|p| p.signed("ExecMainStatus")),
            memory_bytes: typed_number("MemoryCurrent"),
            cpu_seconds: typed_number("CPUUsageNSec")
                .map(|nanos| (nanos as f64 / 1e7).round() / 100.0),
            tasks: typed_number("TasksCurrent"),
            journal,
        })
    }
}

pub(crate) struct ServiceStatusTool {
    pub units: Arc<Units>,
}

impl Tool for ServiceStatusTool {
    type Arguments = StatusArguments;
    type Output = UnitStatus;

    fn declaration(&self) -> &'static Declaration {
        &SERVICE_STATUS
    }

    async fn run(
        &self,
        arguments: StatusArguments,
        _: ToolContext,
    ) -> Result<UnitStatus, ToolError> {
        let unit = unit_name(&arguments.unit)?;
        let lines = arguments.lines.unwrap_or(DEFAULT_LINES);
        if lines > MAX_LINES {
            return Err(ToolError::invalid_arguments(format!(
                "lines {lines} is out of range: give 0 to {MAX_LINES}"
            )));
        }
        self.units.status(&unit, lines).await
    }
}
