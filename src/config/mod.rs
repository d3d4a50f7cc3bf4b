//! Configuration: what the server reads at start-up, with embedded defaults.
//!
//! Every section is optional in the file; anything left out keeps the default shown by
//! `systemmanager config check`. Unknown keys and bad values are errors that name the key and the
//! line (see [`load`]).

mod load;
mod patterns;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::access::Tier;
use crate::bounded::Bounded;

pub use load::{ConfigError, ConfigSource, load, parse};
pub use patterns::{HostPattern, OriginPattern, normalize_host};

/// The whole configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub log: LogConfig,
    pub http: HttpConfig,
    pub limits: LimitsConfig,
    pub host: HostConfig,
    pub sampler: SamplerConfig,
    pub security: SecurityConfig,
    pub tls: TlsConfig,
    pub tailscale: TailscaleConfig,
    pub audit: AuditConfig,
    /// Custom roles, by name, beside the built-in `viewer`, `operator` and `admin`.
    pub roles: BTreeMap<String, RoleConfig>,
    pub process: ProcessConfig,
    pub files: FilesConfig,
    pub docker: DockerConfig,
    pub services: ServicesConfig,
    pub metrics: MetricsConfig,
}

/// `[metrics]`: `GET /metrics` in the Prometheus (OpenMetrics) text format.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Serve `/metrics`. Default: false.
    pub enabled: bool,
    /// Where: unset, on the server's own HTTP listeners behind the same credential as `/mcp`
    /// (any role); an address, on a listener of its own that serves `/metrics` (and
    /// `/healthz`) without credentials, for a Prometheus on this host or a trusted network.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<std::net::SocketAddr>,
}

/// The roles every server has: name and tiers.
pub const BUILT_IN_ROLES: [(&str, &[Tier]); 3] = [
    ("viewer", &[Tier::Read]),
    ("operator", &[Tier::Read, Tier::Operate]),
    ("admin", &[Tier::Read, Tier::Operate, Tier::Admin]),
];

/// `[security]`: what callers may do.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    /// Register no tool above the `read` tier at all (also `serve --read-only`).
    pub read_only: bool,
    /// Enable the `admin` tier (remove, prune, SIGKILL, exec, ...). Off, no role can use it.
    pub admin_tier: bool,
    /// The role of local OS users: whoever starts a stdio server, and unix-socket peers.
    pub local_role: String,
    /// Where bearer tokens are stored (hashes only). Default: `tokens.json` in
    /// [`default_state_dir`] (`$STATE_DIRECTORY` under systemd, `/var/lib/systemmanager` for
    /// root, `$XDG_STATE_HOME/systemmanager` for other users).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        Self {
            read_only: false,
            admin_tier: false,
            local_role: "operator".into(),
            token_file: None,
        }
    }
}

/// Where the server keeps its state (tokens, the audit log) when the config does not say: the
/// first directory of `$STATE_DIRECTORY` (systemd sets it for a unit's `StateDirectory=`), else
/// `/var/lib/systemmanager` for root, `$XDG_STATE_HOME/systemmanager` (or
/// `~/.local/state/systemmanager`) for other users.
pub fn default_state_dir() -> PathBuf {
    // systemd joins several StateDirectory= entries with ':'; the first is ours.
    if let Some(first) = std::env::var_os("STATE_DIRECTORY")
        .and_then(|value| {
            value
                .to_str()
                .and_then(|v| v.split(':').next())
                .map(PathBuf::from)
        })
        .filter(|path| path.is_absolute())
    {
        return first;
    }
    if rustix::process::geteuid().is_root() {
        return PathBuf::from("/var/lib/systemmanager");
    }
    let state = std::env::var_os("XDG_STATE_HOME")
        .filter(|value| !value.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/state")))
        .unwrap_or_else(|| PathBuf::from("."));
    state.join("systemmanager")
}

impl SecurityConfig {
    /// The token file in effect.
    pub fn token_file(&self) -> PathBuf {
        self.token_file
            .clone()
            .unwrap_or_else(|| default_state_dir().join("tokens.json"))
    }

    /// The highest tier this configuration registers tools for.
    pub fn max_tier(&self) -> Tier {
        if self.read_only {
            Tier::Read
        } else if self.admin_tier {
            Tier::Admin
        } else {
            Tier::Operate
        }
    }
}

/// `[tls]`: serve `--http` over TLS, and optionally let clients authenticate by certificate.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// The server's certificate chain (PEM). With `key`, `--http` serves HTTPS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert: Option<PathBuf>,
    /// The server's private key (PEM).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
    /// CA certificates (PEM): a client may present a certificate one of them signed (mutual
    /// TLS); one signed by anybody else is refused in the handshake.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_ca: Option<PathBuf>,
    /// A client certificate's subject common name → the role its holder gets. A certificate
    /// whose name is not listed authenticates nobody (a bearer token is then needed).
    pub client_roles: BTreeMap<String, String>,
}

