//! HTTPS: the same router as plain HTTP, served by hyper over rustls (axum's `serve` speaks
//! plain TCP only). Each connection's peer address and verified client certificate travel to the
//! authentication layer as its connection info.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::connections::{self, ConnectionLimits, Establish};
use super::peer::ConnectionPeer;
use super::router;
use crate::access::{Identity, TransportKind};
use crate::auth::Authenticator;
use crate::auth::certificates::common_name;
use crate::config::Config;
use crate::gate::Gate;

/// A handshake that does not finish in this time is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The peer of a TLS connection.
#[derive(Debug, Clone)]
pub(super) struct TlsPeer {
    address: SocketAddr,
    /// The server's end, to find the owner of a loopback client's socket.
    local: SocketAddr,
    /// The common name of the client certificate the handshake verified, if one was presented.
    certificate: Option<String>,
}

impl ConnectionPeer for TlsPeer {
    fn transport(&self) -> TransportKind {
        TransportKind::Http
    }
    fn remote(&self) -> Option<String> {
        Some(self.address.to_string())
    }
    fn local_user(&self) -> Option<Identity> {
        None
    }
    fn client_certificate(&self) -> Option<&str> {
        self.certificate.as_deref()
    }
    fn is_local(&self) -> bool {
        self.address.ip().is_loopback()
    }
    fn owner_uid(&self) -> Option<u32> {
        super::peer::loopback_owner(self.address, self.local)
    }
}

/// A bound TLS listener, ready to serve.
pub(crate) struct TlsServer {
    listener: TcpListener,
    acceptor: TlsAcceptor,
}

impl TlsServer {
    pub(crate) async fn bind(
        address: SocketAddr,
        config: Arc<rustls::ServerConfig>,
    ) -> io::Result<Self> {
        Ok(Self {
            listener: TcpListener::bind(address).await?,
            acceptor: TlsAcceptor::from(config),
        })
    }

    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `stop_accepting` fires and every connection has closed.
    pub(crate) fn serve(
        self,
        gate: Arc<Gate>,
        authenticator: Arc<Authenticator>,
        config: &Config,
        stop_accepting: CancellationToken,
        sessions_closed: CancellationToken,
    ) -> impl Future<Output = io::Result<()>> + Send + 'static {
        let audit = Arc::clone(gate.audit());
        let app = router::<TlsPeer>(gate, authenticator, config, sessions_closed);
        let limits = ConnectionLimits::from_config(&config.http);
        let Self { listener, acceptor } = self;
        connections::serve(
            listener,
            Handshake(acceptor),
            app,
            limits,
            audit,
            stop_accepting,
        )
    }
}

/// Establishes TLS: the handshake (bounded by [`HANDSHAKE_TIMEOUT`]) and the client
/// certificate's name, if one was verified.
#[derive(Clone)]
struct Handshake(TlsAcceptor);

impl Establish<(TcpStream, SocketAddr)> for Handshake {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Peer = TlsPeer;
    async fn establish(
        &self,
        (stream, address): (TcpStream, SocketAddr),
    ) -> Option<(Self::Io, TlsPeer)> {
        let _ = stream.set_nodelay(true);
        let local = stream.local_addr().ok()?;
        let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, self.0.accept(stream)).await {
            Ok(Ok(tls)) => tls,
            Ok(Err(error)) => {
                tracing::info!(%address, %error, "TLS handshake failed");
                return None;
            }
            Err(_) => {
                tracing::info!(%address, "TLS handshake timed out");
                return None;
            }
        };
        let certificate = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(common_name);
        Some((
            tls,
            TlsPeer {
                address,
                local,
                certificate,
            },
        ))
    }
}
