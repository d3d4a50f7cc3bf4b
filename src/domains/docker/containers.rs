//! `docker_container_list` and `docker_container_inspect` (containers, compact), and
//! `docker_container_remove`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bollard::models::{ContainerInspectResponse, ContainerSummary, PortSummary};
use bollard::query_parameters::{InspectContainerOptions, ListContainersOptions};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::engine::Engine;
use super::names::{short_id, time_text, unix_time_text};
use crate::domains::shared::paging::{PageInfo, PageRequest};
use crate::domains::shared::secret_names::is_secret_key;
use crate::tool::{Declaration, Domain, Render, Tier, Tool, ToolContext, ToolError};

pub(crate) static DOCKER_CONTAINER_LIST: Declaration = Declaration::read(
    Domain::Docker,
    "docker_container_list",
    "Docker containers",
    "Containers, like `docker ps`: id, name, image, state, status, ports, created. \
     Running ones only unless all is true; filter by status (created, restarting, \
     running, removing, paused, exited, dead), name (a substring, as docker's name \
     filter) and label (`key` or `key=value`, all must match); paged with limit \
     (default 100) and cursor.",
)
.paged("use `limit` and `cursor`, or filter by status, name or label");

pub(crate) static DOCKER_CONTAINER_INSPECT: Declaration = Declaration::read(
    Domain::Docker,
    "docker_container_inspect",
    "Docker container details",
    "One container in detail (by id, id prefix or name): state and health, exit \
     code, restart count, image, command, ports, mounts, networks and addresses, \
     restart policy, privileges, labels and environment. Environment values are \
     shown only to the admin tier (and never for secret-looking names). `fields` \
     picks parts: state, config, ports, mounts, networks, labels, environment, \
     host_config.",
)
.paged("ask for fewer `fields`");

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ContainerStatus {
    Created,
    Restarting,
    Running,
    Removing,
    Paused,
    Exited,
    Dead,
}

