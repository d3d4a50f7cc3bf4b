//! Accepting and serving connections, with the bounds a server on a shared host needs: a
//! connection that does not send its request headers within `http.header_read_timeout_seconds`
//! is closed (this covers a slowloris trickle and an idle keep-alive connection alike: hyper's
//! timer runs whenever the connection waits for a request), at most `http.max_connections` are
//! open at once (never more than the descriptor limit leaves room for) — when full, the one that
//! has waited longest for a request is closed to make room ([`super::occupancy`]), and only when
//! every connection is busy is the newcomer turned away — and the refusals made here — too many
//! connections, headers too large (431), requests that are not HTTP — are audited like every
//! other refusal. TCP, TLS and the unix socket share this loop; each says how a connection is
//! established ([`Establish`]: a TLS handshake, peer credentials) and what it knows of its peer.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::occupancy::{self, Occupancy};
use super::peer::ConnectionPeer;
use crate::audit::{AuditLog, Entry};
use crate::config::HttpConfig;

/// How long a newcomer waits for the connection closed to make room for it to be gone.
const EVICTION_WAIT: Duration = Duration::from_millis(200);

/// Descriptors kept free for the server itself (its listeners, the audit log, /proc, Docker).
/// Of the rest, connections may hold half; file calls share the other half (the files domain's
/// descriptor budget).
const RESERVED_DESCRIPTORS: u64 = 128;

/// The bounds on connections, from `[http]` and the process's descriptor limit.
#[derive(Debug, Clone, Copy)]
pub(super) struct ConnectionLimits {
    /// How long a connection may take to send a request's headers, and may sit idle between
    /// requests.
    pub header_read_timeout: Duration,
    /// Connections open at once; more are closed as soon as they are accepted.
    pub max_connections: usize,
}

impl ConnectionLimits {
    /// `http.max_connections`, held to half of the descriptor limit (`RLIMIT_NOFILE`) less a
    /// reserve.
    pub(super) fn from_config(http: &HttpConfig) -> Self {
        let descriptors = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
        Self::within(http, descriptors.unwrap_or(u64::MAX))
    }

    fn within(http: &HttpConfig, descriptors: u64) -> Self {
        let room = (descriptors.saturating_sub(RESERVED_DESCRIPTORS) / 2).max(16);
        Self {
            header_read_timeout: Duration::from_secs(http.header_read_timeout_seconds.get()),
            max_connections: usize::try_from(http.max_connections.get().min(room))
                .unwrap_or(usize::MAX),
        }
    }
}

/// A listener: TCP or a unix socket.
pub(super) trait Listener: Send + 'static {
    type Stream: Send + 'static;
    fn accept(&self) -> impl Future<Output = io::Result<Self::Stream>> + Send;
    /// The peer address of an accepted stream, for the record of a refusal.
    fn remote(stream: &Self::Stream) -> Option<String>;
}

impl Listener for TcpListener {
    type Stream = (TcpStream, SocketAddr);
    fn accept(&self) -> impl Future<Output = io::Result<Self::Stream>> + Send {
        TcpListener::accept(self)
    }
    fn remote(stream: &Self::Stream) -> Option<String> {
        Some(stream.1.to_string())
    }
}

impl Listener for UnixListener {
    type Stream = UnixStream;
    async fn accept(&self) -> io::Result<Self::Stream> {
        UnixListener::accept(self).await.map(|(stream, _)| stream)
    }
    fn remote(stream: &Self::Stream) -> Option<String> {
        stream
            .peer_cred()
            .ok()
            .and_then(|credentials| credentials.pid())
            .map(|pid| format!("pid {pid}"))
    }
}

/// How an accepted stream becomes a connection HTTP can be spoken on, and who is at the other
/// end. `None` drops the connection (a failed TLS handshake, say).
pub(super) trait Establish<S>: Clone + Send + Sync + 'static {
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    type Peer: ConnectionPeer;
    fn establish(&self, stream: S) -> impl Future<Output = Option<(Self::Io, Self::Peer)>> + Send;
}

