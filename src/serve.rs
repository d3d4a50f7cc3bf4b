//! The `serve` command: builds the gate and runs the chosen transports until the client leaves
//! or a signal asks the server to stop.
//!
//! Shutdown on SIGTERM/SIGINT: stop accepting connections, let the calls in flight finish within
//! `limits.shutdown_grace_seconds`, then close sessions and streams and exit 0.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use futures::FutureExt as _;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::audit::AuditLog;
use crate::auth::Authenticator;
use crate::auth::tailscale::TailnetIdentifier;
use crate::auth::tokens::TokenStore;
use crate::config::Config;
use crate::domains;
use crate::gate::{Gate, Limits, Policy, Throttle};
use crate::transport::http::{TcpServer, TlsServer, UnixServer};
use crate::transport::stdio;

/// How long transports get to close their connections once sessions are closed.
const CLOSE_BOUND: Duration = Duration::from_secs(2);
/// After the last call finishes, how long HTTP listeners get to write its answer and close by
/// themselves before sessions (and their long-lived event streams) are closed under them.
const SETTLE_BOUND: Duration = Duration::from_secs(1);
/// After the last call finishes, how long a stdio session gets to write its answer.
const STDIO_FLUSH: Duration = Duration::from_millis(100);
/// How often the server records when tokens were last used.
const LAST_USED_FLUSH: Duration = Duration::from_secs(15);

/// Which transports to run. With neither address, stdio.
#[derive(Debug, Clone, Default)]
pub struct Transports {
    pub http: Option<SocketAddr>,
    pub unix: Option<PathBuf>,
}

impl Transports {
    pub fn stdio(&self) -> bool {
        self.http.is_none() && self.unix.is_none()
    }
}

pub async fn run(config: Config, transports: Transports) -> anyhow::Result<()> {
    // Installed before anything is announced: a signal that arrives right after the "serving"
    // line must find the handler, not the default action (exit without draining).
    let signals = ShutdownSignals::install()?;
    raise_descriptor_limit();
    let gate = open_gate(&config)?;
    let stages = Stages::default();
    let mut listeners = JoinSet::new();
    let mut stdio_session = transports
        .stdio()
        .then(|| start_stdio(&gate, &config, &stages));
    let authenticator = if transports.stdio() {
        None
    } else {
        Some(open_authenticator(&config, &gate)?)
    };
    if let (Some(address), Some(authenticator)) = (transports.http, &authenticator) {
        let serving = start_http(address, &gate, authenticator, &config, &stages).await?;
        listeners.spawn(async move { log_failure("http", serving.await) });
    }
    if let (Some(path), Some(authenticator)) = (&transports.unix, &authenticator) {
        let serving = start_unix(path, &gate, authenticator, &config, &stages)?;
        listeners.spawn(async move { log_failure("unix", serving.await) });
    }

    if config.metrics.enabled
        && let Some(address) = config.metrics.listen
    {
        let exporter = Arc::new(crate::metrics::Exporter::new(gate.metrics(), &config.host));
        let (bound, serving) = crate::transport::http::serve_metrics(
            address,
            exporter,
            &config,
            stages.stop_accepting.clone(),
        )
        .await
        .with_context(|| format!("cannot listen on {address} for metrics.listen"))?;
        tracing::info!("serving Prometheus metrics on http://{bound}/metrics");
        if !bound.ip().is_loopback() {
            // Allowed (a Prometheus on a trusted network), but not by accident.
            tracing::warn!(
                "metrics.listen {bound} is beyond loopback and asks no credential: anyone who \
                 reaches it reads the host's figures; firewall it, or leave metrics.listen unset \
                 to serve /metrics behind the /mcp credential"
            );
        }
        listeners.spawn(async move { log_failure("metrics", serving.await) });
    }

    // Every listener is bound: a `Type=notify` unit becomes active only now.
    crate::notify::ready(&describe(&transports));
    crate::notify::spawn_watchdog(stages.stop_accepting.clone());

    // Run until a signal, or until every transport has ended by itself (the stdio client closed
    // stdin; listeners only end on failure).
    let ended_by_itself = tokio::select! {
        signal = signals.received() => {
            tracing::info!(
                signal,
                in_flight = gate.in_flight(),
                "shutting down: finishing calls in flight"
            );
            false
        }
        () = async {
            match stdio_session.as_mut() {
                Some(session) => { let _ = session.await; }
                None => wait_all(&mut listeners).await,
            }
        } => true,
    };
    let stdio_session = stdio_session.filter(|_| !ended_by_itself);
    crate::notify::stopping();
    shut_down(&config, &gate, &stages, stdio_session, &mut listeners).await;
    if let Some(authenticator) = &authenticator
        && let Err(error) = authenticator.tokens().flush_last_used()
    {
        tracing::warn!(%error, "cannot record when tokens were last used");
    }
    tracing::info!("stopped");
    Ok(())
}