impl ContainerStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Restarting => "restarting",
            Self::Running => "running",
            Self::Removing => "removing",
            Self::Paused => "paused",
            Self::Exited => "exited",
            Self::Dead => "dead",
        }
    }
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ContainerListArguments {
    /// Stopped containers too (as `docker ps -a`). Implied by a status filter.
    #[serde(default)]
    pub all: bool,
    pub status: Option<Vec<ContainerStatus>>,
    /// Part of a container name.
    pub name: Option<String>,
    /// `key` or `key=value`; every one must match.
    pub label: Option<Vec<String>>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct ContainerList {
    pub containers: Vec<ContainerRow>,
    #[serde(flatten)]
    pub page: PageInfo,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct ContainerRow {
    /// The first 12 hex digits, as docker shows them.
    pub id: String,
    pub name: String,
    pub image: String,
    /// created, restarting, running, removing, paused, exited or dead.
    pub state: String,
    /// Docker's own words: "Up 3 hours", "Exited (0) 2 minutes ago".
    pub status: String,
    /// `HOST_IP:HOST_PORT->PORT/PROTO`, or `PORT/PROTO` when not published.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<String>,
    pub created: String,
    pub command: String,
}

impl Render for ContainerList {
    fn render_text(&self) -> String {
        let mut lines: Vec<String> = self
            .containers
            .iter()
            .map(|row| {
                // Everything but the id is the engine's text, which a container's creator
                // chose in part (image references, names).
                let mut line = format!(
                    "{} {} {} {} ({})",
                    row.id,
                    crate::render::text(&row.name),
                    crate::render::text(&row.image),
                    crate::render::text(&row.state),
                    crate::render::text(&row.status)
                );
                if !row.ports.is_empty() {
                    line.push_str(&format!(" ports {}", crate::render::join(&row.ports, ", ")));
                }
                line
            })
            .collect();
        lines.extend(self.page.footer(
            self.containers.len(),
            ("container", "containers"),
            &self.notes,
        ));
        lines.join("\n")
    }
}

fn port_text(port: &PortSummary) -> String {
    let proto = port
        .typ
        .map(|typ| typ.to_string())
        .unwrap_or_else(|| "tcp".into());
    match port.public_port {
        Some(public) => format!(
            "{}:{public}->{}/{proto}",
            port.ip.as_deref().unwrap_or("0.0.0.0"),
            port.private_port
        ),
        None => format!("{}/{proto}", port.private_port),
    }
}

fn row(summary: ContainerSummary) -> ContainerRow {
    let mut ports: Vec<String> = summary
        .ports
        .unwrap_or_default()
        .iter()
        .map(port_text)
        .collect();
    ports.sort();
    ports.dedup();
    ContainerRow {
        id: short_id(summary.id.as_deref().unwrap_or_default()),
        name: summary
            .names
            .and_then(|names| names.into_iter().next())
            .map(|name| name.trim_start_matches('/').to_string())
            .unwrap_or_default(),
        image: summary.image.unwrap_or_default(),
        state: summary
            .state
            .map(|state| state.to_string())
            .unwrap_or_default(),
        status: summary.status.unwrap_or_default(),
        ports,
        created: summary.created.map(unix_time_text).unwrap_or_default(),
        command: summary.command.unwrap_or_default(),
    }
}

pub(crate) struct ContainerListTool {
    pub engine: Arc<Engine>,
}

impl Tool for ContainerListTool {
    type Arguments = ContainerListArguments;
    type Output = ContainerList;

    fn declaration(&self) -> &'static Declaration {
        &DOCKER_CONTAINER_LIST
    }

    async fn run(
        &self,
        arguments: ContainerListArguments,
        context: ToolContext,
    ) -> Result<ContainerList, ToolError> {
        let page = PageRequest::new(
            arguments.limit,
            arguments.cursor.as_deref(),
            DEFAULT_LIMIT,
            MAX_LIMIT,
        )?;
        let mut filters: HashMap<String, Vec<String>> = HashMap::new();
        if let Some(statuses) = &arguments.status {
            filters.insert(
                "status".into(),
                statuses
                    .iter()
                    .map(|status| status.as_str().to_string())
                    .collect(),
            );
        }
        if let Some(name) = &arguments.name {
            filters.insert("name".into(), vec![name.clone()]);
        }
        if let Some(labels) = &arguments.label {
            filters.insert("label".into(), labels.clone());
        }
        let options = ListContainersOptions {
            all: arguments.all || arguments.status.is_some(),
            filters: (!filters.is_empty()).then_some(filters),
            ..Default::default()
        };
        let mut summaries = self
            .engine
            .run(|docker| async move { docker.list_containers(Some(options)).await })
            .await?;
        // Newest first, as docker ps; ties by name so pages are stable.
        summaries.sort_by(|a, b| {
            b.created
                .cmp(&a.created)
                .then_with(|| a.names.cmp(&b.names))
        });
        let (mut containers, mut page_info) = page.take(summaries.into_iter().map(row).collect());
        let mut notes: Vec<String> = page.note.clone().into_iter().collect();
        notes.extend(page.fit(&mut containers, &mut page_info, context.output_cap));
        Ok(ContainerList {
            containers,
            page: page_info,
            notes,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum InspectField {
    State,
    Config,
    Ports,
    Mounts,
    Networks,
    Labels,
    Environment,
    HostConfig,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ContainerInspectArguments {
    /// Id, unique id prefix, or name.
    pub container: String,
    /// Parts to include (default: all of them).
    pub fields: Option<Vec<InspectField>>,
}

#[derive(Debug, Default, Serialize, JsonSchema)]
pub(crate) struct ContainerDetails {
    /// The full id.
    pub id: String,
    pub name: String,
    pub image: String,
    /// The image's id (sha256:...).
    pub image_id: String,
    pub created: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<ContainerState>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<ContainerConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ports: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mounts: Option<Vec<MountRow>>,
    /// Network name → IP address in it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub networks: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// `NAME=value`; values `[redacted]` below the admin tier and for secret-looking names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_config: Option<HostConfigRow>,
}

#[derive(Debug, Default, Serialize, JsonSchema)]
pub(crate) struct ContainerState {
    pub status: String,
    pub running: bool,
    pub paused: bool,
    pub restarting: bool,
    pub oom_killed: bool,
    /// The main process's host PID while running.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<i64>,
    pub exit_code: i64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub started_at: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub finished_at: String,
    /// healthy, unhealthy or starting, when the image has a health check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<String>,
    pub restart_count: i64,
}

#[derive(Debug, Default, Serialize, JsonSchema)]
pub(crate) struct ContainerConfig {
    /// The process: entrypoint and command joined.
    pub command: Vec<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub working_dir: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub user: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub hostname: String,
    pub tty: bool,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct MountRow {
    /// bind, volume, tmpfs, ...
    #[serde(rename = "type")]
    pub kind: String,
    pub source: String,
    pub destination: String,
    pub read_write: bool,
    /// The volume's name, for a volume.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Default, Serialize, JsonSchema)]
pub(crate) struct HostConfigRow {
    pub privileged: bool,
    pub network_mode: String,
    pub pid_mode: String,
    pub restart_policy: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cap_add: Vec<String>,
    pub read_only_rootfs: bool,
    /// 0 when unlimited.
    pub memory_limit_bytes: i64,
    /// CPUs the container may use (0 when unlimited).
    pub cpus: f64,
}

impl Render for ContainerDetails {
    fn render_text(&self) -> String {
        let mut lines = vec![format!(
            "{} {} image {} created {}",
            short_id(&self.id),
            crate::render::text(&self.name),
            crate::render::text(&self.image),
            self.created
        )];
        if let Some(state) = &self.state {
            let mut line = format!("state {}", crate::render::text(&state.status));
            if let Some(pid) = state.pid {
                line.push_str(&format!(" pid {pid}"));
            }
            if !state.running {
                line.push_str(&format!(" exit code {}", state.exit_code));
            }
            if let Some(health) = &state.health {
                line.push_str(&format!(" health {}", crate::render::text(health)));
            }
            line.push_str(&format!(" restarts {}", state.restart_count));
            lines.push(line);
        }
        if let Some(config) = &self.config {
            lines.push(format!(
                "command {}",
                crate::render::join(&config.command, " ")
            ));
        }
        if let Some(ports) = self.ports.as_ref().filter(|ports| !ports.is_empty()) {
            lines.push(format!("ports {}", crate::render::join(ports, ", ")));
        }
        if let Some(mounts) = self.mounts.as_ref().filter(|mounts| !mounts.is_empty()) {
            for mount in mounts {
                lines.push(format!(
                    "mount {} {} -> {} ({})",
                    crate::render::text(&mount.kind),
                    crate::render::text(&mount.source),
                    crate::render::text(&mount.destination),
                    if mount.read_write { "rw" } else { "ro" }
                ));
            }
        }
        if let Some(networks) = &self.networks {
            for (network, address) in networks {
                lines.push(format!(
                    "network {} {}",
                    crate::render::text(network),
                    crate::render::text(address)
                ));
            }
        }
        if let Some(host) = &self.host_config {
            lines.push(format!(
                "privileged {} network {} restart {}",
                host.privileged,
                crate::render::text(&host.network_mode),
                crate::render::text(&host.restart_policy)
            ));
        }
        if let Some(environment) = &self.environment {
            lines.push(format!(
                "environment {}",
                crate::render::join(environment, " ")
            ));
        }
        lines.join("\n")
    }
}

/// Environment entries as a caller may see them.
fn environment_for(entries: Vec<String>, admin: bool) -> Vec<String> {
    entries
        .into_iter()
        .map(|entry| match entry.split_once('=') {
            Some((name, _)) if !admin || is_secret_key(name) => format!("{name}=[redacted]"),
            _ => entry,
        })
        .collect()
}

fn details(
    inspected: ContainerInspectResponse,
    fields: &[InspectField],
    admin: bool,
) -> ContainerDetails {
    let wants = |field: InspectField| fields.contains(&field);
    let config = inspected.config.unwrap_or_default();
    let host = inspected.host_config.unwrap_or_default();
    let state = inspected.state.unwrap_or_default();
    let mut details = ContainerDetails {
        id: inspected.id.unwrap_or_default(),
        name: inspected
            .name
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_string(),
        image: config.image.clone().unwrap_or_default(),
        image_id: inspected.image.unwrap_or_default(),
        created: inspected.created.map(time_text).unwrap_or_default(),
        ..Default::default()
    };
    if wants(InspectField::State) {
        let running = state.running.unwrap_or(false);
        details.state = Some(ContainerState {
            status: state
                .status
                .map(|status| status.to_string())
                .unwrap_or_default(),
            running,
            paused: state.paused.unwrap_or(false),
            restarting: state.restarting.unwrap_or(false),
            oom_killed: state.oom_killed.unwrap_or(false),
            pid: state.pid.filter(|pid| running && *pid > 0),
            exit_code: state.exit_code.unwrap_or(0),
            error: state.error.unwrap_or_default(),
            started_at: state
                .started_at
                .filter(|at| !at.starts_with("0001"))
                .unwrap_or_default(),
            finished_at: state
                .finished_at
                .filter(|at| !at.starts_with("0001"))
                .unwrap_or_default(),
            health: state
                .health
                .and_then(|health| health.status)
                .map(|status| status.to_string())
                .filter(|status| !status.is_empty() && status != "none"),
            restart_count: inspected.restart_count.unwrap_or(0),
        });
    }
    if wants(InspectField::Config) {
        let mut command = config.entrypoint.clone().unwrap_or_default();
        command.extend(config.cmd.clone().unwrap_or_default());
        details.config = Some(ContainerConfig {
            command,
            working_dir: config.working_dir.clone().unwrap_or_default(),
            user: config.user.clone().unwrap_or_default(),
            hostname: config.hostname.clone().unwrap_or_default(),
            tty: config.tty.unwrap_or(false),
        });
    }
    let network_settings = inspected.network_settings.unwrap_or_default();
    if wants(InspectField::Ports) {
        let mut ports = Vec::new();
        for (port, bindings) in network_settings.ports.clone().unwrap_or_default() {
            match bindings.filter(|bindings| !bindings.is_empty()) {
                Some(bindings) => {
                    for binding in bindings {
                        ports.push(format!(
                            "{}:{}->{port}",
                            binding.host_ip.unwrap_or_default(),
                            binding.host_port.unwrap_or_default()
                        ));
                    }
                }
                None => ports.push(port),
            }
        }
        ports.sort();
        details.ports = Some(ports);
    }
    if wants(InspectField::Mounts) {
        details.mounts = Some(
            inspected
                .mounts
                .unwrap_or_default()
                .into_iter()
                .map(|mount| MountRow {
                    kind: mount.typ.map(|typ| typ.to_string()).unwrap_or_default(),
                    source: mount.source.unwrap_or_default(),
                    destination: mount.destination.unwrap_or_default(),
                    read_write: mount.rw.unwrap_or(false),
                    name: mount.name,
                })
                .collect(),
        );
    }
    if wants(InspectField::Networks) {
        details.networks = Some(
            network_settings
                .networks
                .unwrap_or_default()
                .into_iter()
                .map(|(name, endpoint)| (name, endpoint.ip_address.unwrap_or_default()))
                .collect(),
        );
    }
    if wants(InspectField::Labels) {
        details.labels = Some(
            config
                .labels
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect(),
        );
    }
    if wants(InspectField::Environment) {
        details.environment = Some(environment_for(
            config.env.clone().unwrap_or_default(),
            admin,
        ));
    }
    if wants(InspectField::HostConfig) {
        let restart = host.restart_policy.clone().unwrap_or_default();
        details.host_config = Some(HostConfigRow {
            privileged: host.privileged.unwrap_or(false),
            network_mode: host.network_mode.clone().unwrap_or_default(),
            pid_mode: host.pid_mode.clone().unwrap_or_default(),
            restart_policy: restart
                .name
                .map(|name| name.to_string())
                .filter(|name| !name.is_empty())
                .unwrap_or_else(|| "no".into()),
            cap_add: host.cap_add.clone().unwrap_or_default(),
            read_only_rootfs: host.readonly_rootfs.unwrap_or(false),
            memory_limit_bytes: host.memory.unwrap_or(0),
            cpus: host.nano_cpus.unwrap_or(0) as f64 / 1e9,
        });
    }
    details
}

pub(crate) struct ContainerInspectTool {
    pub engine: Arc<Engine>,
}

const ALL_FIELDS: [InspectField; 8] = [
    InspectField::State,
    InspectField::Config,
    InspectField::Ports,
    InspectField::Mounts,
    InspectField::Networks,
    InspectField::Labels,
    InspectField::Environment,
    InspectField::HostConfig,
];

impl Tool for ContainerInspectTool {
    type Arguments = ContainerInspectArguments;
    type Output = ContainerDetails;

    fn declaration(&self) -> &'static Declaration {
        &DOCKER_CONTAINER_INSPECT
    }

    async fn run(
        &self,
        arguments: ContainerInspectArguments,
        context: ToolContext,
    ) -> Result<ContainerDetails, ToolError> {
        let container = super::names::container_reference(&arguments.container)?;
        let inspected = self
            .engine
            .run(|docker| async move {
                docker
                    .inspect_container(&container, None::<InspectContainerOptions>)
                    .await
            })
            .await?;
        let fields = arguments.fields.unwrap_or_else(|| ALL_FIELDS.to_vec());
        let admin = context.grants(Tier::Admin);
        Ok(details(inspected, &fields, admin))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_values_are_shown_to_admins_only_and_secrets_never() {
        let entries = vec![
            "PATH=/bin".to_string(),
            "DB_PASSWORD=hunter2".into(),
            "EMPTY".into(),
        ];
        assert_eq!(
            environment_for(entries.clone(), false),
            ["PATH=[redacted]", "DB_PASSWORD=[redacted]", "EMPTY"]
        );
        assert_eq!(
            environment_for(entries, true),
            ["PATH=/bin", "DB_PASSWORD=[redacted]", "EMPTY"]
        );
    }
}

pub(crate) static DOCKER_CONTAINER_REMOVE: Declaration = Declaration::admin(
    Domain::Docker,
    "docker_container_remove",
    "Remove a Docker container",
    "Removes a container (`docker rm`). A running container is refused unless \
     force (which kills it first); volumes also removes its anonymous volumes.",
)
.destructive();

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ContainerRemoveArguments {
    /// Id, unique id prefix, or name.
    pub container: String,
    /// Kill it first if it is running.
    #[serde(default)]
    pub force: bool,
    /// Also remove the anonymous volumes it created.
    #[serde(default)]
    pub volumes: bool,
}

pub(crate) struct ContainerRemoveTool {
    pub engine: Arc<Engine>,
}

impl Tool for ContainerRemoveTool {
    type Arguments = ContainerRemoveArguments;
    type Output = super::removal::Removed;

    fn declaration(&self) -> &'static Declaration {
        &DOCKER_CONTAINER_REMOVE
    }

    async fn run(
        &self,
        arguments: ContainerRemoveArguments,
        _: ToolContext,
    ) -> Result<super::removal::Removed, ToolError> {
        let container = super::names::container_reference(&arguments.container)?;
        let target = container.clone();
        let options = bollard::query_parameters::RemoveContainerOptions {
            force: arguments.force,
            v: arguments.volumes,
            link: false,
        };
        self.engine
            .run(|docker| async move { docker.remove_container(&target, Some(options)).await })
            .await?;
        Ok(super::removal::Removed {
            kind: "container",
            name: container,
        })
    }
}
