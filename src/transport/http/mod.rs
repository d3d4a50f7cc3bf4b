//! MCP over Streamable HTTP, on TCP or a unix socket, at `/mcp`.
//!
//! Connections are accepted and bounded by [`connections`] (header timeout, connection bound).
//! Cross-cutting concerns are layers around rmcp's service, outermost first:
//! Host/Origin checks ([`guard`]) → authentication ([`credentials`], the caller's identity and
//! role) → the body limit and JSON-RPC decoding ([`body`]) → admission ([`too_many_requests`],
//! 429) → session
//! owners and bounds ([`sessions`]) → the record of rmcp's own refusals ([`refusals`]) → rmcp's
//! `StreamableHttpService`, which speaks both protocol eras
//! (sessions with `Mcp-Session-Id` for 2025-11-25 and older, stateless requests for 2026-07-28).
//! `GET /healthz` sits outside them all; `GET /metrics`, where `[metrics]` serves it here, behind
//! the Host/Origin check and the credential.

mod body;
mod connections;
mod credentials;
pub(crate) mod guard;
mod https;
mod occupancy;
mod peer;
mod refusals;
mod reply;
mod sessions;
mod too_many_requests;

pub(crate) use https::TlsServer;

use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::routing::get;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use tokio::net::{TcpListener, UnixListener};
use tokio_util::sync::CancellationToken;
use tower::ServiceBuilder;

use crate::auth::Authenticator;
use crate::config::Config;
use crate::gate::Gate;
use crate::mcp::McpServer;
use crate::metrics::{self, Exporter};

use body::BodyLimit;
use connections::ConnectionLimits;
use guard::{Guard, OriginPolicy};
use peer::{ConnectionPeer, PeerCredentials, PlainTcp, TcpPeer, UnixPeer};
use sessions::Sessions;

/// How often an idle SSE stream gets a keep-alive comment, so proxies do not cut it.
const SSE_KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The router for one listener. `sessions_closed` ends rmcp's sessions and streams at shutdown.
fn router<P: ConnectionPeer>(
    gate: Arc<Gate>,
    authenticator: Arc<Authenticator>,
    config: &Config,
    sessions_closed: CancellationToken,
) -> Router {
    let limit = usize::try_from(config.limits.max_request_bytes.get()).unwrap_or(usize::MAX);
    let http = &config.http;
    // rmcp checks Host and Origin again with the same lists: a second lock on the same door.
    let rmcp_config = StreamableHttpServerConfig::default()
        .with_json_response(true)
        .with_sse_keep_alive(Some(SSE_KEEP_ALIVE))
        .with_cancellation_token(sessions_closed.clone())
        .with_max_request_body_bytes(limit)
        .with_allowed_hosts(http.allowed_hosts.iter().map(ToString::to_string))
        .with_allowed_origins(http.allowed_origins.iter().map(ToString::to_string))
        .enforce_origin_validation();
    let audit = Arc::clone(gate.audit());
    let sessions = Sessions::new(http, Arc::clone(&audit), sessions_closed);
    let for_rmcp = Arc::clone(&gate);
    let service = StreamableHttpService::new(
        move || Ok(McpServer::for_http(Arc::clone(&for_rmcp))),
        sessions.manager(),
        rmcp_config,
    );
    let guard = Arc::new(Guard {
        policy: OriginPolicy {
            allowed_hosts: http.allowed_hosts.clone(),
            allowed_origins: http.allowed_origins.clone(),
        },
        audit: Arc::clone(&audit),
    });
    let metrics = config.metrics.enabled && config.metrics.listen.is_none();
    let exporter = metrics.then(|| Arc::new(Exporter::new(gate.metrics(), &config.host)));
    // /metrics, where served here, passes the same door as /mcp: Host/Origin, then credentials.
    let scrape = ServiceBuilder::new()
        .layer(from_fn_with_state(Arc::clone(&guard), guard::enforce::<P>))
        .layer(from_fn_with_state(
            Arc::clone(&authenticator),
            credentials::authenticate::<P>,
        ));
    // In the order a request passes them, outermost first.
    let layers = ServiceBuilder::new()
        .layer(from_fn_with_state(guard, guard::enforce::<P>))
        .layer(from_fn_with_state(
            authenticator,
            credentials::authenticate::<P>,
        ))
        .layer(from_fn_with_state(
            BodyLimit {
                bytes: limit,
                read_within: Duration::from_secs(http.body_read_timeout_seconds.get()),
                audit: Arc::clone(&audit),
            },
            body::check,
        ))
        .layer(from_fn_with_state(gate, too_many_requests::admit))
        .layer(from_fn_with_state(sessions, sessions::enforce))
        .layer(from_fn_with_state(audit, refusals::record));
    let mcp = Router::new().route_service("/mcp", service).layer(layers);
    let mut routes = Router::new().route("/healthz", get(healthz)).merge(mcp);
    if let Some(exporter) = exporter {
        routes = routes.route(
            "/metrics",
            get(move || scrape_metrics(Arc::clone(&exporter))).layer(scrape),
        );
    }
    routes
}

