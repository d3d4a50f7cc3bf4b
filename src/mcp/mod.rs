//! The MCP face: rmcp's `ServerHandler`, answering both protocol eras.
//!
//! It knows the protocol (server info, the tool listing, its caching hints) and nothing of HTTP,
//! tokens or tools' insides: every `tools/call` goes to the [`Gate`] with the caller the
//! transport resolved.

pub(crate) mod codes;
mod resources;
mod roots;

use std::sync::Arc;

use rmcp::model::{
    CacheScope, CallToolRequestParams, CallToolResponse, DiscoverResult, Implementation,
    ListResourceTemplatesRequestMethod, ListResourceTemplatesResult, ListResourcesRequestMethod,
    ListResourcesResult, ListToolsResult, PaginatedRequestParams, ProgressNotificationParam,
    ReadResourceRequestParams, ReadResourceResponse, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::{NotificationContext, RequestContext};
use rmcp::{ErrorData, RoleServer, ServerHandler};

use crate::access::Caller;
use crate::gate::{Admission, Call, Gate};
use crate::tool::{ClientRoots, Progress};

use roots::{RootsForCall, SessionRoots};

/// An admission the HTTP transport obtained for a `tools/call` before it reached rmcp (so it
/// could answer 429 itself); the gate uses it instead of admitting the call again.
#[derive(Clone, Default)]
pub(crate) struct PreAdmitted(Arc<std::sync::Mutex<Option<Admission>>>);

impl PreAdmitted {
    pub(crate) fn new(admission: Admission) -> Self {
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
pub(crate) struct McpServer {
    gate: Arc<Gate>,
    /// The caller for transports without per-request identity (stdio). HTTP requests carry
    /// theirs in the request extensions instead.
    session_caller: Option<Arc<Caller>>,
    /// The client's MCP Roots, for a legacy session.
    session_roots: SessionRoots,
}

impl McpServer {
    /// A handler for HTTP: each request's caller comes from the transport.
    pub(crate) fn for_http(gate: Arc<Gate>) -> Self {
        Self {
            gate,
            session_caller: None,
            session_roots: SessionRoots::default(),
        }
    }

    /// A handler for one stdio session, whose every call comes from `caller`.
    pub(crate) fn for_session(gate: Arc<Gate>, caller: Caller) -> Self {
        Self {
            gate,
            session_caller: Some(Arc::new(caller)),
            session_roots: SessionRoots::default(),
        }
    }

    /// The caller of this request: from the HTTP request the transport annotated, or the
    /// session's. No identity at all is refused rather than guessed.
    fn caller(&self, context: &RequestContext<RoleServer>) -> Result<Arc<Caller>, ErrorData> {
        attached::<Arc<Caller>>(context)
            .or(self.session_caller.as_ref())
            .cloned()
            .ok_or_else(|| {
                ErrorData::internal_error("the transport did not identify the caller", None)
            })
    }

    /// Whether `tool` reads files, and so is narrowed by the client's roots. Other tools never
    /// cost the client a `roots/list`.
    fn touches_files(&self, tool: &str) -> bool {
        self.gate
            .registry()
            .get(tool)
            .is_some_and(|tool| tool.declaration().within_client_roots)
    }

    /// The gate call for a request, with its progress, cancellation, admission and id.
    fn call_for(
        &self,
        caller: Arc<Caller>,
        tool: impl Into<String>,
        arguments: Option<rmcp::model::JsonObject>,
        client_roots: ClientRoots,
        context: &RequestContext<RoleServer>,
    ) -> Call {
        let admission = attached::<PreAdmitted>(context).and_then(PreAdmitted::take);
        Call::new(caller, tool, arguments)
            .with_progress(progress_to(context))
            .cancelled_by(context.ct.clone())
            .admitted(admission)
            .with_request_id(request_id(&context.id))
            .within_client_roots(client_roots)
    }
}

/// What the HTTP transport attached to this request (its caller, its admission). rmcp hands a
/// handler the HTTP request's head (`http::request::Parts`) in the request's extensions; this is
/// the one place the protocol layer looks into it. Stdio requests have none.
fn attached<T: Send + Sync + 'static>(context: &RequestContext<RoleServer>) -> Option<&T> {
    context
        .extensions
        .get::<axum::http::request::Parts>()?
        .extensions
        .get::<T>()
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
        let capabilities = if resources::offered(&self.gate) {
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .build()
        } else {
            ServerCapabilities::builder().enable_tools().build()
        };
        ServerConfig::new(capabilities)
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
        let client_roots = if self.touches_files(&request.name) {
            match self
                .session_roots
                .narrowing(request.input_responses.as_ref(), &context)
                .await
            {
                RootsForCall::Ready(client_roots) => client_roots,
                RootsForCall::Ask(input_required) => return Ok(input_required.into()),
            }
        } else {
            ClientRoots::Unrestricted
        };
        let call = self.call_for(
            caller,
            request.name,
            request.arguments,
            client_roots,
            &context,
        );
        self.gate.call(call).await.map(CallToolResponse::from)
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        if !resources::offered(&self.gate) {
            return Err(ErrorData::method_not_found::<
                ListResourceTemplatesRequestMethod,
            >());
        }
        // The template is listed only to callers who may read files.
        let caller = self.caller(&context)?;
        Ok(
            ListResourceTemplatesResult::with_all_items(resources::templates_for(
                &self.gate,
                &caller.role,
            ))
            .with_ttl_ms(LISTING_TTL_MS)
            .with_cache_scope(CacheScope::Private),
        )
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        if !resources::offered(&self.gate) {
            return Err(ErrorData::method_not_found::<ListResourcesRequestMethod>());
        }
        // Files are reached through the template; none is listed one by one.
        Ok(ListResourcesResult::with_all_items(Vec::new())
            .with_ttl_ms(LISTING_TTL_MS)
            .with_cache_scope(CacheScope::Public))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let caller = self.caller(&context)?;
        let arguments = resources::read_arguments(&self.gate, &request.uri)?;
        let reader = resources::reader(&self.gate).unwrap_or_default();
        let client_roots = match self
            .session_roots
            .narrowing(request.input_responses.as_ref(), &context)
            .await
        {
            RootsForCall::Ready(client_roots) => client_roots,
            RootsForCall::Ask(input_required) => return Ok(input_required.into()),
        };
        let call = self.call_for(caller, reader, Some(arguments), client_roots, &context);
        let answer = self.gate.call_with_outcome(call).await?;
        resources::contents(&request.uri, reader, answer).map(ReadResourceResponse::from)
    }

    async fn on_roots_list_changed(&self, _context: NotificationContext<RoleServer>) {
        self.session_roots.forget().await;
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
