//! Decoding one incoming JSON-RPC message, and the error each kind of bad input gets.
//!
//! rmcp silently drops input that is not JSON (on stdio) or answers HTTP 415 (on HTTP). The
//! JSON-RPC 2.0 specification, on which MCP is built, prescribes answers instead: `-32700 Parse
//! error` for invalid JSON (including a message cut off mid-way), `-32600 Invalid Request` for
//! JSON that is not a request, and `-32602 Invalid params` when a known method's parameters do
//! not fit its schema. Both transports decode through here so they answer alike.

use rmcp::ErrorData;
use rmcp::model::{
    CallToolRequestParams, ClientJsonRpcMessage, ClientRequest, ErrorCode, GetMeta, NumberOrString,
    ProtocolVersion, ServerJsonRpcMessage,
};
use serde_json::Value;

/// What to do with one incoming message.
#[derive(Debug)]
pub(crate) enum Decoded {
    /// A well-formed message for rmcp.
    Message(Box<ClientJsonRpcMessage>),
    /// A malformed notification. JSON-RPC never answers notifications, so stdio drops it; HTTP,
    /// which must answer every POST, replies 400 with this error.
    BadNotification(Box<RejectedMessage>),
    /// Bad input, and the error response it gets.
    Reject(Box<RejectedMessage>),
}

/// The error answer to bad input.
#[derive(Debug)]
pub(crate) struct RejectedMessage {
    pub id: Option<NumberOrString>,
    pub error: ErrorData,
}

impl RejectedMessage {
    fn new(id: Option<NumberOrString>, code: ErrorCode, message: String) -> Self {
        Self {
            id,
            error: ErrorData::new(code, message, None),
        }
    }

    pub(crate) fn into_message(self) -> ServerJsonRpcMessage {
        ServerJsonRpcMessage::error(self.error, self.id)
    }
}

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Decodes one message (a stdio line or an HTTP body).
pub(crate) fn decode(bytes: &[u8]) -> Decoded {
    let bytes = bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes);
    match serde_json::from_slice::<ClientJsonRpcMessage>(bytes) {
        Ok(ClientJsonRpcMessage::Request(request)) => match &request.request {
            // rmcp falls back to a custom request when a method's params do not fit its schema;
            // for a method this server answers, that is a malformed request, not a custom one.
            ClientRequest::CustomRequest(custom)
                if answers(&custom.method, declares_modern_era(&request.request)) =>
            {
                let detail = params_problem(&custom.method, custom.params.as_ref())
                    .unwrap_or_else(|| format!("they do not match the `{}` schema", custom.method));
                reject(
                    Some(request.id.clone()),
                    ErrorCode::INVALID_PARAMS,
                    format!("Invalid params for `{}`: {detail}", custom.method),
                )
            }
            _ => Decoded::Message(Box::new(ClientJsonRpcMessage::Request(request))),
        },
        Ok(message) => Decoded::Message(Box::new(message)),
        Err(error) => classify(bytes, &error),
    }
}

/// Whether a parsed request declares the 2026-07-28 era (or later) in its `_meta`.
fn declares_modern_era(request: &ClientRequest) -> bool {
    request
        .get_meta()
        .protocol_version()
        .is_some_and(|version| version.as_str() >= ProtocolVersion::V_2026_07_28.as_str())
}

/// Whether an unparsed request's params declare the 2026-07-28 era (or later) in `_meta`.
fn params_declare_modern_era(params: Option<&Value>) -> bool {
    params
        .and_then(|params| params.get("_meta"))
        .and_then(|meta| meta.get("io.modelcontextprotocol/protocolVersion"))
        .and_then(Value::as_str)
        .is_some_and(|version| version >= ProtocolVersion::V_2026_07_28.as_str())
}