/// `GET /metrics`: one scrape of the host's and the server's figures.
pub(crate) async fn scrape_metrics(exporter: Arc<Exporter>) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    // Reading /proc and statvfs of every mount blocks (a hung NFS mount could hold it).
    match tokio::task::spawn_blocking(move || exporter.render()).await {
        Ok(text) => (
            [(axum::http::header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
            text,
        )
            .into_response(),
        Err(_) => axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// The listener `metrics.listen` names: `/metrics` and `/healthz`, no credentials, but the
/// same Host check as every listener (a browser page on a rebound name reads nothing).
pub(crate) async fn serve_metrics(
    address: SocketAddr,
    exporter: Arc<Exporter>,
    config: &Config,
    stop: CancellationToken,
) -> io::Result<(
    SocketAddr,
    futures::future::BoxFuture<'static, io::Result<()>>,
)> {
    use axum::response::IntoResponse as _;
    use futures::FutureExt as _;
    let listener = TcpListener::bind(address).await?;
    let bound = listener.local_addr()?;
    let policy = Arc::new(OriginPolicy {
        allowed_hosts: config.http.allowed_hosts.clone(),
        allowed_origins: config.http.allowed_origins.clone(),
    });
    let host_check = axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| {
            let policy = Arc::clone(&policy);
            async move {
                match policy.check(request.uri(), request.headers()) {
                    Ok(()) => next.run(request).await,
                    Err(refusal) => {
                        (axum::http::StatusCode::FORBIDDEN, refusal.to_string()).into_response()
                    }
                }
            }
        },
    );
    let routes = Router::new()
        .route("/healthz", get(healthz))
        .route(
            "/metrics",
            get(move || scrape_metrics(Arc::clone(&exporter))),
        )
        .layer(host_check);
    let serving = axum::serve(listener, routes)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .into_future()
        .boxed();
    Ok((bound, serving))
}

/// Liveness for load balancers and service managers: no state, no details.
async fn healthz() -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        r#"{"status":"ok"}"#,
    )
}

/// A bound TCP listener, ready to serve.
pub(crate) struct TcpServer {
    listener: TcpListener,
}

impl TcpServer {
    pub(crate) async fn bind(address: SocketAddr) -> io::Result<Self> {
        let listener = TcpListener::bind(address).await?;
        Ok(Self { listener })
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
        let app = router::<TcpPeer>(gate, authenticator, config, sessions_closed);
        let limits = ConnectionLimits::from_config(&config.http);
        connections::serve(self.listener, PlainTcp, app, limits, audit, stop_accepting)
    }
}

/// A bound unix-socket listener (mode 0660), removed again when dropped.
pub(crate) struct UnixServer {
    listener: UnixListener,
    path: PathBuf,
}

impl UnixServer {
    /// Binds `path`. A stale socket left by a previous run is replaced; a live one, or a file
    /// that is not a socket, is an error rather than something to delete.
    pub(crate) fn bind(path: &Path) -> io::Result<Self> {
        if let Ok(metadata) = std::fs::symlink_metadata(path) {
            if !metadata.file_type().is_socket() {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} exists and is not a socket", path.display()),
                ));
            }
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("{} is in use by another server", path.display()),
                ));
            }
            std::fs::remove_file(path)?;
        }
        // Create the socket without group/other access from the start, then widen to 0660:
        // no moment exists where another user could connect.
        let previous = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o177));
        let bound = UnixListener::bind(path);
        rustix::process::umask(previous);
        let listener = bound?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
        Ok(Self {
            listener,
            path: path.to_path_buf(),
        })
    }

    /// Serves until `stop_accepting` fires and every connection has closed, then removes the
    /// socket file.
    pub(crate) fn serve(
        self,
        gate: Arc<Gate>,
        authenticator: Arc<Authenticator>,
        config: &Config,
        stop_accepting: CancellationToken,
        sessions_closed: CancellationToken,
    ) -> impl Future<Output = io::Result<()>> + Send + 'static {
        let audit = Arc::clone(gate.audit());
        let app = router::<UnixPeer>(gate, authenticator, config, sessions_closed);
        let limits = ConnectionLimits::from_config(&config.http);
        let Self { listener, path } = self;
        async move {
            let _remove_on_exit = RemoveOnDrop(path);
            connections::serve(
                listener,
                PeerCredentials,
                app,
                limits,
                audit,
                stop_accepting,
            )
            .await
        }
    }
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
