//! The create policy (`policy.rs`) applied to what the engine will really use: a network name
//! or id resolved as the engine resolves it, a volume by what backs it, and a container about
//! to start, read back from the engine.
//!
//! Why start is checked again: the container may have been created by anyone, with settings
//! the create arguments cannot express (empty masked paths, sysctls, another runtime), and bind
//! sources are paths the kernel resolves when the container starts, not when it is created.
//! `docker_container_start`, `_restart` and `_run` therefore read the container's host config
//! and mounts back from the engine and check them as a create would be checked; a container
//! this server would refuse to create is not started.
//!
//! A re-check alone cannot win a race with a swap between it and the engine's mount, so the
//! policy requires bind sources to be pinned (`policy.rs`): no one but root can change their
//! path, and no container can rename in it, which is why every container's writable mounts
//! are listed here. What remains (root on the host, containers created or started outside this
//! server after the check) is in docs/security.md.

use bollard::models::{
    HostConfig, HostConfigCgroupnsModeEnum, HostConfigIsolationEnum, SystemInfoCgroupVersionEnum,
};
use bollard::query_parameters::{
    InspectContainerOptions, InspectNetworkOptions, ListContainersOptions,
};

use super::create_policy::{self, Bind, Request, VolumeBacking};
use super::engine::Engine;
use super::names::object_reference;
use crate::config::DockerPolicy;
use crate::tool::{ToolError, ToolErrorKind};

/// The network modes the engine reads as its own before any name lookup (moby's
/// `NetworkMode.IsBridge/IsHost/IsNone/IsDefault`).
const BUILT_IN_NETWORKS: [&str; 3] = ["bridge", "host", "none"];

/// A network as the engine resolved it.
#[derive(Debug)]
pub(crate) struct Network {
    /// What to give the engine: the name of a built-in network (which the engine reads as a
    /// mode), otherwise the full id, which the engine's lookup matches before any name or
    /// prefix (a network may be named like another's id).
    pub mode: String,
    /// Its driver is `host`: the container would share the host's network namespace.
    pub host: bool,
}

/// The network a create asks for, as the engine will resolve it: `/host`, the host network's
/// id or an id prefix all resolve to the host network. Errors: a `container:` mode (another
/// container's namespace, which may be the host's, is never shared); a malformed name; a
/// network the engine does not know.
pub(crate) async fn network(engine: &Engine, requested: &str) -> Result<Network, ToolError> {
    if requested.starts_with("container:") {
        return Err(create_policy::never(&format!(
            "network `{requested}` shares another container's network namespace, which may be \
             the host's"
        )));
    }
    // `default` is the engine's word for its default network (bridge), not a name it looks up;
    // no network may be created under it.
    if requested == "default" {
        return Ok(Network {
            mode: requested.to_string(),
            host: false,
        });
    }
    let name = object_reference("network", requested)?;
    let inspected = engine
        .run(|docker| async move {
            docker
                .inspect_network(&name, None::<InspectNetworkOptions>)
                .await
        })
        .await?;
    let resolved_name = inspected.name.unwrap_or_default();
    let mode = if BUILT_IN_NETWORKS.contains(&resolved_name.as_str()) {
        resolved_name
    } else {
        inspected.id.unwrap_or_default()
    };
    if mode.is_empty() {
        return Err(ToolError::failed(format!(
            "the engine described network `{requested}` without a name or id"
        )));
    }
    Ok(Network {
        mode,
        host: inspected.driver.as_deref() == Some("host"),
    })
}

/// What backs the named volume now. A volume that does not exist yet is the engine's own: the
/// engine creates it with the local driver and no options (and the check before start sees
/// one that someone else created under that name in between).
pub(crate) async fn volume_backing(
    engine: &Engine,
    name: &str,
) -> Result<VolumeBacking, ToolError> {
    let name = object_reference("volume", name)?;
    let inspected = engine
        .run(|docker| async move { docker.inspect_volume(&name).await })
        .await;
    match inspected {
        Ok(volume) => Ok(VolumeBacking::of(&volume.driver, &volume.options)),
        Err(error) if error.kind == ToolErrorKind::NotFound => Ok(VolumeBacking::Engine),
        Err(error) => Err(error),
    }
}