impl TlsConfig {
    pub fn enabled(&self) -> bool {
        self.cert.is_some()
    }
}

/// `[tailscale]`: identify callers who come through `tailscale serve` by asking tailscaled.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TailscaleConfig {
    /// Trust `X-Forwarded-For` on requests from loopback and the unix socket (where
    /// `tailscale serve` connects from) and identify that address with tailscaled's `whois`.
    pub enabled: bool,
    /// tailscaled's LocalAPI socket.
    pub socket: PathBuf,
    /// The Tailscale Service the server is published as (`svc:NAME`), passed to `whois`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// The app capability whose grants carry roles, with values like `{"role": "operator"}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capability: Option<String>,
    /// Tailnet login names → role, for tailnets without capability grants.
    pub logins: BTreeMap<String, String>,
    /// ACL tags → role, for tagged nodes (CI runners, other servers), which have no login of
    /// their own: `"tag:ci" = "viewer"`. The highest role among a node's tags counts.
    pub tags: BTreeMap<String, String>,
    /// How long a `whois` answer is reused for the same address.
    pub cache_seconds: Bounded<0, 300>,
    /// The user `tailscale serve` forwards as (tailscaled's; root unless it runs as another
    /// user). `X-Forwarded-For` is believed only from a connection this user owns: on the unix
    /// socket by its peer credentials, on loopback TCP by the owner of the connecting socket.
    /// Any other local process that sends the header is treated as sending none.
    pub proxy_uid: u32,
}

impl Default for TailscaleConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            socket: PathBuf::from("/var/run/tailscale/tailscaled.sock"),
            service: None,
            capability: None,
            logins: BTreeMap::new(),
            tags: BTreeMap::new(),
            cache_seconds: Bounded::constant(10),
            proxy_uid: 0,
        }
    }
}

/// `[audit]`: the tamper-evident record of every decision.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Record decisions at all. Turning it off is for throwaway setups only.
    pub enabled: bool,
    /// The log file. Default: `audit.jsonl` in the state directory
    /// (`/var/lib/systemmanager` for root, `$XDG_STATE_HOME/systemmanager` for others).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// Size at which the file is rotated to `FILE.1` (the chain goes on in the new file).
    pub max_bytes: Bounded<4096, { 1 << 40 }>,
    /// Rotated files kept.
    pub keep: Bounded<1, 1000>,
    /// Refuse a call whose record cannot be written. Off, the call goes on and the record is
    /// logged on stderr.
    pub fail_closed: bool,
    /// Also send each record to journald.
    pub journald: bool,
    /// journald's native socket.
    pub journald_socket: PathBuf,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            path: None,
            max_bytes: Bounded::constant(64 * 1024 * 1024),
            keep: Bounded::constant(5),
            fail_closed: true,
            journald: false,
            journald_socket: PathBuf::from("/run/systemd/journal/socket"),
        }
    }
}

impl AuditConfig {
    /// The log file in effect.
    pub fn path(&self) -> PathBuf {
        self.path
            .clone()
            .unwrap_or_else(|| default_state_dir().join("audit.jsonl"))
    }
}

/// `[roles.NAME]`: a custom role — the tiers it grants, optionally narrowed to tools whose names
/// match `allow` and never those matching `deny` (globs such as `docker_*`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleConfig {
    pub tiers: Vec<Tier>,
    #[serde(default)]
    pub allow: Vec<ToolPattern>,
    #[serde(default)]
    pub deny: Vec<ToolPattern>,
}

/// A glob over tool names (`*`, `?`, `[abc]`, `{a,b}`), checked when the config is read.
#[derive(Debug, Clone)]
pub struct ToolPattern {
    pub text: String,
    pub glob: globset::Glob,
}

