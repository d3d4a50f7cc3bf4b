//! The connection to the Docker Engine, and what its failures mean to a caller.
//!
//! bollard opens a connection per request from a pool, so a daemon that stops and starts again
//! is reached again without restarting the server. The API version is negotiated with the
//! daemon on first use (Debian's engine speaks 1.41, older than bollard's default) and again
//! after the daemon was unreachable, in case it came back as another version.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use bollard::Docker;
use bollard::errors::Error as DockerError;

use crate::tool::{ToolError, ToolErrorKind};

/// Where the engine is when neither the config nor `DOCKER_HOST` says.
pub(crate) const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// Longest a single Engine API request may take (a stop with a long grace period gets more).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

pub(crate) struct Engine {
    /// `unix:///path` or `tcp://host:port`, as configured.
    host: String,
    /// The client with its negotiated version, once the daemon answered; forgotten when the
    /// daemon is found unreachable. Never held across an await.
    client: Mutex<Option<Docker>>,
}

impl Engine {
    pub(crate) fn new(host: String) -> Self {
        Self {
            host,
            client: Mutex::new(None),
        }
    }

    pub(crate) fn host(&self) -> &str {
        &self.host
    }

    fn cached(&self) -> MutexGuard<'_, Option<Docker>> {
        // A panic elsewhere while holding it leaves a valid Option behind.
        self.client
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A client that has negotiated its API version with the daemon. Two calls that find none
    /// may both negotiate; the last one kept is as good as the first.
    pub(crate) async fn client(&self) -> Result<Docker, ToolError> {
        if let Some(docker) = self.cached().as_ref() {
            return Ok(docker.clone());
        }
        let docker = Docker::connect_with_host(&self.host)
            .map_err(|error| self.explain(error))?
            .with_timeout(REQUEST_TIMEOUT);
        let docker = docker
            .negotiate_version()
            .await
            .map_err(|error| self.explain(error))?;
        *self.cached() = Some(docker.clone());
        Ok(docker)
    }

    /// Runs one request on a negotiated client.
    pub(crate) async fn run<T, F>(&self, request: impl FnOnce(Docker) -> F) -> Result<T, ToolError>
    where
        F: Future<Output = Result<T, DockerError>>,
    {
        let docker = self.client().await?;
        request(docker).await.map_err(|error| self.explain(error))
    }

    /// A caller's view of a bollard error: where we looked and what to check when the daemon
    /// cannot be reached; the daemon's own message otherwise. Every tool's failures pass here,
    /// streams included, so an unreachable daemon is negotiated with afresh on the next call.
    pub(crate) fn explain(&self, error: DockerError) -> ToolError {
        let explained = self.describe(error);
        if explained.kind == ToolErrorKind::Unavailable {
            *self.cached() = None;
        }
        explained
    }

    fn describe(&self, error: DockerError) -> ToolError {
        match error {
            DockerError::DockerResponseServerError {
                status_code,
                message,
            } => match status_code {
                // An id prefix shared by several objects (the engine answers 500 for it).
                _ if message.starts_with("Multiple IDs found with provided prefix") => {
                    ToolError::invalid_arguments(format!(
                        "{message}: the prefix is ambiguous; give more of the id, or the name"
                    ))
                }
                404 => ToolError::not_found(message),
                // The engine itself never answers 403; a filtering socket proxy does.
                403 => ToolError::failed(format!(
                    "{} refused this request (403: {message}); a socket proxy in front of \
                     Docker forbids it",
                    self.host
                )),
                400 => ToolError::invalid_arguments(message),
                409 => ToolError::failed(format!("conflict: {message}")),
                _ => ToolError::failed(format!(
                    "the Docker daemon answered {status_code}: {message}"
                )),
            },
            DockerError::SocketNotFoundError(path) => self.unreachable(&format!(
                "the socket {path} does not exist; is dockerd running?"
            )),
            DockerError::RequestTimeoutError => ToolError::unavailable(format!(
                "the Docker daemon at {} did not answer within {} s",
                self.host,
                REQUEST_TIMEOUT.as_secs()
            )),
            other => {
                let text = error_chain(&other);
                if text.contains("Permission denied") {
                    self.unreachable(
                        "permission denied on the socket; run the server as a member of the \
                         socket's group (docker), or point docker.host at a socket proxy",
                    )
                } else if text.contains("No such file") || text.contains("Connection refused") {
                    self.unreachable(&format!("{text}; is dockerd running?"))
                } else if is_transport(&other) {
                    self.unreachable(&text)
                } else {
                    ToolError::failed(format!("Docker: {text}"))
                }
            }
        }
    }

    fn unreachable(&self, why: &str) -> ToolError {
        ToolError::unavailable(format!(
            "Docker is not reachable at {}: {why} (docker.host in the config, or DOCKER_HOST, \
             says where to look)",
            self.host
        ))
    }
}

/// Errors of the connection rather than of the request.
fn is_transport(error: &DockerError) -> bool {
    matches!(
        error,
        DockerError::IOError { .. }
            | DockerError::HyperResponseError { .. }
            | DockerError::HyperLegacyError { .. }
            | DockerError::HttpClientError { .. }
    )
}

/// An error and its sources, in one line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