/// Whether this server answers `method` in the protocol era the request declares. Methods it
/// does not implement (prompts, resources, logging, ...) and those the 2026-07-28 revision
/// removed (`initialize`, `ping`) go on to rmcp, which answers `-32601 Method not found` (HTTP
/// 404 in the stateless era) whatever their params.
fn answers(method: &str, modern: bool) -> bool {
    match method {
        "tools/call" | "tools/list" | "server/discover" => true,
        "initialize" | "ping" => !modern,
        _ => false,
    }
}

fn classify(bytes: &[u8], error: &serde_json::Error) -> Decoded {
    use serde_json::error::Category;
    if matches!(error.classify(), Category::Syntax | Category::Eof) {
        let what = if error.classify() == Category::Eof {
            "the message ends before the JSON is complete"
        } else {
            "the message is not valid JSON"
        };
        return reject(
            None,
            ErrorCode::PARSE_ERROR,
            format!("Parse error: {what} ({error})"),
        );
    }
    let Ok(value) = serde_json::from_slice::<Value>(bytes) else {
        return reject(
            None,
            ErrorCode::PARSE_ERROR,
            format!("Parse error: {error}"),
        );
    };
    let Value::Object(object) = &value else {
        let message = if value.is_array() {
            "Invalid Request: batches are not supported; send one JSON-RPC message at a time"
        } else {
            "Invalid Request: a JSON-RPC message must be a JSON object"
        };
        return reject(None, ErrorCode::INVALID_REQUEST, message.into());
    };
    let id = match object.get("id") {
        None => None,
        Some(Value::Number(number)) => match number.as_i64() {
            Some(number) => Some(NumberOrString::Number(number)),
            None => {
                return reject(
                    None,
                    ErrorCode::INVALID_REQUEST,
                    "Invalid Request: `id` must be a string or an integer".into(),
                );
            }
        },
        Some(Value::String(text)) => Some(NumberOrString::String(text.as_str().into())),
        Some(_) => {
            return reject(
                None,
                ErrorCode::INVALID_REQUEST,
                "Invalid Request: `id` must be a string or an integer".into(),
            );
        }
    };
    if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return reject(
            id,
            ErrorCode::INVALID_REQUEST,
            "Invalid Request: `jsonrpc` must be \"2.0\"".into(),
        );
    }
    let Some(method) = object.get("method").and_then(Value::as_str) else {
        return reject(
            id,
            ErrorCode::INVALID_REQUEST,
            "Invalid Request: `method` is missing or not a string".into(),
        );
    };
    let params = object.get("params");
    let rejected = if answers(method, params_declare_modern_era(params)) {
        let detail = params_problem(method, params)
            .unwrap_or_else(|| format!("they do not match the `{method}` schema"));
        RejectedMessage::new(
            id.clone(),
            ErrorCode::INVALID_PARAMS,
            format!("Invalid params for `{method}`: {detail}"),
        )
    } else {
        // What rmcp would answer had it been able to parse the message.
        RejectedMessage::new(id.clone(), ErrorCode::METHOD_NOT_FOUND, method.to_string())
    };
    if id.is_none() {
        tracing::debug!(method, %error, "malformed notification");
        return Decoded::BadNotification(Box::new(rejected));
    }
    Decoded::Reject(Box::new(rejected))
}

/// A precise description of what is wrong with the params of the methods whose shape callers
/// most often get wrong.
fn params_problem(method: &str, params: Option<&Value>) -> Option<String> {
    let params = params?;
    match method {
        "tools/call" => {
            let Err(error) = serde_path_to_error::deserialize::<_, CallToolRequestParams>(params)
            else {
                return None;
            };
            let path = error.path().to_string();
            Some(format!("`{path}`: {}", error.into_inner()))
        }
        _ if !params.is_object() => Some("`params` must be an object".into()),
        _ => None,
    }
}

