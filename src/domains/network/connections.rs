//! `network_connections`: TCP and UDP sockets, IPv4 and IPv6, with the process that owns each —
//! what `ss -tunap` shows, read from `/proc/net/{tcp,tcp6,udp,udp6}`.
//!
//! The owner of a socket is found by its inode among the open files of every process
//! (`/proc/PID/fd`). That walk is the expensive part, so its map is kept for a few seconds and
//! walked again only when a socket is not in it. Without the right to read another user's
//! `/proc/PID/fd` (root or CAP_SYS_PTRACE), those sockets show no process, and the answer
//! says how many.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use procfs::process::FDTarget;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::socket_table::{self, Socket};
use crate::config::HostConfig;
use crate::domains::shared::paging::{PageInfo, PageRequest};
use crate::domains::shared::users::{UserNames, name_of};
use crate::render;
use crate::tool::{Collect, Declaration, Domain, OutputCap, Render, ToolContext, ToolError};

pub(crate) static NETWORK_CONNECTIONS: Declaration = Declaration::read(
    Domain::Network,
    "network_connections",
    "Network connections",
    "TCP and UDP sockets, IPv4 and IPv6, like `ss -tunap`: protocol, state, local \
     and remote address and port, queues, and the owning pid, process name and \
     user. Filter by protocol, state (LISTEN, ESTAB, TIME-WAIT...), port (local or \
     remote), pid; listening_only lists what accepts connections (TCP LISTEN and \
     unconnected UDP). Sorted by protocol and local port; paged with limit/cursor.",
)
.paged("narrow with listening_only, state, port or pid, or page with cursor");

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConnectionsArguments {
    /// `tcp` or `udp`; both when left out.
    pub protocol: Option<Protocol>,
    /// Only sockets in this state, as `ss` names them: LISTEN, ESTAB, SYN-SENT, SYN-RECV,
    /// FIN-WAIT-1, FIN-WAIT-2, TIME-WAIT, CLOSE-WAIT, LAST-ACK, CLOSING, UNCONN.
    pub state: Option<String>,
    /// Only sockets whose local or remote port is this.
    pub port: Option<u16>,
    /// Only sockets this process owns.
    pub pid: Option<u32>,
    /// Only sockets accepting connections: TCP LISTEN and unconnected UDP.
    pub listening_only: Option<bool>,
    /// Rows per page (default 100, at most 1000).
    #[schemars(range(min = 1))]
    pub limit: Option<i64>,
    /// `next_cursor` from the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Protocol {
    Tcp,
    Udp,
}

/// The answer of `network_connections`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct NetworkConnections {
    pub connections: Vec<Connection>,
    #[serde(flatten)]
    pub page: PageInfo,
    /// What the caller should know about this answer (a reduced limit, unknown owners).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct Connection {
    pub protocol: Protocol,
    /// `ipv4` or `ipv6`.
    pub family: String,
    /// As `ss` names it: LISTEN, ESTAB, TIME-WAIT, UNCONN, ...
    pub state: String,
    pub local_address: String,
    pub local_port: u16,
    /// `*` with port 0 for listening and unconnected sockets.
    pub remote_address: String,
    pub remote_port: u16,
    /// Bytes queued to be read by the process (for LISTEN: connections waiting for accept).
    pub receive_queue: u32,
    /// Bytes not yet acknowledged by the peer (for LISTEN: the accept backlog).
    pub send_queue: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// The owning process's name (`comm`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process: Option<String>,
    /// The socket's owner.
    pub user: String,
}

impl Render for NetworkConnections {
    fn render_text(&self) -> String {
        let mut lines: Vec<String> = self
            .connections
            .iter()
            .map(|c| {
                let remote = if c.remote_port == 0 && c.remote_address == "*" {
                    "*".to_string()
                } else {
                    endpoint(&c.remote_address, c.remote_port)
                };
                let owner = match (&c.process, c.pid) {
                    (Some(process), Some(pid)) => format!(" {}[{pid}]", render::text(process)),
                    _ => String::new(),
                };
                format!(
                    "{} {} {} {}{owner} {}",
                    c.protocol.as_str(),
                    c.state,
                    endpoint(&c.local_address, c.local_port),
                    remote,
                    render::text(&c.user)
                )
            })
            .collect();
        lines.extend(
            self.page
                .footer(self.connections.len(), ("socket", "sockets"), &self.notes),
        );
        lines.join("\n")
    }
}