/// Serves `app` on every connection `listener` accepts until `stop_accepting` fires, then waits
/// for open connections to finish.
pub(super) async fn serve<L, E>(
    listener: L,
    establish: E,
    app: Router,
    limits: ConnectionLimits,
    audit: Arc<AuditLog>,
    stop_accepting: CancellationToken,
) -> io::Result<()>
where
    L: Listener,
    E: Establish<L::Stream>,
{
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let occupancy = Arc::new(Occupancy::default());
    let app = app
        .layer(axum::middleware::from_fn(occupancy::track))
        .layer(Extension(Arc::clone(&occupancy)));
    let graceful = GracefulShutdown::new();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(stream) => stream,
                Err(error) => {
                    // Out of descriptors (EMFILE) or a connection reset before it was accepted:
                    // wait a moment rather than spin, then go on.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stop_accepting.cancelled() => break,
        };
        let permit = match Arc::clone(&permits).try_acquire_owned() {
            Ok(permit) => Ok(permit),
            // Full: close the connection that has waited longest for a request (a slowloris, an
            // idle keep-alive) and take its place once it is gone.
            Err(_) if occupancy.evict_the_longest_waiting() => {
                tokio::time::timeout(EVICTION_WAIT, Arc::clone(&permits).acquire_owned())
                    .await
                    .map_err(|_| ())
                    .and_then(|permit| permit.map_err(|_| ()))
            }
            Err(_) => Err(()),
        };
        let Ok(permit) = permit else {
            record(
                &audit,
                L::remote(&stream),
                "too_many_connections",
                format!(
                    "connection closed: {} connections are open (http.max_connections)",
                    limits.max_connections
                ),
            );
            drop(stream);
            continue;
        };
        let establish = establish.clone();
        let app = app.clone();
        let watcher = graceful.watcher();
        let audit = Arc::clone(&audit);
        let (occupant, leaving) = occupancy.admit();
        tokio::spawn(async move {
            let _permit = permit;
            let _leaving = leaving;
            let evicted = occupant.evicted.clone();
            let Some((io, peer)) = establish.establish(stream).await else {
                return;
            };
            let remote = peer.remote();
            let service = TowerToHyperService::new(
                app.layer(Extension(occupant))
                    .layer(Extension(ConnectInfo(peer))),
            );
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout);
            let connection = builder.serve_connection(TokioIo::new(io), service);
            let served = tokio::select! {
                served = watcher.watch(connection) => served,
                // Dropping the connection closes it.
                () = evicted.cancelled() => {
                    record(
                        &audit,
                        remote.clone(),
                        "closed_waiting",
                        format!(
                            "connection closed to make room: {} connections were open \
                             (http.max_connections) and this one had waited longest for a request",
                            limits.max_connections
                        ),
                    );
                    Ok(())
                }
            };
            if let Err(error) = served {
                if error.is_parse_too_large() {
                    // hyper has answered 431 already.
                    record(
                        &audit,
                        remote,
                        "headers_too_large",
                        "431: the request's headers are too large".into(),
                    );
                } else if error.is_parse() || error.is_parse_status() {
                    // Not HTTP/1.1 at all (a TLS hello on the plain port, a bad header name, a
                    // broken Content-Length): hyper has answered 400, or closed.
                    record(
                        &audit,
                        remote,
                        "malformed_request",
                        format!("the request could not be parsed as HTTP/1.1: {error}"),
                    );
                } else if error.is_timeout() {
                    // Not audited: no request was made, and an idle keep-alive connection ends
                    // the same way as a slow one.
                    tracing::debug!(
                        remote = remote.as_deref().unwrap_or(""),
                        "connection closed: no request headers within {} s",
                        limits.header_read_timeout.as_secs()
                    );
                } else {
                    tracing::debug!(%error, "connection ended with an error");
                }
            }
        });
    }
    graceful.shutdown().await;
    Ok(())
}

/// Records a connection refused before any request reached the layers above.
fn record(audit: &AuditLog, remote: Option<String>, outcome: &str, detail: String) {
    let entry = Entry {
        remote,
        ..Entry::refused_request(None, outcome, detail)
    };
    // Refused either way; a failed record is logged by the audit log itself. One of a flood is
    // counted, and not logged line by line either.
    if audit.record_refusal(&entry) {
        tracing::info!(
            remote = entry.remote.as_deref().unwrap_or(""),
            outcome,
            "{}",
            entry.detail.as_deref().unwrap_or("")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_stay_below_the_descriptor_limit() {
        let http = HttpConfig::default();
        assert_eq!(ConnectionLimits::within(&http, 1024).max_connections, 448);
        assert_eq!(
            ConnectionLimits::within(&http, 1 << 20).max_connections,
            1024
        );
        assert_eq!(ConnectionLimits::within(&http, 100).max_connections, 16);
        assert_eq!(ConnectionLimits::within(&http, 4096).max_connections, 1024);
        assert_eq!(
            ConnectionLimits::within(&http, 1024).header_read_timeout,
            Duration::from_secs(10)
        );
    }
}
