//! `docker_info`: the engine, its host and its counts.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::Serialize;

use super::engine::Engine;
use crate::tool::{Declaration, Domain, NoArguments, Render, Tool, ToolContext, ToolError};

pub(crate) static DOCKER_INFO: Declaration = Declaration::read(
    Domain::Docker,
    "docker_info",
    "Docker engine",
    "The Docker Engine this server manages: version and API version, storage and \
     cgroup drivers, the host it runs on (OS, kernel, CPUs, memory), and how many \
     containers (running, paused, stopped) and images it holds. Start here to see \
     whether Docker is reachable.",
);

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct DockerInfo {
    /// Where the server reached the engine.
    pub host: String,
    pub server_version: String,
    pub api_version: String,
    pub name: String,
    pub operating_system: String,
    pub kernel_version: String,
    pub architecture: String,
    pub cpus: i64,
    pub memory_bytes: i64,
    pub storage_driver: String,
    pub cgroup_driver: String,
    pub cgroup_version: String,
    pub logging_driver: String,
    pub docker_root_dir: String,
    pub containers: i64,
    pub containers_running: i64,
    pub containers_paused: i64,
    pub containers_stopped: i64,
    pub images: i64,
    /// The engine's own warnings (e.g. no swap limit support).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// e.g. `name=seccomp,profile=default`, `name=rootless`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub security_options: Vec<String>,
}

impl Render for DockerInfo {
    fn render_text(&self) -> String {
        let mut text = format!(
            "Docker {} (API {}) at {} on {}: {}, kernel {}, {}; {} ({} running, {} paused, {} \
             stopped), {}; storage {}, cgroup {} {}",
            crate::render::text(&self.server_version),
            crate::render::text(&self.api_version),
            crate::render::text(&self.host),
            crate::render::text(&self.name),
            crate::render::text(&self.operating_system),
            crate::render::text(&self.kernel_version),
            crate::render::count(self.cpus, "CPU", "CPUs"),
            crate::render::count(self.containers, "container", "containers"),
            self.containers_running,
            self.containers_paused,
            self.containers_stopped,
            crate::render::count(self.images, "image", "images"),
            crate::render::text(&self.storage_driver),
            crate::render::text(&self.cgroup_driver),
            crate::render::text(&self.cgroup_version)
        );
        for warning in &self.warnings {
            text.push_str(&format!("\nwarning: {}", crate::render::sentence(warning)));
        }
        text
    }
}

pub(crate) struct DockerInfoTool {
    pub engine: Arc<Engine>,
}

impl Tool for DockerInfoTool {
    type Arguments = NoArguments;
    type Output = DockerInfo;

    fn declaration(&self) -> &'static Declaration {
        &DOCKER_INFO
    }

    async fn run(&self, _: NoArguments, _: ToolContext) -> Result<DockerInfo, ToolError> {
        let info = self
            .engine
            .run(|docker| async move { docker.info().await })
            .await?;
        let version = self
            .engine
            .run(|docker| async move { docker.version().await })
            .await?;
        let text = |value: Option<String>| value.unwrap_or_default();
        Ok(DockerInfo {
            host: self.engine.host().to_string(),
            server_version: text(info.server_version),
            api_version: text(version.api_version),
            name: text(info.name),
            operating_system: text(info.operating_system),
            kernel_version: text(info.kernel_version),
            architecture: text(info.architecture),
            cpus: info.ncpu.unwrap_or(0),
            memory_bytes: info.mem_total.unwrap_or(0),
            storage_driver: text(info.driver),
            cgroup_driver: info
                .cgroup_driver
                .map(|driver| driver.to_string())
                .unwrap_or_default(),
            cgroup_version: info
                .cgroup_version
                .map(|version| version.to_string())
                .unwrap_or_default(),
            logging_driver: text(info.logging_driver),
            docker_root_dir: text(info.docker_root_dir),
            containers: info.containers.unwrap_or(0),
            containers_running: info.containers_running.unwrap_or(0),
            containers_paused: info.containers_paused.unwrap_or(0),
            containers_stopped: info.containers_stopped.unwrap_or(0),
            images: info.images.unwrap_or(0),
            warnings: info.warnings.unwrap_or_default(),
            security_options: info.security_options.unwrap_or_default(),
        })
    }
}
