//! `tailscale_status`: this node's tailnet name, addresses and tags, the Tailscale Services it
//! advertises and whether an admin approved them, and the peers online — from the LocalAPI's
//! `GET /localapi/v0/status` and `GET /localapi/v0/prefs`.
//!
//! A service is approved when tailscaled's netmap gives this node the `service-host`
//! capability for it (`Self.CapMap["service-host"]`, service → its virtual IPs), as
//! `tailscale serve` itself decides.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::render;
use crate::tool::{Declaration, Domain, NoArguments, Render, Tool, ToolContext, ToolError};

pub(crate) static TAILSCALE_STATUS: Declaration = Declaration::read(
    Domain::Tailscale,
    "tailscale_status",
    "Tailscale status",
    "This node on the tailnet, from tailscaled's LocalAPI: its state, tailnet and MagicDNS \
     names, Tailscale IPs and tags; the Tailscale Services it advertises and whether each is \
     approved (with the service's virtual IPs); and the peers online (name, IPs, OS, tags). \
     Like `tailscale status` plus `tailscale serve` approval.",
);

/// How long tailscaled gets to answer.
const PATIENCE: Duration = Duration::from_secs(5);
/// The largest answer read (a status lists every peer: ~1 KiB each).
const MAX_ANSWER: usize = 16 * 1024 * 1024;
/// The most online peers listed (the count is always whole).
const MAX_PEERS: usize = 500;
/// The node capability that lists the services this node may host, with their virtual IPs.
const SERVICE_HOST: &str = "service-host";

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct TailscaleStatus {
    /// tailscaled's state: Running, Stopped, NeedsLogin, NeedsMachineAuth, Starting.
    pub backend_state: String,
    /// tailscaled's version.
    pub version: String,
    /// The tailnet's name, when connected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tailnet: Option<String>,
    /// The MagicDNS suffix (`TAILNET.ts.net`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub magic_dns_suffix: Option<String>,
    #[serde(rename = "self")]
    pub this_node: Option<Node>,
    /// Services this node advertises or may host, by name (`svc:NAME`).
    pub services: Vec<Service>,
    /// Peers in the netmap.
    pub peers_total: usize,
    /// Peers online now.
    pub peers_online: usize,
    /// The online peers, by DNS name (at most 500).
    pub online: Vec<Node>,
    /// tailscaled's health warnings.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub health: Vec<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct Node {
    pub host_name: String,
    /// Its MagicDNS name, without the trailing dot.
    pub dns_name: String,
    pub os: String,
    /// Tailscale IPs (100.x.y.z, fd7a:115c:a1e0::…).
    pub ips: Vec<String>,
    /// ACL tags (`tag:server`); a tagged node has no user.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    pub online: bool,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct Service {
    /// `svc:NAME`.
    pub name: String,
    /// This node advertises it (`tailscale serve --service`, `serve set-config`).
    pub advertised: bool,
    /// An admin (or `autoApprovers.services`) approved this node as its host.
    pub approved: bool,
    /// The service's virtual IPs, once approved.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<String>,
}

impl Render for TailscaleStatus {
    fn render_text(&self) -> String {
        let mut lines = vec![format!(
            "tailscaled {} ({}), tailnet {}",
            render::text(&self.backend_state),
            render::text(&self.version),
            render::text(self.tailnet.as_deref().unwrap_or("-")),
        )];
        if let Some(node) = &self.this_node {
            lines.push(format!("this node: {}", render_node(node)));
        }
        for service in &self.services {
            lines.push(format!(
                "service {}: {}{}",
                render::text(&service.name),
                match (service.advertised, service.approved) {
                    (true, true) => "advertised, approved",
                    (true, false) => "advertised, awaiting approval",
                    (false, true) => "approved, not advertised (drained?)",
                    (false, false) => "neither advertised nor approved",
                },
                if service.addresses.is_empty() {
                    String::new()
                } else {
                    format!(" at {}", service.addresses.join(", "))
                }
            ));
        }
        lines.push(format!(
            "peers: {} online of {}",
            self.peers_online, self.peers_total
        ));
        lines.extend(
            self.online
                .iter()
                .map(|peer| format!("  {}", render_node(peer))),
        );
        lines.extend(
            self.health
                .iter()
                .map(|warning| format!("health: {}", render::text(warning))),
        );
        lines.join("\n")
    }
}

fn render_node(node: &Node) -> String {
    let tags = if node.tags.is_empty() {
        String::new()
    } else {
        format!(" [{}]", node.tags.join(", "))
    };
    format!(
        "{} {} {}{}",
        render::text(&node.dns_name),
        node.ips.join(" "),
        render::text(&node.os),
        render::text(&tags)
    )
}

