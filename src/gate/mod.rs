//! The gate: the one door every tool call passes, whatever the transport.
//!
//! It knows who is calling (a [`Caller`] resolved by the transport), finds the tool's
//! declaration, applies the per-call timeout and the output cap, turns failures into answers the
//! caller can act on, and writes one structured log event per call. It does not know how any tool
//! works inside, nor how the caller was authenticated.

mod cap;
mod identity;
pub mod policy;
pub mod throttle;

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

use crate::config::LimitsConfig;
use crate::tool::{Answer, Registry, ToolContext, ToolError};

pub use cap::json_len;
pub use identity::{Caller, Identity, TransportKind};
pub use policy::{Denial, Policy, Role};
pub use throttle::{Admission, Throttle, Throttled};

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
        }
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
    limits: Limits,
    in_flight: TaskTracker,
    draining: AtomicBool,
}

impl Gate {
    pub fn new(
        registry: Registry,
        policy: Arc<Policy>,
        throttle: Throttle,
        limits: Limits,
    ) -> Self {
        Self {
            registry,
            policy,
            throttle,
            limits,
            in_flight: TaskTracker::new(),
            draining: AtomicBool::new(false),
        }
    }

    /// Admission control, for transports that refuse over-limit calls in their own terms.
    pub fn throttle(&self) -> &Throttle {
        &self.throttle
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
    pub async fn call(&self, call: Call) -> Result<CallToolResult, ErrorData> {
        let Call {
            caller,
            tool: name,
            arguments,
            cancel,
            admission,
        } = call;
        let name = name.as_str();
        let started = Instant::now();
        let Some(tool) = self.registry.get(name) else {
            log_call(&caller, name, Outcome::UnknownTool, started, 0);
            return Err(ErrorData::invalid_params(
                format!("Unknown tool: {name}"),
                None,
            ));
        };
        if self.draining.load(Ordering::Acquire) {
            let text = "the server is shutting down and takes no new calls; retry once it is back";
            log_call(&caller, name, Outcome::ShuttingDown, started, text.len());
            return Ok(CallToolResult::error(vec![Content::text(text)]));
        }

        // Every attempt counts against the caller's budget, allowed or not.
        let _admission = match admission.map_or_else(|| self.throttle.admit(&caller), Ok) {
            Ok(admission) => admission,
            Err(throttled) => {
                let text = throttled.to_string();
                log_call(&caller, name, Outcome::RateLimited, started, text.len());
                return Ok(CallToolResult::error(vec![Content::text(text)]));
            }
        };

        let declaration = tool.declaration();
        let refuse = |denial: Denial| {
            let text = denial.to_string();
            log_call(&caller, name, Outcome::Denied, started, text.len());
            Ok(CallToolResult::error(vec![Content::text(text)]))
        };
        // The declared tier first, so an unauthorized caller learns nothing from argument
        // validation; then the tier the arguments need, if higher.
        if let Err(denial) =
            self.policy
                .authorize(&caller.role, declaration, declaration.tier, None)
        {
            return refuse(denial);
        }
        let prepared = match tool.prepare(arguments.unwrap_or_default()) {
            Ok(prepared) => prepared,
            Err(error) => {
                let (result, outcome) = tool_error(error);
                log_call(&caller, name, outcome, started, result_len(&result));
                return Ok(result);
            }
        };
        if let Some((tier, reason)) = prepared.escalation.clone()
            && let Err(denial) =
                self.policy
                    .authorize(&caller.role, declaration, tier, Some(reason))
        {
            return refuse(denial);
        }

        let context = ToolContext {
            caller: Arc::clone(&caller),
            cancel: cancel.child_token(),
        };
        let run = AssertUnwindSafe(prepared.run(context.clone())).catch_unwind();
        let timeout = self.limits.call_timeout;
        let finished = self.in_flight.track_future(async {
            tokio::select! {
                result = tokio::time::timeout(timeout, run) => Some(result),
                () = cancel.cancelled() => None,
            }
        });
        let finished = finished.await;
        // Whatever happened, the tool's own work should stop now.
        context.cancel.cancel();

        let (result, outcome) = match finished {
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
        };
        log_call(&caller, name, outcome, started, result_len(&result));
        Ok(result)
    }

    /// Applies the output cap and builds the MCP result.
    fn shape(&self, answer: Answer, hint: &str) -> (CallToolResult, Outcome) {
        match cap::cap(answer, self.limits.max_output_bytes, hint) {
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
    (
        CallToolResult::error(vec![Content::text(error.message)]),
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

fn log_call(caller: &Caller, tool: &str, outcome: Outcome, started: Instant, bytes: usize) {
    tracing::info!(
        target: "systemmanager::call",
        tool,
        identity = %caller.identity,
        role = caller.role.name.as_str(),
        transport = caller.transport.as_str(),
        remote = caller.remote.as_deref().unwrap_or(""),
        duration_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        outcome = %outcome,
        bytes,
        "tool call"
    );
}
