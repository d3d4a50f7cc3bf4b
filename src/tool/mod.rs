//! What a tool is: its declaration (name, title, domain, tier, behaviour hints) and the typed
//! function behind it.
//!
//! A tool declares its metadata exactly once, in a [`Declaration`], and its input and output
//! types carry their JSON Schemas. `tools/list`, the gate, the audit trail and role checks all
//! read that one declaration through the [`Registry`].

mod registry;

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use tokio_util::sync::CancellationToken;

use crate::access::Caller;
pub use crate::access::Tier;

pub use registry::{Answer, Prepared, RegisteredTool, Registry};

/// The part of the host a tool belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Domain {
    System,
    Storage,
    Process,
    Network,
    Hardware,
    Files,
    Docker,
    Services,
    Tailscale,
}

impl Domain {
    pub fn as_str(self) -> &'static str {
        match self {
            Domain::System => "system",
            Domain::Storage => "storage",
            Domain::Process => "process",
            Domain::Network => "network",
            Domain::Hardware => "hardware",
            Domain::Files => "files",
            Domain::Docker => "docker",
            Domain::Services => "services",
            Domain::Tailscale => "tailscale",
        }
    }
}

/// A tool's metadata, declared once as a `static` with the constructor for its tier:
///
/// ```ignore
/// pub static DOCKER_IMAGE_REMOVE: Declaration =
///     Declaration::admin(Domain::Docker, "docker_image_remove", "Remove a Docker image", "…")
///         .destructive()
///         .idempotent();
/// ```
///
/// The MCP annotations are derived from it: `readOnlyHint` is true exactly for the `read` tier,
/// and a `read` tool is never destructive, so hints cannot contradict the tier.
#[derive(Debug)]
pub struct Declaration {
    /// The wire name: `snake_case`, `domain_verb`.
    pub name: &'static str,
    /// A short human title for clients' UIs.
    pub title: &'static str,
    /// What the tool answers and when to use it; written for the model that picks tools.
    pub description: &'static str,
    pub domain: Domain,
    pub tier: Tier,
    /// May irreversibly destroy something (only meaningful above `read`).
    pub destructive: bool,
    /// Calling twice with the same arguments has no further effect.
    pub idempotent: bool,
    /// Reaches beyond this host (registries, the network).
    pub open_world: bool,
    /// Tells a caller whose answer was cut how to get the rest (e.g. "use `limit` and `cursor`").
    pub paging_hint: Option<&'static str>,
    /// Reads paths, so the client's MCP roots narrow it (and a call may first ask the client
    /// for its roots).
    pub within_client_roots: bool,
}

impl Declaration {
    const fn new(
        domain: Domain,
        tier: Tier,
        name: &'static str,
        title: &'static str,
        description: &'static str,
    ) -> Self {
        Self {
            name,
            title,
            description,
            domain,
            tier,
            destructive: false,
            // A look changes nothing, however often it is taken.
            idempotent: matches!(tier, Tier::Read),
            open_world: false,
            paging_hint: None,
            within_client_roots: false,
        }
    }

    /// A tool that looks and changes nothing: never destructive, idempotent.
    pub const fn read(
        domain: Domain,
        name: &'static str,
        title: &'static str,
        description: &'static str,
    ) -> Self {
        Self::new(domain, Tier::Read, name, title, description)
    }

    /// A tool that makes a reversible change (start, stop, SIGTERM).
    pub const fn operate(
        domain: Domain,
        name: &'static str,
        title: &'static str,
        description: &'static str,
    ) -> Self {
        Self::new(domain, Tier::Operate, name, title, description)
    }

    /// A destructive or powerful tool (remove, prune, SIGKILL, exec, pull, create).
    pub const fn admin(
        domain: Domain,
        name: &'static str,
        title: &'static str,
        description: &'static str,
    ) -> Self {
        Self::new(domain, Tier::Admin, name, title, description)
    }

    /// May irreversibly destroy something (a container, an image, data in a volume).
    pub const fn destructive(self) -> Self {
        Self {
            destructive: true,
            ..self
        }
    }

    /// Asking twice changes nothing more than asking once.
    pub const fn idempotent(self) -> Self {
        Self {
            idempotent: true,
            ..self
        }
    }

    /// Reaches beyond this host (a registry).
    pub const fn open_world(self) -> Self {
        Self {
            open_world: true,
            ..self
        }
    }

