//! `service_enable`, `service_disable`, `service_mask`, `service_unmask` and
//! `service_daemon_reload`: unit files and the manager's configuration, tier `admin`. Each
//! change reloads the manager afterwards, as `systemctl enable` does; protected units are
//! never disabled or masked.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::bus::unit_name;
use super::protection::{Action, Protection};
use super::status::Units;
use crate::render;
use crate::tool::{Declaration, Domain, NoArguments, Render, Tool, ToolContext, ToolError};

pub(crate) static SERVICE_ENABLE: Declaration = Declaration::admin(
    Domain::Services,
    "service_enable",
    "Enable a systemd unit",
    "Enables a unit's file (`systemctl enable`: the symlinks its [Install] section names), \
     then reloads systemd; does not start it. Answers with the links made and the unit file \
     state after.",
)
.idempotent();

pub(crate) static SERVICE_DISABLE: Declaration = Declaration::admin(
    Domain::Services,
    "service_disable",
    "Disable a systemd unit",
    "Disables a unit's file (`systemctl disable`), then reloads systemd; does not stop it. \
     Protected units are refused for every role.",
)
.idempotent();

pub(crate) static SERVICE_MASK: Declaration = Declaration::admin(
    Domain::Services,
    "service_mask",
    "Mask a systemd unit",
    "Masks a unit (`systemctl mask`: linked to /dev/null, so nothing can start it), then \
     reloads systemd; does not stop it. Protected units are refused for every role.",
)
.idempotent();

pub(crate) static SERVICE_UNMASK: Declaration = Declaration::admin(
    Domain::Services,
    "service_unmask",
    "Unmask a systemd unit",
    "Unmasks a unit (`systemctl unmask`), then reloads systemd.",
)
.idempotent();

pub(crate) static SERVICE_DAEMON_RELOAD: Declaration = Declaration::admin(
    Domain::Services,
    "service_daemon_reload",
    "Reload systemd's configuration",
    "Reloads systemd's unit files and configuration (`systemctl daemon-reload`), after unit \
     files changed on disk.",
)
.idempotent();

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileChange {
    Enable,
    Disable,
    Mask,
    Unmask,
}

impl FileChange {
    pub(crate) const ALL: [FileChange; 4] = [
        FileChange::Enable,
        FileChange::Disable,
        FileChange::Mask,
        FileChange::Unmask,
    ];

    fn declaration(self) -> &'static Declaration {
        match self {
            FileChange::Enable => &SERVICE_ENABLE,
            FileChange::Disable => &SERVICE_DISABLE,
            FileChange::Mask => &SERVICE_MASK,
            FileChange::Unmask => &SERVICE_UNMASK,
        }
    }

    fn verb(self) -> &'static str {
        match self {
            FileChange::Enable => "enable",
            FileChange::Disable => "disable",
            FileChange::Mask => "mask",
            FileChange::Unmask => "unmask",
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UnitFileArguments {
    pub unit: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct UnitFileChanged {
    pub unit: String,
    /// enable, disable, mask or unmask.
    pub action: String,
    /// What changed on disk: `symlink`/`unlink` and the paths, as systemd reports them.
    pub changes: Vec<String>,
    /// The unit file state after: enabled, disabled, masked, static, …
    pub unit_file_state: String,
}

impl Render for UnitFileChanged {
    fn render_text(&self) -> String {
        let mut lines = vec![format!(
            "{} {}: now {}",
            self.action,
            render::text(&self.unit),
            self.unit_file_state
        )];
        if self.changes.is_empty() {
            lines.push("(nothing changed on disk)".into());
        }
        lines.extend(
            self.changes
                .iter()
                .map(|change| render::text(change).into_owned()),
        );
        lines.join("\n")
    }
}

pub(crate) struct UnitFileTool {
    pub units: Arc<Units>,
    pub protection: Arc<Protection>,
    pub change: FileChange,
}

impl Tool for UnitFileTool {
    type Arguments = UnitFileArguments;
    type Output = UnitFileChanged;

    fn declaration(&self) -> &'static Declaration {
        self.change.declaration()
    }

    async fn run(
        &self,
        arguments: UnitFileArguments,
        _: ToolContext,
    ) -> Result<UnitFileChanged, ToolError> {
        let unit = unit_name(&arguments.unit)?;
        match self.change {
            FileChange::Disable => {
                self.protection
                    .check(&self.units, &unit, Action::Disable)
                    .await?
            }
            FileChange::Mask => {
                self.protection
                    .check(&self.units, &unit, Action::Mask)
                    .await?
            }
            FileChange::Enable | FileChange::Unmask => {}
        }
        let systemd = &self.units.systemd;
        let manager = systemd.manager().await?;
        let files = vec![unit.clone()];
        let changes = match self.change {
            FileChange::Enable => manager
                .enable_unit_files(files, false, false)
                .await
                .map(|(_, changes)| changes),
            FileChange::Disable => manager.disable_unit_files(files, false).await,
            FileChange::Mask => manager.mask_unit_files(files, false, false).await,
            FileChange::Unmask => manager.unmask_unit_files(files, false).await,
        }
        .map_err(|error| systemd.explain(error))?;
        manager
            .reload()
            .await
            .map_err(|error| systemd.explain(error))?;
        // A unit whose file is gone (unmasked, never installed) has no state to report.
        let unit_file_state = manager
            .get_unit_file_state(unit.clone())
            .await
            .unwrap_or_else(|_| "no unit file".into());
        Ok(UnitFileChanged {
            unit,
            action: self.change.verb().into(),
            changes: changes
                .into_iter()
                .map(|(kind, path, target)| {
                    if target.is_empty() {
                        format!("{kind} {path}")
                    } else {
                        format!("{kind} {path} → {target}")
                    }
                })
                .collect(),
            unit_file_state,
        })
    }
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct Reloaded {
    pub reloaded: bool,
}

impl Render for Reloaded {
    fn render_text(&self) -> String {
        "systemd reloaded its unit files".into()
    }
}

pub(crate) struct DaemonReloadTool {
    pub units: Arc<Units>,
}

impl Tool for DaemonReloadTool {
    type Arguments = NoArguments;
    type Output = Reloaded;

    fn declaration(&self) -> &'static Declaration {
        &SERVICE_DAEMON_RELOAD
    }

    async fn run(&self, _: NoArguments, _: ToolContext) -> Result<Reloaded, ToolError> {
        let systemd = &self.units.systemd;
        systemd
            .manager()
            .await?
            .reload()
            .await
            .map_err(|error| systemd.explain(error))?;
        Ok(Reloaded { reloaded: true })
    }
}
