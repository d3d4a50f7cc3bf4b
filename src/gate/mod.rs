//! The gate: the one door every tool call passes, whatever the transport.
//!
//! It knows who is calling (a [`Caller`] resolved by the transport), finds the tool's
//! declaration, applies the per-call timeout and the output cap, turns failures into answers the
//! caller can act on, and writes one structured log event per call. It does not know how any tool
//! works inside, nor how the caller was authenticated.

mod authorization;
mod output_cap;
mod rate_limits;

use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::FutureExt;
use rmcp::ErrorData;
use rmcp::model::{CallToolResult, ContentBlock as Content, JsonObject};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::access::{Caller, Role};
use crate::audit::{AuditError, AuditLog, Decision, Entry};
use crate::config::LimitsConfig;
use crate::metrics::CallMetrics;
use crate::tool::{
    Answer, ClientRoots, Declaration, OutputCap, Prepared, Progress, RegisteredTool, Registry,
    Tier, ToolContext, ToolError, json_len,
};

pub use authorization::{Denial, Policy};
pub use rate_limits::{Admission, Throttle, Throttled};

/// The hint given when a tool declares none.
const DEFAULT_PAGING_HINT: &str =
    "narrow the request, or raise limits.max_output_bytes in the server config";

/// Bounds applied to every call.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub call_timeout: Duration,
    pub max_output_bytes: usize,
}

impl From<&LimitsConfig> for Limits {
    fn from(config: &LimitsConfig) -> Self {
        Self {
            call_timeout: Duration::from_secs(config.call_timeout_seconds.get()),
            max_output_bytes: usize::try_from(config.max_output_bytes.get()).unwrap_or(usize::MAX),
        }
    }
}

/// How a call ended, as logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Truncated,
    /// The answer exceeded the cap and had no list to shorten.
    TooLarge,
    ToolError(crate::tool::ToolErrorKind),
    TimedOut,
    Cancelled,
    Panicked,
    UnknownTool,
    Denied,
    RateLimited,
    ShuttingDown,
    /// A change about to be made (the audit record written before it).
    Started,
    /// The audit record could not be written, so the call was refused or its answer withheld.
    AuditUnavailable,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Ok => "ok",
            Outcome::Truncated => "truncated",
            Outcome::TooLarge => "too_large",
            Outcome::ToolError(kind) => kind.as_str(),
            Outcome::TimedOut => "timed_out",
            Outcome::Cancelled => "cancelled",
            Outcome::Panicked => "panicked",
            Outcome::UnknownTool => "unknown_tool",
            Outcome::Denied => "denied",
            Outcome::RateLimited => "rate_limited",
            Outcome::ShuttingDown => "shutting_down",
            Outcome::Started => "started",
            Outcome::AuditUnavailable => "audit_unavailable",
        })
    }
}

/// One tool call as it reaches the gate.
pub struct Call {
    pub caller: Arc<Caller>,
    pub tool: String,
    pub arguments: Option<JsonObject>,
    /// Fires when the client cancels the request.
    pub cancel: CancellationToken,
    /// The admission a transport already obtained to answer a refusal its own way (HTTP 429).
    pub admission: Option<Admission>,
    /// The JSON-RPC request id, for the audit trail.
    pub request_id: Option<String>,
    /// Where the tool's progress notifications go.
    pub progress: Progress,
    /// The client's MCP Roots, narrowing the file roots.
    pub client_roots: ClientRoots,
}

impl Call {
    pub fn new(
        caller: Arc<Caller>,
        tool: impl Into<String>,
        arguments: Option<JsonObject>,
    ) -> Self {
        Self {
            caller,
            tool: tool.into(),
            arguments,
            cancel: CancellationToken::new(),
            admission: None,
            request_id: None,
            progress: Progress::default(),
            client_roots: ClientRoots::default(),
        }
    }

    pub fn within_client_roots(mut self, client_roots: ClientRoots) -> Self {
        self.client_roots = client_roots;
        self
    }