    /// An answer the gate cuts says this to get the rest (e.g. "use `limit` and `cursor`").
    pub const fn paged(self, hint: &'static str) -> Self {
        Self {
            paging_hint: Some(hint),
            ..self
        }
    }

    /// Reads paths: the client's MCP roots narrow it.
    pub const fn within_client_roots(self) -> Self {
        Self {
            within_client_roots: true,
            ..self
        }
    }
}

/// A tool's answer in the two forms MCP carries: the structured value (matching the declared
/// output schema) and a compact text rendering for clients that only read text.
pub trait Render {
    /// A compact rendering: a line, or one line per row. Never a JSON dump.
    fn render_text(&self) -> String;
}

/// A failure the caller should read: it becomes a tool result with `isError: true`, whose text
/// says what went wrong and what to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolError {
    pub kind: ToolErrorKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolErrorKind {
    /// The arguments do not match the input schema or make no sense.
    InvalidArguments,
    /// The thing asked about does not exist.
    NotFound,
    /// Something the tool depends on is missing or unreachable.
    Unavailable,
    /// The operation was attempted and failed.
    Failed,
}

impl ToolErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ToolErrorKind::InvalidArguments => "invalid_arguments",
            ToolErrorKind::NotFound => "not_found",
            ToolErrorKind::Unavailable => "unavailable",
            ToolErrorKind::Failed => "failed",
        }
    }
}

impl ToolError {
    pub fn new(kind: ToolErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
    pub fn invalid_arguments(message: impl Into<String>) -> Self {
        Self::new(ToolErrorKind::InvalidArguments, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ToolErrorKind::NotFound, message)
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ToolErrorKind::Unavailable, message)
    }
    pub fn failed(message: impl Into<String>) -> Self {
        Self::new(ToolErrorKind::Failed, message)
    }
}

impl fmt::Display for ToolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// What a running tool may know about its call. The gate builds it; a tool asks it what the
/// gate decides (what the caller's role grants, how much an answer may hold) rather than
/// deciding that itself.
#[derive(Clone)]
pub struct ToolContext {
    caller: Arc<Caller>,
    /// Cancelled when the client cancels the request or the call times out; long work should
    /// stop when it fires.
    pub cancel: CancellationToken,
    /// Tells the client how far long work has come (MCP progress notifications), when it
    /// asked for them.
    pub progress: Progress,
    /// The directories the client exposes (MCP Roots), which narrow the file roots.
    pub client_roots: ClientRoots,
    /// How much an answer may hold before the gate cuts it.
    pub output_cap: OutputCap,
}

impl ToolContext {
    pub fn new(
        caller: Arc<Caller>,
        cancel: CancellationToken,
        progress: Progress,
        client_roots: ClientRoots,
        output_cap: OutputCap,
    ) -> Self {
        Self {
            caller,
            cancel,
            progress,
            client_roots,
            output_cap,
        }
    }

    /// Whether the caller's role grants `tier`: for a tool whose answer shows a higher tier
    /// more (environment values only to `admin`).
    pub fn grants(&self, tier: Tier) -> bool {
        self.caller.role.grants(tier)
    }
}

/// The most bytes an answer may hold (`limits.max_output_bytes`), measured as the gate
/// measures it: the structured JSON plus the text rendering.
#[derive(Debug, Clone, Copy)]
pub struct OutputCap {
    /// Bytes.
    pub max_bytes: u64,
}

impl OutputCap {
    /// The bytes `answer` counts against the cap.
    pub fn measure<T: Serialize + Render>(answer: &T) -> u64 {
        let structured = serde_json::to_value(answer).map_or(0, |value| json_len(&value));
        (structured + answer.render_text().len()) as u64
    }
}

/// The serialized size of a JSON value in bytes, without building the string.
pub fn json_len(value: &serde_json::Value) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    // Writing a Value into an infallible writer cannot fail.
    let _ = serde_json::to_writer(&mut counter, value);
    counter.0
}

/// What the client said it exposes through MCP Roots. Roots only ever narrow what the server's
/// own configuration allows; they never widen it.
#[derive(Debug, Clone, Default)]
pub enum ClientRoots {
    /// The client has no roots capability: the server's configuration alone decides.
    #[default]
    Unrestricted,
    /// Only paths inside one of these directories (possibly none).
    Within(Arc<[std::path::PathBuf]>),
    /// The client has roots but they could not be read: nothing is visible (fail closed), and
    /// this says why.
    Unavailable(String),
}

