//! Docker networks: `docker_network_list` and `docker_network_inspect` (read),
//! `docker_network_connect` and `docker_network_disconnect` a container (operate),
//! `docker_network_create` and `docker_network_remove` (admin).

use std::collections::BTreeMap;
use std::sync::Arc;

use bollard::models::{
    Ipam, Network, NetworkConnectRequest, NetworkCreateRequest, NetworkDisconnectRequest,
};
use bollard::query_parameters::{InspectNetworkOptions, ListNetworksOptions};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::engine::Engine;
use super::names::{container_reference, object_reference, short_id, time_text};
use super::removal::Removed;
use crate::tool::{Declaration, Domain, Render, Tool, ToolContext, ToolError};

pub(crate) static DOCKER_NETWORK_LIST: Declaration = Declaration::read(
    Domain::Docker,
    "docker_network_list",
    "Docker networks",
    "Networks, like `docker network ls`: name, id, driver, scope, subnets, internal. The \
     built-in bridge, host and none networks included.",
);
pub(crate) static DOCKER_NETWORK_INSPECT: Declaration = Declaration::read(
    Domain::Docker,
    "docker_network_inspect",
    "Docker network details",
    "One network (by name or id): driver, subnets and gateways, options, labels, and the \
     containers attached with their addresses.",
);
pub(crate) static DOCKER_NETWORK_CONNECT: Declaration = Declaration::operate(
    Domain::Docker,
    "docker_network_connect",
    "Connect a container to a Docker network",
    "Attaches a container to a network (`docker network connect`), optionally with aliases. \
     Reversed by docker_network_disconnect.",
);
pub(crate) static DOCKER_NETWORK_DISCONNECT: Declaration = Declaration::operate(
    Domain::Docker,
    "docker_network_disconnect",
    "Disconnect a container from a Docker network",
    "Detaches a container from a network (`docker network disconnect`); `force` for a \
     container that is not running.",
);
pub(crate) static DOCKER_NETWORK_CREATE: Declaration = Declaration::admin(
    Domain::Docker,
    "docker_network_create",
    "Create a Docker network",
    "Creates a network (`docker network create`): driver (default bridge), optional subnet and \
     gateway, internal (no outside access), labels.",
);
pub(crate) static DOCKER_NETWORK_REMOVE: Declaration = Declaration::admin(
    Domain::Docker,
    "docker_network_remove",
    "Remove a Docker network",
    "Removes a network no container is attached to (`docker network rm`). The built-in bridge, \
     host and none networks cannot be removed.",
)
.destructive();

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NetworkListArguments {
    /// Part of a network name.
    pub name: Option<String>,
    /// bridge, overlay, macvlan, ...
    pub driver: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct NetworkList {
    pub networks: Vec<NetworkRow>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct NetworkRow {
    pub name: String,
    pub id: String,
    pub driver: String,
    pub scope: String,
    /// CIDR subnets from the network's IPAM configuration.
    pub subnets: Vec<String>,
    pub internal: bool,
    pub created: String,
}

impl Render for NetworkList {
    fn render_text(&self) -> String {
        self.networks
            .iter()
            .map(|network| {
                let mut line = format!(
                    "{} {} {} {}",
                    network.id,
                    crate::render::text(&network.name),
                    crate::render::text(&network.driver),
                    crate::render::text(&network.scope)
                );
                if !network.subnets.is_empty() {
                    line.push_str(&format!(" {}", crate::render::join(&network.subnets, ", ")));
                }
                if network.internal {
                    line.push_str(" internal");
                }
                line
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn subnets(ipam: Option<&Ipam>) -> (Vec<String>, Vec<String>) {
    let configs = ipam
        .and_then(|ipam| ipam.config.clone())
        .unwrap_or_default();
    (
        configs
            .iter()
            .filter_map(|config| config.subnet.clone())
            .collect(),
        configs
            .iter()
            .filter_map(|config| config.gateway.clone())
            .collect(),
    )
}

fn row(network: Network) -> NetworkRow {
    NetworkRow {
        name: network.name.unwrap_or_default(),
        id: short_id(network.id.as_deref().unwrap_or_default()),
        driver: network.driver.unwrap_or_default(),
        scope: network.scope.unwrap_or_default(),
        subnets: subnets(network.ipam.as_ref()).0,
        internal: network.internal.unwrap_or(false),
        created: network.created.map(time_text).unwrap_or_default(),
    }
}

pub(crate) struct NetworkListTool {
    pub engine: Arc<Engine>,
}

impl Tool for NetworkListTool {
    type Arguments = NetworkListArguments;
    type Output = NetworkList;

    fn declaration(&self) -> &'static Declaration {
        &DOCKER_NETWORK_LIST
    }

    async fn run(
        &self,
        arguments: NetworkListArguments,
        _: ToolContext,
    ) -> Result<NetworkList, ToolError> {
        let mut filters = std::collections::HashMap::new();
        if let Some(name) = arguments.name {
            filters.insert("name".to_string(), vec![name]);
        }
        if let Some(driver) = arguments.driver {
            filters.insert("driver".to_string(), vec![driver]);
        }
        let options = ListNetworksOptions {
            filters: (!filters.is_empty()).then_some(filters),
        };
        let mut networks: Vec<NetworkRow> = self
            .engine
            .run(|docker| async move { docker.list_networks(Some(options)).await })
            .await?
            .into_iter()
            .map(row)
            .collect();
        networks.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(NetworkList { networks })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NetworkArguments {
    /// Name, id or unique id prefix.
    pub network: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct NetworkDetails {
    pub name: String,
    /// The full id.
    pub id: String,
    pub driver: String,
    pub scope: String,
    pub created: String,
    pub subnets: Vec<String>,
    pub gateways: Vec<String>,
    pub internal: bool,
    pub attachable: bool,
    pub options: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    /// Attached containers: name → IPv4 address (CIDR).
    pub containers: BTreeMap<String, String>,
}

impl Render for NetworkDetails {
    fn render_text(&self) -> String {
        let mut lines = vec![format!(
            "{} {} {} {} subnets {} gateways {}",
            short_id(&self.id),
            crate::render::text(&self.name),
            crate::render::text(&self.driver),
            crate::render::text(&self.scope),
            crate::render::join(&self.subnets, ", "),
            crate::render::join(&self.gateways, ", ")
        )];
        for (container, address) in &self.containers {
            lines.push(format!(
                "container {} {}",
                crate::render::text(container),
                crate::render::text(address)
            ));
        }
        lines.join("\n")
    }
}

pub(crate) struct NetworkInspectTool {
    pub engine: Arc<Engine>,
}

impl Tool for NetworkInspectTool {
    type Arguments = NetworkArguments;
    type Output = NetworkDetails;

    fn declaration(&self) -> &'static Declaration {
        &DOCKER_NETWORK_INSPECT
    }

    async fn run(
        &self,
        arguments: NetworkArguments,
        _: ToolContext,
    ) -> Result<NetworkDetails, ToolError> {
        let network = object_reference("network", &arguments.network)?;
        let inspected = self
            .engine
            .run(|docker| async move {
                docker
                    .inspect_network(&network, None::<InspectNetworkOptions>)
                    .await
            })
            .await?;
        let (subnets, gateways) = subnets(inspected.ipam.as_ref());
        Ok(NetworkDetails {
            name: inspected.name.unwrap_or_default(),
            id: inspected.id.unwrap_or_default(),
            driver: inspected.driver.unwrap_or_default(),
            scope: inspected.scope.unwrap_or_default(),
            created: inspected.created.map(time_text).unwrap_or_default(),
            subnets,
            gateways,
            internal: inspected.internal.unwrap_or(false),
            attachable: inspected.attachable.unwrap_or(false),
            options: inspected.options.unwrap_or_default().into_iter().collect(),
            labels: inspected.labels.unwrap_or_default().into_iter().collect(),
            containers: inspected
                .containers
                .unwrap_or_default()
                .into_values()
                .map(|endpoint| {
                    (
                        endpoint.name.unwrap_or_default(),
                        endpoint.ipv4_address.unwrap_or_default(),
                    )
                })
                .collect(),
        })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AttachmentArguments {
    /// Name, id or unique id prefix.
    pub network: String,
    /// Id, unique id prefix, or name.
    pub container: String,
    /// Connect: other names the container answers to on this network.
    pub aliases: Option<Vec<String>>,
    /// Disconnect: even when the container is not running.
    #[serde(default)]
    pub force: bool,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct NetworkChange {
    pub network: String,
    pub container: String,
    pub action: &'static str,
    /// The networks the container is attached to afterwards (from the engine).
    pub container_networks: Vec<String>,
}

impl Render for NetworkChange {
    fn render_text(&self) -> String {
        format!(
            "{} {} {}: now on {}",
            self.action,
            crate::render::text(&self.container),
            crate::render::text(&self.network),
            crate::render::join(&self.container_networks, ", ")
        )
    }
}

/// Connect (`true`) or disconnect.
pub(crate) struct NetworkAttachmentTool {
    pub engine: Arc<Engine>,
    pub connect: bool,
}

impl Tool for NetworkAttachmentTool {
    type Arguments = AttachmentArguments;
    type Output = NetworkChange;

    fn declaration(&self) -> &'static Declaration {
        if self.connect {
            &DOCKER_NETWORK_CONNECT
        } else {
            &DOCKER_NETWORK_DISCONNECT
        }
    }

    async fn run(
        &self,
        arguments: AttachmentArguments,
        _: ToolContext,
    ) -> Result<NetworkChange, ToolError> {
        let network = object_reference("network", &arguments.network)?;
        let container = container_reference(&arguments.container)?;
        let connect = self.connect;
        if connect && arguments.force {
            return Err(ToolError::invalid_arguments(
                "force applies to disconnecting, not connecting",
            ));
        }
        if !connect && arguments.aliases.is_some() {
            return Err(ToolError::invalid_arguments(
                "aliases apply to connecting, not disconnecting",
            ));
        }
        let (target, on) = (container.clone(), network.clone());
        let aliases = arguments.aliases;
        let force = arguments.force;
        let networks = self
            .engine
            .run(|docker| async move {
                if connect {
                    let request = NetworkConnectRequest {
                        container: target.clone(),
                        endpoint_config: aliases.map(|aliases| bollard::models::EndpointSettings {
                            aliases: Some(aliases),
                            ..Default::default()
                        }),
                    };
                    docker.connect_network(&on, request).await?;
                } else {
                    let request = NetworkDisconnectRequest {
                        container: target.clone(),
                        force: Some(force),
                    };
                    docker.disconnect_network(&on, request).await?;
                }
                let inspected = docker
                    .inspect_container(
                        &target,
                        None::<bollard::query_parameters::InspectContainerOptions>,
                    )
                    .await?;
                Ok(inspected
                    .network_settings
                    .and_then(|settings| settings.networks)
                    .map(|networks| networks.into_keys().collect::<Vec<_>>())
                    .unwrap_or_default())
            })
            .await?;
        let mut container_networks = networks;
        container_networks.sort();
        Ok(NetworkChange {
            network,
            container,
            action: if connect { "connect" } else { "disconnect" },
            container_networks,
        })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NetworkCreateArguments {
    pub name: String,
    /// Default bridge.
    pub driver: Option<String>,
    /// CIDR, e.g. 10.77.0.0/24.
    pub subnet: Option<String>,
    pub gateway: Option<String>,
    /// No route to the outside.
    #[serde(default)]
    pub internal: bool,
    pub labels: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct NetworkCreated {
    pub name: String,
    pub id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub warning: String,
}

impl Render for NetworkCreated {
    fn render_text(&self) -> String {
        let mut text = format!(
            "created network {} {}",
            crate::render::text(&self.name),
            short_id(&self.id)
        );
        if !self.warning.is_empty() {
            text.push_str(&format!(
                " (warning: {})",
                crate::render::sentence(&self.warning)
            ));
        }
        text
    }
}

pub(crate) struct NetworkCreateTool {
    pub engine: Arc<Engine>,
}

impl Tool for NetworkCreateTool {
    type Arguments = NetworkCreateArguments;
    type Output = NetworkCreated;

    fn declaration(&self) -> &'static Declaration {
        &DOCKER_NETWORK_CREATE
    }

    async fn run(
        &self,
        arguments: NetworkCreateArguments,
        _: ToolContext,
    ) -> Result<NetworkCreated, ToolError> {
        let name = object_reference("network", &arguments.name)?;
        if arguments.gateway.is_some() && arguments.subnet.is_none() {
            return Err(ToolError::invalid_arguments(
                "a gateway needs the subnet it is in: give subnet too",
            ));
        }
        let ipam = arguments.subnet.map(|subnet| Ipam {
            config: Some(vec![bollard::models::IpamConfig {
                subnet: Some(subnet),
                gateway: arguments.gateway,
                ..Default::default()
            }]),
            ..Default::default()
        });
        let request = NetworkCreateRequest {
            name: name.clone(),
            driver: Some(arguments.driver.unwrap_or_else(|| "bridge".into())),
            internal: Some(arguments.internal),
            ipam,
            labels: arguments.labels.map(|labels| labels.into_iter().collect()),
            ..Default::default()
        };
        let created = self
            .engine
            .run(|docker| async move { docker.create_network(request).await })
            .await?;
        Ok(NetworkCreated {
            name,
            id: created.id,
            warning: created.warning,
        })
    }
}

pub(crate) struct NetworkRemoveTool {
    pub engine: Arc<Engine>,
}

impl Tool for NetworkRemoveTool {
    type Arguments = NetworkArguments;
    type Output = Removed;

    fn declaration(&self) -> &'static Declaration {
        &DOCKER_NETWORK_REMOVE
    }

    async fn run(&self, arguments: NetworkArguments, _: ToolContext) -> Result<Removed, ToolError> {
        let network = object_reference("network", &arguments.network)?;
        if ["bridge", "host", "none"].contains(&network.as_str()) {
            return Err(ToolError::invalid_arguments(format!(
                "`{network}` is one of Docker's built-in networks, which cannot be removed"
            )));
        }
        let name = network.clone();
        self.engine
            .run(|docker| async move { docker.remove_network(&name).await })
            .await?;
        Ok(Removed {
            kind: "network",
            name: network,
        })
    }
}