/// What `systemctl status` shows once the server is ready.
fn describe(transports: &Transports) -> String {
    let mut serving = Vec::new();
    if let Some(address) = transports.http {
        serving.push(format!("http://{address}/mcp"));
    }
    if let Some(path) = &transports.unix {
        serving.push(format!("unix:{}", path.display()));
    }
    if serving.is_empty() {
        serving.push("stdio".to_string());
    }
    format!("serving MCP on {}", serving.join(", "))
}

/// The stages of shutdown, each a token the transports watch.
#[derive(Default)]
struct Stages {
    /// Listeners take no new connections.
    stop_accepting: CancellationToken,
    /// HTTP sessions, and the event streams that hold connections open, are closed.
    sessions_closed: CancellationToken,
    /// The stdio session is closed.
    stdio_closed: CancellationToken,
}

/// The registry, roles, rate limits and audit log behind the one gate every call passes.
fn open_gate(config: &Config) -> anyhow::Result<Arc<Gate>> {
    let registry = domains::registry(config);
    let policy = Arc::new(Policy::from_config(config));
    let audit = Arc::new(AuditLog::open(&config.audit).context(
        "the audit log must be writable before the server takes calls (audit.path, or \
         audit.enabled = false for a throwaway setup)",
    )?);
    if let Some(path) = audit.path() {
        tracing::info!(path = %path.display(), "auditing every decision");
    } else {
        tracing::warn!("the audit log is off (audit.enabled = false)");
    }
    Ok(Arc::new(Gate::new(
        registry,
        policy,
        Throttle::from_config(&config.limits),
        audit,
        Limits::from(&config.limits),
    )))
}

fn start_stdio(gate: &Arc<Gate>, config: &Config, stages: &Stages) -> tokio::task::JoinHandle<()> {
    let max_line = usize::try_from(config.limits.max_request_bytes.get()).unwrap_or(usize::MAX);
    let session = tokio::spawn(stdio::serve(
        Arc::clone(gate),
        max_line,
        stages.stdio_closed.clone(),
    ));
    tracing::info!(tools = gate.registry().len(), "serving MCP over stdio");
    session
}

/// Listens on `address`, over TLS when `[tls]` configures it; answers the serving future.
async fn start_http(
    address: SocketAddr,
    gate: &Arc<Gate>,
    authenticator: &Arc<Authenticator>,
    config: &Config,
    stages: &Stages,
) -> anyhow::Result<futures::future::BoxFuture<'static, std::io::Result<()>>> {
    let (serving, bound, scheme) = if config.tls.enabled() {
        let tls = crate::auth::certificates::server_config(&config.tls)?;
        let server = TlsServer::bind(address, tls)
            .await
            .with_context(|| format!("cannot listen on {address}"))?;
        let bound = server.local_addr()?;
        let serving = server.serve(
            Arc::clone(gate),
            Arc::clone(authenticator),
            config,
            stages.stop_accepting.clone(),
            stages.sessions_closed.clone(),
        );
        (serving.boxed(), bound, "https")
    } else {
        refuse_plaintext_beyond_loopback(address, config)?;
        let server = TcpServer::bind(address)
            .await
            .with_context(|| format!("cannot listen on {address}"))?;
        let bound = server.local_addr()?;
        let serving = server.serve(
            Arc::clone(gate),
            Arc::clone(authenticator),
            config,
            stages.stop_accepting.clone(),
            stages.sessions_closed.clone(),
        );
        (serving.boxed(), bound, "http")
    };
    tracing::info!(
        tools = gate.registry().len(),
        "serving MCP over {} at {scheme}://{bound}/mcp",
        scheme.to_uppercase()
    );
    Ok(serving)
}

/// Listens on the unix socket at `path`; answers the serving future.
fn start_unix(
    path: &std::path::Path,
    gate: &Arc<Gate>,
    authenticator: &Arc<Authenticator>,
    config: &Config,
    stages: &Stages,
) -> anyhow::Result<impl std::future::Future<Output = std::io::Result<()>> + Send + 'static> {
    let server = UnixServer::bind(path)
        .with_context(|| format!("cannot listen on unix socket {}", path.display()))?;
    let serving = server.serve(
        Arc::clone(gate),
        Arc::clone(authenticator),
        config,
        stages.stop_accepting.clone(),
        stages.sessions_closed.clone(),
    );
    tracing::info!(
        tools = gate.registry().len(),
        "serving MCP over HTTP on unix socket {} at /mcp",
        path.display()
    );
    Ok(serving)
}

