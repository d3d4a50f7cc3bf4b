//! HTTPS: the same router as plain HTTP, served by hyper over rustls (axum's `serve` speaks
//! plain TCP only). Each connection's peer address and verified client certificate travel to the
//! authentication layer as its connection info.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::peer::ConnectionPeer;
use super::router;
use crate::auth::Authenticator;
use crate::auth::tls::common_name;
use crate::config::Config;
use crate::gate::{Gate, Identity, TransportKind};

/// A handshake that does not finish in this time is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The peer of a TLS connection.
#[derive(Debug, Clone)]
pub struct TlsPeer {
    address: SocketAddr,
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
}

/// A bound TLS listener, ready to serve.
pub struct TlsServer {
    listener: TcpListener,
    acceptor: TlsAcceptor,
}

impl TlsServer {
    pub async fn bind(address: SocketAddr, config: Arc<rustls::ServerConfig>) -> io::Result<Self> {
        Ok(Self {
            listener: TcpListener::bind(address).await?,
            acceptor: TlsAcceptor::from(config),
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `stop_accepting` fires and every connection has closed.
    pub fn serve(
        self,
        gate: Arc<Gate>,
        authenticator: Arc<Authenticator>,
        config: &Config,
        stop_accepting: CancellationToken,
        sessions_closed: CancellationToken,
    ) -> impl Future<Output = io::Result<()>> + Send + 'static {
        let app = router::<TlsPeer>(gate, authenticator, config, sessions_closed);
        let Self { listener, acceptor } = self;
        async move {
            let graceful = GracefulShutdown::new();
            loop {
                let (stream, address) = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok(accepted) => accepted,
                        Err(error) => {
                            tracing::warn!(%error, "cannot accept a connection");
                            continue;
                        }
                    },
                    () = stop_accepting.cancelled() => break,
                };
                let _ = stream.set_nodelay(true);
                let acceptor = acceptor.clone();
                let app = app.clone();
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream))
                        .await
                    {
                        Ok(Ok(tls)) => tls,
                        Ok(Err(error)) => {
                            tracing::info!(%address, %error, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::info!(%address, "TLS handshake timed out");
                            return;
                        }
                    };
                    let certificate = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|chain| chain.first())
                        .and_then(common_name);
                    let peer = TlsPeer {
                        address,
                        certificate,
                    };
                    let service = TowerToHyperService::new(app.layer(Extension(ConnectInfo(peer))));
                    let connection = hyper::server::conn::http1::Builder::new()
                        .timer(TokioTimer::new())
                        .serve_connection(TokioIo::new(tls), service);
                    if let Err(error) = watcher.watch(connection).await {
                        tracing::debug!(%address, %error, "connection ended with an error");
                    }
                });
            }
            graceful.shutdown().await;
            Ok(())
        }
    }
}
