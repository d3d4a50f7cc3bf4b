//! Docker volumes: `docker_volume_list` and `docker_volume_inspect` (read),
//! `docker_volume_remove` (admin).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bollard::models::Volume;
use bollard::query_parameters::{ListVolumesOptions, RemoveVolumeOptions};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::engine::Engine;
use super::names::{object_reference, time_text};
use super::removal::Removed;
use crate::tool::{Declaration, Domain, Render, Tool, ToolContext, ToolError};

pub(crate) static DOCKER_VOLUME_LIST: Declaration = Declaration::read(
    Domain::Docker,
    "docker_volume_list",
    "Docker volumes",
    "Volumes, like `docker volume ls`: name, driver, mount point, created, labels. \
     Filter by name (a substring) or dangling (used by no container).",
)
.paged("filter by name or dangling");

pub(crate) static DOCKER_VOLUME_INSPECT: Declaration = Declaration::read(
    Domain::Docker,
    "docker_volume_inspect",
    "Docker volume details",
    "One volume: driver, mount point, scope, created, labels and driver options.",
);

pub(crate) static DOCKER_VOLUME_REMOVE: Declaration = Declaration::admin(
    Domain::Docker,
    "docker_volume_remove",
    "Remove a Docker volume",
    "Removes a volume and the data in it (`docker volume rm`). Refused by Docker \
     while a container uses it, unless force.",
)
.destructive();

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct VolumeListArguments {
    /// Part of a volume name.
    pub name: Option<String>,
    /// Only volumes no container uses (true), or only used ones (false).
    pub dangling: Option<bool>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct VolumeList {
    pub volumes: Vec<VolumeRow>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct VolumeRow {
    pub name: String,
    pub driver: String,
    pub mountpoint: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub created: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

impl Render for VolumeList {
    fn render_text(&self) -> String {
        let mut lines: Vec<String> = self
            .volumes
            .iter()
            .map(|volume| {
                format!(
                    "{} {} {}",
                    crate::render::text(&volume.name),
                    crate::render::text(&volume.driver),
                    crate::render::text(&volume.mountpoint)
                )
            })
            .collect();
        if lines.is_empty() {
            lines.push("no volumes".into());
        }
        lines.extend(
            self.warnings
                .iter()
                .map(|warning| format!("warning: {}", crate::render::sentence(warning))),
        );
        lines.join("\n")
    }
}

fn row(volume: Volume) -> VolumeRow {
    VolumeRow {
        name: volume.name,
        driver: volume.driver,
        mountpoint: volume.mountpoint,
        created: volume.created_at.map(time_text).unwrap_or_default(),
        labels: volume.labels.into_iter().collect(),
    }
}

pub(crate) struct VolumeListTool {
    pub engine: Arc<Engine>,
}

impl Tool for VolumeListTool {
    type Arguments = VolumeListArguments;
    type Output = VolumeList;

    fn declaration(&self) -> &'static Declaration {
        &DOCKER_VOLUME_LIST
    }

    async fn run(
        &self,
        arguments: VolumeListArguments,
        _: ToolContext,
    ) -> Result<VolumeList, ToolError> {
        let mut filters: HashMap<String, Vec<String>> = HashMap::new();
        if let Some(name) = arguments.name {
            filters.insert("name".into(), vec![name]);
        }
        if let Some(dangling) = arguments.dangling {
            filters.insert("dangling".into(), vec![dangling.to_string()]);
        }
        let options = ListVolumesOptions {
            filters: (!filters.is_empty()).then_some(filters),
        };
        let listed = self
            .engine
            .run(|docker| async move { docker.list_volumes(Some(options)).await })
            .await?;
        let mut volumes: Vec<VolumeRow> = listed
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(row)
            .collect();
        volumes.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(VolumeList {
            volumes,
            warnings: listed.warnings.unwrap_or_default(),
        })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct VolumeArguments {
    pub volume: String,
    /// Remove: even when in use (Docker still refuses for a running container's volume).
    #[serde(default)]
    pub force: bool,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct VolumeDetails {
    #[serde(flatten)]
    pub volume: VolumeRow,
    pub scope: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
}

impl Render for VolumeDetails {
    fn render_text(&self) -> String {
        format!(
            "{} {} {} scope {} created {}",
            crate::render::text(&self.volume.name),
            crate::render::text(&self.volume.driver),
            crate::render::text(&self.volume.mountpoint),
            crate::render::text(&self.scope),
            self.volume.created
        )
    }
}

pub(crate) struct VolumeInspectTool {
    pub engine: Arc<Engine>,
}

impl Tool for VolumeInspectTool {
    type Arguments = VolumeArguments;
    type Output = VolumeDetails;

    fn declaration(&self) -> &'static Declaration {
        &DOCKER_VOLUME_INSPECT
    }

    async fn run(
        &self,
        arguments: VolumeArguments,
        _: ToolContext,
    ) -> Result<VolumeDetails, ToolError> {
        if arguments.force {
            return Err(ToolError::invalid_arguments(
                "force applies to removing a volume, not inspecting it",
            ));
        }
        let name = object_reference("volume", &arguments.volume)?;
        let volume = self
            .engine
            .run(|docker| async move { docker.inspect_volume(&name).await })
            .await?;
        let scope = volume
            .scope
            .map(|scope| scope.to_string())
            .unwrap_or_default();
        let options = volume.options.clone().into_iter().collect();
        Ok(VolumeDetails {
            volume: row(volume),
            scope,
            options,
        })
    }
}

pub(crate) struct VolumeRemoveTool {
    pub engine: Arc<Engine>,
}

impl Tool for VolumeRemoveTool {
    type Arguments = VolumeArguments;
    type Output = Removed;

    fn declaration(&self) -> &'static Declaration {
        &DOCKER_VOLUME_REMOVE
    }

    async fn run(&self, arguments: VolumeArguments, _: ToolContext) -> Result<Removed, ToolError> {
        let name = object_reference("volume", &arguments.volume)?;
        let target = name.clone();
        let options = RemoveVolumeOptions {
            force: arguments.force,
        };
        self.engine
            .run(|docker| async move { docker.remove_volume(&target, Some(options)).await })
            .await?;
        Ok(Removed {
            kind: "volume",
            name,
        })
    }
}
