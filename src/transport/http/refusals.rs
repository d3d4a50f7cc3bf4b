//! Records the requests rmcp's service refuses by itself — an `Mcp-Name` or `Mcp-Method` header
//! that does not match the body (400), an unknown session (404), a method or media type the
//! transport does not take (405, 406, 415) — so that every refusal leaves one record, as the
//! layers in front of it do for theirs. The innermost layer: it sees only rmcp's answers.

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::Value;

use super::body::DecodedRequest;
use crate::access::Caller;
use crate::audit::{AuditLog, Entry};

/// An error body longer than this is not read for its message (rmcp's are a few hundred bytes).
const ERROR_BODY_BYTES: usize = 8192;

pub(super) async fn record(
    State(audit): State<Arc<AuditLog>>,
    request: Request,
    next: Next,
) -> Response {
    let caller = request.extensions().get::<Arc<Caller>>().cloned();
    let decoded = request.extensions().get::<DecodedRequest>().cloned();
    let method = request.method().clone();
    let response = next.run(request).await;
    let status = response.status();
    if !status.is_client_error() {
        return response;
    }
    let (parts, body) = response.into_parts();
    let (message, body) = match to_bytes(body, ERROR_BODY_BYTES).await {
        Ok(bytes) => (error_message(&bytes), Body::from(bytes)),
        Err(_) => (None, Body::empty()),
    };
    let mut entry = Entry::refused_request(
        caller.as_deref(),
        format!("http_{}", status.as_u16()),
        String::new(),
    );
    if let Some(decoded) = &decoded {
        entry.tool = decoded.tool.clone();
        entry.request_id = Some(decoded.id.to_string());
    }
    entry.detail = Some(format!(
        "{method} {}: {}",
        decoded
            .as_ref()
            .map_or("", |decoded| decoded.method.as_str()),
        message.as_deref().unwrap_or("refused by the MCP transport")
    ));
    // Refused either way; a failed record is logged by the audit log itself.
    let _ = audit.record(&entry);
    Response::from_parts(parts, body)
}

/// The `error.message` of a JSON-RPC error body, or the body itself when it is short text.
fn error_message(bytes: &[u8]) -> Option<String> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(value) => value
            .pointer("/error/message")
            .and_then(Value::as_str)
            .map(str::to_string),
        Err(_) => std::str::from_utf8(bytes)
            .ok()
            .filter(|text| !text.trim().is_empty())
            .map(|text| text.trim().to_string()),
    }
}
