//! Files as MCP resources: the `file:///{+path}` template, read through `files_read`.
//!
//! A `resources/read` is a `files_read` call made through the gate, so it is confined,
//! deny-listed, narrowed by the client's roots, authorized, rate-limited and audited exactly as
//! the tool is; only the answer is shaped differently. Offered only when file roots are
//! configured, and listed only to callers whose role may call `files_read`.

use rmcp::ErrorData;
use rmcp::model::{
    CallToolResult, ErrorCode, JsonObject, ReadResourceResult, ResourceContents, ResourceTemplate,
};
use serde::Deserialize;
use serde_json::json;

use super::codes::{FORBIDDEN, RATE_LIMITED};
use crate::access::Role;
use crate::gate::{Gate, Outcome};
use crate::render;
use crate::tool::ToolErrorKind;

const TEMPLATE: &str = "file:///{+path}";

/// As much as the server's `files.max_read_bytes` allows: `files_read` bounds it and says so.
const AS_MUCH_AS_ALLOWED: u64 = u64::MAX;

/// The tool a resource read is (`files_read`), when this server offers file resources at all
/// (file roots are configured).
pub(super) fn reader(gate: &Gate) -> Option<&'static str> {
    Some(gate.registry().file_resources()?.declaration().name)
}

/// Whether this server offers file resources.
pub(super) fn offered(gate: &Gate) -> bool {
    reader(gate).is_some()
}

/// The templates `role` may use.
pub(super) fn templates_for(gate: &Gate, role: &Role) -> Vec<ResourceTemplate> {
    let Some(tool) = gate.registry().file_resources() else {
        return Vec::new();
    };
    if !gate.policy().lists(role, tool.declaration()) {
        return Vec::new();
    }
    vec![
        ResourceTemplate::new(TEMPLATE, "file")
            .with_title("A file inside the file roots")
            .with_description(
                "The text of a file inside this server's file roots (files.roots), under the \
                 same rules as files_read: the deny list, the client's roots, at most \
                 files.max_read_bytes. Larger files are cut; files_read pages through them.",
            )
            .with_mime_type("text/plain"),
    ]
}

/// The `files_read` arguments for a resource URI.
pub(super) fn read_arguments(gate: &Gate, uri: &str) -> Result<JsonObject, ErrorData> {
    if !offered(gate) {
        return Err(ErrorData::resource_not_found(
            "this server has no file roots (files.roots), so it offers no resources",
            Some(json!({ "uri": uri })),
        ));
    }
    let path = uri_path_text(uri)
        .ok_or_else(|| {
            ErrorData::invalid_params(
                format!(
                    "`{uri}` is not a file:// URI of this host; resources here are \
                     file:///ABSOLUTE/PATH inside the file roots"
                ),
                Some(json!({ "uri": uri })),
            )
        })?
        .map_err(|error| {
            ErrorData::invalid_params(
                format!(
                    "`{}`: {error}; in a URI a backslash in a name is written %5C",
                    render::sentence(uri)
                ),
                Some(json!({ "uri": uri })),
            )
        })?;
    let mut arguments = JsonObject::new();
    arguments.insert("path".into(), json!(path));
    // By bytes, so a cut answer says the byte to go on from.
    arguments.insert("offset".into(), json!(0));
    arguments.insert("max_bytes".into(), json!(AS_MUCH_AS_ALLOWED));
    Ok(arguments)
}