    pub fn with_request_id(mut self, request_id: impl Into<String>) -> Self {
        self.request_id = Some(request_id.into());
        self
    }

    pub fn with_progress(mut self, progress: Progress) -> Self {
        self.progress = progress;
        self
    }

    pub fn cancelled_by(mut self, cancel: CancellationToken) -> Self {
        self.cancel = cancel;
        self
    }

    pub fn admitted(mut self, admission: Option<Admission>) -> Self {
        self.admission = admission;
        self
    }
}

/// The gate. One per server process, shared by every transport and session.
pub struct Gate {
    registry: Registry,
    policy: Arc<Policy>,
    throttle: Throttle,
    audit: Arc<AuditLog>,
    limits: Limits,
    in_flight: TaskTracker,
    draining: AtomicBool,
    metrics: Arc<CallMetrics>,
}

impl Gate {
    pub fn new(
        registry: Registry,
        policy: Arc<Policy>,
        throttle: Throttle,
        audit: Arc<AuditLog>,
        limits: Limits,
    ) -> Self {
        Self {
            registry,
            policy,
            throttle,
            audit,
            limits,
            in_flight: TaskTracker::new(),
            draining: AtomicBool::new(false),
            metrics: Arc::default(),
        }
    }

    /// The audit log, for transports that refuse requests before they reach the gate.
    pub fn audit(&self) -> &Arc<AuditLog> {
        &self.audit
    }

    /// Admission control, for transports that refuse over-limit calls in their own terms.
    pub fn throttle(&self) -> &Throttle {
        &self.throttle
    }

