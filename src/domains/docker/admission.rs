//! The create policy (`policy.rs`) applied to what the engine will really use: a network name
//! or id resolved as the engine resolves it, a volume by what backs it, and a container about
//! to start, read back from the engine.
//!
//! Why start is checked again: bind sources and bound volumes are paths the kernel resolves
//! when the container starts, not when it is created, so a directory swapped for a symlink
//! after the create (by anyone who can write beside it, a container with a writable bind
//! included) would otherwise lead out of the bind mount roots. `docker_container_start`,
//! `_restart` and `_run` therefore read the container's host config and mounts back from the
//! engine and check them as the engine would resolve them now, whoever created the container;
//! a container this server would refuse to create is not started.
//!
//! What remains is a race: a swap between this check and the engine's mount (milliseconds)
//! is not seen, and starts this server does not make (restart policies, a daemon restart, the
//! docker CLI) are not checked at all. docs/security.md says how to keep bind sources out of
//! reach of containers.

use bollard::query_parameters::{InspectContainerOptions, InspectNetworkOptions};

use super::engine::Engine;
use super::names::object_reference;
use super::policy::{self, Request, VolumeBacking};
use crate::config::DockerPolicy;
use crate::tool::{ToolError, ToolErrorKind};

/// The network modes the engine reads as its own before any name lookup (moby's
/// `NetworkMode.IsBridge/IsHost/IsNone/IsDefault`).
const BUILT_IN_NETWORKS: [&str; 3] = ["bridge", "host", "none"];

/// A network as the engine resolved it.
#[derive(Debug)]
pub struct Network {
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
pub async fn network(engine: &Engine, requested: &str) -> Result<Network, ToolError> {
    if requested.starts_with("container:") {
        return Err(policy::never(&format!(
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
pub async fn volume_backing(engine: &Engine, name: &str) -> Result<VolumeBacking, ToolError> {
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

/// Whether a namespace mode (`PidMode`, `IpcMode`, `UTSMode`, `UsernsMode`) shares the host's:
/// `Ok(true)` for `host`, `Ok(false)` for the container's own (`private` lists the engine's
/// names for that), a refusal for another container's (`container:ID`) or anything else.
fn shares_host(kind: &str, mode: &str, private: &[&str]) -> Result<bool, ToolError> {
    if mode.is_empty() || private.contains(&mode) {
        Ok(false)
    } else if mode == "host" {
        Ok(true)
    } else if mode.starts_with("container:") {
        Err(policy::never(&format!(
            "the {kind} mode `{mode}` shares another container's namespace, which may be the \
             host's"
        )))
    } else {
        Err(policy::never(&format!("the {kind} mode `{mode}`")))
    }
}

/// Security options that loosen nothing the create arguments could set: `no-new-privileges`,
/// and `label=disable` where the engine adds it itself (for a privileged container or one in
/// the host's PID or IPC namespace, which their own rules decide on). Any other
/// (`seccomp=unconfined`, `apparmor=unconfined`, `systempaths=unconfined`, a profile) loosens
/// the confinement and cannot be asked for.
fn harmless_security_option(option: &str, engine_disables_labels: bool) -> bool {
    match option {
        "no-new-privileges" | "no-new-privileges:true" | "no-new-privileges=true" => true,
        "label=disable" | "label:disable" => engine_disables_labels,
        _ => false,
    }
}

/// Checks a container before it is started, as the engine will run it now: its host config
/// and every mount, bind sources and bound volumes resolved on the host as they are at this
/// moment. `container` is an id. Errors: the first refusal, naming its setting (or that none
/// allows it); the engine's errors reading the container, its network or volumes.
pub async fn check_start(
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
    let network_mode = host.network_mode.unwrap_or_default();
    let host_network = match network_mode.as_str() {
        "" | "default" | "bridge" | "none" => false,
        "host" => true,
        mode => network(engine, mode).await?.host,
    };
    let mounts = inspected.mounts.unwrap_or_default();
    let mut bind_sources = Vec::new();
    let mut volumes = Vec::new();
    for mount in &mounts {
        match mount.typ.as_deref().unwrap_or_default() {
            "bind" => bind_sources.push(mount.source.as_deref().unwrap_or_default()),
            "volume" => {
                let name = mount.name.as_deref().unwrap_or_default();
                volumes.push((name, volume_backing(engine, name).await?));
            }
            "tmpfs" => {}
            other => return Err(policy::never(&format!("a mount of type `{other}`"))),
        }
    }
    let capabilities = host.cap_add.unwrap_or_default();
    // The settings first, so a refusal names the rule that would allow the container.
    policy::check(
        rules,
        &Request {
            privileged,
            host_pid,
            host_network,
            capabilities: &capabilities,
            bind_sources,
            volumes,
        },
    )?;
    if host_ipc {
        return Err(policy::never("the host's IPC namespace"));
    }
    if host_uts {
        return Err(policy::never("the host's UTS namespace"));
    }
    if host_userns {
        return Err(policy::never(
            "the host's user namespace (userns_mode `host`, leaving the engine's remapping)",
        ));
    }
    if let Some(device) = host.devices.iter().flatten().next() {
        return Err(policy::never(&format!(
            "the host device `{}`",
            device.path_on_host.as_deref().unwrap_or_default()
        )));
    }
    if host.device_cgroup_rules.iter().flatten().next().is_some() {
        return Err(policy::never("device cgroup rules"));
    }
    if host.device_requests.iter().flatten().next().is_some() {
        return Err(policy::never("device requests (GPUs and other devices)"));
    }
    let engine_disables_labels = privileged || host_pid || host_ipc;
    if let Some(option) = host
        .security_opt
        .iter()
        .flatten()
        .find(|option| !harmless_security_option(option, engine_disables_labels))
    {
        return Err(policy::never(&format!("the security option `{option}`")));
    }
    Ok(())
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
}