/// Stops taking connections, lets the calls in flight finish within the grace period, then
/// closes what is still open, in stages.
async fn shut_down(
    config: &Config,
    gate: &Gate,
    stages: &Stages,
    stdio_session: Option<tokio::task::JoinHandle<()>>,
    listeners: &mut JoinSet<()>,
) {
    stages.stop_accepting.cancel();
    let grace = Duration::from_secs(config.limits.shutdown_grace_seconds.get());
    gate.drain(grace).await;

    // The answers of the calls that just finished are still on their way out through rmcp.
    if let Some(session) = stdio_session {
        tokio::time::sleep(STDIO_FLUSH).await;
        stages.stdio_closed.cancel();
        let _ = tokio::time::timeout(CLOSE_BOUND, session).await;
    }
    // Graceful HTTP shutdown closes each connection once its answer is written, so listeners
    // stop by themselves unless a session's event stream holds a connection open.
    if tokio::time::timeout(SETTLE_BOUND, wait_all(listeners))
        .await
        .is_err()
    {
        stages.sessions_closed.cancel();
        if tokio::time::timeout(CLOSE_BOUND, wait_all(listeners))
            .await
            .is_err()
        {
            tracing::warn!("connections still open after shutdown; closing them");
            listeners.abort_all();
        }
    }
}

/// Raises the soft limit on open descriptors (`RLIMIT_NOFILE`) to the hard limit. The soft
/// limit is often 1,024 while the hard one is far higher; every connection and every file
/// tool call holds descriptors, and at the soft limit one caller's walk would make another
/// caller's open fail with "Too many open files". Each file call bounds what it holds; this
/// gives all of them together the room the system allows.
fn raise_descriptor_limit() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current == limit.maximum {
        return;
    }
    let raised = Rlimit {
        current: limit.maximum,
        maximum: limit.maximum,
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => tracing::debug!(
            from = ?limit.current,
            to = ?limit.maximum,
            "raised the open-descriptor limit to its hard limit"
        ),
        Err(error) => tracing::warn!(
            %error,
            soft = ?limit.current,
            "cannot raise the open-descriptor limit to its hard limit"
        ),
    }
}

/// Opens the token store for the HTTP transports, says how to create a first token when there
/// is none, and records now and then when tokens were last used.
fn open_authenticator(config: &Config, gate: &Gate) -> anyhow::Result<Arc<Authenticator>> {
    let path = config.security.token_file();
    let tokens = Arc::new(
        TokenStore::open(&path)
            .with_context(|| format!("cannot read the token file {}", path.display()))?,
    );
    if tokens.active_count() == 0 {
        tracing::warn!(
            "no active tokens in {}: HTTP clients will be refused (401) until you create one, \
             e.g. `systemmanager token create --name laptop --role viewer`",
            path.display()
        );
    }
    let flushing = Arc::clone(&tokens);
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(LAST_USED_FLUSH);
        loop {
            interval.tick().await;
            let store = Arc::clone(&flushing);
            let flushed = tokio::task::spawn_blocking(move || store.flush_last_used()).await;
            if let Ok(Err(error)) = flushed {
                tracing::warn!(%error, "cannot record when tokens were last used");
            }
        }
    });
    let mut authenticator =
        Authenticator::new(tokens, Arc::clone(gate.policy()), Arc::clone(gate.audit()))
            .with_certificate_roles(config.tls.client_roles.clone());
    if config.tailscale.enabled {
        authenticator = authenticator.with_tailnet(TailnetIdentifier::new(&config.tailscale));
        tracing::info!(
            socket = %config.tailscale.socket.display(),
            "identifying callers forwarded by tailscale serve with tailscaled's whois"
        );
    }
    Ok(Arc::new(authenticator))
}

/// Plaintext HTTP beyond loopback would carry tokens in the clear: refused unless the config
/// says another layer encrypts the traffic.
fn refuse_plaintext_beyond_loopback(address: SocketAddr, config: &Config) -> anyhow::Result<()> {
    if address.ip().is_loopback() || config.http.allow_plaintext {
        return Ok(());
    }
    anyhow::bail!(
        "refusing to serve plaintext HTTP on {address}: bearer tokens would cross the network \
         in the clear. Keep --http on loopback and expose it with `tailscale serve`, use --unix, \
         or set http.allow_plaintext = true if another layer encrypts the traffic"
    )
}

fn log_failure(transport: &str, result: std::io::Result<()>) {
    if let Err(error) = result {
        tracing::error!(transport, %error, "transport failed");
    }
}

async fn wait_all(tasks: &mut JoinSet<()>) {
    while tasks.join_next().await.is_some() {}
}

/// SIGTERM and SIGINT, caught from the moment they are installed.
struct ShutdownSignals {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    fn install() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            terminate: signal(SignalKind::terminate()).context("cannot handle SIGTERM")?,
            interrupt: signal(SignalKind::interrupt()).context("cannot handle SIGINT")?,
        })
    }

    /// Resolves with the name of the first signal received.
    async fn received(mut self) -> &'static str {
        tokio::select! {
            _ = self.terminate.recv() => "SIGTERM",
            _ = self.interrupt.recv() => "SIGINT",
        }
    }
}
