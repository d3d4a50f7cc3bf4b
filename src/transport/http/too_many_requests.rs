//! Over-limit `tools/call` requests get HTTP 429 with `Retry-After`, before rmcp opens a
//! response. The decision is the gate's (its [`Throttle`]); the admission travels with the
//! request so the gate does not count the call twice.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use super::body::DecodedRequest;
use super::reply;
use crate::access::Caller;
use crate::audit::{Decision, Entry};
use crate::gate::Gate;
use crate::mcp::PreAdmitted;

pub(super) async fn admit(
    State(gate): State<Arc<Gate>>,
    mut request: Request,
    next: Next,
) -> Response {
    let is_call = request
        .extensions()
        .get::<DecodedRequest>()
        .is_some_and(|decoded| decoded.method == "tools/call");
    let caller = request.extensions().get::<Arc<Caller>>().cloned();
    let (true, Some(caller)) = (is_call, caller) else {
        return next.run(request).await;
    };
    match gate.throttle().admit(&caller) {
        Ok(admission) => {
            request.extensions_mut().insert(PreAdmitted::new(admission));
            next.run(request).await
        }
        Err(throttled) => {
            let decoded = request.extensions().get::<DecodedRequest>();
            let id = decoded.map(|decoded| decoded.id.clone());
            let mut entry = Entry::call(&caller, Decision::RateLimited, "rate_limited");
            entry.tool = decoded.and_then(|decoded| decoded.tool.clone());
            entry.request_id = id.as_ref().map(ToString::to_string);
            entry.detail = Some(throttled.to_string());
            // Refused either way; a failed record is logged by the audit log itself. One of a
            // flood is counted, and not logged line by line either.
            if gate.audit().record_refusal(&entry) {
                tracing::warn!(
                    target: "systemmanager::call",
                    identity = %caller.identity,
                    role = caller.role.name.as_str(),
                    transport = caller.transport.as_str(),
                    remote = caller.remote.as_deref().unwrap_or(""),
                    outcome = "rate_limited",
                    "tool call refused: {throttled}"
                );
            }
            let mut response = reply::jsonrpc_error(
                StatusCode::TOO_MANY_REQUESTS,
                id,
                reply::RATE_LIMITED,
                throttled.to_string(),
            );
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(throttled.retry_after_seconds()),
            );
            response
        }
    }
}