/// The parts of `ipnstate.Status` read.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct Status {
    version: String,
    backend_state: String,
    #[serde(rename = "Self")]
    this_node: Option<PeerStatus>,
    current_tailnet: Option<Tailnet>,
    peer: BTreeMap<String, PeerStatus>,
    health: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct Tailnet {
    name: String,
    #[serde(rename = "MagicDNSSuffix")]
    magic_dns_suffix: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct PeerStatus {
    host_name: String,
    #[serde(rename = "DNSName")]
    dns_name: String,
    #[serde(rename = "OS")]
    os: String,
    #[serde(rename = "TailscaleIPs")]
    tailscale_ips: Option<Vec<String>>,
    tags: Option<Vec<String>>,
    online: Option<bool>,
    cap_map: Option<BTreeMap<String, Value>>,
}

/// The part of `ipn.Prefs` read.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct Prefs {
    advertise_services: Option<Vec<String>>,
}

impl PeerStatus {
    fn node(&self) -> Node {
        Node {
            host_name: self.host_name.clone(),
            dns_name: self.dns_name.trim_end_matches('.').to_string(),
            os: self.os.clone(),
            ips: self.tailscale_ips.clone().unwrap_or_default(),
            tags: self.tags.clone().unwrap_or_default(),
            online: self.online.unwrap_or(false),
        }
    }

    /// `service-host`'s values: `[{"svc:NAME": ["100.…", "fd7a:…"]}, …]`, merged in order.
    fn hostable_services(&self) -> BTreeMap<String, Vec<String>> {
        let mut services = BTreeMap::new();
        let values = self
            .cap_map
            .as_ref()
            .and_then(|map| map.get(SERVICE_HOST))
            .and_then(Value::as_array);
        for mapping in values.into_iter().flatten() {
            let Some(mapping) = mapping.as_object() else {
                continue;
            };
            for (name, addresses) in mapping {
                let addresses = addresses
                    .as_array()
                    .map(|list| {
                        list.iter()
                            .filter_map(|a| a.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                services.entry(name.clone()).or_insert(addresses);
            }
        }
        services
    }
}

pub(crate) struct TailscaleStatusTool {
    pub socket: Arc<PathBuf>,
}

impl TailscaleStatusTool {
    async fn ask<T: for<'de> Deserialize<'de>>(&self, path: &str) -> Result<T, ToolError> {
        let socket = self.socket.as_path();
        let body = tokio::time::timeout(PATIENCE, crate::localapi::get(socket, path, MAX_ANSWER))
            .await
            .map_err(|_| {
                ToolError::unavailable(format!(
                    "tailscaled did not answer {path} within {} s",
                    PATIENCE.as_secs()
                ))
            })?
            .map_err(|reason| {
                ToolError::unavailable(format!(
                    "{reason} (is tailscaled running? tailscale.socket says where its socket is)"
                ))
            })?;
        serde_json::from_slice(&body).map_err(|error| {
            ToolError::unavailable(format!(
                "tailscaled's answer to {path} is not what it documents: {error}"
            ))
        })
    }
}

impl Tool for TailscaleStatusTool {
    type Arguments = NoArguments;
    type Output = TailscaleStatus;

    fn declaration(&self) -> &'static Declaration {
        &TAILSCALE_STATUS
    }

    async fn run(&self, _: NoArguments, _: ToolContext) -> Result<TailscaleStatus, ToolError> {
        let (status, prefs) = tokio::try_join!(
            self.ask::<Status>("/localapi/v0/status"),
            self.ask::<Prefs>("/localapi/v0/prefs"),
        )?;
        Ok(summarize(status, &prefs))
    }
}

fn summarize(status: Status, prefs: &Prefs) -> TailscaleStatus {
    let hostable = status
        .this_node
        .as_ref()
        .map(PeerStatus::hostable_services)
        .unwrap_or_default();
    let advertised = prefs.advertise_services.clone().unwrap_or_default();
    let mut names: Vec<&String> = advertised.iter().chain(hostable.keys()).collect();
    names.sort();
    names.dedup();
    let services = names
        .into_iter()
        .map(|name| Service {
            name: name.clone(),
            advertised: advertised.contains(name),
            approved: hostable.contains_key(name),
            addresses: hostable.get(name).cloned().unwrap_or_default(),
        })
        .collect();
    let mut online: Vec<Node> = status
        .peer
        .values()
        .filter(|peer| peer.online == Some(true))
        .map(PeerStatus::node)
        .collect();
    online.sort_by(|a, b| a.dns_name.cmp(&b.dns_name));
    let peers_online = online.len();
    online.truncate(MAX_PEERS);
    let tailnet = status.current_tailnet.as_ref();
    TailscaleStatus {
        backend_state: status.backend_state,
        version: status.version,
        tailnet: tailnet
            .map(|t| t.name.clone())
            .filter(|name| !name.is_empty()),
        magic_dns_suffix: tailnet
            .map(|t| t.magic_dns_suffix.clone())
            .filter(|suffix| !suffix.is_empty()),
        this_node: status.this_node.as_ref().map(PeerStatus::node),
        services,
        peers_total: status.peer.len(),
        peers_online,
        online,
        health: status.health.unwrap_or_default(),
    }
}
