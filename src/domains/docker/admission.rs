//! The create policy (`policy.rs`) applied to what the engine will really use: a network name
//! or id resolved as the engine resolves it, and a volume by what backs it.

use bollard::query_parameters::InspectNetworkOptions;

use super::engine::Engine;
use super::names::object_reference;
use super::policy::{self, VolumeBacking};
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
