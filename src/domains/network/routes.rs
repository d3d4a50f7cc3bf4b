//! `network_routes`: the main IPv4 and IPv6 routing tables, the default routes, and the DNS
//! resolvers in use.
//!
//! IPv4 comes from `/proc/net/route` (through procfs), which holds the main table. IPv6 comes
//! from `/proc/net/ipv6_route`, parsed here (procfs has no parser for it); that file holds
//! every table, so local-table entries (local addresses, multicast) and the kernel's null
//! route are left out, as `ip -6 route` leaves them out.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use procfs::FromRead;
use procfs::net::RouteEntries;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::HostConfig;
use crate::tool::{Collect, Declaration, Domain, Render, ToolContext, ToolError};

pub(crate) static NETWORK_ROUTES: Declaration = Declaration::read(
    Domain::Network,
    "network_routes",
    "Network routes",
    "The IPv4 and IPv6 routing tables (destination, gateway, interface, metric, \
     type), the default routes on their own, and the DNS resolvers in use \
     (nameservers and search domains from resolv.conf, with systemd-resolved's \
     upstream servers when its stub is in use).",
);

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RoutesArguments {
    /// `ipv4` or `ipv6`; both when left out.
    pub family: Option<Family>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Family {
    Ipv4,
    Ipv6,
}

/// The answer of `network_routes`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct NetworkRoutes {
    pub routes: Vec<Route>,
    /// The routes for `default` (0.0.0.0/0, ::/0), lowest metric first: where traffic with no
    /// better route goes.
    pub default_routes: Vec<Route>,
    pub dns: Dns,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub(crate) struct Route {
    pub family: Family,
    /// `default` or a prefix: `192.0.2.0/24`, `2001:db8::/32`.
    pub destination: String,
    /// The next hop; absent for directly connected networks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    pub interface: String,
    pub metric: u32,
    /// `unicast`, or `unreachable` for reject routes.
    #[serde(rename = "type")]
    pub kind: String,
}

/// Resolvers from `/etc/resolv.conf` under `[host] rootfs`.
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub(crate) struct Dns {
    pub nameservers: Vec<String>,
    pub search: Vec<String>,
    /// When the nameserver is systemd-resolved's local stub (127.0.0.53), the servers it
    /// forwards to (`/run/systemd/resolve/resolv.conf`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub upstream_nameservers: Vec<String>,
}

impl Render for NetworkRoutes {
    fn render_text(&self) -> String {
        let mut lines: Vec<String> = self
            .routes
            .iter()
            .map(|route| {
                let mut line = match &route.gateway {
                    Some(gateway) => format!(
                        "{} via {gateway} dev {}",
                        route.destination,
                        crate::render::text(&route.interface)
                    ),
                    None => format!(
                        "{} dev {}",
                        route.destination,
                        crate::render::text(&route.interface)
                    ),
                };
                if route.metric > 0 {
                    line.push_str(&format!(" metric {}", route.metric));
                }
                if route.kind != "unicast" {
                    line = format!("{} {line}", route.kind);
                }
                line
            })
            .collect();
        // resolv.conf is the host's text.
        let mut dns = format!("dns {}", crate::render::join(&self.dns.nameservers, " "));
        if !self.dns.search.is_empty() {
            dns.push_str(&format!(
                " search {}",
                crate::render::join(&self.dns.search, " ")
            ));
        }
        if !self.dns.upstream_nameservers.is_empty() {
            dns.push_str(&format!(
                " (upstream {})",
                crate::render::join(&self.dns.upstream_nameservers, " ")
            ));
        }
        lines.push(dns);
        lines.join("\n")
    }
}

const RTF_GATEWAY: u32 = 0x0002;
const RTF_REJECT: u32 = 0x0200;
const RTF_LOCAL: u32 = 0x8000_0000;

/// Answers `network_routes` for the server's network namespace.
pub(crate) struct RouteCollector {
    proc: PathBuf,
    rootfs: PathBuf,
}

impl RouteCollector {
    pub(crate) fn new(host: &HostConfig) -> Self {
        Self {
            proc: host.proc.clone(),
            rootfs: host.rootfs.clone(),
        }
    }

    pub(crate) fn routes(&self, arguments: &RoutesArguments) -> Result<NetworkRoutes, ToolError> {
        let mut routes = Vec::new();
        if arguments.family != Some(Family::Ipv6) {
            routes.extend(self.ipv4()?);
        }
        if arguments.family != Some(Family::Ipv4) {
            // No file: a kernel without IPv6.
            if let Ok(text) = std::fs::read_to_string(self.proc.join("net/ipv6_route")) {
                routes.extend(parse_ipv6_routes(&text));
            }
        }
        let mut default_routes: Vec<Route> = routes
            .iter()
            .filter(|route| route.destination == "default" && route.kind == "unicast")
            .cloned()
            .collect();
        default_routes.sort_by_key(|route| (route.family == Family::Ipv6, route.metric));
        Ok(NetworkRoutes {
            routes,
            default_routes,
            dns: self.dns(),
        })
    }

    fn ipv4(&self) -> Result<Vec<Route>, ToolError> {
        let path = self.proc.join("net/route");
        let entries = RouteEntries::from_file(&path).map_err(|error| {
            ToolError::unavailable(format!("cannot read {}: {error}", path.display()))
        })?;
        Ok(entries
            .0
            .into_iter()
            .map(|entry| {
                let prefix = entry.mask.to_bits().count_ones();
                let flags = u32::from(entry.flags);
                Route {
                    family: Family::Ipv4,
                    destination: prefix_text(IpAddr::V4(entry.destination), prefix),
                    gateway: (flags & RTF_GATEWAY != 0 && entry.gateway != Ipv4Addr::UNSPECIFIED)
                        .then(|| entry.gateway.to_string()),
                    interface: entry.iface,
                    metric: entry.metrics,
                    kind: route_kind(flags),
                }
            })
            .collect())
    }

    fn dns(&self) -> Dns {
        let read = |file: &str| std::fs::read_to_string(self.rootfs.join(file)).ok();
        let mut dns = read("etc/resolv.conf")
            .map(|text| parse_resolv_conf(&text))
            .unwrap_or_default();
        if dns.nameservers.iter().any(|server| server == "127.0.0.53") {
            dns.upstream_nameservers = read("run/systemd/resolve/resolv.conf")
                .map(|text| parse_resolv_conf(&text).nameservers)
                .unwrap_or_default();
        }
        dns
    }
}

fn prefix_text(address: IpAddr, prefix: u32) -> String {
    if prefix == 0 && address.is_unspecified() {
        "default".into()
    } else {
        format!("{address}/{prefix}")
    }
}

fn route_kind(flags: u32) -> String {
    if flags & RTF_REJECT != 0 {
        "unreachable".into()
    } else {
        "unicast".into()
    }
}

/// Lines of `/proc/net/ipv6_route`: destination, prefix length, source, source prefix length,
/// next hop, metric, refcount, use count, flags, device — addresses as 32 hex digits, numbers
/// in hex.
fn parse_ipv6_routes(text: &str) -> Vec<Route> {
    let address = |hex: &str| u128::from_str_radix(hex, 16).ok().map(Ipv6Addr::from_bits);
    let number = |hex: &str| u32::from_str_radix(hex, 16).ok();
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_ascii_whitespace().collect();
            let [
                destination,
                prefix,
                _,
                _,
                next_hop,
                metric,
                _,
                _,
                flags,
                device,
            ] = fields.as_slice()
            else {
                return None;
            };
            let destination = address(destination)?;
            let (prefix, metric, flags) = (number(prefix)?, number(metric)?, number(flags)?);
            let next_hop = address(next_hop)?;
            // Local-table entries: addresses of this host, and multicast.
            if flags & RTF_LOCAL != 0 || destination.is_multicast() {
                return None;
            }
            // The kernel's null route (`::/0 dev lo`, metric 2^32-1) is no route of anyone's.
            if flags & RTF_REJECT != 0 && metric == u32::MAX && *device == "lo" {
                return None;
            }
            Some(Route {
                family: Family::Ipv6,
                destination: prefix_text(IpAddr::V6(destination), prefix),
                gateway: (flags & RTF_GATEWAY != 0 && !next_hop.is_unspecified())
                    .then(|| next_hop.to_string()),
                interface: (*device).to_string(),
                metric,
                kind: route_kind(flags),
            })
        })
        .collect()
}

