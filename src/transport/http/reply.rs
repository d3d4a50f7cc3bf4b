//! HTTP error replies whose body is a JSON-RPC error, as the Streamable HTTP transport allows.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use rmcp::ErrorData;
use rmcp::model::{ErrorCode, NumberOrString, ServerJsonRpcMessage};

pub(super) use crate::mcp::codes::{FORBIDDEN, RATE_LIMITED, UNAUTHORIZED};

/// A response with `status` and a JSON-RPC error body.
pub(super) fn jsonrpc_error(
    status: StatusCode,
    id: Option<NumberOrString>,
    code: i32,
    message: String,
) -> Response {
    let message = ServerJsonRpcMessage::error(ErrorData::new(ErrorCode(code), message, None), id);
    jsonrpc_message(status, &message)
}

/// A response with `status` carrying one JSON-RPC message.
pub(super) fn jsonrpc_message(status: StatusCode, message: &ServerJsonRpcMessage) -> Response {
    let body = serde_json::to_vec(message).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
