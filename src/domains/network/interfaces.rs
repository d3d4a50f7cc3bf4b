//! `network_interfaces`: each interface's link facts (sysfs), addresses with their labels
//! (rtnetlink, see [`super::addresses`]) and traffic counters (`/proc/net/dev`), with rates from
//! the background sampler.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use procfs::FromRead;
use procfs::net::{DeviceStatus, InterfaceDeviceStatus};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::{HostConfig, SamplerConfig};
use crate::domains::shared::sampling::{Readings, Sampler};
use crate::render;
use crate::tool::{Collect, Declaration, Domain, Render, ToolContext, ToolError};

pub(crate) static NETWORK_INTERFACES: Declaration = Declaration::read(
    Domain::Network,
    "network_interfaces",
    "Network interfaces",
    "Each network interface: state (up/down), MTU, MAC, IPv4 and IPv6 addresses \
     with prefix length, kind, link speed, and traffic — bytes and packets \
     received and sent, errors and drops since it came up, and bytes/s over the \
     last second (left out of a first answer after a quiet spell: ask again).",
)
.paged("pass `name` to ask about one interface");

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct InterfacesArguments {
    /// Only this interface (`eth0`, `wg0`, ...).
    pub name: Option<String>,
}

/// The answer of `network_interfaces`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct NetworkInterfaces {
    /// The time the rates are measured over; absent when this answer has no rates yet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_seconds: Option<f64>,
    pub interfaces: Vec<Interface>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct Interface {
    pub name: String,
    pub index: u32,
    /// Link type: ether, loopback, none (tun, wireguard), ...
    pub kind: String,
    /// Operational state as the kernel reports it: up, down, unknown (typical of loopback and
    /// tunnels), dormant, lowerlayerdown, ...
    pub state: String,
    /// Administratively up (`ip link set NAME up`).
    pub admin_up: bool,
    pub mtu: u32,
    /// Hardware address, when the link type has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// Negotiated speed, when the driver reports one (physical links that are up).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub speed_mbps: Option<u64>,
    /// A software interface (bridge, veth, tunnel, ...) rather than a device.
    #[serde(rename = "virtual")]
    pub is_virtual: bool,
    /// Addresses with prefix length: `192.0.2.2/24`, `fd00::2/64`, as `ip addr` lists them.
    pub addresses: Vec<String>,
    /// The labels of addresses labelled other than the link's name (an alias such as `eth0:1`,
    /// made by `ip addr add … label eth0:1` or `ifconfig eth0:1`): address → label.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_errors: u64,
    pub tx_errors: u64,
    pub rx_dropped: u64,
    pub tx_dropped: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rx_bytes_per_second: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tx_bytes_per_second: Option<u64>,
}

impl Render for NetworkInterfaces {
    fn render_text(&self) -> String {
        let lines: Vec<String> = self
            .interfaces
            .iter()
            .map(|nic| {
                // Names, aliases and labels are whatever an administrator set.
                let mut line = format!(
                    "{} {} mtu {}",
                    render::text(&nic.name),
                    render::text(&nic.state),
                    nic.mtu
                );
                if let Some(mac) = &nic.mac {
                    line.push_str(&format!(" {}", render::text(mac)));
                }
                for address in &nic.addresses {
                    line.push(' ');
                    line.push_str(&render::text(address));
                    if let Some(label) = nic.labels.get(address) {
                        line.push_str(&format!(" ({})", render::text(label)));
                    }
                }
                line.push_str(&format!(
                    "; rx {} tx {}",
                    render::bytes(nic.rx_bytes),
                    render::bytes(nic.tx_bytes)
                ));
                if let (Some(rx), Some(tx)) = (nic.rx_bytes_per_second, nic.tx_bytes_per_second) {
                    line.push_str(&format!(
                        " ({}/s in, {}/s out)",
                        render::bytes(rx),
                        render::bytes(tx)
                    ));
                }
                let errors = nic.rx_errors + nic.tx_errors;
                let drops = nic.rx_dropped + nic.tx_dropped;
                if errors + drops > 0 {
                    line.push_str(&format!(
                        ", {}, {}",
                        render::count(errors, "error", "errors"),
                        render::count(drops, "drop", "drops")
                    ));
                }
                line
            })
            .collect();
        lines.join("\n")
    }
}

/// Answers `network_interfaces` for the server's network namespace (see the domain's notes).
pub(crate) struct InterfaceMonitor {
    sys: PathBuf,
    sampler: Sampler<BTreeMap<String, DeviceStatus>>,
}

impl InterfaceMonitor {
    pub(crate) fn new(host: &HostConfig, sampler: &SamplerConfig) -> Self {
        let dev = host.proc.join("net/dev");
        Self {
            sys: host.sys.clone(),
            sampler: Sampler::new(sampler, move || {
                InterfaceDeviceStatus::from_file(&dev)
                    .map(|status| status.0.into_iter().collect())
                    .map_err(|error| format!("cannot read {}: {error}", dev.display()))
            }),
        }
    }

