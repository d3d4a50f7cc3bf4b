//! What a connection says about its peer before any credential is looked at.
//!
//! A TCP peer is only an address. A unix-socket peer is identified by the kernel
//! (`SO_PEERCRED`): the local user that connected.

use std::net::SocketAddr;

use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use tokio::net::UnixListener;

use crate::gate::{Identity, TransportKind};

/// A connection's peer, as the connection-info extension carries it.
pub trait ConnectionPeer: Clone + Send + Sync + 'static {
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
    /// `tailscale serve` proxy connects from, and so the only peer whose `X-Forwarded-For` is
    /// believed.
    fn is_local(&self) -> bool;
}

/// (axum's own `SocketAddr` connection info is used: a TCP listener with `TCP_NODELAY` tapped in
/// cannot carry a connection-info type of ours.)
impl ConnectionPeer for SocketAddr {
    fn transport(&self) -> TransportKind {
        TransportKind::Http
    }
    fn remote(&self) -> Option<String> {
        Some(self.to_string())
    }
    fn local_user(&self) -> Option<Identity> {
        None
    }
    fn is_local(&self) -> bool {
        self.ip().is_loopback()
    }
}

/// The peer of a unix-socket connection; the user name is looked up once per connection.
#[derive(Debug, Clone)]
pub struct UnixPeer {
    user: Option<Identity>,
    remote: Option<String>,
}

impl Connected<IncomingStream<'_, UnixListener>> for UnixPeer {
    fn connect_info(stream: IncomingStream<'_, UnixListener>) -> Self {
        match stream.io().peer_cred() {
            Ok(credentials) => UnixPeer {
                user: Some(Identity::local_user(credentials.uid())),
                remote: credentials.pid().map(|pid| format!("pid {pid}")),
            },
            Err(error) => {
                tracing::warn!(%error, "cannot read unix socket peer credentials");
                UnixPeer {
                    user: None,
                    remote: None,
                }
            }
        }
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
}
