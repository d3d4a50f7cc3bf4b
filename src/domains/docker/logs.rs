//! `docker_container_logs`: the last lines a container wrote, bounded.

use std::sync::Arc;

use bollard::container::LogOutput;
use bollard::query_parameters::LogsOptions;
use futures::StreamExt;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::engine::Engine;
use super::names::container_reference;
use crate::domains::shared::time::parse_time;
use crate::render::is_zero;
use crate::tool::{Declaration, Domain, Render, Tool, ToolContext, ToolError};

pub(crate) static DOCKER_CONTAINER_LOGS: Declaration = Declaration::read(
    Domain::Docker,
    "docker_container_logs",
    "Docker container logs",
    "The last lines a container wrote (like `docker logs --tail`): tail (default \
     100, at most 10000), since/until (RFC 3339 times, or durations ago such as \
     `10m`, `2h`, `1d`), stdout and/or stderr, optional timestamps; at most \
     max_bytes (default 32 KiB), keeping the newest lines. Each line says which \
     stream it came from.",
)
.paged("ask for fewer lines with `tail`, or a window with `since`/`until`");

const DEFAULT_TAIL: u32 = 100;
const MAX_TAIL: u32 = 10_000;
const DEFAULT_MAX_BYTES: u64 = 32 * 1024;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LogsArguments {
    /// Id, unique id prefix, or name.
    pub container: String,
    /// How many of the last lines (default 100, at most 10000).
    pub tail: Option<u32>,
    /// From this time: RFC 3339, or a duration ago (`30s`, `10m`, `2h`, `1d`).
    pub since: Option<String>,
    /// Up to this time, in the same forms.
    pub until: Option<String>,
    /// Prefix each line with the time Docker recorded it.
    #[serde(default)]
    pub timestamps: bool,
    /// Include standard output (default true).
    pub stdout: Option<bool>,
    /// Include standard error (default true).
    pub stderr: Option<bool>,
    /// The most bytes of log text in the answer (default 32 KiB; the server's output cap
    /// bounds it too).
    pub max_bytes: Option<u64>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct ContainerLogs {
    pub container: String,
    pub lines: Vec<LogLine>,
    /// Older lines left out to stay within max_bytes.
    #[serde(skip_serializing_if = "is_zero")]
    pub lines_dropped: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct LogLine {
    /// stdout, stderr, or tty (a container with a terminal has one stream).
    pub stream: &'static str,
    pub text: String,
}

impl Render for ContainerLogs {
    fn render_text(&self) -> String {
        let mut lines: Vec<String> = self
            .lines
            .iter()
            // A log line is whatever the container printed: one row each, escaped.
            .map(|line| match line.stream {
                "stderr" => format!("[stderr] {}", crate::render::text(&line.text)),
                _ => crate::render::text(&line.text).into_owned(),
            })
            .collect();
        if self.lines_dropped > 0 {
            lines.insert(
                0,
                format!(
                    "({} left out: max_bytes)",
                    crate::render::count(self.lines_dropped, "older line", "older lines")
                ),
            );
        }
        if lines.is_empty() {
            lines.push(format!(
                "{}: no log lines",
                crate::render::text(&self.container)
            ));
        }
        lines.extend(
            self.notes
                .iter()
                .map(|note| crate::render::sentence(note).into_owned()),
        );
        lines.join("\n")
    }
}

pub(crate) struct ContainerLogsTool {
    pub engine: Arc<Engine>,
}

impl Tool for ContainerLogsTool {
    type Arguments = LogsArguments;
    type Output = ContainerLogs;

    fn declaration(&self) -> &'static Declaration {
        &DOCKER_CONTAINER_LOGS
    }

    async fn run(
        &self,
        arguments: LogsArguments,
        context: ToolContext,
    ) -> Result<ContainerLogs, ToolError> {
        let container = container_reference(&arguments.container)?;
        let tail = arguments.tail.unwrap_or(DEFAULT_TAIL);
        if !(1..=MAX_TAIL).contains(&tail) {
            return Err(ToolError::invalid_arguments(format!(
                "tail {tail} is out of range: give 1 to {MAX_TAIL}"
            )));
        }
        let (stdout, stderr) = (
            arguments.stdout.unwrap_or(true),
            arguments.stderr.unwrap_or(true),
        );
        if !stdout && !stderr {
            return Err(ToolError::invalid_arguments(
                "stdout and stderr are both false: nothing to read",
            ));
        }
        let now = chrono::Utc::now().timestamp();
        let to_i32 = |seconds: i64| i32::try_from(seconds).unwrap_or(i32::MAX);
        let since = arguments
            .since
            .as_deref()
            .map(|text| parse_time(text, now))
            .transpose()?
            .map_or(0, to_i32);
        let until = arguments
            .until
            .as_deref()
            .map(|text| parse_time(text, now))
            .transpose()?
            .map_or(0, to_i32);
        let mut notes = Vec::new();
        // Log text appears twice in an answer (structured and text).
        let fits = (context.output_cap.max_bytes.saturating_sub(1024) / 2).max(1);
        let max_bytes = match arguments.max_bytes {
            Some(0) => {
                return Err(ToolError::invalid_arguments(
                    "max_bytes 0 would return nothing: give at least 1",
                ));
            }
            Some(asked) if asked > fits => {
                notes.push(format!(
                    "max_bytes {asked} is more than an answer holds (limits.max_output_bytes): \
                     gave at most {fits}"
                ));
                fits
            }
            Some(asked) => asked,
            None => DEFAULT_MAX_BYTES.min(fits),
        };
        let options = LogsOptions {
            follow: false,
            stdout,
            stderr,
            since,
            until,
            timestamps: arguments.timestamps,
            tail: tail.to_string(),
        };
        let docker = self.engine.client().await?;
        let mut stream = docker.logs(&container, Some(options));
        let mut lines = Vec::new();
        let mut pending: [String; 3] = Default::default();
        while let Some(frame) = stream.next().await {
            if context.cancel.is_cancelled() {
                break;
            }
            let frame = frame.map_err(|error| self.engine.explain(error))?;
            let (slot, stream_name, bytes) = match &frame {
                LogOutput::StdOut { message } => (0, "stdout", message),
                LogOutput::StdErr { message } => (1, "stderr", message),
                LogOutput::Console { message } => (2, "tty", message),
                LogOutput::StdIn { .. } => continue,
            };
            // A frame may hold part of a line or several; split on newlines per stream.
            pending[slot].push_str(&String::from_utf8_lossy(bytes));
            while let Some(end) = pending[slot].find('\n') {
                let text: String = pending[slot].drain(..=end).collect();
                lines.push(LogLine {
                    stream: stream_name,
                    text: text.trim_end_matches(['\n', '\r']).to_string(),
                });
            }
        }
        for (slot, stream_name) in ["stdout", "stderr", "tty"].into_iter().enumerate() {
            if !pending[slot].is_empty() {
                lines.push(LogLine {
                    stream: stream_name,
                    text: std::mem::take(&mut pending[slot]),
                });
            }
        }
        // Keep the newest lines that fit.
        let mut used = 0u64;
        let mut keep = lines.len();
        while keep > 0 {
            let size = lines[keep - 1].text.len() as u64 + 24;
            if used + size > max_bytes {
                break;
            }
            used += size;
            keep -= 1;
        }
        let lines_dropped = keep;
        let lines = lines.split_off(keep);
        Ok(ContainerLogs {
            container,
            lines,
            lines_dropped,
            notes,
        })
    }
}