/// The host paths behind every writable mount (bind or volume) of every container on the
/// engine, running or not, as the engine lists them: a container's root can rename what is in
/// them, so no bind source may lie below one (`create_policy::check`).
pub(crate) async fn writable_mounts(engine: &Engine) -> Result<Vec<String>, ToolError> {
    let options = ListContainersOptions {
        all: true,
        ..Default::default()
    };
    let containers = engine
        .run(|docker| async move { docker.list_containers(Some(options)).await })
        .await?;
    Ok(containers
        .into_iter()
        .flat_map(|container| container.mounts.unwrap_or_default())
        .filter(|mount| mount.rw == Some(true))
        .filter_map(|mount| mount.source)
        .filter(|source| !source.is_empty())
        .collect())
}

/// Whether a namespace mode (`PidMode`, `IpcMode`, `UTSMode`, `UsernsMode`) shares the host's:
/// `Ok(true)` for `host`, `Ok(false)` for the container's own (`private` lists the engine's
/// names for that), a refusal for another container's (`container:ID`) or anything else.
fn shares_host(kind: &str, mode: &str, private: &[&str]) -> Result<bool, ToolError> {
    if mode.is_empty() || private.contains(&mode) {
        Ok(false)
    } else if mode == "host" {
        Ok(true)
    } else if mode.starts_with("container:") {
        Err(create_policy::never(&format!(
            "the {kind} mode `{mode}` shares another container's namespace, which may be the \
             host's"
        )))
    } else {
        Err(create_policy::never(&format!("the {kind} mode `{mode}`")))
    }
}

/// Security options that loosen nothing the create arguments could set: `no-new-privileges`,
/// and `label=disable` where the engine adds it itself (for a privileged container or one in
/// the host's PID or IPC namespace, which their own rules decide on). Any other
/// (`seccomp=unconfined`, `apparmor=unconfined`, `systempaths=unconfined`, a profile) loosens
/// the confinement and cannot be asked for.
fn harmless_security_option(option: &str, engine_disables_labels: bool) -> bool {
    match option {
        // `false` is the default it restates.
        "no-new-privileges"
        | "no-new-privileges:true"
        | "no-new-privileges=true"
        | "no-new-privileges:false"
        | "no-new-privileges=false" => true,
        "label=disable" | "label:disable" => engine_disables_labels,
        _ => false,
    }
}

/// The paths the engine masks and makes read-only in every unprivileged container by default
/// (moby's `oci.DefaultSpec`, unchanged from 20.10 on; newer engines add to them). A
/// container's `MaskedPaths`/`ReadonlyPaths` replace the defaults, so `[]` (what
/// `--security-opt systempaths=unconfined` stores) unmasks `/proc/kcore` and leaves
/// `/proc/sys` writable, which is the host's kernel.core_pattern: host code execution.
const MASKED_PATHS: [&str; 10] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
];
const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// What the engine does by default, for the settings a create through this server leaves to
/// it: a start accepts what such a create would have stored, and nothing looser.
#[derive(Debug, Clone, Default)]
pub(crate) struct EngineDefaults {
    /// `docker info`'s `DefaultRuntime` (`runc`).
    pub runtime: String,
    /// The engine's cgroup version is 1, where the host's cgroup namespace is its default.
    pub cgroup_v1: bool,
}

impl EngineDefaults {
    pub(crate) async fn of(engine: &Engine) -> Result<Self, ToolError> {
        let info = engine
            .run(|docker| async move { docker.info().await })
            .await?;
        Ok(Self {
            runtime: info.default_runtime.unwrap_or_default(),
            cgroup_v1: info.cgroup_version == Some(SystemInfoCgroupVersionEnum::_1),
        })
    }
}

