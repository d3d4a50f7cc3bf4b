//! `docker_container_create` and `docker_container_run` (admin): a container from a curated
//! set of options, checked against the create policy (`policy.rs`) before the engine hears of
//! it. The policy decides on the values as the engine will read them (the network as the
//! engine resolves it, capabilities in its spelling, bind sources resolved on the host,
//! volumes by what backs them), and the create body carries exactly those canonical values.
//! Run is create, the check before start (`admission.rs`), then start; a container that
//! cannot start is removed again, so a failed run leaves nothing behind.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bollard::models::{
    ContainerCreateBody, HostConfig, Mount, MountType, PortBinding, RestartPolicy,
    RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptions, RemoveContainerOptions, StartContainerOptions,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::admission;
use super::create_policy::{self, Admitted, Bind, Request};
use super::engine::Engine;
use super::names::{container_reference, image_reference, object_reference, short_id};
use crate::config::DockerPolicy;
use crate::tool::{Declaration, Domain, Render, Tool, ToolContext, ToolError};

pub(crate) static DOCKER_CONTAINER_CREATE: Declaration = Declaration::admin(
    Domain::Docker,
    "docker_container_create",
    "Create a Docker container",
    "Creates a container from an image without starting it (`docker create`): name, command, \
     entrypoint, environment, labels, published ports, mounts (bind, volume, tmpfs), network, \
     restart policy, memory and CPU limits, user, working dir, read-only root. Privileged \
     mode, the host's PID or network namespace, added capabilities, bind mounts and volumes \
     backed by host paths or other filesystems are refused unless the server's create policy \
     (docker.policy) allows them, judged as the engine will read them; a refusal names the \
     rule.",
);
pub(crate) static DOCKER_CONTAINER_RUN: Declaration = Declaration::admin(
    Domain::Docker,
    "docker_container_run",
    "Run a Docker container",
    "Creates and starts a container, detached (`docker run -d`), with the options and the \
     create policy of docker_container_create, checked again just before the start. If it \
     cannot start, the created container is removed again.",
);

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum MountKind {
    Bind,
    Volume,
    Tmpfs,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct MountArgument {
    #[serde(rename = "type")]
    pub kind: MountKind,
    /// Bind: the host path; volume: the volume's name (created if missing); tmpfs: none.
    pub source: Option<String>,
    /// The path inside the container.
    pub target: String,
    #[serde(default)]
    pub read_only: bool,
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Restart {
    No,
    OnFailure,
    Always,
    UnlessStopped,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateArguments {
    pub image: String,
    pub name: Option<String>,
    pub command: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub env: Option<BTreeMap<String, String>>,
    pub labels: Option<BTreeMap<String, String>>,
    /// `[HOST_IP:]HOST_PORT:CONTAINER_PORT[/tcp|udp]`, e.g. `127.0.0.1:8080:80`.
    pub ports: Option<Vec<String>>,
    pub mounts: Option<Vec<MountArgument>>,
    /// A network to join by name, id or id prefix (default bridge); `host` and `none` are
    /// Docker's own. Any spelling that resolves to the host network needs allow_host_network;
    /// `container:ID` (another container's namespace) is refused.
    pub network: Option<String>,
    /// `host` to share the host's PID namespace (policy: allow_host_pid); nothing else.
    pub pid_mode: Option<String>,
    #[serde(default)]
    pub privileged: bool,
    pub cap_add: Option<Vec<String>>,
    pub restart: Option<Restart>,
    pub memory_bytes: Option<i64>,
    pub cpus: Option<f64>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    #[serde(default)]
    pub read_only_rootfs: bool,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct ContainerCreated {
    pub id: String,
    pub name: String,
    pub image: String,
    /// created, or running after a run.
    pub state: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl Render for ContainerCreated {
    fn render_text(&self) -> String {
        let mut text = format!(
            "{} {} from {}: {}",
            short_id(&self.id),
            crate::render::text(&self.name),
            crate::render::text(&self.image),
            crate::render::text(&self.state)
        );
        for warning in &self.warnings {
            text.push_str(&format!("\nwarning: {}", crate::render::sentence(warning)));
        }
        text
    }
}

/// `[HOST_IP:]HOST_PORT:CONTAINER_PORT[/PROTO]` → (`PORT/PROTO`, binding).
fn port(spec: &str) -> Result<(String, PortBinding), ToolError> {
    let invalid = || {
        ToolError::invalid_arguments(format!(
            "port `{spec}` is not [HOST_IP:]HOST_PORT:CONTAINER_PORT[/tcp|udp]"
        ))
    };
    let (mapping, proto) = match spec.rsplit_once('/') {
        Some((mapping, proto @ ("tcp" | "udp" | "sctp"))) => (mapping, proto),
        Some(_) => return Err(invalid()),
        None => (spec, "tcp"),
    };
    let parts: Vec<&str> = mapping.rsplitn(3, ':').collect();
    let (container, host_port, host_ip) = match parts.as_slice() {
        [container, host] => (*container, *host, ""),
        [container, host, ip] => (*container, *host, ip.trim_matches(['[', ']'])),
        _ => return Err(invalid()),
    };
    let valid_port = |text: &str| text.parse::<u16>().is_ok_and(|port| port > 0);
    if !valid_port(container) || !valid_port(host_port) {
        return Err(invalid());
    }
    if !host_ip.is_empty() && host_ip.parse::<std::net::IpAddr>().is_err() {
        return Err(invalid());
    }
    Ok((
        format!("{container}/{proto}"),
        PortBinding {
            host_ip: (!host_ip.is_empty()).then(|| host_ip.to_string()),
            host_port: Some(host_port.to_string()),
        },
    ))
}

/// The engine's create body for checked arguments, carrying the canonical values the policy
/// decided on: `admitted` capabilities and bind sources (in the arguments' order) and the
/// resolved `network` mode.
fn body(
    arguments: &CreateArguments,
    image: String,
    admitted: Admitted,
    network: Option<String>,
) -> Result<ContainerCreateBody, ToolError> {
    let mut port_bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    for spec in arguments.ports.iter().flatten() {
        let (key, binding) = port(spec)?;
        port_bindings
            .entry(key)
            .or_insert_with(|| Some(Vec::new()))
            .get_or_insert_with(Vec::new)
            .push(binding);
    }
    let mut mounts = Vec::new();
    let mut bind_sources = admitted.bind_sources.into_iter();
    for mount in arguments.mounts.iter().flatten() {
        if !mount.target.starts_with('/') {
            return Err(ToolError::invalid_arguments(format!(
                "mount target `{}` must be an absolute path in the container",
                mount.target
            )));
        }
        let (typ, source) = match (mount.kind, &mount.source) {
            (MountKind::Bind, Some(_)) => {
                let Some(real) = bind_sources.next() else {
                    return Err(ToolError::failed(
                        "a bind mount was not checked by the create policy",
                    ));
                };
                (MountType::BIND, Some(real))
            }
            (MountKind::Volume, Some(source)) => {
                (MountType::VOLUME, Some(object_reference("volume", source)?))
            }
            (MountKind::Volume, None) => (MountType::VOLUME, None),
            (MountKind::Tmpfs, None) => (MountType::TMPFS, None),
            (MountKind::Bind, None) => {
                return Err(ToolError::invalid_arguments(
                    "a bind mount needs its host path as `source`",
                ));
            }
            (MountKind::Tmpfs, Some(_)) => {
                return Err(ToolError::invalid_arguments(
                    "a tmpfs mount takes no `source`",
                ));
            }
        };
        mounts.push(Mount {
            target: Some(mount.target.clone()),
            source,
            typ: Some(typ),
            read_only: Some(mount.read_only),
            ..Default::default()
        });
    }
    if let Some(cpus) = arguments.cpus
        && !(cpus > 0.0 && cpus <= 1024.0)
    {
        return Err(ToolError::invalid_arguments(format!(
            "cpus {cpus} is out of range: give a positive number of CPUs"
        )));
    }
    if arguments
        .memory_bytes
        .is_some_and(|bytes| bytes < 6 * 1024 * 1024)
    {
        return Err(ToolError::invalid_arguments(
            "memory_bytes is below Docker's minimum of 6 MiB",
        ));
    }
    let restart = arguments.restart.map(|restart| RestartPolicy {
        name: Some(match restart {
            Restart::No => RestartPolicyNameEnum::NO,
            Restart::OnFailure => RestartPolicyNameEnum::ON_FAILURE,
            Restart::Always => RestartPolicyNameEnum::ALWAYS,
            Restart::UnlessStopped => RestartPolicyNameEnum::UNLESS_STOPPED,
        }),
        maximum_retry_count: None,
    });
    let host_config = HostConfig {
        port_bindings: (!port_bindings.is_empty()).then_some(port_bindings.clone()),
        mounts: (!mounts.is_empty()).then_some(mounts),
        network_mode: network,
        pid_mode: arguments.pid_mode.clone(),
        privileged: Some(arguments.privileged),
        cap_add: (!admitted.capabilities.is_empty()).then_some(admitted.capabilities),
        restart_policy: restart,
        memory: arguments.memory_bytes,
        nano_cpus: arguments.cpus.map(|cpus| (cpus * 1e9) as i64),
        readonly_rootfs: Some(arguments.read_only_rootfs),
        ..Default::default()
    };
    Ok(ContainerCreateBody {
        image: Some(image),
        cmd: arguments.command.clone(),
        entrypoint: arguments.entrypoint.clone(),
        env: arguments.env.as_ref().map(|env| {
            env.iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect()
        }),
        labels: arguments
            .labels
            .as_ref()
            .map(|labels| labels.clone().into_iter().collect()),
        exposed_ports: (!port_bindings.is_empty()).then(|| port_bindings.keys().cloned().collect()),
        user: arguments.user.clone(),
        working_dir: arguments.working_dir.clone(),
        host_config: Some(host_config),
        ..Default::default()
    })
}

pub(crate) struct ContainerCreateTool {
    pub engine: Arc<Engine>,
    pub policy: DockerPolicy,
    /// Start it too (run).
    pub start: bool,
}

impl Tool for ContainerCreateTool {
    type Arguments = CreateArguments;
    type Output = ContainerCreated;

    fn declaration(&self) -> &'static Declaration {
        if self.start {
            &DOCKER_CONTAINER_RUN
        } else {
            &DOCKER_CONTAINER_CREATE
        }
    }

    async fn run(
        &self,
        arguments: CreateArguments,
        _: ToolContext,
    ) -> Result<ContainerCreated, ToolError> {
        let image = image_reference(&arguments.image)?;
        let name = arguments
            .name
            .as_deref()
            .map(container_reference)
            .transpose()?;
        // The engine reads exactly `host` as the host's PID namespace; anything else is either
        // invalid to it or another container's namespace, which may be the host's.
        if let Some(mode) = &arguments.pid_mode
            && mode != "host"
        {
            if mode.starts_with("container:") {
                return Err(create_policy::never(&format!(
                    "pid_mode `{mode}` shares another container's PID namespace, which may be \
                     the host's"
                )));
            }
            return Err(ToolError::invalid_arguments(format!(
                "pid_mode `{mode}` is not supported: give `host` or leave it out"
            )));
        }
        let network = match arguments.network.as_deref() {
            Some(requested) => Some(admission::network(&self.engine, requested).await?),
            None => None,
        };
        let binds = arguments
            .mounts
            .iter()
            .flatten()
            .filter(|mount| matches!(mount.kind, MountKind::Bind))
            .filter_map(|mount| {
                mount.source.as_deref().map(|source| Bind {
                    source,
                    writable: !mount.read_only,
                })
            })
            .collect();
        let mut volumes = Vec::new();
        for mount in arguments.mounts.iter().flatten() {
            if let (MountKind::Volume, Some(name)) = (mount.kind, mount.source.as_deref()) {
                volumes.push((name, admission::volume_backing(&self.engine, name).await?));
            }
        }
        let admitted = create_policy::check(
            &self.policy,
            &Request {
                privileged: arguments.privileged,
                host_pid: arguments.pid_mode.as_deref() == Some("host"),
                host_network: network.as_ref().is_some_and(|network| network.host),
                capabilities: arguments.cap_add.as_deref().unwrap_or_default(),
                binds,
                volumes,
                writable_mounts: admission::writable_mounts(&self.engine).await?,
            },
        )?;
        let body = body(
            &arguments,
            image.clone(),
            admitted,
            network.map(|network| network.mode),
        )?;
        let options = CreateContainerOptions {
            name: name.clone(),
            platform: String::new(),
        };
        let created = self
            .engine
            .run(|docker| async move { docker.create_container(Some(options), body).await })
            .await?;
        let id = created.id.clone();
        if self.start {
            // The check before every start, as docker_container_start makes it: what the
            // engine stored is what it will mount, whoever changed the host in between.
            let started = match admission::check_start(&self.engine, &self.policy, &id).await {
                Ok(()) => {
                    let target = id.clone();
                    self.engine
                        .run(|docker| async move {
                            docker
                                .start_container(&target, None::<StartContainerOptions>)
                                .await
                        })
                        .await
                        .map_err(|error| {
                            ToolError::failed(format!(
                                "the container was created but did not start: {error}"
                            ))
                        })
                }
                Err(refusal) => Err(ToolError::new(
                    refusal.kind,
                    format!(
                        "the container was created but not started: {}",
                        refusal.message
                    ),
                )),
            };
            if let Err(error) = started {
                // Leave nothing behind: the run failed as a whole.
                let target = id.clone();
                let removed = self
                    .engine
                    .run(|docker| async move {
                        let options = RemoveContainerOptions {
                            force: true,
                            ..Default::default()
                        };
                        docker.remove_container(&target, Some(options)).await
                    })
                    .await;
                let cleanup = match removed {
                    Ok(()) => "the created container was removed again".to_string(),
                    Err(failed) => format!(
                        "the created container {} could not be removed: {failed}",
                        short_id(&id)
                    ),
                };
                return Err(ToolError::new(
                    error.kind,
                    format!("{}; {cleanup}", error.message),
                ));
            }
        }
        let target = id.clone();
        let inspected = self
            .engine
            .run(|docker| async move {
                docker
                    .inspect_container(
                        &target,
                        None::<bollard::query_parameters::InspectContainerOptions>,
                    )
                    .await
            })
            .await?;
        Ok(ContainerCreated {
            id,
            name: inspected
                .name
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string(),
            image,
            state: inspected
                .state
                .and_then(|state| state.status)
                .map(|status| status.to_string())
                .unwrap_or_default(),
            warnings: created.warnings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_read_as_docker_reads_them() {
        let (key, binding) = port("127.0.0.1:8080:80").expect("valid");
        assert_eq!(key, "80/tcp");
        assert_eq!(binding.host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(binding.host_port.as_deref(), Some("8080"));
        assert_eq!(port("5353:53/udp").expect("valid").0, "53/udp");
        for bad in [
            "80",
            "x:80",
            "0:80",
            "8080:80/icmp",
            "nohost:8080:80",
            "1:2:3:4",
        ] {
            assert!(port(bad).is_err(), "{bad}");
        }
    }
}
