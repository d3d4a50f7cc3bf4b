//! The argument summary an audit record keeps: enough to know what was asked, never a secret.
//!
//! Values under secret-looking keys (`password`, `token`, `secret`, `key`, ...) and the values of
//! environment maps are replaced; long strings and lists are shortened.

use serde_json::{Map, Value};

use crate::domains::shared::secret_names::is_secret_key;

const REDACTED: &str = "[redacted]";
const MAX_STRING: usize = 256;
const MAX_ITEMS: usize = 32;
const MAX_DEPTH: usize = 4;

fn is_environment_key(key: &str) -> bool {
    matches!(
        key.to_ascii_lowercase().as_str(),
        "env" | "envs" | "environment" | "environ" | "env_vars"
    )
}

/// The summary of a call's arguments.
pub(crate) fn summarize(arguments: &Map<String, Value>) -> Value {
    Value::Object(summarize_object(arguments, 0))
}

fn summarize_object(object: &Map<String, Value>, depth: usize) -> Map<String, Value> {
    object
        .iter()
        .map(|(key, value)| {
            let kept = if is_secret_key(key) {
                Value::String(REDACTED.into())
            } else if is_environment_key(key) {
                redact_environment(value)
            } else {
                summarize_value(value, depth + 1)
            };
            (key.clone(), kept)
        })
        .collect()
}

fn summarize_value(value: &Value, depth: usize) -> Value {
    match value {
        Value::String(text) if text.len() > MAX_STRING => {
            let mut end = MAX_STRING;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            Value::String(format!("{}…({} bytes)", &text[..end], text.len()))
        }
        Value::Object(_) | Value::Array(_) if depth > MAX_DEPTH => Value::String("…".into()),
        Value::Object(object) => Value::Object(summarize_object(object, depth)),
        Value::Array(items) => {
            let mut kept: Vec<Value> = items
                .iter()
                .take(MAX_ITEMS)
                .map(|item| summarize_value(item, depth + 1))
                .collect();
            if items.len() > MAX_ITEMS {
                kept.push(Value::String(format!(
                    "…({} more)",
                    items.len() - MAX_ITEMS
                )));
            }
            Value::Array(kept)
        }
        other => other.clone(),
    }
}

/// Environment values are secrets as often as not: keep the names, drop the values.
fn redact_environment(value: &Value) -> Value {
    match value {
        Value::Object(object) => Value::Object(
            object
                .keys()
                .map(|name| (name.clone(), Value::String(REDACTED.into())))
                .collect(),
        ),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(
                    |item| match item.as_str().and_then(|text| text.split_once('=')) {
                        Some((name, _)) => Value::String(format!("{name}={REDACTED}")),
                        None => Value::String(REDACTED.into()),
                    },
                )
                .collect(),
        ),
        _ => Value::String(REDACTED.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn summary(value: Value) -> Value {
        match value {
            Value::Object(object) => summarize(&object),
            _ => panic!("object"),
        }
    }

    #[test]
    fn secrets_are_redacted_by_key() {
        let out = summary(json!({
            "pid": 42,
            "password": "hunter2",
            "db_password": "x",
            "api_key": "k",
            "Authorization": "Bearer smgr_x",
            "registry": { "username": "u", "secret": "s", "auth": "a" },
            "monkey": "not a key",
            "sort_key": "cpu"
        }));
        assert_eq!(out["pid"], 42);
        for key in ["password", "db_password", "api_key", "Authorization"] {
            assert_eq!(out[key], REDACTED, "{key}");
        }
        assert_eq!(out["registry"]["username"], "u");
        assert_eq!(out["registry"]["secret"], REDACTED);
        assert_eq!(out["registry"]["auth"], REDACTED);
        assert_eq!(out["monkey"], "not a key");
        assert_eq!(
            out["sort_key"], REDACTED,
            "a word `key` is treated as secret"
        );
    }

    #[test]
    fn environment_values_are_redacted_but_names_kept() {
        let out = summary(json!({
            "env": { "PATH": "/bin", "DB_URL": "postgres://u:p@h/db" },
            "environment": ["A=1", "TOKEN=abc", "bare"]
        }));
        assert_eq!(out["env"], json!({ "PATH": REDACTED, "DB_URL": REDACTED }));
        assert_eq!(
            out["environment"],
            json!(["A=[redacted]", "TOKEN=[redacted]", REDACTED])
        );
    }

    #[test]
    fn long_values_are_shortened() {
        let out =
            summary(json!({ "text": "x".repeat(1000), "items": (0..40).collect::<Vec<_>>() }));
        let text = out["text"].as_str().expect("text");
        assert!(text.starts_with(&"x".repeat(256)) && text.ends_with("…(1000 bytes)"));
        let items = out["items"].as_array().expect("items");
        assert_eq!(items.len(), 33);
        assert_eq!(items[32], "…(8 more)");
    }
}