type ProgressSink = dyn Fn(f64, Option<f64>, String) + Send + Sync;

/// Reports progress to the caller; does nothing when the caller gave no progress token.
/// Callable from any thread, the blocking pool included.
#[derive(Clone, Default)]
pub struct Progress(Option<Arc<ProgressSink>>);

impl Progress {
    pub fn new(sink: impl Fn(f64, Option<f64>, String) + Send + Sync + 'static) -> Self {
        Self(Some(Arc::new(sink)))
    }

    pub fn report(&self, progress: f64, total: Option<f64>, message: impl Into<String>) {
        if let Some(sink) = &self.0 {
            sink(progress, total, message.into());
        }
    }
}

/// Arguments for a tool that takes none. Unknown arguments are still refused.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoArguments {}

/// A tool: a declaration plus a typed async function.
pub trait Tool: Send + Sync + 'static {
    type Arguments: DeserializeOwned + JsonSchema + Send + 'static;
    type Output: Serialize + JsonSchema + Render + Send + 'static;

    fn declaration(&self) -> &'static Declaration;

    /// The tier these arguments need, when some arguments need more than the declared tier
    /// (`process_signal` with KILL needs `admin`), with the reason to show a refused caller.
    /// The gate checks it before the tool runs.
    fn required_tier(&self, _arguments: &Self::Arguments) -> Option<(Tier, String)> {
        None
    }

    fn run(
        &self,
        arguments: Self::Arguments,
        context: ToolContext,
    ) -> impl Future<Output = Result<Self::Output, ToolError>> + Send;
}

/// A read tool that is a collection: its declaration, its arguments and answer, and the one
/// function that collects. The registry wraps it once ([`Registry::register_collector`]), on the
/// blocking pool unless `INLINE` says it is a few small in-memory reads.
pub trait Collect: Send + Sync + 'static {
    type Arguments: DeserializeOwned + JsonSchema + Send + 'static;
    type Output: Serialize + JsonSchema + Render + Send + 'static;

    const DECLARATION: &'static Declaration;

    /// Collects on the caller's async worker: only for reads that take microseconds and never
    /// block (`/proc` files, a netlink dump). Everything else runs on the blocking pool, where
    /// `statvfs` on a hung mount or a walk of `/proc` holds up no one.
    const INLINE: bool = false;

    fn collect(
        &self,
        arguments: Self::Arguments,
        context: &ToolContext,
    ) -> Result<Self::Output, ToolError>;

    /// The tier these arguments need when it is above `read`, and why (see
    /// [`Tool::required_tier`]).
    fn required_tier(&self, _arguments: &Self::Arguments) -> Option<(Tier, String)> {
        None
    }

    /// Waits, before collection takes a thread, for what it will hold (file descriptors from
    /// the files domain's budget); what it returns is held until collection ends.
    fn reserve(
        &self,
        _arguments: &Self::Arguments,
    ) -> impl Future<Output = Result<Option<Box<dyn Send>>, ToolError>> + Send {
        async { Ok(None) }
    }
}

/// A [`Collect`] as a [`Tool`].
pub struct Collector<C>(pub Arc<C>);

impl<C: Collect> Tool for Collector<C> {
    type Arguments = C::Arguments;
    type Output = C::Output;

    fn declaration(&self) -> &'static Declaration {
        C::DECLARATION
    }

    fn required_tier(&self, arguments: &C::Arguments) -> Option<(Tier, String)> {
        self.0.required_tier(arguments)
    }

    async fn run(
        &self,
        arguments: C::Arguments,
        context: ToolContext,
    ) -> Result<C::Output, ToolError> {
        let _held = self.0.reserve(&arguments).await?;
        if C::INLINE {
            return self.0.collect(arguments, &context);
        }
        let collector = Arc::clone(&self.0);
        blocking(move || collector.collect(arguments, &context)).await
    }
}

/// Runs blocking collection (reads that could stall: `statvfs` on a hung mount, walking
/// `/proc`) on Tokio's blocking pool, so it never holds up the async workers.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ToolError> + Send + 'static,
) -> Result<T, ToolError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| ToolError::failed(format!("collection did not finish: {error}")))?
}
