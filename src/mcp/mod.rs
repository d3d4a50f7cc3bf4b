//! The MCP face: rmcp's `ServerHandler`, answering both protocol eras.
//!
//! It knows the protocol (server info, the tool listing, its caching hints) and nothing of HTTP,
//! tokens or tools' insides: every `tools/call` goes to the [`Gate`] with the caller the
//! transport resolved.

use std::sync::Arc;

use rmcp::model::{
    CacheScope, CallToolRequestParams, CallToolResponse, DiscoverResult, Implementation,
    ListToolsResult, PaginatedRequestParams, ProgressNotificationParam, ServerCapabilities,
    ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};

use crate::gate::{Admission, Call, Caller, Gate};
use crate::tool::Progress;

/// An admission the HTTP transport obtained for a `tools/call` before it reached rmcp (so it
/// could answer 429 itself); the gate uses it instead of admitting the call again.
#[derive(Clone, Default)]
pub struct PreAdmitted(Arc<std::sync::Mutex<Option<Admission>>>);

impl PreAdmitted {
    pub fn new(admission: Admission) -> Self {
        Self(Arc::new(std::sync::Mutex::new(Some(admission))))
    }

    fn take(&self) -> Option<Admission> {
        self.0.lock().ok()?.take()
    }
}

/// How long a client may cache `tools/list` and `server/discover`: the tool set is fixed for the
/// life of the process.
const LISTING_TTL_MS: u64 = 5 * 60 * 1000;

const INSTRUCTIONS: &str = "SystemManager reports on and manages this Linux host. Start with \
system_overview for a one-call summary. Answers are compact; each tool's output schema describes \
its fields. Tools that change something are marked by their annotations and may be refused by \
the server's access policy.";

/// The rmcp handler. Cheap to clone: one per stdio session or HTTP request.
#[derive(Clone)]
pub struct McpServer {
    gate: Arc<Gate>,
    /// The caller for transports without per-request identity (stdio). HTTP requests carry
    /// theirs in the request extensions instead.
    session_caller: Option<Arc<Caller>>,
}

impl McpServer {
    /// A handler for HTTP: each request's caller comes from the transport.
    pub fn for_http(gate: Arc<Gate>) -> Self {
        Self {
            gate,
            session_caller: None,
        }
    }

    /// A handler for one stdio session, whose every call comes from `caller`.
    pub fn for_session(gate: Arc<Gate>, caller: Caller) -> Self {
        Self {
            gate,
            session_caller: Some(Arc::new(caller)),
        }
    }

    /// The caller of this request: from the HTTP request the transport annotated, or the
    /// session's. No identity at all is refused rather than guessed.
    fn caller(&self, context: &RequestContext<RoleServer>) -> Result<Arc<Caller>, ErrorData> {
        context
            .extensions
            .get::<axum::http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<Arc<Caller>>())
            .or(self.session_caller.as_ref())
            .cloned()
            .ok_or_else(|| {
                ErrorData::internal_error("the transport did not identify the caller", None)
            })
    }
}

fn request_id(id: &rmcp::model::RequestId) -> String {
    match id {
        rmcp::model::NumberOrString::Number(number) => number.to_string(),
        rmcp::model::NumberOrString::String(text) => text.to_string(),
    }
}

fn server_implementation() -> Implementation {
    Implementation::new("systemmanager", env!("CARGO_PKG_VERSION"))
        .with_title("SystemManager")
        .with_description(env!("CARGO_PKG_DESCRIPTION"))
}

impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(server_implementation())
            .with_instructions(INSTRUCTIONS)
    }

    async fn discover(
        &self,
        _context: RequestContext<RoleServer>,
    ) -> Result<DiscoverResult, ErrorData> {
        Ok(DiscoverResult::from_server_info(
            self.supported_protocol_versions().into_owned(),
            self.get_info(),
        )
        .with_ttl_ms(LISTING_TTL_MS)
        .with_cache_scope(CacheScope::Public))
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        // One page holds every tool, so we never hand out a cursor and cannot honour one.
        if let Some(cursor) = request.and_then(|params| params.cursor) {
            return Err(ErrorData::invalid_params(
                format!("invalid cursor `{cursor}`: tools/list has a single page"),
                None,
            ));
        }
        // A caller sees only the tools its role may call, so the listing is private to it.
        let caller = self.caller(&context)?;
        Ok(
            ListToolsResult::with_all_items(self.gate.listing_for(&caller.role))
                .with_ttl_ms(LISTING_TTL_MS)
                .with_cache_scope(CacheScope::Private),
        )
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.gate.registry().mcp_tool(name)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let caller = self.caller(&context)?;
        let admission = context
            .extensions
            .get::<axum::http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<PreAdmitted>())
            .and_then(PreAdmitted::take);
        let call = Call::new(caller, request.name, request.arguments)
            .with_progress(progress_to(&context))
            .cancelled_by(context.ct.clone())
            .admitted(admission)
            .with_request_id(request_id(&context.id));
        self.gate.call(call).await.map(CallToolResponse::from)
    }
}

/// Progress notifications for this request, when the client sent a progress token. The tool
/// may report from a blocking thread, so each notification is sent from a spawned task.
fn progress_to(context: &RequestContext<RoleServer>) -> Progress {
    let (Some(token), Ok(runtime)) = (
        context.meta.get_progress_token(),
        tokio::runtime::Handle::try_current(),
    ) else {
        return Progress::default();
    };
    let peer = context.peer.clone();
    Progress::new(move |progress, total, message| {
        let mut notification = ProgressNotificationParam::new(token.clone(), progress);
        if let Some(total) = total {
            notification = notification.with_total(total);
        }
        if !message.is_empty() {
            notification = notification.with_message(message);
        }
        let peer = peer.clone();
        runtime.spawn(async move {
            // A client that went away gets no progress; the call itself will notice.
            let _ = peer.notify_progress(notification).await;
        });
    })
}
