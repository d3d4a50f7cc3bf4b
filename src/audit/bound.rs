//! What one record may hold. Every string field comes from a caller or the host (a header, a
//! path, a tool's arguments), so each is bounded: a field longer than [`FIELD_BYTES`] keeps its
//! first [`KEPT_BYTES`] and says how long it was and what it hashed to, which is enough to match
//! it against another copy without storing an attacker's megabytes. The argument summary is held
//! to [`ARGS_BYTES`] the same way. A record therefore stays under ~4 KiB whatever the request.

use std::borrow::Cow;

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::Entry;

/// A string field longer than this (bytes) is cut.
pub(super) const FIELD_BYTES: usize = 512;
/// How much of a cut field is kept (bytes, at a character boundary).
pub(super) const KEPT_BYTES: usize = 256;
/// The argument summary, as JSON, is cut past this many bytes.
pub(super) const ARGS_BYTES: usize = 2048;

/// `entry` with every field within bounds; borrowed when nothing needed cutting (the usual case).
pub(super) fn bounded(entry: &Entry) -> Cow<'_, Entry> {
    let strings = [
        &entry.outcome,
        entry.identity.as_deref().unwrap_or(""),
        entry.role.as_deref().unwrap_or(""),
        entry.transport.as_deref().unwrap_or(""),
        entry.remote.as_deref().unwrap_or(""),
        entry.request_id.as_deref().unwrap_or(""),
        entry.tool.as_deref().unwrap_or(""),
        entry.tier.as_deref().unwrap_or(""),
        entry.detail.as_deref().unwrap_or(""),
    ];
    let args_len = entry
        .args
        .as_ref()
        .map(|args| serde_json::to_vec(args).map(|json| json.len()).unwrap_or(0))
        .unwrap_or(0);
    if strings.iter().all(|text| text.len() <= FIELD_BYTES) && args_len <= ARGS_BYTES {
        return Cow::Borrowed(entry);
    }
    let cut_option = |field: &Option<String>| field.as_deref().map(|text| cut(text).into_owned());
    let args = entry.args.as_ref().map(|args| {
        if args_len <= ARGS_BYTES {
            args.clone()
        } else {
            let json = serde_json::to_string(args).unwrap_or_default();
            Value::String(summary(&json, ARGS_BYTES / 2))
        }
    });
    Cow::Owned(Entry {
        event: entry.event,
        decision: entry.decision,
        outcome: cut(&entry.outcome).into_owned(),
        identity: cut_option(&entry.identity),
        role: cut_option(&entry.role),
        transport: cut_option(&entry.transport),
        remote: cut_option(&entry.remote),
        request_id: cut_option(&entry.request_id),
        tool: cut_option(&entry.tool),
        tier: cut_option(&entry.tier),
        args,
        duration_us: entry.duration_us,
        bytes: entry.bytes,
        detail: cut_option(&entry.detail),
        suppressed: entry.suppressed,
    })
}

/// `text` itself when short, else its head and what the rest was.
pub(super) fn cut(text: &str) -> Cow<'_, str> {
    if text.len() <= FIELD_BYTES {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(summary(text, KEPT_BYTES))
    }
}

fn summary(text: &str, keep: usize) -> String {
    let mut end = keep.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let digest = hex::encode(Sha256::digest(text.as_bytes()));
    format!(
        "{}… [cut: {} bytes in all, sha256 {digest}]",
        &text[..end],
        text.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_entries_are_not_copied() {
        let entry = Entry {
            outcome: "ok".into(),
            detail: Some("short".into()),
            ..Entry::default()
        };
        assert!(matches!(bounded(&entry), Cow::Borrowed(_)));
    }

    #[test]
    fn a_huge_header_keeps_its_head_length_and_hash() {
        let origin = format!("http://{}", "é".repeat(200_000));
        let entry = Entry {
            outcome: "forbidden".into(),
            detail: Some(format!("Origin `{origin}` is not allowed")),
            args: Some(serde_json::json!({"path": "x".repeat(10_000)})),
            ..Entry::default()
        };
        let bounded = bounded(&entry);
        let detail = bounded.detail.as_deref().expect("detail");
        assert!(detail.len() < FIELD_BYTES + 200, "{}", detail.len());
        assert!(detail.starts_with("Origin `http://é"));
        assert!(detail.contains("400031 bytes in all, sha256 "), "{detail}");
        let args = serde_json::to_string(bounded.args.as_ref().expect("args")).expect("json");
        assert!(args.len() < ARGS_BYTES, "{}", args.len());
        let record = serde_json::to_string(bounded.as_ref()).expect("json");
        assert!(record.len() < 4096, "{}", record.len());
    }
}
