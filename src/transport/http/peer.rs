//! What a connection says about its peer before any credential is looked at.
//!
//! A TCP peer is an address, and — on loopback — a local user: the kernel's socket table says
//! who owns the other end (sock_diag, as `ss -e` shows it). A unix-socket peer is identified by
//! the kernel (`SO_PEERCRED`): the local user that connected.

use std::io;
use std::net::SocketAddr;

use netlink_packet_core::{NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload};
use netlink_packet_sock_diag::SockDiagMessage;
use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP};
use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, SocketId, StateFlags};
use netlink_sys::protocols::NETLINK_SOCK_DIAG;
use tokio::net::{TcpStream, UnixStream};

use super::connections::Establish;
use crate::access::{Identity, TransportKind};

/// A connection's peer, as the connection-info extension carries it.
pub(crate) trait ConnectionPeer: Clone + Send + Sync + 'static {
    fn transport(&self) -> TransportKind;
    /// The peer for logs and the audit trail: an address, or `pid N`.
    fn remote(&self) -> Option<String>;
    /// The local user the kernel vouches for, if the transport has one.
    fn local_user(&self) -> Option<Identity>;
    /// The common name of a client certificate the TLS handshake verified.
    fn client_certificate(&self) -> Option<&str> {
        None
    }
    /// Whether the peer is on this machine (loopback or the unix socket): the only place a
    /// `tailscale serve` proxy connects from.
    fn is_local(&self) -> bool;
    /// The uid of the process at the other end, when the kernel can say: the unix socket's peer
    /// credentials, or the owner of a loopback TCP client socket. Only a peer whose uid is
    /// `tailscale.proxy_uid` may forward a tailnet identity. Blocking for TCP (one netlink
    /// round trip).
    fn owner_uid(&self) -> Option<u32>;
}

/// A plain TCP connection's two ends.
#[derive(Debug, Clone)]
pub(super) struct TcpPeer {
    pub remote: SocketAddr,
    pub local: SocketAddr,
}

impl ConnectionPeer for TcpPeer {
    fn transport(&self) -> TransportKind {
        TransportKind::Http
    }
    fn remote(&self) -> Option<String> {
        Some(self.remote.to_string())
    }
    fn local_user(&self) -> Option<Identity> {
        None
    }
    fn is_local(&self) -> bool {
        self.remote.ip().is_loopback()
    }
    fn owner_uid(&self) -> Option<u32> {
        loopback_owner(self.remote, self.local)
    }
}

/// Accepts plain TCP: no handshake; `TCP_NODELAY` because replies are small and written in more
/// than one piece (without it a keep-alive client waits ~40 ms for each: Nagle meets delayed ACK).
#[derive(Debug, Clone, Copy)]
pub(super) struct PlainTcp;

impl Establish<(TcpStream, SocketAddr)> for PlainTcp {
    type Io = TcpStream;
    type Peer = TcpPeer;
    async fn establish(
        &self,
        (stream, remote): (TcpStream, SocketAddr),
    ) -> Option<(TcpStream, TcpPeer)> {
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        let local = stream.local_addr().ok()?;
        Some((stream, TcpPeer { remote, local }))
    }
}

/// The peer of a unix-socket connection; the user name is looked up once per connection.
#[derive(Debug, Clone)]
pub(super) struct UnixPeer {
    uid: Option<u32>,
    user: Option<Identity>,
    remote: Option<String>,
}

/// Accepts unix-socket connections, reading the peer's credentials.
#[derive(Debug, Clone, Copy)]
pub(super) struct PeerCredentials;

impl Establish<UnixStream> for PeerCredentials {
    type Io = UnixStream;
    type Peer = UnixPeer;
    async fn establish(&self, stream: UnixStream) -> Option<(UnixStream, UnixPeer)> {
        let peer = match stream.peer_cred() {
            Ok(credentials) => UnixPeer {
                uid: Some(credentials.uid()),
                user: Some(Identity::local_user(credentials.uid())),
                remote: credentials.pid().map(|pid| format!("pid {pid}")),
            },
            Err(error) => {
                tracing::warn!(%error, "cannot read unix socket peer credentials");
                UnixPeer {
                    uid: None,
                    user: None,
                    remote: None,
                }
            }
        };
        Some((stream, peer))
    }
}

impl ConnectionPeer for UnixPeer {
    fn transport(&self) -> TransportKind {
        TransportKind::UnixSocket
    }
    fn remote(&self) -> Option<String> {
        self.remote.clone()
    }
    fn local_user(&self) -> Option<Identity> {
        self.user.clone()
    }
    fn is_local(&self) -> bool {
        true
    }
    fn owner_uid(&self) -> Option<u32> {
        self.uid
    }
}

/// The uid owning the client end of a loopback TCP connection from `remote` to `local`: the
/// kernel's record of the socket (`sock_diag`, one exact lookup, no dump). `None` when the peer
/// is not on loopback or the kernel does not answer.
pub(super) fn loopback_owner(remote: SocketAddr, local: SocketAddr) -> Option<u32> {
    if !remote.ip().is_loopback() {
        return None;
    }
    match lookup_owner(remote, local) {
        Ok(uid) => uid,
        Err(error) => {
            tracing::debug!(%error, %remote, "cannot find the owner of a loopback connection");
            None
        }
    }
}

fn lookup_owner(remote: SocketAddr, local: SocketAddr) -> io::Result<Option<u32>> {
    let mut socket = netlink_sys::Socket::new(NETLINK_SOCK_DIAG)?;
    socket.bind_auto()?;
    socket.connect(&netlink_sys::SocketAddr::new(0, 0))?;
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST;
    // The client's socket, seen from its side: its source is our peer, its destination us. The
    // all-ones cookie asks the kernel to find it by addresses alone.
    let mut message = NetlinkMessage::new(
        header,
        SockDiagMessage::InetRequest(InetRequest {
            family: if remote.is_ipv4() { AF_INET } else { AF_INET6 },
            protocol: IPPROTO_TCP,
            extensions: ExtensionFlags::empty(),
            states: StateFlags::all(),
            socket_id: SocketId {
                source_port: remote.port(),
                destination_port: local.port(),
                source_address: remote.ip(),
                destination_address: local.ip(),
                interface_id: 0,
                cookie: [0xff; 8],
            },
        })
        .into(),
    );
    message.finalize();
    let mut bytes = vec![0u8; message.buffer_len()];
    message.serialize(&mut bytes);
    socket.send(&bytes, 0)?;
    let mut buffer = vec![0u8; 8192];
    let size = socket.recv(&mut &mut buffer[..], 0)?;
    let answer = NetlinkMessage::<SockDiagMessage>::deserialize(&buffer[..size])
        .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error.to_string()))?;
    match answer.payload {
        NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(response)) => {
            Ok(Some(response.header.uid))
        }
        NetlinkPayload::Error(error) if error.code.is_some() => Err(error.to_io()),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_owner_of_a_loopback_client_is_found() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let client =
            std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (server_side, remote) = listener.accept().expect("accept");
        let local = server_side.local_addr().expect("local");
        let uid = loopback_owner(remote, local);
        assert_eq!(uid, Some(rustix::process::getuid().as_raw()));
        drop(client);
        let elsewhere: SocketAddr = "192.0.2.1:80".parse().expect("addr");
        assert_eq!(loopback_owner(elsewhere, local), None);
    }
}
