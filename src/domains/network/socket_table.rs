//! The kernel's TCP and UDP socket tables of the server's network namespace.
//!
//! Read through sock_diag netlink, as `ss` does: a dump visits only the sockets there are,
//! where `/proc/net/tcp` walks every bucket of a hash table sized by the host's RAM (about
//! 2 ms per file on a 24 GiB machine, for a handful of sockets). A kernel or sandbox without
//! sock_diag for a protocol falls back to that protocol's `/proc/net` files.

use std::io;
use std::net::SocketAddr;
use std::path::Path;

use netlink_packet_core::{
    NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_sock_diag::SockDiagMessage;
use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP, IPPROTO_UDP};
use netlink_packet_sock_diag::inet::{
    ExtensionFlags, InetRequest, InetResponseHeader, SocketId, StateFlags,
};
use netlink_sys::protocols::NETLINK_SOCK_DIAG;
use procfs::net::{TcpState, UdpState};
use procfs::process::Process;

use super::connections::Protocol;
use crate::tool::ToolError;

/// One row of a kernel socket table.
pub(crate) struct Socket {
    pub protocol: Protocol,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// In `ss`'s spelling.
    pub state: &'static str,
    pub receive_queue: u32,
    pub send_queue: u32,
    pub uid: u32,
    pub inode: u64,
}

/// The sockets of `protocol` (both when `None`), IPv4 and IPv6.
pub(crate) fn read(proc: &Path, protocol: Option<Protocol>) -> Result<Vec<Socket>, ToolError> {
    let mut sockets = Vec::new();
    for wanted in [Protocol::Tcp, Protocol::Udp] {
        if protocol.is_some_and(|protocol| protocol != wanted) {
            continue;
        }
        match dump(wanted) {
            Ok(rows) => sockets.extend(rows),
            Err(error) => {
                tracing::debug!(%error, protocol = wanted.as_str(), "sock_diag failed; reading /proc/net");
                sockets.extend(proc_tables(proc, wanted)?);
            }
        }
    }
    Ok(sockets)
}

/// Both families of one protocol through one sock_diag socket.
fn dump(protocol: Protocol) -> io::Result<Vec<Socket>> {
    let mut socket = netlink_sys::Socket::new(NETLINK_SOCK_DIAG)?;
    socket.bind_auto()?;
    socket.connect(&netlink_sys::SocketAddr::new(0, 0))?;
    let mut sockets = Vec::new();
    let mut buffer = vec![0u8; 64 * 1024];
    for family in [AF_INET, AF_INET6] {
        request(&socket, protocol, family)?;
        receive(&socket, &mut buffer, |header| {
            sockets.push(from_diag(protocol, header))
        })?;
    }
    Ok(sockets)
}

fn request(socket: &netlink_sys::Socket, protocol: Protocol, family: u8) -> io::Result<()> {
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    let mut message = NetlinkMessage::new(
        header,
        SockDiagMessage::InetRequest(InetRequest {
            family,
            protocol: match protocol {
                Protocol::Tcp => IPPROTO_TCP,
                Protocol::Udp => IPPROTO_UDP,
            },
            extensions: ExtensionFlags::empty(),
            states: StateFlags::all(),
            socket_id: if family == AF_INET {
                SocketId::new_v4()
            } else {
                SocketId::new_v6()
            },
        })
        .into(),
    );
    message.finalize();
    let mut bytes = vec![0u8; message.buffer_len()];
    message.serialize(&mut bytes);
    socket.send(&bytes, 0)?;
    Ok(())
}

/// Reads a dump's answers until its `NLMSG_DONE`, handing each socket to `each`.
fn receive(
    socket: &netlink_sys::Socket,
    buffer: &mut [u8],
    mut each: impl FnMut(&InetResponseHeader),
) -> io::Result<()> {
    loop {
        let size = socket.recv(&mut &mut buffer[..], 0)?;
        let mut offset = 0;
        while offset < size {
            let message = NetlinkMessage::<SockDiagMessage>::deserialize(&buffer[offset..size])
                .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error.to_string()))?;
            match message.payload {
                NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(response)) => {
                    each(&response.header)
                }
                NetlinkPayload::Done(_) => return Ok(()),
                NetlinkPayload::Error(error) => return Err(error.to_io()),
                _ => {}
            }
            let length = message.header.length as usize;
            if length == 0 {
                break;
            }
            // Messages in a datagram start on 4-byte boundaries.
            offset += (length + 3) & !3;
        }
    }
}

