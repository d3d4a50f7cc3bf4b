//! Diagnostics on stderr through `tracing`. Never stdout: in stdio mode stdout carries the
//! protocol and nothing else. When stderr is journald's stream (a systemd service:
//! `$JOURNAL_STREAM` names stderr's device and inode), records go to journald's native socket
//! instead, each field a journal field (`journalctl -o json` shows `TOOL`, `OUTCOME`, …), the
//! level as `PRIORITY`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::config::{LogConfig, LogFormat, LogLevel};

/// The configured level for our events; rmcp's own chatter (a line per session event, a warning
/// per JSON-RPC error answer, which the gate already logs) only from `debug` up.
fn default_directives(level: LogLevel) -> String {
    match level {
        LogLevel::Debug | LogLevel::Trace => level.as_str().to_string(),
        _ => format!("{},rmcp=error", level.as_str()),
    }
}

/// Installs the global subscriber. `RUST_LOG`, when set, wins over the configured level.
pub fn init(config: &LogConfig) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .filter(|value| !value.is_empty())
        .and_then(|value| EnvFilter::try_new(value).ok())
        .unwrap_or_else(|| EnvFilter::new(default_directives(config.level)));
    if stderr_is_journal()
        && let Ok(journald) = tracing_journald::layer()
    {
        let journald = journald
            .with_field_prefix(None)
            .with_syslog_identifier("systemmanager".into());
        let _ = tracing_subscriber::registry()
            .with(filter)
            .with(journald)
            .try_init();
        return;
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match config.format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .compact()
            .try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    // A second init (tests) keeps the first subscriber.
    let _ = installed;
}

/// `$JOURNAL_STREAM` (`DEVICE:INODE`, set by systemd for a unit whose output goes to the
/// journal) names our stderr, so journald reads it: a redirected stderr keeps the text format.
fn stderr_is_journal() -> bool {
    let Some(stream) = std::env::var("JOURNAL_STREAM").ok() else {
        return false;
    };
    let Ok(stat) = rustix::fs::fstat(std::io::stderr()) else {
        return false;
    };
    stream.split_once(':').is_some_and(|(device, inode)| {
        device.parse::<u64>().ok() == Some(stat.st_dev)
            && inode.parse::<u64>().ok() == Some(stat.st_ino)
    })
}
