//! The `serve` command: builds the gate and runs the chosen transports until the client leaves
//! or a signal asks the server to stop.
//!
//! Shutdown on SIGTERM/SIGINT: stop accepting connections, let the calls in flight finish within
//! `http.shutdown_grace_seconds`, then close sessions and streams and exit 0.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::domains;
use crate::gate::{Gate, Limits};
use crate::transport::http::{TcpServer, UnixServer};
use crate::transport::stdio;

/// How long transports get to close their connections once sessions are closed.
const CLOSE_BOUND: Duration = Duration::from_secs(2);

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
    let registry = domains::registry(&config);
    let tool_count = registry.len();
    let gate = Arc::new(Gate::new(registry, Limits::from(&config.limits)));
    let stop_accepting = CancellationToken::new();
    let sessions_closed = CancellationToken::new();
    let mut running = JoinSet::new();

    if transports.stdio() {
        let max_line = usize::try_from(config.limits.max_request_bytes.get()).unwrap_or(usize::MAX);
        running.spawn(stdio::serve(
            Arc::clone(&gate),
            max_line,
            sessions_closed.clone(),
        ));
        tracing::info!(tools = tool_count, "serving MCP over stdio");
    }
    if let Some(address) = transports.http {
        let server = TcpServer::bind(address)
            .await
            .with_context(|| format!("cannot listen on {address}"))?;
        let bound = server.local_addr()?;
        if !bound.ip().is_loopback() {
            tracing::warn!(
                %bound,
                "listening beyond loopback without authentication; anyone who can reach this \
                 address can call every tool"
            );
        }
        let serving = server.serve(
            Arc::clone(&gate),
            &config,
            stop_accepting.clone(),
            sessions_closed.clone(),
        );
        running.spawn(async move { log_failure("http", serving.await) });
        tracing::info!(
            tools = tool_count,
            "serving MCP over HTTP at http://{bound}/mcp"
        );
    }
    if let Some(path) = &transports.unix {
        let server = UnixServer::bind(path)
            .with_context(|| format!("cannot listen on unix socket {}", path.display()))?;
        let serving = server.serve(
            Arc::clone(&gate),
            &config,
            stop_accepting.clone(),
            sessions_closed.clone(),
        );
        running.spawn(async move { log_failure("unix", serving.await) });
        tracing::info!(
            tools = tool_count,
            "serving MCP over HTTP on unix socket {} at /mcp",
            path.display()
        );
    }

    tokio::select! {
        signal = shutdown_signal() => {
            tracing::info!(
                signal,
                in_flight = gate.in_flight(),
                "shutting down: finishing calls in flight"
            );
        }
        () = wait_all(&mut running) => {}
    }
    stop_accepting.cancel();
    let grace = Duration::from_secs(config.http.shutdown_grace_seconds.get());
    gate.drain(grace).await;
    sessions_closed.cancel();
    if tokio::time::timeout(CLOSE_BOUND, wait_all(&mut running))
        .await
        .is_err()
    {
        tracing::warn!("connections still open after shutdown; closing them");
        running.abort_all();
    }
    tracing::info!("stopped");
    Ok(())
}

fn log_failure(transport: &str, result: std::io::Result<()>) {
    if let Err(error) = result {
        tracing::error!(transport, %error, "transport failed");
    }
}

async fn wait_all(running: &mut JoinSet<()>) {
    while running.join_next().await.is_some() {}
}

/// Resolves on SIGTERM or SIGINT with the signal's name.
async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = match signal(SignalKind::terminate()) {
        Ok(stream) => stream,
        Err(error) => {
            tracing::warn!(%error, "cannot watch SIGTERM; only SIGINT will stop the server");
            let _ = tokio::signal::ctrl_c().await;
            return "SIGINT";
        }
    };
    tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = tokio::signal::ctrl_c() => "SIGINT",
    }
}