/// The path a `file://` URI of this host names, in the escaped form the file tools take
/// (`render::bytes_text`); `None` when it is not such a URI.
///
/// The URI is read as RFC 8089 has it: percent-encoded bytes, so `%FF` is the byte 0xFF and
/// `%5C` a backslash. A raw backslash, which RFC 3986 never allows in a URI, starts one of the
/// escapes answers print (`bad\xff.txt`), so a name copied from a listing reaches the same
/// bytes as its percent-encoded form; an escape that is not one is an error.
fn uri_path_text(uri: &str) -> Option<Result<String, render::BadEscape>> {
    use std::os::unix::ffi::OsStrExt;

    let rest = uri.strip_prefix("file://")?;
    let rest = rest.strip_prefix("localhost").unwrap_or(rest);
    if !rest.starts_with('/') || rest.contains(['?', '#']) {
        return None;
    }
    // Percent-decode, keeping a decoded backslash apart from a raw one: it becomes `\\`.
    let raw = rest.as_bytes();
    let mut decoded = Vec::with_capacity(raw.len());
    let mut at = 0;
    while at < raw.len() {
        let byte = raw
            .get(at + 1..at + 3)
            .filter(|_| raw[at] == b'%')
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match byte {
            Some(b'\\') => decoded.extend_from_slice(b"\\\\"),
            Some(byte) => decoded.push(byte),
            None => decoded.push(raw[at]),
        }
        at += if byte.is_some() { 3 } else { 1 };
    }
    Some(render::unescape_bytes(&decoded).map(|bytes| {
        // `/a/./b` and `/a//b` name `/a/b`; `..` is kept for the file tools to refuse.
        let path: std::path::PathBuf = std::path::Path::new(std::ffi::OsStr::from_bytes(&bytes))
            .components()
            .collect();
        render::bytes_text(path.as_os_str().as_bytes())
    }))
}

/// The fields of a `files_read` answer a resource needs.
#[derive(Deserialize)]
struct Read {
    content: String,
    size_bytes: u64,
    bytes_returned: u64,
    next_offset: Option<u64>,
}

/// The resource for a finished `files_read` call, or the protocol error its failure means.
pub(super) fn contents(
    uri: &str,
    reader: &str,
    (result, outcome): (CallToolResult, Outcome),
) -> Result<ReadResourceResult, ErrorData> {
    let message = || {
        result
            .content
            .iter()
            .find_map(|block| block.as_text().map(|text| text.text.clone()))
            .unwrap_or_else(|| format!("{reader} failed"))
    };
    let data = Some(json!({ "uri": uri }));
    match outcome {
        Outcome::Ok | Outcome::Truncated => {}
        Outcome::ToolError(ToolErrorKind::NotFound) => {
            return Err(ErrorData::resource_not_found(message(), data));
        }
        Outcome::ToolError(ToolErrorKind::InvalidArguments) => {
            return Err(ErrorData::invalid_params(message(), data));
        }
        Outcome::Denied => return Err(ErrorData::new(ErrorCode(FORBIDDEN), message(), data)),
        Outcome::RateLimited => {
            return Err(ErrorData::new(ErrorCode(RATE_LIMITED), message(), data));
        }
        _ => return Err(ErrorData::internal_error(message(), data)),
    }
    let read: Read = result
        .structured_content
        .and_then(|value| serde_json::from_value(value).ok())
        .ok_or_else(|| ErrorData::internal_error(format!("{reader} gave no content"), None))?;
    let mut contents = ResourceContents::text(read.content, uri);
    if let Some(next_offset) = read.next_offset {
        // A client that reads resources whole should know this is not the whole file.
        let mut meta = rmcp::model::MetaObject::new();
        meta.insert(
            "truncated".into(),
            json!({
                "bytes_returned": read.bytes_returned,
                "size_bytes": read.size_bytes,
                "hint": format!(
                    "this is the start of the file; {reader} with offset {next_offset} reads on"
                ),
            }),
        );
        contents = contents.with_meta(meta);
    }
    Ok(ReadResourceResult::new(vec![contents]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_reach_the_bytes_listings_name() {
        let path = |uri: &str| uri_path_text(uri).map(|path| path.map_err(|e| e.to_string()));
        assert_eq!(
            path("file:///r/bad%FF.txt"),
            Some(Ok("/r/bad\\xff.txt".into()))
        );
        assert_eq!(
            path("file:///r/bad\\xff.txt"),
            Some(Ok("/r/bad\\xff.txt".into()))
        );
        assert_eq!(path("file:///r/a%5Cb"), Some(Ok("/r/a\\\\b".into())));
        assert_eq!(path("file:///r/a\\\\b"), Some(Ok("/r/a\\\\b".into())));
        assert_eq!(
            path("file://localhost/r/my%20data//x"),
            Some(Ok("/r/my data/x".into()))
        );
        assert_eq!(path("file:///r/%E3%81%82"), Some(Ok("/r/\u{3042}".into())));
        assert_eq!(path("https://example.com/r"), None);
        assert!(matches!(path("file:///r/a\\qb"), Some(Err(_))));
    }
}