fn parse_resolv_conf(text: &str) -> Dns {
    let mut dns = Dns::default();
    for line in text.lines() {
        let line = line.split(['#', ';']).next().unwrap_or("");
        let mut words = line.split_ascii_whitespace();
        match words.next() {
            Some("nameserver") => dns.nameservers.extend(words.next().map(String::from)),
            // The last `search` or `domain` line wins, as in the resolver.
            Some("search") | Some("domain") => dns.search = words.map(String::from).collect(),
            _ => {}
        }
    }
    dns
}

impl Collect for RouteCollector {
    type Arguments = RoutesArguments;
    type Output = NetworkRoutes;

    const DECLARATION: &'static Declaration = &NETWORK_ROUTES;
    // Three small in-memory files.
    const INLINE: bool = true;

    fn collect(
        &self,
        arguments: RoutesArguments,
        _: &ToolContext,
    ) -> Result<NetworkRoutes, ToolError> {
        self.routes(&arguments)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IPV6_ROUTE: &str = "\
fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000002 00000000 00000003     eth0
00000000000000000000000000000001 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000002 00000000 80200001       lo
ff000000000000000000000000000000 08 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000003 00000000 00000001     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo
";

    #[test]
    fn ipv6_routes_keep_the_main_table_only() {
        let routes = parse_ipv6_routes(IPV6_ROUTE);
        assert_eq!(routes.len(), 2);
        assert_eq!(routes[0].destination, "fd00::/64");
        assert_eq!(
            (routes[0].gateway.as_deref(), routes[0].metric),
            (None, 256)
        );
        assert_eq!(routes[1].destination, "default");
        assert_eq!(routes[1].gateway.as_deref(), Some("fd00::1"));
        assert_eq!(routes[1].metric, 1024);
    }

    #[test]
    fn resolv_conf_gives_servers_and_the_last_search_line() {
        let dns = parse_resolv_conf(
            "# comment\nnameserver 10.0.0.1\nnameserver ::1 ; trailing\ndomain a.example\n\
             search b.example c.example\noptions ndots:2\n",
        );
        assert_eq!(dns.nameservers, ["10.0.0.1", "::1"]);
        assert_eq!(dns.search, ["b.example", "c.example"]);
    }
}