fn from_diag(protocol: Protocol, header: &InetResponseHeader) -> Socket {
    let id = &header.socket_id;
    Socket {
        protocol,
        local: SocketAddr::new(id.source_address, id.source_port),
        remote: SocketAddr::new(id.destination_address, id.destination_port),
        state: match protocol {
            Protocol::Tcp => diag_tcp_state(header.state),
            Protocol::Udp if header.state == 1 => "ESTAB",
            Protocol::Udp => "UNCONN",
        },
        receive_queue: header.recv_queue,
        send_queue: header.send_queue,
        uid: header.uid,
        inode: u64::from(header.inode),
    }
}

/// The kernel's TCP state numbers (`include/net/tcp_states.h`).
fn diag_tcp_state(state: u8) -> &'static str {
    match state {
        1 => "ESTAB",
        2 => "SYN-SENT",
        3 | 12 => "SYN-RECV",
        4 => "FIN-WAIT-1",
        5 => "FIN-WAIT-2",
        6 => "TIME-WAIT",
        8 => "CLOSE-WAIT",
        9 => "LAST-ACK",
        10 => "LISTEN",
        11 => "CLOSING",
        _ => "UNCONN",
    }
}

/// The fallback: `/proc/self/net/{tcp,tcp6}` or `{udp,udp6}` under `[host] proc`.
fn proc_tables(proc: &Path, protocol: Protocol) -> Result<Vec<Socket>, ToolError> {
    let me = Process::new_with_root(proc.join("self")).map_err(|error| {
        ToolError::unavailable(format!(
            "cannot open {}/self: {error} (is host.proc right?)",
            proc.display()
        ))
    })?;
    let failed = |table: &str, error: procfs::ProcError| {
        ToolError::unavailable(format!("cannot read /proc/net/{table}: {error}"))
    };
    let mut sockets = Vec::new();
    match protocol {
        Protocol::Tcp => {
            for (table, rows) in [("tcp", me.tcp()), ("tcp6", me.tcp6())] {
                // A kernel without IPv6 has no tcp6 table; that is not an error.
                let rows = match rows {
                    Ok(rows) => rows,
                    Err(_) if table == "tcp6" => Vec::new(),
                    Err(error) => return Err(failed(table, error)),
                };
                sockets.extend(rows.into_iter().map(|row| Socket {
                    protocol,
                    local: row.local_address,
                    remote: row.remote_address,
                    state: proc_tcp_state(&row.state),
                    receive_queue: row.rx_queue,
                    send_queue: row.tx_queue,
                    uid: row.uid,
                    inode: row.inode,
                }));
            }
        }
        Protocol::Udp => {
            for (table, rows) in [("udp", me.udp()), ("udp6", me.udp6())] {
                let rows = match rows {
                    Ok(rows) => rows,
                    Err(_) if table == "udp6" => Vec::new(),
                    Err(error) => return Err(failed(table, error)),
                };
                sockets.extend(rows.into_iter().map(|row| Socket {
                    protocol,
                    local: row.local_address,
                    remote: row.remote_address,
                    state: match row.state {
                        UdpState::Established => "ESTAB",
                        UdpState::Close => "UNCONN",
                    },
                    receive_queue: row.rx_queue,
                    send_queue: row.tx_queue,
                    uid: row.uid,
                    inode: row.inode,
                }));
            }
        }
    }
    Ok(sockets)
}

fn proc_tcp_state(state: &TcpState) -> &'static str {
    match state {
        TcpState::Established => "ESTAB",
        TcpState::SynSent => "SYN-SENT",
        TcpState::SynRecv | TcpState::NewSynRecv => "SYN-RECV",
        TcpState::FinWait1 => "FIN-WAIT-1",
        TcpState::FinWait2 => "FIN-WAIT-2",
        TcpState::TimeWait => "TIME-WAIT",
        TcpState::Close => "UNCONN",
        TcpState::CloseWait => "CLOSE-WAIT",
        TcpState::LastAck => "LAST-ACK",
        TcpState::Listen => "LISTEN",
        TcpState::Closing => "CLOSING",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// sock_diag and /proc/net agree on a socket this test owns.
    #[test]
    fn both_readers_see_a_listening_socket() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        let find = |sockets: Vec<Socket>| {
            sockets
                .into_iter()
                .find(|s| s.local.port() == port && s.state == "LISTEN")
                .map(|s| (s.local, s.uid, s.inode))
        };
        let diag = find(dump(Protocol::Tcp).expect("sock_diag dump"));
        let proc = find(proc_tables(Path::new("/proc"), Protocol::Tcp).expect("/proc/net/tcp"));
        assert!(diag.is_some(), "sock_diag did not list port {port}");
        assert_eq!(diag, proc);
    }
}