impl Serialize for ToolPattern {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for ToolPattern {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let glob = globset::Glob::new(&text).map_err(|error| {
            serde::de::Error::custom(format!("`{text}` is not a valid tool-name glob: {error}"))
        })?;
        Ok(Self { text, glob })
    }
}

/// `[docker]`: the Docker tools.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DockerConfig {
    /// Offer the Docker tools. On by default: a host without Docker gets a clear error from
    /// them, and a daemon started later is found without restarting the server.
    pub enabled: bool,
    /// Where the Engine API is: `unix:///var/run/docker.sock` or `tcp://HOST:PORT` (a socket
    /// proxy, for example). Unset: `DOCKER_HOST`, else the default socket.
    pub host: Option<DockerHost>,
    /// Credentials for `docker_image_pull`, by registry host (`registry.example.com`,
    /// `127.0.0.1:5000`, `docker.io`). The password is read from a file when a pull needs it,
    /// so it is never in this file.
    pub registries: BTreeMap<String, RegistryCredentials>,
    /// What `docker_container_create` and `docker_container_run` may ask for.
    pub policy: DockerPolicy,
    /// Offer `docker_container_exec` (admin tier). Off by default: a command inside a
    /// container is as powerful as the container.
    pub exec_enabled: bool,
}

impl Default for DockerConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            host: None,
            registries: BTreeMap::new(),
            policy: DockerPolicy::default(),
            exec_enabled: false,
        }
    }
}

/// `[services]`: systemd units and the journal.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServicesConfig {
    /// Offer the service and journal tools where systemd runs (`/run/systemd/system` exists
    /// under `[host] rootfs`); elsewhere none is registered.
    pub enabled: bool,
    /// Units no role may stop, restart, reload, mask or disable, as globs over unit names
    /// (`ssh*.service`, `systemd-*`). Reading them always works.
    pub protected_units: Vec<String>,
    /// How long a start, stop, restart or reload waits for systemd's job to finish; held a
    /// second below `limits.call_timeout_seconds`, so the tool, not the gate, says the job
    /// still runs.
    pub job_timeout_seconds: Bounded<1, 600>,
}

impl Default for ServicesConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            protected_units: [
                "systemmanager.service",
                "ssh.service",
                "sshd.service",
                "ssh.socket",
                "dbus.service",
                "dbus.socket",
                "dbus-broker.service",
                "systemd-*",
                "init.scope",
                "-.slice",
                "tailscaled.service",
                "docker.service",
                "docker.socket",
                "containerd.service",
            ]
            .map(String::from)
            .to_vec(),
            job_timeout_seconds: Bounded::constant(20),
        }
    }
}

/// `[docker.policy]`: the create policy, which `docker_container_create`/`_run` check before
/// creating and `docker_container_start`/`_restart`/`_run` check again before starting.
/// Everything is refused unless allowed here; a refusal names the setting.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DockerPolicy {
    pub allow_privileged: bool,
    /// The host's PID namespace (`pid_mode = "host"`).
    pub allow_host_pid: bool,
    /// The host's network namespace: `network = "host"`, or any name or id that the engine
    /// resolves to the network whose driver is `host`.
    pub allow_host_network: bool,
    /// Capabilities that may be added, in any spelling Docker accepts (`NET_ADMIN`,
    /// `cap_net_admin`; `ALL` allows every one); none by default.
    pub allowed_capabilities: Vec<String>,
    /// Host directories under which bind mounts may be made, compared after symlinks are
    /// resolved. A bind's path must also be pinned (only root can change it, and it is in no
    /// container's writable mount), and a writable bind needs a root-owned directory of mode
    /// 0700 above it (setuid files); docs/security.md. None by default.
    pub bind_mount_roots: Vec<AbsolutePath>,
    /// Volumes whose data the engine mounts from elsewhere: a local volume with a filesystem
    /// type or device (nfs, cifs, ext4 on /dev/..., overlay) or one that binds a host path
    /// (`o=bind`: the engine keeps the mount made when it was first used, which its options
    /// cannot show), or a volume of a plugin driver. Such a volume can show a host disk or
    /// directory whatever its name; off by default.
    pub allow_external_volumes: bool,
}

