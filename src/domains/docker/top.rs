//! `docker_container_top`: the processes running in a container.

use std::sync::Arc;

use bollard::query_parameters::TopOptions;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::engine::Engine;
use super::names::container_reference;
use crate::tool::{Declaration, Domain, Render, Tool, ToolContext, ToolError};

pub(crate) static DOCKER_CONTAINER_TOP: Declaration = Declaration::read(
    Domain::Docker,
    "docker_container_top",
    "Processes in a Docker container",
    "The processes running in a container, as `docker top` shows them (ps -ef \
     columns: UID, PID and PPID as the host sees them, start time, command). The \
     container must be running.",
);

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TopArguments {
    /// Id, unique id prefix, or name.
    pub container: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct ContainerTop {
    pub container: String,
    /// Column names, e.g. UID, PID, PPID, C, STIME, TTY, TIME, CMD.
    pub titles: Vec<String>,
    /// One row per process, in the order of `titles`.
    pub processes: Vec<Vec<String>>,
}

impl Render for ContainerTop {
    fn render_text(&self) -> String {
        // Process arguments are whatever the container's processes were started with.
        std::iter::once(crate::render::join(&self.titles, " "))
            .chain(
                self.processes
                    .iter()
                    .map(|row| crate::render::join(row, " ")),
            )
            .collect::<Vec<_>>()
            .join("\n")
    }
}

pub(crate) struct ContainerTopTool {
    pub engine: Arc<Engine>,
}

impl Tool for ContainerTopTool {
    type Arguments = TopArguments;
    type Output = ContainerTop;

    fn declaration(&self) -> &'static Declaration {
        &DOCKER_CONTAINER_TOP
    }

    async fn run(
        &self,
        arguments: TopArguments,
        _: ToolContext,
    ) -> Result<ContainerTop, ToolError> {
        let container = container_reference(&arguments.container)?;
        let name = container.clone();
        let top = self
            .engine
            .run(|docker| async move { docker.top_processes(&name, None::<TopOptions>).await })
            .await?;
        Ok(ContainerTop {
            container,
            titles: top.titles.unwrap_or_default(),
            processes: top.processes.unwrap_or_default(),
        })
    }
}
