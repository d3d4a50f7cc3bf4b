//! Reads a POST body within the size limit and checks that it is one JSON-RPC message, so bad
//! input gets 413 or a 400 carrying the JSON-RPC error (parse error, invalid request, invalid
//! params) before rmcp sees it.

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use http_body_util::LengthLimitError;
use rmcp::model::ErrorCode;

use super::reply;
use crate::transport::jsonrpc::{Decoded, decode};

/// The body limit in bytes.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

pub async fn check(State(limit): State<BodyLimit>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit.0 as u64) {
        return too_large(limit);
    }
    let (parts, body) = request.into_parts();
    let bytes: Bytes = match axum::body::to_bytes(body, limit.0).await {
        Ok(bytes) => bytes,
        Err(error) => {
            let over_limit = std::error::Error::source(&error)
                .is_some_and(|source| source.is::<LengthLimitError>());
            if over_limit {
                return too_large(limit);
            }
            return reply::jsonrpc_error(
                StatusCode::BAD_REQUEST,
                None,
                ErrorCode::INVALID_REQUEST.0,
                format!("could not read the request body: {error}"),
            );
        }
    };
    match decode(&bytes) {
        Decoded::Message(_) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Decoded::Reject(rejected) | Decoded::BadNotification(rejected) => {
            tracing::debug!(code = rejected.error.code.0, message = %rejected.error.message, "refused request body");
            reply::jsonrpc_message(StatusCode::BAD_REQUEST, &rejected.into_message())
        }
    }
}

fn too_large(limit: BodyLimit) -> Response {
    reply::jsonrpc_error(
        StatusCode::PAYLOAD_TOO_LARGE,
        None,
        ErrorCode::INVALID_REQUEST.0,
        format!(
            "the request body exceeds limits.max_request_bytes ({} bytes)",
            limit.0
        ),
    )
}