/// `[docker.registries."HOST"]`: a registry login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryCredentials {
    pub username: String,
    /// A file holding the password or token (one line; trailing newline ignored).
    pub password_file: AbsolutePath,
}

/// A Docker Engine address bollard can reach: `unix://` or `tcp://` / `http://`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct DockerHost(pub String);

impl<'de> Deserialize<'de> for DockerHost {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let host = String::deserialize(deserializer)?;
        if ["unix:///", "tcp://", "http://"]
            .iter()
            .any(|scheme| host.starts_with(scheme))
        {
            Ok(Self(host))
        } else {
            Err(serde::de::Error::custom(format!(
                "`{host}` is not a Docker address: give unix:///PATH or tcp://HOST:PORT"
            )))
        }
    }
}

/// `[process]`: the process tools.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProcessConfig {
    /// Processes `process_signal` refuses to touch, by name (`/proc/PID/comm`). PID 1, the
    /// server itself and its parent are always protected.
    pub protected_names: Vec<String>,
}

impl Default for ProcessConfig {
    fn default() -> Self {
        Self {
            protected_names: [
                "systemd",
                "init",
                "sshd",
                "systemd-journal",
                "systemd-logind",
                "dbus-daemon",
                "dockerd",
                "containerd",
                "tailscaled",
                "systemmanager",
            ]
            .map(String::from)
            .to_vec(),
        }
    }
}

/// `[files]`: the file tools. No roots: no file tools.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FilesConfig {
    /// Directories the file tools may read, each read-only. Absolute paths.
    pub roots: Vec<AbsolutePath>,
    /// Globs of paths never read, even inside a root, matched against the path asked for and
    /// the real path of what was opened (`*` stays within a path component, `**` crosses them).
    pub deny: Vec<PathGlob>,
    /// The most bytes one `files_read` or `files_tail` answer carries.
    pub max_read_bytes: Bounded<1024, { 64 * 1024 * 1024 }>,
    /// Files larger than this are not hashed by `files_stat`.
    pub max_hash_bytes: Bounded<0, { 1 << 40 }>,
    /// Files larger than this are skipped by a content search.
    pub max_search_file_bytes: Bounded<1024, { 1 << 40 }>,
    /// Refuse to read regular files with more than one hard link (`files_read`, `files_tail`,
    /// `files_search`, `files_stat`'s hash, file resources). A hard link gives a file another
    /// name, which the deny list cannot see through: set this for roots where untrusted users
    /// can write.
    pub refuse_hardlinks: bool,
}

impl Default for FilesConfig {
    fn default() -> Self {
        Self {
            roots: Vec::new(),
            deny: [
                "/etc/shadow",
                "/etc/shadow-",
                "/etc/gshadow",
                "/etc/gshadow-",
                "**/.ssh/id_*",
                "**/ssh_host_*_key",
                "**/*.key",
                "**/.env",
                "**/.env.*",
                "**/.netrc",
                "**/.docker/config.json",
                "/var/lib/systemmanager/**",
            ]
            .into_iter()
            .map(|glob| PathGlob::new(glob.to_string()).expect("built-in globs are valid"))
            .collect(),
            max_read_bytes: Bounded::constant(256 * 1024),
            max_hash_bytes: Bounded::constant(1 << 30),
            max_search_file_bytes: Bounded::constant(16 * 1024 * 1024),
            refuse_hardlinks: false,
        }
    }
}

/// An absolute path from the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct AbsolutePath(pub PathBuf);

impl<'de> Deserialize<'de> for AbsolutePath {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let path = PathBuf::deserialize(deserializer)?;
        if !path.is_absolute() {
            return Err(serde::de::Error::custom(format!(
                "`{}` is not an absolute path",
                path.display()
            )));
        }
        Ok(Self(path))
    }
}

/// A path glob, compiled once.
#[derive(Debug, Clone, Serialize)]
#[serde(into = "String")]
pub struct PathGlob {
    pub text: String,
    pub glob: globset::Glob,
}

impl PathGlob {
    pub fn new(text: String) -> Result<Self, globset::Error> {
        let glob = globset::GlobBuilder::new(&text)
            .literal_separator(true)
            .build()?;
        Ok(Self { text, glob })
    }
}

impl From<PathGlob> for String {
    fn from(glob: PathGlob) -> String {
        glob.text
    }
}