/// The host config's settings that loosen the container's confinement, decided field by field
/// (each is set by the engine's own default at a create through this server, which asks for
/// none of them). Refused, with no setting to allow them:
///
/// - `MaskedPaths`/`ReadonlyPaths` that leave out any default path (`None` is the defaults);
///   a privileged container has none, and is decided by allow_privileged instead;
/// - `Sysctls`: any (the engine admits only namespaced ones, but `net.*` and `kernel.shm*`
///   still change what the kernel grants the container);
/// - `CgroupParent` and `Cgroup`: another cgroup than the engine's own for the container,
///   out of its limits; `CgroupnsMode` `host` except on cgroup v1, where it is the engine's
///   default (the cgroup filesystem stays read-only there);
/// - a negative `OomScoreAdj` and `OomKillDisable`: the host's processes die first;
/// - a `Runtime` other than the engine's default: another runtime is another confinement;
/// - `Isolation` other than the default (Windows only; Linux engines refuse it anyway);
/// - `VolumesFrom`: another container's mounts, as they were when this one was created;
/// - `Annotations`: read by the runtime, and some runtimes act on them (crun's hooks);
/// - a bind with `shared`/`rshared` propagation: mounts made inside reach the host.
///
/// Checked elsewhere: privileged, namespaces, capabilities, devices, security options and
/// every mount (`check_start`). Harmless and allowed: `Init` (the engine's own tini as PID 1),
/// `Links` (names and environment of another container, nothing of the host), resource
/// limits, DNS, ports, log config (the daemon writes the log), `VolumeDriver` (the volumes it
/// made exist by the start and are judged by their backing, like every volume).
fn confinement(host: &HostConfig, defaults: &EngineDefaults) -> Result<(), ToolError> {
    let privileged = host.privileged.unwrap_or(false);
    for (kind, given, default) in [
        ("masked", &host.masked_paths, &MASKED_PATHS[..]),
        ("read-only", &host.readonly_paths, &READONLY_PATHS[..]),
    ] {
        if let Some(given) = given
            && !privileged
            && let Some(missing) = default
                .iter()
                .find(|path| !given.iter().any(|p| p == *path))
        {
            return Err(create_policy::never(&format!(
                "`{missing}` is not {kind} in it (`--security-opt systempaths=unconfined` or its \
                 own {} list)",
                if kind == "masked" {
                    "MaskedPaths"
                } else {
                    "ReadonlyPaths"
                }
            )));
        }
    }
    if let Some(name) = host.sysctls.iter().flatten().map(|(name, _)| name).min() {
        return Err(create_policy::never(&format!("the sysctl `{name}`")));
    }
    if let Some(parent) = host
        .cgroup_parent
        .as_deref()
        .filter(|parent| !parent.is_empty())
    {
        return Err(create_policy::never(&format!(
            "the cgroup parent `{parent}`"
        )));
    }
    if let Some(cgroup) = host.cgroup.as_deref().filter(|cgroup| !cgroup.is_empty()) {
        return Err(create_policy::never(&format!("the cgroup `{cgroup}`")));
    }
    if host.cgroupns_mode == Some(HostConfigCgroupnsModeEnum::HOST) && !defaults.cgroup_v1 {
        return Err(create_policy::never(
            "the host's cgroup namespace (the engine's default on cgroup v2 is a private one)",
        ));
    }
    if let Some(adjust) = host.oom_score_adj.filter(|adjust| *adjust < 0) {
        return Err(create_policy::never(&format!(
            "the OOM score adjustment {adjust} (below 0: the host's processes are killed first)"
        )));
    }
    if host.oom_kill_disable == Some(true) {
        return Err(create_policy::never("disabling the OOM killer"));
    }
    if let Some(runtime) = host
        .runtime
        .as_deref()
        .filter(|runtime| !runtime.is_empty() && *runtime != defaults.runtime)
    {
        return Err(create_policy::never(&format!(
            "the runtime `{runtime}` (the engine's default is `{}`)",
            defaults.runtime
        )));
    }
    if let Some(isolation) = host.isolation.filter(|isolation| {
        !matches!(
            isolation,
            HostConfigIsolationEnum::EMPTY | HostConfigIsolationEnum::DEFAULT
        )
    }) {
        return Err(create_policy::never(&format!(
            "the isolation `{isolation}`"
        )));
    }
    if let Some(from) = host.volumes_from.iter().flatten().next() {
        return Err(create_policy::never(&format!(
            "the volumes of container `{from}`"
        )));
    }
    if let Some(name) = host
        .annotations
        .iter()
        .flatten()
        .map(|(name, _)| name)
        .min()
    {
        return Err(create_policy::never(&format!("the annotation `{name}`")));
    }
    Ok(())
}

