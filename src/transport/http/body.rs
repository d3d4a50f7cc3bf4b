//! Reads a POST body within the size limit and checks that it is one JSON-RPC message, so bad
//! input gets 413 or a 400 carrying the JSON-RPC error (parse error, invalid request, invalid
//! params) before rmcp sees it.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, BodyDataStream};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use futures::StreamExt;
use rmcp::model::{ClientJsonRpcMessage, ClientRequest, ErrorCode, NumberOrString};
use tokio_util::bytes::BytesMut;

use super::occupancy::Occupant;
use super::reply;
use crate::access::Caller;
use crate::audit::{AuditLog, Entry};
use crate::transport::jsonrpc::{Decoded, decode};

/// What the body layer learnt of a request, for the layers after it.
#[derive(Debug, Clone)]
pub(super) struct DecodedRequest {
    pub method: String,
    pub id: NumberOrString,
    /// For `tools/call`, the tool's name.
    pub tool: Option<String>,
}

/// The body limit in bytes and time, and the audit log a refused body is recorded in.
#[derive(Clone)]
pub(super) struct BodyLimit {
    pub bytes: usize,
    /// The whole body must arrive within this (`http.body_read_timeout_seconds`).
    pub read_within: Duration,
    pub audit: Arc<AuditLog>,
}

/// How much of a refused body is read and thrown away before answering 413, and for how long.
/// Closing a connection with unread data makes the kernel reset it, and a reset can destroy the
/// 413 before the client reads it; reading the rest first (as nginx does) lets the answer arrive.
/// Bodies larger than this get their 413 at once.
const DISCARD_BYTES: u64 = 16 * 1024 * 1024;
const DISCARD_TIME: Duration = Duration::from_secs(5);

pub(super) async fn check(
    State(limit): State<BodyLimit>,
    request: Request,
    next: Next,
) -> Response {
    let occupant = request.extensions().get::<Arc<Occupant>>().cloned();
    let answering = || {
        if let Some(occupant) = &occupant {
            occupant.answering();
        }
    };
    if request.method() != Method::POST {
        answering();
        return next.run(request).await;
    }
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.parse::<u64>().ok());
    if let Some(length) = declared.filter(|length| *length > limit.bytes as u64) {
        let caller = request.extensions().get::<Arc<Caller>>().cloned();
        if length <= DISCARD_BYTES {
            discard(request.into_body().into_data_stream()).await;
        }
        return too_large(&limit, caller.as_deref());
    }
    let (parts, body) = request.into_parts();
    let caller = parts.extensions.get::<Arc<Caller>>().cloned();
    let bytes = match tokio::time::timeout(limit.read_within, read(body, limit.bytes)).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(Unread::TooLarge(rest))) => {
            discard(rest).await;
            return too_large(&limit, caller.as_deref());
        }
        Ok(Err(Unread::Failed(message))) => {
            return refuse(
                &limit,
                caller.as_deref(),
                StatusCode::BAD_REQUEST,
                "unreadable_body",
                message,
            );
        }
        Err(_) => {
            let message = format!(
                "the request body did not arrive within {} s (http.body_read_timeout_seconds)",
                limit.read_within.as_secs()
            );
            return refuse(
                &limit,
                caller.as_deref(),
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                message,
            );
        }
    };
    // The body is in: a slow body was a connection waiting (it could be closed to make room);
    // from here the request is answered.
    answering();
    match decode(&bytes) {
        Decoded::Message(message) => {
            let mut request = Request::from_parts(parts, Body::from(bytes));
            if let ClientJsonRpcMessage::Request(call) = *message {
                let tool = match &call.request {
                    ClientRequest::CallToolRequest(tool_call) => {
                        Some(tool_call.params.name.to_string())
                    }
                    _ => None,
                };
                request.extensions_mut().insert(DecodedRequest {
                    method: call.request.method().to_string(),
                    id: call.id,
                    tool,
                });
            }
            next.run(request).await
        }
        Decoded::Reject(rejected) | Decoded::BadNotification(rejected) => {
            tracing::debug!(code = rejected.error.code.0, message = %rejected.error.message, "refused request body");
            // As rmcp maps it in the stateless era: an unknown method is 404, bad input 400.
            let (status, outcome) = match rejected.error.code {
                ErrorCode::METHOD_NOT_FOUND => (StatusCode::NOT_FOUND, "unknown_method"),
                ErrorCode::PARSE_ERROR => (StatusCode::BAD_REQUEST, "invalid_json"),
                ErrorCode::INVALID_PARAMS => (StatusCode::BAD_REQUEST, "invalid_params"),
                _ => (StatusCode::BAD_REQUEST, "invalid_request"),
            };
            audit_refusal(
                &limit,
                caller.as_deref(),
                outcome,
                rejected.error.message.to_string(),
            );
            reply::jsonrpc_message(status, &rejected.into_message())
        }
    }
}

/// Why a body was not read whole.
enum Unread {
    /// Over the limit; the rest of the stream, to discard.
    TooLarge(BodyDataStream),
    Failed(String),
}

/// Reads `body` whole, within `limit` bytes.
async fn read(body: Body, limit: usize) -> Result<tokio_util::bytes::Bytes, Unread> {
    let mut stream = body.into_data_stream();
    let mut bytes = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk
            .map_err(|error| Unread::Failed(format!("could not read the request body: {error}")))?;
        if bytes.len() + chunk.len() > limit {
            return Err(Unread::TooLarge(stream));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes.freeze())
}

/// Records a refused body.
fn audit_refusal(limit: &BodyLimit, caller: Option<&Caller>, outcome: &str, message: String) {
    // Refused either way; a failed record is logged by the audit log itself.
    let _ = limit
        .audit
        .record(&Entry::refused_request(caller, outcome, message));
}

/// Records a refused body and answers with `status` and the JSON-RPC error.
fn refuse(
    limit: &BodyLimit,
    caller: Option<&Caller>,
    status: StatusCode,
    outcome: &str,
    message: String,
) -> Response {
    audit_refusal(limit, caller, outcome, message.clone());
    let mut response = reply::jsonrpc_error(status, None, ErrorCode::INVALID_REQUEST.0, message);
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Reads and drops what is left of a refused body, within [`DISCARD_BYTES`] and
/// [`DISCARD_TIME`].
async fn discard(mut stream: BodyDataStream) {
    let _ = tokio::time::timeout(DISCARD_TIME, async {
        let mut seen = 0u64;
        while let Some(Ok(chunk)) = stream.next().await {
            seen += chunk.len() as u64;
            if seen > DISCARD_BYTES {
                break;
            }
        }
    })
    .await;
}

fn too_large(limit: &BodyLimit, caller: Option<&Caller>) -> Response {
    let message = format!(
        "the request body exceeds limits.max_request_bytes ({} bytes)",
        limit.bytes
    );
    audit_refusal(limit, caller, "too_large", message.clone());
    let mut response = reply::jsonrpc_error(
        StatusCode::PAYLOAD_TOO_LARGE,
        None,
        ErrorCode::INVALID_REQUEST.0,
        message,
    );
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}
