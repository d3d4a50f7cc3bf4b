//! The client's MCP Roots, which narrow the file roots for that client's calls (never widen
//! them).
//!
//! Asked only for calls that touch files, and only of a client that declared the `roots`
//! capability. A legacy-era session (`initialize`) is asked with a `roots/list` request, and the
//! answer is kept until the client says its roots changed. A 2026-07-28 request has no session
//! to ask through: the call is answered with an `InputRequiredResult` holding a `roots/list`
//! input request, and the client retries with the roots in `inputResponses`. A client that
//! declared roots but whose answer cannot be had or read sees no files at all (fail closed).
//!
//! Roots are deprecated as of 2026-07-28 (SEP-2577) but stay in the specification for at least
//! a year, and clients send them today; hence the `allow(deprecated)`.
#![allow(deprecated)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use percent_encoding::percent_decode_str;
use rmcp::RoleServer;
use rmcp::model::{
    InputRequest, InputRequiredResult, InputResponses, ListRootsRequest, ListRootsResult,
};
use rmcp::service::RequestContext;

use crate::tool::ClientRoots;

/// The key of our one input request in `inputRequests` / `inputResponses`.
const ROOTS_INPUT: &str = "roots";

/// How long a legacy client may take to answer `roots/list`.
const LIST_ROOTS_TIMEOUT: Duration = Duration::from_secs(10);

/// What a call should do about the client's roots.
pub(super) enum RootsForCall {
    /// Run the call within these roots.
    Ready(ClientRoots),
    /// Answer with this and let the client retry with its roots (2026-07-28).
    Ask(InputRequiredResult),
}

/// A legacy session's roots, as last listed by its client.
#[derive(Clone, Default)]
pub(super) struct SessionRoots(Arc<tokio::sync::Mutex<Option<Arc<[PathBuf]>>>>);

impl SessionRoots {
    /// The client said its roots changed: list them again on the next file call.
    pub(super) async fn forget(&self) {
        *self.0.lock().await = None;
    }

    /// The roots the calling client exposes, for a call that touches files.
    pub(super) async fn narrowing(
        &self,
        input_responses: Option<&InputResponses>,
        context: &RequestContext<RoleServer>,
    ) -> RootsForCall {
        let declared = context
            .client_capabilities()
            .is_some_and(|capabilities| capabilities.roots.is_some());
        if !declared {
            return RootsForCall::Ready(ClientRoots::Unrestricted);
        }
        // A 2026-07-28 request carries the client's capabilities in its `_meta`; a legacy one
        // relies on the session's handshake.
        if context.meta.client_capabilities().is_some() {
            return match input_responses.and_then(|responses| responses.get(ROOTS_INPUT)) {
                Some(answer) => RootsForCall::Ready(from_answer(answer)),
                None => {
                    RootsForCall::Ask(InputRequiredResult::from_input_requests(BTreeMap::from([
                        (
                            ROOTS_INPUT.to_string(),
                            InputRequest::ListRoots(ListRootsRequest::default()),
                        ),
                    ])))
                }
            };
        }
        let mut cached = self.0.lock().await;
        if let Some(roots) = cached.as_ref() {
            return RootsForCall::Ready(ClientRoots::Within(Arc::clone(roots)));
        }
        match tokio::time::timeout(LIST_ROOTS_TIMEOUT, context.peer.list_roots()).await {
            Ok(Ok(listed)) => {
                let roots = directories(&listed);
                *cached = Some(Arc::clone(&roots));
                RootsForCall::Ready(ClientRoots::Within(roots))
            }
            Ok(Err(error)) => RootsForCall::Ready(ClientRoots::Unavailable(format!(
                "roots/list failed: {error}"
            ))),
            Err(_) => RootsForCall::Ready(ClientRoots::Unavailable(format!(
                "roots/list got no answer within {} s",
                LIST_ROOTS_TIMEOUT.as_secs()
            ))),
        }
    }
}

/// A 2026-07-28 client's `inputResponses.roots`.
fn from_answer(answer: &serde_json::Value) -> ClientRoots {
    match serde_json::from_value::<ListRootsResult>(answer.clone()) {
        Ok(listed) => ClientRoots::Within(directories(&listed)),
        Err(error) => ClientRoots::Unavailable(format!(
            "inputResponses.{ROOTS_INPUT} is not a roots/list result: {error}"
        )),
    }
}

/// The directories `file://` roots name, each also by its real path (a root given through a
/// symlink still matches what the kernel reports). Roots that are not `file://` URIs name no
/// directory here and are left out.
fn directories(listed: &ListRootsResult) -> Arc<[PathBuf]> {
    let mut directories = Vec::new();
    for root in &listed.roots {
        let Some(path) = file_uri_path(&root.uri) else {
            tracing::debug!(uri = %root.uri, "client root is not a local file:// URI; ignored");
            continue;
        };
        if let Ok(real) = std::fs::canonicalize(&path)
            && real != path
        {
            directories.push(real);
        }
        directories.push(path);
    }
    directories.into()
}

/// The absolute path a `file://` URI names on this host (`file:///p` or `file://localhost/p`),
/// percent-decoded. `None` for other schemes, other hosts, or a path that is not absolute.
pub(super) fn file_uri_path(uri: &str) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStringExt;

    let rest = uri.strip_prefix("file://")?;
    let rest = rest.strip_prefix("localhost").unwrap_or(rest);
    if !rest.starts_with('/') || rest.contains(['?', '#']) {
        return None;
    }
    let bytes: Vec<u8> = percent_decode_str(rest).collect();
    let path = PathBuf::from(std::ffi::OsString::from_vec(bytes));
    // `/a/./b` and `/a//b` name `/a/b`; `..` is kept for the file tools to refuse or resolve.
    Some(path.components().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_uris_name_local_absolute_paths() {
        assert_eq!(file_uri_path("file:///srv/data"), Some("/srv/data".into()));
        assert_eq!(
            file_uri_path("file://localhost/srv/my%20data/"),
            Some("/srv/my data".into())
        );
        assert_eq!(file_uri_path("file:///a//b/./c"), Some("/a/b/c".into()));
        assert_eq!(file_uri_path("file://otherhost/srv"), None);
        assert_eq!(file_uri_path("https://example.com/srv"), None);
        assert_eq!(file_uri_path("file:///srv?x=1"), None);
        assert_eq!(file_uri_path("file://srv"), None);
    }

    #[test]
    fn a_malformed_answer_fails_closed() {
        let roots = from_answer(&serde_json::json!({"roots": "not a list"}));
        assert!(matches!(roots, ClientRoots::Unavailable(reason) if reason.contains("roots/list")));
        let roots = from_answer(&serde_json::json!({"roots": [
            {"uri": "file:///srv/a"}, {"uri": "https://example.com"}
        ]}));
        assert!(
            matches!(roots, ClientRoots::Within(dirs) if dirs.iter().any(|d| d == &PathBuf::from("/srv/a")))
        );
    }
}