/// Checks a container before it is started, as the engine will run it now: its host config
/// and every mount, bind sources and bound volumes resolved on the host as they are at this
/// moment. `container` is an id. Errors: the first refusal, naming its setting (or that none
/// allows it); the engine's errors reading the container, its network or volumes.
pub(crate) async fn check_start(
    engine: &Engine,
    rules: &DockerPolicy,
    container: &str,
) -> Result<(), ToolError> {
    let target = container.to_string();
    let inspected = engine
        .run(|docker| async move {
            docker
                .inspect_container(&target, None::<InspectContainerOptions>)
                .await
        })
        .await?;
    let host = inspected.host_config.unwrap_or_default();
    let privileged = host.privileged.unwrap_or(false);
    let host_pid = shares_host("PID", host.pid_mode.as_deref().unwrap_or_default(), &[])?;
    let host_ipc = shares_host(
        "IPC",
        host.ipc_mode.as_deref().unwrap_or_default(),
        &["private", "shareable", "none"],
    )?;
    let host_uts = shares_host("UTS", host.uts_mode.as_deref().unwrap_or_default(), &[])?;
    let host_userns = shares_host(
        "user namespace",
        host.userns_mode.as_deref().unwrap_or_default(),
        &[],
    )?;
    let network_mode = host.network_mode.clone().unwrap_or_default();
    let host_network = match network_mode.as_str() {
        "" | "default" | "bridge" | "none" => false,
        "host" => true,
        mode => network(engine, mode).await?.host,
    };
    let mounts = inspected.mounts.unwrap_or_default();
    let mut binds = Vec::new();
    let mut volumes = Vec::new();
    for mount in &mounts {
        match mount.typ.as_deref().unwrap_or_default() {
            "bind" => {
                // Shared propagation carries mounts made inside the container out to the host.
                if let Some(propagation @ ("shared" | "rshared")) = mount.propagation.as_deref() {
                    return Err(create_policy::never(&format!(
                        "the bind mount of `{}` with `{propagation}` propagation",
                        mount.source.as_deref().unwrap_or_default()
                    )));
                }
                binds.push(Bind {
                    source: mount.source.as_deref().unwrap_or_default(),
                    writable: mount.rw != Some(false),
                });
            }
            "volume" => {
                let name = mount.name.as_deref().unwrap_or_default();
                volumes.push((name, volume_backing(engine, name).await?));
            }
            "tmpfs" => {}
            other => return Err(create_policy::never(&format!("a mount of type `{other}`"))),
        }
    }
    let capabilities = host.cap_add.clone().unwrap_or_default();
    // The settings first, so a refusal names the rule that would allow the container.
    create_policy::check(
        rules,
        &Request {
            privileged,
            host_pid,
            host_network,
            capabilities: &capabilities,
            binds,
            volumes,
            writable_mounts: writable_mounts(engine).await?,
        },
    )?;
    if host_ipc {
        return Err(create_policy::never("the host's IPC namespace"));
    }
    if host_uts {
        return Err(create_policy::never("the host's UTS namespace"));
    }
    if host_userns {
        return Err(create_policy::never(
            "the host's user namespace (userns_mode `host`, leaving the engine's remapping)",
        ));
    }
    if let Some(device) = host.devices.iter().flatten().next() {
        return Err(create_policy::never(&format!(
            "the host device `{}`",
            device.path_on_host.as_deref().unwrap_or_default()
        )));
    }
    if host.device_cgroup_rules.iter().flatten().next().is_some() {
        return Err(create_policy::never("device cgroup rules"));
    }
    if host.device_requests.iter().flatten().next().is_some() {
        return Err(create_policy::never(
            "device requests (GPUs and other devices)",
        ));
    }
    let engine_disables_labels = privileged || host_pid || host_ipc;
    if let Some(option) = host
        .security_opt
        .iter()
        .flatten()
        .find(|option| !harmless_security_option(option, engine_disables_labels))
    {
        return Err(create_policy::never(&format!(
            "the security option `{option}`"
        )));
    }
    confinement(&host, &EngineDefaults::of(engine).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_modes_are_read_as_the_engine_reads_them() {
        assert_eq!(shares_host("PID", "", &[]), Ok(false));
        assert_eq!(shares_host("PID", "host", &[]), Ok(true));
        assert_eq!(shares_host("IPC", "shareable", &["shareable"]), Ok(false));
        let other = shares_host("PID", "container:abc", &[]).expect_err("another container's");
        assert!(
            other
                .message
                .contains("shares another container's namespace")
        );
        assert!(other.message.contains("no setting allows it"));
        for odd in ["HOST", "host:", " host", "private"] {
            assert!(shares_host("PID", odd, &[]).is_err(), "{odd:?}");
        }
        assert!(harmless_security_option("no-new-privileges", false));
        assert!(harmless_security_option("label=disable", true));
        for loosening in ["seccomp=unconfined", "apparmor=unconfined", "label=disable"] {
            assert!(!harmless_security_option(loosening, false));
        }
    }

    #[test]
    fn settings_that_loosen_the_confinement_are_refused_field_by_field() {
        let defaults = EngineDefaults {
            runtime: "runc".into(),
            cgroup_v1: false,
        };
        let as_created = HostConfig {
            masked_paths: Some(MASKED_PATHS.iter().map(|path| path.to_string()).collect()),
            readonly_paths: Some(READONLY_PATHS.iter().map(|p| p.to_string()).collect()),
            runtime: Some("runc".into()),
            cgroupns_mode: Some(HostConfigCgroupnsModeEnum::PRIVATE),
            init: Some(true),
            links: Some(vec!["/other:/me/other".into()]),
            ..Default::default()
        };
        assert!(confinement(&as_created, &defaults).is_ok());
        assert!(
            confinement(&HostConfig::default(), &defaults).is_ok(),
            "None: defaults"
        );
        let refused = |changed: HostConfig| {
            confinement(&changed, &defaults)
                .expect_err("loosened")
                .message
        };
        let unconfined = refused(HostConfig {
            masked_paths: Some(vec![]),
            readonly_paths: Some(vec![]),
            ..Default::default()
        });
        assert!(
            unconfined.contains("`/proc/asound` is not masked in it"),
            "{unconfined}"
        );
        assert!(
            unconfined
                .ends_with("no setting allows it (docker_container_create cannot ask for it)")
        );
        let shortened = refused(HostConfig {
            readonly_paths: Some(vec!["/proc/bus".into()]),
            ..Default::default()
        });
        assert!(
            shortened.contains("`/proc/fs` is not read-only in it"),
            "{shortened}"
        );
        let privileged = HostConfig {
            privileged: Some(true),
            masked_paths: Some(vec![]),
            ..Default::default()
        };
        assert!(
            confinement(&privileged, &defaults).is_ok(),
            "allow_privileged decides"
        );
        for (changed, why) in [
            (
                HostConfig {
                    sysctls: Some([("kernel.shmmax".to_string(), "1".to_string())].into()),
                    ..Default::default()
                },
                "the sysctl `kernel.shmmax`",
            ),
            (
                HostConfig {
                    cgroup_parent: Some("/system.slice".into()),
                    ..Default::default()
                },
                "the cgroup parent `/system.slice`",
            ),
            (
                HostConfig {
                    cgroupns_mode: Some(HostConfigCgroupnsModeEnum::HOST),
                    ..Default::default()
                },
                "the host's cgroup namespace",
            ),
            (
                HostConfig {
                    oom_score_adj: Some(-500),
                    ..Default::default()
                },
                "the OOM score adjustment -500",
            ),
            (
                HostConfig {
                    oom_kill_disable: Some(true),
                    ..Default::default()
                },
                "disabling the OOM killer",
            ),
            (
                HostConfig {
                    runtime: Some("runsc".into()),
                    ..Default::default()
                },
                "the runtime `runsc`",
            ),
            (
                HostConfig {
                    volumes_from: Some(vec!["other".into()]),
                    ..Default::default()
                },
                "the volumes of container `other`",
            ),
            (
                HostConfig {
                    annotations: Some([("run.oci.x".to_string(), String::new())].into()),
                    ..Default::default()
                },
                "the annotation `run.oci.x`",
            ),
        ] {
            assert!(refused(changed).contains(why), "{why}");
        }
        let v1 = EngineDefaults {
            cgroup_v1: true,
            ..defaults.clone()
        };
        let host_cgroupns = HostConfig {
            cgroupns_mode: Some(HostConfigCgroupnsModeEnum::HOST),
            oom_score_adj: Some(500),
            ..Default::default()
        };
        assert!(
            confinement(&host_cgroupns, &v1).is_ok(),
            "cgroup v1's default"
        );
    }
}