impl<'de> Deserialize<'de> for PathGlob {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        PathGlob::new(text.clone()).map_err(|error| {
            serde::de::Error::custom(format!("`{text}` is not a valid path glob: {error}"))
        })
    }
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
    /// Serve plaintext HTTP on an address beyond loopback. Off, the server refuses: tokens would
    /// cross the network in the clear. Use TLS, the unix socket or `tailscale serve` instead, or
    /// set this when another layer encrypts the traffic.
    pub allow_plaintext: bool,
    /// Browser origins allowed to call the server. Requests without `Origin` (every non-browser
    /// client) are not affected; a request from any origin not listed gets 403. The default
    /// admits pages served from this machine's loopback names (any port): they come from local
    /// processes, which can reach a loopback server directly anyway; a DNS-rebinding page
    /// carries its own, foreign origin.
    pub allowed_origins: Vec<OriginPattern>,
    /// Seconds a connection may take to send a request's headers, and may sit idle between
    /// requests, before it is closed (a slowloris trickle, a forgotten keep-alive connection).
    pub header_read_timeout_seconds: Bounded<1, 3600>,
    /// Seconds a request body may take to arrive.
    pub body_read_timeout_seconds: Bounded<1, 3600>,
    /// Connections open at once, all peers together; further ones are closed on arrival. Held
    /// to (the process's descriptor limit - 128) / 2 (file calls share the other half).
    pub max_connections: Bounded<1, 1_000_000>,
    /// Open sessions (2025-era `Mcp-Session-Id`) of one identity; past it a new `initialize`
    /// gets 429 while the identity's existing sessions keep working.
    pub max_sessions_per_identity: Bounded<1, 100_000>,
    /// Open sessions of all identities together.
    pub max_sessions: Bounded<1, 1_000_000>,
    /// Seconds a session may sit unused before it is closed.
    pub session_idle_seconds: Bounded<1, 86_400>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            header_read_timeout_seconds: Bounded::constant(10),
            body_read_timeout_seconds: Bounded::constant(30),
            max_connections: Bounded::constant(1024),
            max_sessions_per_identity: Bounded::constant(16),
            max_sessions: Bounded::constant(1024),
            session_idle_seconds: Bounded::constant(300),
            allow_plaintext: false,
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
    /// Calls in flight at once, all callers together.
    pub max_concurrent_calls: Bounded<1, 100_000>,
    /// Each identity's budget (a token, a local user), unless its role has one in `per_role`.
    pub per_identity: RateConfig,
    /// Budgets for the identities of a role, by role name.
    pub per_role: BTreeMap<String, RateConfig>,
}

/// A budget of calls for one identity: a token bucket refilled at `calls_per_minute`, holding
/// at most `burst`, and at most `max_concurrent` calls in flight.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateConfig {
    pub calls_per_minute: Bounded<1, 1_000_000_000>,
    pub burst: Bounded<1, 1_000_000>,
    pub max_concurrent: Bounded<1, 100_000>,
}

impl Default for RateConfig {
    fn default() -> Self {
        Self {
            calls_per_minute: Bounded::constant(300),
            burst: Bounded::constant(60),
            max_concurrent: Bounded::constant(8),
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            call_timeout_seconds: Bounded::constant(30),
            max_output_bytes: Bounded::constant(64 * 1024),
            max_request_bytes: Bounded::constant(1024 * 1024),
            shutdown_grace_seconds: Bounded::constant(10),
            max_concurrent_calls: Bounded::constant(64),
            per_identity: RateConfig::default(),
            per_role: BTreeMap::new(),
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
    /// The journal directory `journal_query` reads (`journalctl --directory`). Unset: the
    /// journal of the system the server runs on. In a container that mounts the host's
    /// `/var/log/journal` read-only, point it there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub journal: Option<PathBuf>,
}

impl Default for HostConfig {
    fn default() -> Self {
        Self {
            proc: PathBuf::from("/proc"),
            sys: PathBuf::from("/sys"),
            rootfs: PathBuf::from("/"),
            journal: None,
        }
    }
}

/// `[sampler]`: the background readings that rates (CPU %, bytes/s, IOPS) are computed from.
/// They run only while someone has asked for a rate recently.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SamplerConfig {
    /// Milliseconds between readings: the window rates are averaged over.
    pub interval_ms: Bounded<100, 60_000>,
    /// Stop reading after this many seconds without a question.
    pub idle_after_seconds: Bounded<1, 86_400>,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        Self {
            interval_ms: Bounded::constant(1000),
            idle_after_seconds: Bounded::constant(60),
        }
    }
}

