//! Who is on the other end of an HTTP connection, and the [`Caller`] it becomes.
//!
//! Unix-socket peers are identified by the kernel (`SO_PEERCRED`), so they are the local user
//! that connected, with the local role. TCP peers are `anonymous`, limited to the `viewer` role,
//! until authentication lands (the security work fills this seam with bearer tokens, mTLS and
//! Tailscale identities).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State, connect_info::Connected};
use axum::middleware::Next;
use axum::response::Response;
use axum::serve::IncomingStream;
use tokio::net::UnixListener;

use crate::gate::{Caller, Identity, Policy, TransportKind};

/// What a connection says about its peer, before any credential is looked at.
pub trait ConnectionPeer: Clone + Send + Sync + 'static {
    /// The caller this peer is, under `policy`.
    fn caller(&self, policy: &Policy) -> Caller;
}

/// A TCP peer is only an address. (axum's own `SocketAddr` connection info is used: a TCP
/// listener with `TCP_NODELAY` tapped in cannot carry a connection-info type of ours.)
impl ConnectionPeer for SocketAddr {
    fn caller(&self, policy: &Policy) -> Caller {
        Caller {
            identity: Identity::Anonymous,
            role: policy.role("viewer").unwrap_or_else(|| policy.local_role()),
            transport: TransportKind::Http,
            remote: Some(self.to_string()),
        }
    }
}

/// The peer of a unix-socket connection, as the kernel reports it; the user name is looked up
/// once per connection.
#[derive(Debug, Clone)]
pub struct UnixPeer {
    identity: Option<Identity>,
    remote: Option<String>,
}

impl Connected<IncomingStream<'_, UnixListener>> for UnixPeer {
    fn connect_info(stream: IncomingStream<'_, UnixListener>) -> Self {
        match stream.io().peer_cred() {
            Ok(credentials) => UnixPeer {
                identity: Some(Identity::local_user(credentials.uid())),
                remote: credentials.pid().map(|pid| format!("pid {pid}")),
            },
            Err(error) => {
                tracing::warn!(%error, "cannot read unix socket peer credentials");
                UnixPeer {
                    identity: None,
                    remote: None,
                }
            }
        }
    }
}

impl ConnectionPeer for UnixPeer {
    fn caller(&self, policy: &Policy) -> Caller {
        match &self.identity {
            Some(identity) => Caller {
                identity: identity.clone(),
                role: policy.local_role(),
                transport: TransportKind::UnixSocket,
                remote: self.remote.clone(),
            },
            // Unknown peer: no more than a TCP stranger.
            None => Caller {
                identity: Identity::Anonymous,
                role: policy.role("viewer").unwrap_or_else(|| policy.local_role()),
                transport: TransportKind::UnixSocket,
                remote: None,
            },
        }
    }
}

/// Attaches the request's [`Caller`], where the MCP face finds it.
pub async fn identify<P: ConnectionPeer>(
    State(policy): State<Arc<Policy>>,
    ConnectInfo(peer): ConnectInfo<P>,
    mut request: Request,
    next: Next,
) -> Response {
    request
        .extensions_mut()
        .insert(Arc::new(peer.caller(&policy)));
    next.run(request).await
}
