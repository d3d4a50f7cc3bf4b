//! Who is on the other end of an HTTP connection, and the [`Caller`] it becomes.
//!
//! TCP peers are `anonymous` until authentication lands (the security work fills this seam with
//! bearer tokens, mTLS and Tailscale identities). Unix-socket peers are identified by the kernel
//! (`SO_PEERCRED`), so they are the local user that connected. The caller is resolved once per
//! connection (unix) or cheaply per request (TCP).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, connect_info::Connected};
use axum::middleware::Next;
use axum::response::Response;
use axum::serve::IncomingStream;
use tokio::net::UnixListener;

use crate::gate::{Caller, Identity, TransportKind};

/// A connection's caller, for the connection-info extension.
pub trait ConnectionCaller: Clone + Send + Sync + 'static {
    fn caller(&self) -> Arc<Caller>;
}

/// TCP callers are anonymous until authentication exists; the peer address is all there is.
/// (axum's own `SocketAddr` connection info is used: a TCP listener with `TCP_NODELAY` tapped
/// in cannot carry a connection-info type of ours.)
impl ConnectionCaller for SocketAddr {
    fn caller(&self) -> Arc<Caller> {
        Arc::new(Caller {
            identity: Identity::Anonymous,
            transport: TransportKind::Http,
            remote: Some(self.to_string()),
        })
    }
}

/// The caller behind a unix-socket connection, as the kernel reports it.
#[derive(Debug, Clone)]
pub struct UnixPeer(Arc<Caller>);

impl Connected<IncomingStream<'_, UnixListener>> for UnixPeer {
    fn connect_info(stream: IncomingStream<'_, UnixListener>) -> Self {
        let (identity, remote) = match stream.io().peer_cred() {
            Ok(credentials) => (
                Identity::local_user(credentials.uid()),
                credentials.pid().map(|pid| format!("pid {pid}")),
            ),
            Err(error) => {
                tracing::warn!(%error, "cannot read unix socket peer credentials");
                (Identity::Anonymous, None)
            }
        };
        UnixPeer(Arc::new(Caller {
            identity,
            transport: TransportKind::UnixSocket,
            remote,
        }))
    }
}

impl ConnectionCaller for UnixPeer {
    fn caller(&self) -> Arc<Caller> {
        Arc::clone(&self.0)
    }
}

/// Attaches the connection's [`Caller`] to each request, where the MCP face finds it.
pub async fn identify<P: ConnectionCaller>(
    ConnectInfo(peer): ConnectInfo<P>,
    mut request: Request,
    next: Next,
) -> Response {
    request.extensions_mut().insert(peer.caller());
    next.run(request).await
}