    pub(crate) fn interfaces(
        &self,
        arguments: &InterfacesArguments,
    ) -> Result<NetworkInterfaces, ToolError> {
        let readings = self.sampler.readings().map_err(ToolError::unavailable)?;
        let mut addresses = super::addresses::by_link_index().unwrap_or_else(|error| {
            tracing::debug!(%error, "cannot read the addresses over rtnetlink");
            BTreeMap::new()
        });
        let names = link_names(&self.sys, &readings);
        if let Some(wanted) = &arguments.name
            && !names.contains(wanted)
        {
            return Err(ToolError::not_found(format!(
                "no network interface is named `{wanted}`; there are: {}",
                names.join(", ")
            )));
        }
        let (_, window_seconds) = readings.basis();
        let interfaces = names
            .iter()
            .filter(|name| arguments.name.as_ref().is_none_or(|wanted| wanted == *name))
            .map(|name| {
                let index = nix::net::if_::if_nametoindex(name.as_str()).unwrap_or(0);
                let mut listed = Vec::new();
                let mut labels = BTreeMap::new();
                for address in addresses.remove(&index).unwrap_or_default() {
                    if let Some(label) = address.label.filter(|label| label != name) {
                        labels.insert(address.address.clone(), label);
                    }
                    listed.push(address.address);
                }
                self.interface(name, listed, labels, &readings)
            })
            .collect();
        Ok(NetworkInterfaces {
            window_seconds,
            interfaces,
        })
    }

    fn interface(
        &self,
        name: &str,
        addresses: Vec<String>,
        labels: BTreeMap<String, String>,
        readings: &Readings<BTreeMap<String, DeviceStatus>>,
    ) -> Interface {
        let link = self.sys.join("class/net").join(name);
        let read = |file: &str| {
            std::fs::read_to_string(link.join(file))
                .ok()
                .map(|text| text.trim().to_string())
        };
        let number = |file: &str| read(file).and_then(|text| text.parse::<u64>().ok());
        let flags = read("flags")
            .and_then(|text| u32::from_str_radix(text.trim_start_matches("0x"), 16).ok())
            .unwrap_or(0);
        let latest = readings.latest.value.get(name);
        let rate = |pick: fn(&DeviceStatus) -> u64| {
            let (window, earlier) = readings.earlier()?;
            let (now, before) = (latest?, earlier.get(name)?);
            let bytes = pick(now).saturating_sub(pick(before)) as f64;
            Some((bytes / window.as_secs_f64()).round() as u64)
        };
        let counter = |pick: fn(&DeviceStatus) -> u64| latest.map(pick).unwrap_or(0);
        Interface {
            name: name.to_string(),
            index: number("ifindex").unwrap_or(0) as u32,
            kind: link_kind(number("type").unwrap_or(0)),
            state: read("operstate").unwrap_or_else(|| "unknown".into()),
            admin_up: flags & 0x1 != 0,
            mtu: number("mtu").unwrap_or(0) as u32,
            mac: read("address").filter(|mac| !mac.is_empty()),
            // Reads fail (EINVAL) while the link is down; -1 means unknown.
            speed_mbps: read("speed")
                .and_then(|text| text.parse::<i64>().ok())
                .filter(|speed| *speed > 0)
                .map(|speed| speed as u64),
            is_virtual: !link.join("device").exists(),
            addresses,
            labels,
            rx_bytes: counter(|s| s.recv_bytes),
            tx_bytes: counter(|s| s.sent_bytes),
            rx_packets: counter(|s| s.recv_packets),
            tx_packets: counter(|s| s.sent_packets),
            rx_errors: counter(|s| s.recv_errs),
            tx_errors: counter(|s| s.sent_errs),
            rx_dropped: counter(|s| s.recv_drop),
            tx_dropped: counter(|s| s.sent_drop),
            rx_bytes_per_second: rate(|s| s.recv_bytes),
            tx_bytes_per_second: rate(|s| s.sent_bytes),
        }
    }
}

/// Interface names in `ifindex` order, as `ip link` lists them: sysfs first, `/proc/net/dev`
/// when sysfs is not the namespace's.
fn link_names(sys: &Path, readings: &Readings<BTreeMap<String, DeviceStatus>>) -> Vec<String> {
    let from_sysfs: Vec<String> = std::fs::read_dir(sys.join("class/net"))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    let mut names = if from_sysfs.is_empty() {
        readings.latest.value.keys().cloned().collect()
    } else {
        from_sysfs
    };
    let index = |name: &String| {
        std::fs::read_to_string(sys.join("class/net").join(name).join("ifindex"))
            .ok()
            .and_then(|text| text.trim().parse::<u32>().ok())
            .unwrap_or(u32::MAX)
    };
    names.sort_by_cached_key(|name| (index(name), name.clone()));
    names
}

/// `ARPHRD_*` numbers (`/sys/class/net/NAME/type`) for the kinds people meet.
fn link_kind(number: u64) -> String {
    match number {
        1 => "ether",
        24 => "ieee1394",
        32 => "infiniband",
        512 => "ppp",
        768 => "ipip",
        769 => "tunnel6",
        772 => "loopback",
        776 => "sit",
        778 => "gre",
        801 => "wlan",
        803 => "radiotap",
        823 => "ip6gre",
        65534 => "none",
        other => return format!("type {other}"),
    }
    .into()
}

impl Collect for InterfaceMonitor {
    type Arguments = InterfacesArguments;
    type Output = NetworkInterfaces;

    const DECLARATION: &'static Declaration = &NETWORK_INTERFACES;
    // sysfs, procfs and one netlink dump: in-memory and quick.
    const INLINE: bool = true;

    fn collect(
        &self,
        arguments: InterfacesArguments,
        _: &ToolContext,
    ) -> Result<NetworkInterfaces, ToolError> {
        self.interfaces(&arguments)
    }
}