fn endpoint(address: &str, port: u16) -> String {
    if address.contains(':') {
        format!("[{address}]:{port}")
    } else {
        format!("{address}:{port}")
    }
}

impl Protocol {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

const STATES: &[&str] = &[
    "LISTEN",
    "ESTAB",
    "SYN-SENT",
    "SYN-RECV",
    "FIN-WAIT-1",
    "FIN-WAIT-2",
    "TIME-WAIT",
    "CLOSE-WAIT",
    "LAST-ACK",
    "CLOSING",
    "UNCONN",
];

/// A state as a caller wrote it, in `ss`'s spelling: `established`, `time_wait` and
/// `TIME-WAIT` all name TIME-WAIT.
fn parse_state(text: &str) -> Result<&'static str, ToolError> {
    let normal = text.trim().to_ascii_uppercase().replace('_', "-");
    let normal = match normal.as_str() {
        "ESTABLISHED" => "ESTAB",
        "LISTENING" => "LISTEN",
        "UNCONNECTED" | "CLOSE" => "UNCONN",
        other => other,
    };
    STATES
        .iter()
        .find(|state| **state == normal)
        .copied()
        .ok_or_else(|| {
            ToolError::invalid_arguments(format!(
                "unknown state `{text}`; valid states: {}",
                STATES.join(", ")
            ))
        })
}

/// Answers `network_connections` for the server's network namespace.
pub(crate) struct ConnectionCollector {
    proc: PathBuf,
    users: Arc<UserNames>,
    owners: Mutex<Option<OwnerWalk>>,
}

/// The last walk of `/proc`: who held which socket, and which sockets nobody we may look into
/// held. Remembering the second keeps a socket whose owner is unreadable (another user's, a
/// process in another namespace) from forcing a fresh walk on every call.
struct OwnerWalk {
    at: Instant,
    owners: Arc<OwnerMap>,
    unowned: HashSet<u64>,
}

impl OwnerWalk {
    fn knows(&self, socket: &Socket) -> bool {
        socket.inode == 0
            || self.owners.contains_key(&socket.inode)
            || self.unowned.contains(&socket.inode)
    }
}

/// Socket inode → the process holding it.
type OwnerMap = HashMap<u64, Owner>;

#[derive(Debug, Clone)]
struct Owner {
    pid: u32,
    name: String,
}

/// How long a socket-owner map answers before a walk of `/proc` is due anyway.
const OWNERS_FRESH: Duration = Duration::from_secs(5);

impl ConnectionCollector {
    pub(crate) fn new(host: &HostConfig, users: Arc<UserNames>) -> Self {
        Self {
            proc: host.proc.clone(),
            users,
            owners: Mutex::new(None),
        }
    }

