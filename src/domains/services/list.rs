//! `service_list`: systemd's units, as `systemctl list-units` shows them, with each unit's own
//! accounting (memory, CPU time, tasks) from its properties.

use std::sync::Arc;

use futures::StreamExt as _;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::bus::{Systemd, UNIT_TYPES, type_interface};
use crate::domains::shared::paging::{PageInfo, PageRequest};
use crate::render;
use crate::tool::{Declaration, Domain, Render, Tool, ToolContext, ToolError};

pub(crate) static SERVICE_LIST: Declaration = Declaration::read(
    Domain::Services,
    "service_list",
    "systemd units",
    "systemd's units, like `systemctl list-units`: name, description, load, active and sub \
     state, and for services the main pid, memory, CPU time and tasks from the unit's own \
     accounting. type (default service; socket, timer, mount, target, path, slice, scope, \
     swap, automount, device, or all), state (active, inactive, failed, activating, \
     deactivating, reloading, or a sub state such as running or exited), pattern (a glob \
     such as `ssh*`), failed_only; inactive units only with all: true, and installed unit \
     files systemd has not loaded only with installed: true. \
     Paged with limit (default 100, at most 1000) and cursor.",
)
.paged("filter by type, state or pattern, or use `limit` and `cursor`");

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;
/// Units whose properties are read at once.
const CONCURRENCY: usize = 16;

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListArguments {
    /// Unit type: service (default), socket, timer, mount, target, path, slice, scope, swap,
    /// automount, device, or `all`.
    pub r#type: Option<String>,
    /// An active state (active, inactive, failed, activating, deactivating, reloading) or a
    /// sub state (running, exited, dead, waiting, …).
    pub state: Option<String>,
    /// A glob over unit names (`ssh*`, `*.timer`), as systemctl takes it.
    pub pattern: Option<String>,
    /// Only units whose active state is `failed`.
    #[serde(default)]
    pub failed_only: bool,
    /// Inactive units too (as `systemctl list-units --all`).
    #[serde(default)]
    pub all: bool,
    /// Also installed unit files systemd has not loaded (as `systemctl list-unit-files`);
    /// costs systemd a read of every unit directory (a few hundred ms).
    #[serde(default)]
    pub installed: bool,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct UnitList {
    pub units: Vec<UnitRow>,
    #[serde(flatten)]
    pub page: PageInfo,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct UnitRow {
    pub name: String,
    pub description: String,
    /// loaded, not-found, bad-setting, error, masked; `not-loaded` for an installed unit file
    /// systemd has not loaded (listed with installed: true).
    pub load_state: String,
    /// active, reloading, inactive, failed, activating, deactivating.
    pub active_state: String,
    /// The type's own state: running, exited, dead, listening, waiting, mounted, …
    pub sub_state: String,
    /// A service's main process.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub main_pid: Option<u32>,
    /// The unit's cgroup memory (`MemoryCurrent`), when accounting is on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
    /// CPU time the unit has used (`CPUUsageNSec`), seconds, when accounting is on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_seconds: Option<f64>,
    /// Tasks in the unit's cgroup (`TasksCurrent`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tasks: Option<u64>,
}

impl Render for UnitList {
    fn render_text(&self) -> String {
        let mut lines: Vec<String> = self
            .units
            .iter()
            .map(|unit| {
                let mut line = format!(
                    "{} {} {}/{} {}",
                    render::text(&unit.name),
                    unit.load_state,
                    unit.active_state,
                    unit.sub_state,
                    render::text(&unit.description)
                );
                if let Some(pid) = unit.main_pid {
                    line.push_str(&format!("; pid {pid}"));
                }
                if let Some(memory) = unit.memory_bytes {
                    line.push_str(&format!("; {}", render::bytes(memory)));
                }
                if let Some(cpu) = unit.cpu_seconds {
                    line.push_str(&format!("; cpu {cpu:.2} s"));
                }
                if let Some(tasks) = unit.tasks {
                    line.push_str(&format!("; {}", render::count(tasks, "task", "tasks")));
                }
                line
            })
            .collect();
        if lines.is_empty() {
            lines.push("no units match".into());
        }
        lines.extend(
            self.page
                .footer(self.units.len(), ("unit", "units"), &self.notes),
        );
        lines.join("\n")
    }
}

/// A unit as listed: from the manager's list, or an installed unit file it has not loaded.
struct Listed {
    name: String,
    description: String,
    load_state: String,
    active_state: String,
    sub_state: String,
    path: Option<zbus::OwnedObjectPath>,
}

pub(crate) struct ServiceListTool {
    pub systemd: Arc<Systemd>,
}

impl Tool for ServiceListTool {
    type Arguments = ListArguments;
    type Output = UnitList;

    fn declaration(&self) -> &'static Declaration {
        &SERVICE_LIST
    }

    async fn run(
        &self,
        arguments: ListArguments,
        context: ToolContext,
    ) -> Result<UnitList, ToolError> {
        let page = PageRequest::new(
            arguments.limit,
            arguments.cursor.as_deref(),
            DEFAULT_LIMIT,
            MAX_LIMIT,
        )?;
        let kind = arguments.r#type.as_deref().unwrap_or("service");
        if kind != "all" && !UNIT_TYPES.contains(&kind) {
            return Err(ToolError::invalid_arguments(format!(
                "type `{}` is not a unit type: give one of {}, or all",
                render::text(kind),
                UNIT_TYPES.join(", ")
            )));
        }
        if let Some(pattern) = &arguments.pattern
            && (pattern.is_empty() || pattern.len() > 255 || pattern.chars().any(char::is_control))
        {
            return Err(ToolError::invalid_arguments(
                "pattern: give a glob over unit names, at most 255 characters (e.g. `ssh*`)",
            ));
        }
        let manager = self.systemd.manager().await?;
        let patterns = arguments.pattern.clone().into_iter().collect();
        let listed = manager
            .list_units_by_patterns(Vec::new(), patterns)
            .await
            .map_err(|error| self.systemd.explain(error))?;
        let state = arguments.state.as_deref();
        let units: Vec<_> = listed
            .into_iter()
            .filter(|unit| kind == "all" || unit.0.rsplit_once('.').is_some_and(|(_, t)| t == kind))
            .filter(|unit| !arguments.failed_only || unit.3 == "failed")
            .filter(|unit| state.is_none_or(|state| unit.3 == state || unit.4 == state))
            // As systemctl: inactive units only when asked for.
            .filter(|unit| {
                arguments.all
                    || arguments.installed
                    || state.is_some()
                    || arguments.failed_only
                    || unit.3 != "inactive"
            })
            .collect();
        let mut rows: Vec<Listed> = units
            .into_iter()
            .map(|unit| Listed {
                name: unit.0,
                description: unit.1,
                load_state: unit.2,
                active_state: unit.3,
                sub_state: unit.4,
                path: Some(unit.6),
            })
            .collect();
        if arguments.installed
            && !arguments.failed_only
            && state.is_none_or(|s| s == "inactive" || s == "dead")
        {
            // Installed units systemd has not loaded (never needed, or unloaded once inactive),
            // which `systemctl list-units --all` leaves out.
            let loaded: std::collections::HashSet<String> =
                rows.iter().map(|row| row.name.clone()).collect();
            let patterns = arguments.pattern.clone().into_iter().collect();
            let files = manager
                .list_unit_files_by_patterns(Vec::new(), patterns)
                .await
                .map_err(|error| self.systemd.explain(error))?;
            for (path, file_state) in files {
                // An alias is another name of a unit listed under its own name.
                if file_state == "alias" {
                    continue;
                }
                let Some(name) = path.rsplit('/').next().map(str::to_string) else {
                    continue;
                };
                let typed = kind == "all" || name.rsplit_once('.').is_some_and(|(_, t)| t == kind);
                // Templates (`getty@.service`) are not units until instantiated.
                if typed && !name.contains("@.") && !loaded.contains(&name) {
                    rows.push(Listed {
                        name,
                        description: String::new(),
                        load_state: if file_state == "masked" {
                            "masked".into()
                        } else {
                            "not-loaded".into()
                        },
                        active_state: "inactive".into(),
                        sub_state: "dead".into(),
                        path: None,
                    });
                }
            }
        }
        rows.sort_by(|a, b| a.name.cmp(&b.name));
        rows.dedup_by(|a, b| a.name == b.name);
        let (units, page_info) = page.take(rows);
        let systemd = &self.systemd;
        let rows = futures::stream::iter(units)
            .map(|unit| async move {
                let mut row = UnitRow {
                    name: unit.name,
                    description: unit.description,
                    load_state: unit.load_state,
                    active_state: unit.active_state,
                    sub_state: unit.sub_state,
                    main_pid: None,
                    memory_bytes: None,
                    cpu_seconds: None,
                    tasks: None,
                };
                // A unit that went away between the list and this read keeps its list row.
                // Only a unit that runs has a main pid, memory and tasks to read.
                if let Some(interface) = type_interface(&row.name)
                    && row.load_state == "loaded"
                    && row.active_state != "inactive"
                    && row.active_state != "failed"
                    && let Some(path) = &unit.path
                    && let Ok(properties) = systemd.properties(path, interface).await
                {
                    row.main_pid = properties
                        .number("MainPID")
                        .and_then(|pid| u32::try_from(pid).ok())
                        .filter(|pid| *pid > 0);
                    row.memory_bytes = properties.number("MemoryCurrent");
                    row.cpu_seconds = properties
                        .number("CPUUsageNSec")
                        .map(|nanos| (nanos as f64 / 1e7).round() / 100.0);
                    row.tasks = properties.number("TasksCurrent");
                }
                row
            })
            .buffered(CONCURRENCY)
            .collect::<Vec<_>>()
            .await;
        let mut rows = rows;
        let mut page_info = page_info;
        let mut notes: Vec<String> = page.note.clone().into_iter().collect();
        notes.extend(page.fit(&mut rows, &mut page_info, context.output_cap));
        Ok(UnitList {
            units: rows,
            page: page_info,
            notes,
        })
    }
}