    /// What `/metrics` reports of the calls this gate saw.
    pub(crate) fn metrics(&self) -> &Arc<CallMetrics> {
        &self.metrics
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn policy(&self) -> &Arc<Policy> {
        &self.policy
    }

    /// The MCP listing `role` may see: the tools it may call.
    pub fn listing_for(&self, role: &Role) -> Vec<rmcp::model::Tool> {
        self.registry
            .mcp_tools_where(|declaration| self.policy.lists(role, declaration))
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Runs one tool call. A protocol error (`Err`) only for an unknown tool; everything that
    /// goes wrong inside a known tool is an `isError` result whose text says what to do next.
    /// Every decision is logged and audited.
    pub async fn call(&self, call: Call) -> Result<CallToolResult, ErrorData> {
        self.call_with_outcome(call).await.map(|(result, _)| result)
    }

    /// [`Gate::call`], also saying how the call ended, for callers that answer in other terms
    /// than a tool result (a `resources/read` maps a missing file to "resource not found").
    pub async fn call_with_outcome(
        &self,
        call: Call,
    ) -> Result<(CallToolResult, Outcome), ErrorData> {
        let Call {
            caller,
            tool: name,
            arguments,
            cancel,
            admission,
            request_id,
            progress,
            client_roots,
        } = call;
        let record = CallRecord {
            audit: &self.audit,
            metrics: &self.metrics,
            known: self.registry.get(&name).is_some(),
            caller: &caller,
            tool: &name,
            request_id,
            arguments: arguments.as_ref().map(crate::audit::redact::summarize),
            started: Instant::now(),
        };
        let Some(tool) = self.registry.get(&name) else {
            let message = format!("Unknown tool: {name}");
            // Refused whether or not the record could be written (its failure is logged).
            let _ = record.record(
                Decision::Refused,
                Outcome::UnknownTool,
                None,
                0,
                Some(&message),
            );
            return Err(ErrorData::invalid_params(message, None));
        };
        let cleared = match self.clear(&record, &caller, tool, arguments, admission) {
            Ok(cleared) => cleared,
            Err(stopped) => return Ok(*stopped),
        };
        let context = ToolContext::new(
            Arc::clone(&caller),
            cancel.child_token(),
            progress,
            client_roots,
            OutputCap {
                max_bytes: self.limits.max_output_bytes as u64,
            },
        );
        let (result, outcome) = self
            .run(
                &name,
                tool.declaration(),
                cleared.prepared,
                &cancel,
                context,
            )
            .await;
        Ok(self.finish(&record, cleared.tier, result, outcome))
    }

    /// Everything a call passes before its tool runs, in order: the server is taking calls,
    /// the caller's budget admits it, its role grants the declared tier, its arguments parse,
    /// its role grants the tier those arguments need, and a change is recorded before it is
    /// made. The first that fails answers the call.
    fn clear(
        &self,
        record: &CallRecord<'_>,
        caller: &Caller,
        tool: &RegisteredTool,
        arguments: Option<JsonObject>,
        admission: Option<Admission>,
    ) -> Result<Cleared, Stopped> {
        if self.draining.load(Ordering::Acquire) {
            let text = "the server is shutting down and takes no new calls; retry once it is back";
            let result = record.refuse(Decision::Refused, Outcome::ShuttingDown, None, text.into());
            return Err(Box::new((result, Outcome::ShuttingDown)));
        }
        // Every attempt counts against the caller's budget, allowed or not.
        let admission = match admission.map_or_else(|| self.throttle.admit(caller), Ok) {
            Ok(admission) => admission,
            Err(throttled) => {
                let text = throttled.to_string();
                let result = record.refuse(Decision::RateLimited, Outcome::RateLimited, None, text);
                return Err(Box::new((result, Outcome::RateLimited)));
            }
        };
        let (prepared, tier) = self.authorize(record, caller, tool, arguments)?;
        // A change is recorded before it is made: if that record cannot be written, it is not.
        if tier > Tier::Read
            && record
                .record(Decision::Allowed, Outcome::Started, Some(tier), 0, None)
                .is_err()
            && self.audit.fails_closed()
        {
            let result = CallToolResult::error(vec![Content::text(AUDIT_REFUSAL)]);
            return Err(Box::new((result, Outcome::AuditUnavailable)));
        }
        Ok(Cleared {
            _admission: admission,
            prepared,
            tier,
        })
    }

    /// The declared tier first, so an unauthorized caller learns nothing from argument
    /// validation; then the arguments; then the tier they need, if higher. Answers the
    /// prepared call and the tier it runs at.
    fn authorize(
        &self,
        record: &CallRecord<'_>,
        caller: &Caller,
        tool: &RegisteredTool,
        arguments: Option<JsonObject>,
    ) -> Result<(Prepared, Tier), Stopped> {
        let declaration = tool.declaration();
        if let Err(denial) =
            self.policy
                .authorize(&caller.role, declaration, declaration.tier, None)
        {
            let tier = Some(declaration.tier);
            let result = record.refuse(Decision::Denied, Outcome::Denied, tier, denial.to_string());
            return Err(Box::new((result, Outcome::Denied)));
        }
        let prepared = match tool.prepare(arguments.unwrap_or_default()) {
            Ok(prepared) => prepared,
            Err(error) => {
                let (result, outcome) = tool_error(error);
                // Nothing ran: the result stands whether or not it could be recorded.
                let _ = record.record(
                    Decision::Allowed,
                    outcome,
                    Some(declaration.tier),
                    result_len(&result),
                    first_text(&result),
                );
                return Err(Box::new((result, outcome)));
            }
        };
        let Some((tier, reason)) = prepared.escalation.clone() else {
            return Ok((prepared, declaration.tier));
        };
        if let Err(denial) = self
            .policy
            .authorize(&caller.role, declaration, tier, Some(reason))
        {
            let text = denial.to_string();
            let result = record.refuse(Decision::Denied, Outcome::Denied, Some(tier), text);
            return Err(Box::new((result, Outcome::Denied)));
        }
        Ok((prepared, tier))
    }

    /// Records how a call that ran ended. Nothing read leaves without its record; a change
    /// already made is reported anyway.
    fn finish(
        &self,
        record: &CallRecord<'_>,
        tier: Tier,
        result: CallToolResult,
        outcome: Outcome,
    ) -> (CallToolResult, Outcome) {
        let recorded = record.record(
            Decision::Allowed,
            outcome,
            Some(tier),
            result_len(&result),
            result
                .is_error
                .unwrap_or(false)
                .then(|| first_text(&result))
                .flatten(),
        );
        if recorded.is_err() && self.audit.fails_closed() && tier == Tier::Read {
            let result = CallToolResult::error(vec![Content::text(AUDIT_WITHHELD)]);
            return (result, Outcome::AuditUnavailable);
        }
        (result, outcome)
    }

    /// Runs a prepared call under the timeout, cancellation, panic catching and the output cap.
    async fn run(
        &self,
        name: &str,
        declaration: &Declaration,
        prepared: Prepared,
        cancel: &CancellationToken,
        context: ToolContext,
    ) -> (CallToolResult, Outcome) {
        let run = AssertUnwindSafe(prepared.run(context.clone())).catch_unwind();
        let timeout = self.limits.call_timeout;
        let finished = self
            .in_flight
            .track_future(async {
                tokio::select! {
                    result = tokio::time::timeout(timeout, run) => Some(result),
                    () = cancel.cancelled() => None,
                }
            })
            .await;
        // Whatever happened, the tool's own work should stop now.
        context.cancel.cancel();

        match finished {
            None => (
                CallToolResult::error(vec![Content::text("the call was cancelled")]),
                Outcome::Cancelled,
            ),
            Some(Err(_elapsed)) => (
                CallToolResult::error(vec![Content::text(format!(
                    "{name} did not finish within {} s and was abandoned; the host may be busy. \
                     Try again, narrow the request, or raise limits.call_timeout_seconds.",
                    timeout.as_secs()
                ))]),
                Outcome::TimedOut,
            ),
            Some(Ok(Err(_panic))) => {
                tracing::error!(tool = name, "tool panicked");
                (
                    CallToolResult::error(vec![Content::text(format!(
                        "{name} failed unexpectedly (an internal error, logged on the server). \
                         Please report it."
                    ))]),
                    Outcome::Panicked,
                )
            }
            Some(Ok(Ok(Err(error)))) => tool_error(error),
            Some(Ok(Ok(Ok(answer)))) => {
                let hint = declaration.paging_hint.unwrap_or(DEFAULT_PAGING_HINT);
                self.shape(answer, hint)
            }
        }
    }

    /// Applies the output cap and builds the MCP result.
    fn shape(&self, answer: Answer, hint: &str) -> (CallToolResult, Outcome) {
        match output_cap::cap(answer, self.limits.max_output_bytes, hint) {
            Ok((answer, truncated)) => {
                // The text block carries the compact rendering, not the JSON again.
                let mut result = CallToolResult::success(vec![Content::text(answer.text)]);
                result.structured_content = Some(answer.structured);
                let outcome = if truncated {
                    Outcome::Truncated
                } else {
                    Outcome::Ok
                };
                (result, outcome)
            }
            Err(too_large) => (
                CallToolResult::error(vec![Content::text(format!(
                    "the answer ({} bytes) exceeds limits.max_output_bytes ({}) and cannot be \
                     shortened; {hint}",
                    too_large.bytes, self.limits.max_output_bytes
                ))]),
                Outcome::TooLarge,
            ),
        }
    }

    /// Stops taking new calls and waits up to `grace` for the calls in flight to finish.
    /// Returns whether they all did.
    pub async fn drain(&self, grace: Duration) -> bool {
        self.draining.store(true, Ordering::Release);
        self.in_flight.close();
        let finished = tokio::time::timeout(grace, self.in_flight.wait())
            .await
            .is_ok();
        if !finished {
            tracing::warn!(
                in_flight = self.in_flight.len(),
                grace_seconds = grace.as_secs(),
                "calls still running after the shutdown grace period; exiting anyway"
            );
        }
        finished
    }

    /// Calls running right now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }
}

fn tool_error(error: ToolError) -> (CallToolResult, Outcome) {
    // An error may quote what the host or the caller named (an engine's message, a path): in
    // one place, no message can break into lines or hide text (`render::sentence`).
    let message = crate::render::sentence(&error.message).into_owned();
    (
        CallToolResult::error(vec![Content::text(message)]),
        Outcome::ToolError(error.kind),
    )
}

/// Bytes a result puts on the wire, roughly: its text blocks plus its structured JSON.
fn result_len(result: &CallToolResult) -> usize {
    let text: usize = result
        .content
        .iter()
        .filter_map(|block| block.as_text().map(|text| text.text.len()))
        .sum();
    text + result.structured_content.as_ref().map_or(0, json_len)
}

/// The refusal when a change's record cannot be written.
const AUDIT_REFUSAL: &str = "refused: the audit log cannot be written, and this server records \
    every change before making it (audit.fail_closed). Nothing was done; an operator must fix \
    the audit log (see the server's log).";
/// The refusal when a read's record cannot be written.
const AUDIT_WITHHELD: &str = "refused: the answer was withheld because its audit record could \
    not be written (audit.fail_closed); an operator must fix the audit log (see the server's log).";

/// The text of a result's first text block, for the audit trail's `detail`.
fn first_text(result: &CallToolResult) -> Option<&str> {
    result
        .content
        .iter()
        .find_map(|block| block.as_text().map(|text| text.text.as_str()))
}

/// A call that stopped before its tool ran: the answer to give, and why (boxed: the refusal
/// path is the rare one, and keeps the cleared path's value small).
type Stopped = Box<(CallToolResult, Outcome)>;

/// A call cleared to run: its admission (held until it ends), the call, and its tier.
struct Cleared {
    _admission: Admission,
    prepared: Prepared,
    tier: Tier,
}

/// What the log event and the audit record of one call share.
struct CallRecord<'a> {
    audit: &'a AuditLog,
    metrics: &'a CallMetrics,
    /// The tool exists (metrics count unknown names under one label).
    known: bool,
    caller: &'a Caller,
    tool: &'a str,
    request_id: Option<String>,
    arguments: Option<serde_json::Value>,
    started: Instant,
}

impl CallRecord<'_> {
    /// Logs and audits a stage of the call.
    fn record(
        &self,
        decision: Decision,
        outcome: Outcome,
        tier: Option<Tier>,
        bytes: usize,
        detail: Option<&str>,
    ) -> Result<(), AuditError> {
        let elapsed = self.started.elapsed();
        let duration_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        if outcome != Outcome::Started {
            log_call(self.caller, self.tool, outcome, duration_us, bytes);
            let outcome = outcome.to_string();
            self.metrics
                .observe(self.tool, self.known, &outcome, elapsed.as_secs_f64());
        }
        let mut entry = Entry::call(self.caller, decision, outcome.to_string());
        entry.request_id = self.request_id.clone();
        entry.tool = Some(self.tool.to_string());
        entry.tier = tier.map(|tier| tier.as_str().to_string());
        entry.args = self.arguments.clone();
        if outcome != Outcome::Started {
            entry.duration_us = Some(duration_us);
            entry.bytes = Some(bytes);
        }
        entry.detail = detail.map(|text| text.chars().take(500).collect());
        let written = self.audit.record(&entry);
        if written.is_err() {
            self.metrics.audit_failed();
        }
        written
    }

    /// Records a refusal and returns it as the tool error the caller reads.
    fn refuse(
        &self,
        decision: Decision,
        outcome: Outcome,
        tier: Option<Tier>,
        text: String,
    ) -> CallToolResult {
        // The call is refused whether or not its record could be written.
        let _ = self.record(decision, outcome, tier, text.len(), Some(&text));
        CallToolResult::error(vec![Content::text(text)])
    }
}

fn log_call(caller: &Caller, tool: &str, outcome: Outcome, duration_us: u64, bytes: usize) {
    tracing::info!(
        target: "systemmanager::call",
        tool,
        identity = %caller.identity,
        role = caller.role.name.as_str(),
        transport = caller.transport.as_str(),
        remote = caller.remote.as_deref().unwrap_or(""),
        duration_us,
        outcome = %outcome,
        bytes,
        "tool call"
    );
}