    /// Blocking: walks `/proc/PID/fd` of every process when the owner map is stale.
    pub(crate) fn connections(
        &self,
        arguments: &ConnectionsArguments,
        cap: OutputCap,
    ) -> Result<NetworkConnections, ToolError> {
        let state = arguments.state.as_deref().map(parse_state).transpose()?;
        let page = PageRequest::new(
            arguments.limit,
            arguments.cursor.as_deref(),
            DEFAULT_LIMIT,
            MAX_LIMIT,
        )?;
        let listening_only = arguments.listening_only == Some(true);
        let mut sockets: Vec<Socket> = socket_table::read(&self.proc, arguments.protocol)?
            .into_iter()
            .filter(|socket| state.is_none_or(|state| socket.state == state))
            .filter(|socket| !listening_only || matches!(socket.state, "LISTEN" | "UNCONN"))
            .filter(|socket| {
                arguments
                    .port
                    .is_none_or(|port| socket.local.port() == port || socket.remote.port() == port)
            })
            .collect();
        let owners = self.owners(&sockets);
        if let Some(pid) = arguments.pid {
            sockets.retain(|socket| owners.get(&socket.inode).is_some_and(|o| o.pid == pid));
        }
        sockets.sort_by_key(|s| {
            (
                s.protocol.as_str(),
                s.local.is_ipv6(),
                s.local.port(),
                s.local.ip(),
                s.remote.port(),
                s.remote.ip(),
            )
        });
        let mut notes: Vec<String> = page.note.iter().cloned().collect();
        let unknown = sockets
            .iter()
            .filter(|s| s.inode != 0 && !owners.contains_key(&s.inode))
            .count();
        if unknown > 0 {
            let sockets = if unknown == 1 {
                "socket is"
            } else {
                "sockets are"
            };
            notes.push(format!(
                "the owner of {unknown} {sockets} unknown: this server may not read the \
                 owning processes' /proc/PID/fd (that needs root or CAP_SYS_PTRACE)"
            ));
        }
        let users = self.users.table();
        let (sockets, mut page_info) = page.take(sockets);
        let mut connections: Vec<Connection> = sockets
            .into_iter()
            .map(|socket| {
                let owner = owners.get(&socket.inode);
                let unspecified = socket.remote.port() == 0 && socket.remote.ip().is_unspecified();
                Connection {
                    protocol: socket.protocol,
                    family: if socket.local.is_ipv6() {
                        "ipv6"
                    } else {
                        "ipv4"
                    }
                    .into(),
                    state: socket.state.into(),
                    local_address: socket.local.ip().to_string(),
                    local_port: socket.local.port(),
                    remote_address: if unspecified {
                        "*".into()
                    } else {
                        socket.remote.ip().to_string()
                    },
                    remote_port: socket.remote.port(),
                    receive_queue: socket.receive_queue,
                    send_queue: socket.send_queue,
                    pid: owner.map(|o| o.pid),
                    process: owner.map(|o| o.name.clone()),
                    user: name_of(&users, socket.uid),
                }
            })
            .collect();
        notes.extend(page.fit(&mut connections, &mut page_info, cap));
        Ok(NetworkConnections {
            connections,
            page: page_info,
            notes,
        })
    }

    /// The inode → owner map, walked again when stale or when one of `sockets` is new to it.
    fn owners(&self, sockets: &[Socket]) -> Arc<OwnerMap> {
        let mut cached = self.owners.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(walk) = cached.as_ref()
            && walk.at.elapsed() < OWNERS_FRESH
            && sockets.iter().all(|socket| walk.knows(socket))
        {
            return Arc::clone(&walk.owners);
        }
        let owners = Arc::new(walk_owners(&self.proc));
        let unowned = sockets
            .iter()
            .map(|socket| socket.inode)
            .filter(|inode| !owners.contains_key(inode))
            .collect();
        *cached = Some(OwnerWalk {
            at: Instant::now(),
            owners: Arc::clone(&owners),
            unowned,
        });
        owners
    }
}

/// Every socket inode held open by a process we may look into, with that process.
fn walk_owners(proc: &std::path::Path) -> OwnerMap {
    let mut owners = HashMap::new();
    let Ok(processes) = procfs::process::all_processes_with_root(proc) else {
        return owners;
    };
    for process in processes.filter_map(Result::ok) {
        let Ok(fds) = process.fd() else { continue };
        let mut name = None;
        for fd in fds.filter_map(Result::ok) {
            if let FDTarget::Socket(inode) = fd.target {
                let name = name.get_or_insert_with(|| {
                    std::fs::read_to_string(proc.join(process.pid.to_string()).join("comm"))
                        .map(|comm| comm.trim_end().to_string())
                        .unwrap_or_default()
                });
                // A socket shared by several processes (a forking server) is shown with the
                // first, usually the parent.
                owners.entry(inode).or_insert_with(|| Owner {
                    pid: process.pid as u32,
                    name: name.clone(),
                });
            }
        }
    }
    owners
}

impl Collect for ConnectionCollector {
    type Arguments = ConnectionsArguments;
    type Output = NetworkConnections;

    const DECLARATION: &'static Declaration = &NETWORK_CONNECTIONS;

    fn collect(
        &self,
        arguments: ConnectionsArguments,
        context: &ToolContext,
    ) -> Result<NetworkConnections, ToolError> {
        self.connections(&arguments, context.output_cap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_are_read_in_any_common_spelling() {
        assert_eq!(parse_state("established").expect("known"), "ESTAB");
        assert_eq!(parse_state("time_wait").expect("known"), "TIME-WAIT");
        assert_eq!(parse_state("LISTEN").expect("known"), "LISTEN");
        let error = parse_state("bogus").expect_err("unknown");
        assert!(
            error
                .message
                .starts_with("unknown state `bogus`; valid states: LISTEN, ESTAB")
        );
    }
}