fn reject(id: Option<NumberOrString>, code: ErrorCode, message: String) -> Decoded {
    Decoded::Reject(Box::new(RejectedMessage::new(id, code, message)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejection(input: &str) -> RejectedMessage {
        match decode(input.as_bytes()) {
            Decoded::Reject(rejected) => *rejected,
            other => panic!("expected a rejection for {input}, got {other:?}"),
        }
    }

    #[test]
    fn well_formed_messages_pass() {
        let input = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
        assert!(matches!(decode(input.as_bytes()), Decoded::Message(_)));
        let with_bom = format!("\u{feff}{input}");
        assert!(matches!(decode(with_bom.as_bytes()), Decoded::Message(_)));
    }

    #[test]
    fn invalid_json_is_a_parse_error_without_id() {
        let rejected = rejection("{not json");
        assert_eq!(rejected.error.code, ErrorCode::PARSE_ERROR);
        assert!(rejected.id.is_none());
    }

    #[test]
    fn a_truncated_message_is_a_parse_error() {
        let rejected = rejection(r#"{"jsonrpc":"2.0","id":7,"method":"tools/li"#);
        assert_eq!(rejected.error.code, ErrorCode::PARSE_ERROR);
        assert!(
            rejected.error.message.contains("ends before"),
            "{}",
            rejected.error.message
        );
    }

    #[test]
    fn batches_and_non_objects_are_invalid_requests() {
        assert_eq!(rejection("[1,2]").error.code, ErrorCode::INVALID_REQUEST);
        assert_eq!(rejection("42").error.code, ErrorCode::INVALID_REQUEST);
        let rejected = rejection(r#"{"jsonrpc":"1.0","id":3,"method":"ping"}"#);
        assert_eq!(rejected.error.code, ErrorCode::INVALID_REQUEST);
        assert_eq!(rejected.id, Some(NumberOrString::Number(3)));
    }

    #[test]
    fn wrongly_typed_tool_call_params_name_the_field() {
        let rejected = rejection(
            r#"{"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"x","arguments":"oops"}}"#,
        );
        assert_eq!(rejected.error.code, ErrorCode::INVALID_PARAMS);
        assert_eq!(rejected.id, Some(NumberOrString::String("a".into())));
        assert!(
            rejected.error.message.contains("`arguments`"),
            "{}",
            rejected.error.message
        );
    }

    #[test]
    fn a_tool_call_whose_name_is_not_a_string_is_invalid_params() {
        let rejected =
            rejection(r#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":5}}"#);
        assert_eq!(rejected.error.code, ErrorCode::INVALID_PARAMS);
        assert!(
            rejected.error.message.contains("`name`"),
            "{}",
            rejected.error.message
        );
    }

    #[test]
    fn unknown_methods_reach_rmcp_which_answers_method_not_found() {
        let input = r#"{"jsonrpc":"2.0","id":1,"method":"vendor/thing","params":{}}"#;
        assert!(matches!(decode(input.as_bytes()), Decoded::Message(_)));
    }

    #[test]
    fn methods_this_server_does_not_answer_reach_rmcp_whatever_their_params() {
        for input in [
            r#"{"jsonrpc":"2.0","id":1,"method":"resources/subscribe","params":{"uri":5}}"#,
            r#"{"jsonrpc":"2.0","id":2,"method":"logging/setLevel","params":{"level":7}}"#,
            // Removed in 2026-07-28: a modern request for it is a method not found.
            r#"{"jsonrpc":"2.0","id":3,"method":"initialize","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#,
        ] {
            match decode(input.as_bytes()) {
                Decoded::Message(_) => {}
                Decoded::Reject(rejected) => {
                    assert_eq!(rejected.error.code, ErrorCode::METHOD_NOT_FOUND, "{input}");
                }
                other => panic!("{input}: {other:?}"),
            }
        }
        // A legacy initialize with bad params is still the malformed request it is.
        let rejected = rejection(
            r#"{"jsonrpc":"2.0","id":4,"method":"initialize","params":{"protocolVersion":7}}"#,
        );
        assert_eq!(rejected.error.code, ErrorCode::INVALID_PARAMS);
    }

    #[test]
    fn malformed_notifications_are_dropped() {
        let input = r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":"x"}"#;
        assert!(matches!(
            decode(input.as_bytes()),
            Decoded::BadNotification(_)
        ));
    }
}