impl Config {
    /// Checks what the types alone cannot: references between keys. Returns the dotted key and
    /// the problem.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let built_in = |name: &str| BUILT_IN_ROLES.iter().any(|(built, _)| *built == name);
        for (name, role) in &self.roles {
            if built_in(name) {
                return Err((
                    format!("roles.{name}"),
                    format!(
                        "`{name}` is a built-in role and cannot be redefined; choose another name"
                    ),
                ));
            }
            if role.tiers.is_empty() {
                return Err((
                    format!("roles.{name}.tiers"),
                    "a role needs at least one tier (read, operate, admin)".into(),
                ));
            }
        }
        for pattern in &self.services.protected_units {
            if let Err(error) = globset::Glob::new(pattern) {
                return Err((
                    "services.protected_units".into(),
                    format!("`{pattern}` is not a valid unit-name glob: {error}"),
                ));
            }
        }
        let exists = |name: &str| built_in(name) || self.roles.contains_key(name);
        let local = &self.security.local_role;
        if !exists(local) {
            return Err((
                "security.local_role".into(),
                format!("no role is named `{local}` (built-in: viewer, operator, admin)"),
            ));
        }
        let tls = &self.tls;
        if tls.cert.is_some() != tls.key.is_some() {
            let missing = if tls.cert.is_some() { "key" } else { "cert" };
            return Err((
                format!("tls.{missing}"),
                "TLS needs both `cert` and `key`".into(),
            ));
        }
        if tls.client_ca.is_some() && !tls.enabled() {
            return Err((
                "tls.client_ca".into(),
                "client certificates need TLS: set `cert` and `key` too".into(),
            ));
        }
        if !tls.client_roles.is_empty() && tls.client_ca.is_none() {
            return Err((
                "tls.client_roles".into(),
                "mapping certificates to roles needs `client_ca`, the CA that signs them".into(),
            ));
        }
        if let Some((name, role)) = tls.client_roles.iter().find(|(_, role)| !exists(role)) {
            return Err((
                format!("tls.client_roles.{name}"),
                format!("no role is named `{role}` (built-in: viewer, operator, admin)"),
            ));
        }
        let tailscale = &self.tailscale;
        if tailscale.enabled
            && tailscale.capability.is_none()
            && tailscale.logins.is_empty()
            && tailscale.tags.is_empty()
        {
            return Err((
                "tailscale.enabled".into(),
                "Tailscale identity needs a way to give roles: `capability` (app grants), \
                 `logins` or `tags`"
                    .into(),
            ));
        }
        if let Some((login, role)) = tailscale.logins.iter().find(|(_, role)| !exists(role)) {
            return Err((
                format!("tailscale.logins.{login}"),
                format!("no role is named `{role}` (built-in: viewer, operator, admin)"),
            ));
        }
        if let Some((tag, role)) = tailscale.tags.iter().find(|(_, role)| !exists(role)) {
            return Err((
                format!("tailscale.tags.{tag}"),
                format!("no role is named `{role}` (built-in: viewer, operator, admin)"),
            ));
        }
        if let Some(tag) = tailscale.tags.keys().find(|tag| !tag.starts_with("tag:")) {
            return Err((
                format!("tailscale.tags.{tag}"),
                format!("`{tag}` is not a Tailscale tag; they look like `tag:NAME`"),
            ));
        }
        if let Some(service) = &tailscale.service
            && !service.starts_with("svc:")
        {
            return Err((
                "tailscale.service".into(),
                format!("`{service}` is not a Tailscale Service name; they look like `svc:NAME`"),
            ));
        }
        if let Some(role) = self.limits.per_role.keys().find(|role| !exists(role)) {
            return Err((
                format!("limits.per_role.{role}"),
                format!("no role is named `{role}` (built-in: viewer, operator, admin)"),
            ));
        }
        Ok(())
    }

    /// The effective configuration as TOML, as `config check` prints it.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|error| format!("# cannot render: {error}\n"))
    }
}
