//! Configuration: what the server reads at start-up, with embedded defaults.
//!
//! Every section is optional in the file; anything left out keeps the default shown by
//! `systemmanager config check`. Unknown keys and bad values are errors that name the key and the
//! line (see [`load`]).

mod load;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::bounded::Bounded;
use crate::transport::http::guard::{HostPattern, OriginPattern};

pub use load::{ConfigError, ConfigSource, load, parse};

/// The whole configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub log: LogConfig,
    pub http: HttpConfig,
    pub limits: LimitsConfig,
    pub host: HostConfig,
}

/// `[log]`: diagnostics on stderr. `RUST_LOG`, when set, wins over `level`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub level: LogLevel,
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Error,
    Warn,
    #[default]
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per event, for journald/Loki/jq.
    Json,
}

/// `[http]`: the Streamable HTTP transport (TCP and unix socket).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// `Host` header values the server answers to (DNS-rebinding protection). An entry without a
    /// port matches any port. Add the name clients use when serving beyond loopback.
    pub allowed_hosts: Vec<HostPattern>,
    /// Browser origins allowed to call the server. Requests without `Origin` (every non-browser
    /// client) are not affected; a request from any origin not listed gets 403. The default
    /// admits pages served from this machine's loopback names (any port): they come from local
    /// processes, which can reach a loopback server directly anyway; a DNS-rebinding page
    /// carries its own, foreign origin.
    pub allowed_origins: Vec<OriginPattern>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            allowed_hosts: ["localhost", "127.0.0.1", "::1"]
                .into_iter()
                .map(|host| host.parse().expect("built-in host pattern"))
                .collect(),
            allowed_origins: [
                "http://localhost:*",
                "http://127.0.0.1:*",
                "http://[::1]:*",
                "https://localhost:*",
                "https://127.0.0.1:*",
                "https://[::1]:*",
            ]
            .into_iter()
            .map(|origin| origin.parse().expect("built-in origin pattern"))
            .collect(),
        }
    }
}

/// `[limits]`: bounds the gate applies to every tool call.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// A call still running after this long is abandoned with a clear error.
    pub call_timeout_seconds: Bounded<1, 3600>,
    /// Largest answer (structured content plus text) a call may return; longer answers are cut
    /// and marked as truncated.
    pub max_output_bytes: Bounded<1024, { 16 * 1024 * 1024 }>,
    /// Largest incoming message: an HTTP body over this gets 413, a longer stdio line an
    /// `Invalid Request` error.
    pub max_request_bytes: Bounded<1024, { 64 * 1024 * 1024 }>,
    /// On SIGTERM/SIGINT, how long calls in flight may take to finish before the server exits.
    pub shutdown_grace_seconds: Bounded<0, 300>,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            call_timeout_seconds: Bounded::constant(30),
            max_output_bytes: Bounded::constant(64 * 1024),
            max_request_bytes: Bounded::constant(1024 * 1024),
            shutdown_grace_seconds: Bounded::constant(10),
        }
    }
}

/// `[host]`: where the monitored host's filesystems are. Inside a container that mounts the host
/// at `/host`, set these to `/host/proc`, `/host/sys` and `/host` so the answers describe the
/// host, not the container.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HostConfig {
    pub proc: PathBuf,
    pub sys: PathBuf,
    pub rootfs: PathBuf,
}

impl Default for HostConfig {
    fn default() -> Self {
        Self {
            proc: PathBuf::from("/proc"),
            sys: PathBuf::from("/sys"),
            rootfs: PathBuf::from("/"),
        }
    }
}

impl Config {
    /// The effective configuration as TOML, as `config check` prints it.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|error| format!("# cannot render: {error}\n"))
    }
}
