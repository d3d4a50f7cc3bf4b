//! `docker_container_exec` (admin, and only when `docker.exec_enabled`): runs one command in a
//! running container, without a terminal or input, bounded in time and output.

use std::sync::Arc;
use std::time::Duration;

use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use futures::StreamExt;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::engine::Engine;
use super::names::container_reference;
use crate::tool::{Declaration, Domain, Render, Tool, ToolContext, ToolError};

pub(crate) static DOCKER_CONTAINER_EXEC: Declaration = Declaration::admin(
    Domain::Docker,
    "docker_container_exec",
    "Run a command in a Docker container",
    "Runs one command in a running container (`docker exec`, no terminal, no \
     input) and answers with its exit code and output: stdout and stderr, at most \
     max_bytes each (default 16 KiB), within timeout_seconds (default 30, at most \
     300; a command still running then is killed). The command is an argument \
     list, not a shell line: use [\"sh\", \"-c\", \"...\"] for a shell.",
)
.destructive()
.paged("ask for less output with max_bytes, or filter inside the command");

const DEFAULT_TIMEOUT: u64 = 30;
const MAX_TIMEOUT: u64 = 300;
const DEFAULT_MAX_BYTES: usize = 16 * 1024;
const MAX_BYTES: usize = 256 * 1024;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExecArguments {
    /// Id, unique id prefix, or name.
    pub container: String,
    /// The program and its arguments.
    pub command: Vec<String>,
    /// `user`, `user:group` or a uid; default the container's.
    pub user: Option<String>,
    pub working_dir: Option<String>,
    /// `NAME=value` entries added to the environment.
    pub env: Option<Vec<String>>,
    pub timeout_seconds: Option<u64>,
    /// Per stream (default 16 KiB, at most 256 KiB).
    pub max_bytes: Option<usize>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct ExecResult {
    pub container: String,
    /// The command's exit code; absent when it was killed at the timeout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    pub stdout: String,
    pub stderr: String,
    /// Output beyond max_bytes was left out.
    pub output_cut: bool,
    pub timed_out: bool,
    pub duration_ms: u64,
}

impl Render for ExecResult {
    fn render_text(&self) -> String {
        let container = crate::render::text(&self.container);
        let mut text = match (self.timed_out, self.exit_code) {
            (true, _) => format!("{container}: timed out and killed"),
            (false, Some(code)) => format!("{container}: exit code {code}"),
            (false, None) => format!("{container}: finished"),
        };
        // Output is shown as a block (its lines kept, other controls escaped).
        if !self.stdout.is_empty() {
            text.push_str(&format!(
                "\n{}",
                crate::render::block(self.stdout.trim_end())
            ));
        }
        if !self.stderr.is_empty() {
            text.push_str(&format!(
                "\n[stderr] {}",
                crate::render::block(self.stderr.trim_end())
            ));
        }
        if self.output_cut {
            text.push_str("\n(output cut at max_bytes)");
        }
        text
    }
}

pub(crate) struct ContainerExecTool {
    pub engine: Arc<Engine>,
}

/// Appends what fits in `max` bytes; says whether anything was left out.
fn append(buffer: &mut Vec<u8>, bytes: &[u8], max: usize) -> bool {
    let room = max.saturating_sub(buffer.len());
    buffer.extend_from_slice(&bytes[..bytes.len().min(room)]);
    bytes.len() > room
}

impl Tool for ContainerExecTool {
    type Arguments = ExecArguments;
    type Output = ExecResult;

    fn declaration(&self) -> &'static Declaration {
        &DOCKER_CONTAINER_EXEC
    }

    async fn run(
        &self,
        arguments: ExecArguments,
        context: ToolContext,
    ) -> Result<ExecResult, ToolError> {
        let container = container_reference(&arguments.container)?;
        if arguments.command.is_empty() || arguments.command[0].is_empty() {
            return Err(ToolError::invalid_arguments(
                "command is empty: give the program and its arguments",
            ));
        }
        let timeout = arguments.timeout_seconds.unwrap_or(DEFAULT_TIMEOUT);
        if !(1..=MAX_TIMEOUT).contains(&timeout) {
            return Err(ToolError::invalid_arguments(format!(
                "timeout_seconds {timeout} is out of range: give 1 to {MAX_TIMEOUT}"
            )));
        }
        let max_bytes = arguments.max_bytes.unwrap_or(DEFAULT_MAX_BYTES);
        if !(1..=MAX_BYTES).contains(&max_bytes) {
            return Err(ToolError::invalid_arguments(format!(
                "max_bytes {max_bytes} is out of range: give 1 to {MAX_BYTES}"
            )));
        }
        let options = CreateExecOptions {
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            attach_stdin: Some(false),
            tty: Some(false),
            cmd: Some(arguments.command.clone()),
            user: arguments.user.clone(),
            working_dir: arguments.working_dir.clone(),
            env: arguments.env.clone(),
            ..Default::default()
        };
        let target = container.clone();
        let created = self
            .engine
            .run(|docker| async move { docker.create_exec(&target, options).await })
            .await?;
        let exec_id = created.id;
        let docker = self.engine.client().await?;
        let started = std::time::Instant::now();
        let attached = docker
            .start_exec(
                &exec_id,
                Some(StartExecOptions {
                    detach: false,
                    tty: false,
                    output_capacity: None,
                }),
            )
            .await
            .map_err(|error| self.engine.explain(error))?;
        let StartExecResults::Attached { mut output, .. } = attached else {
            return Err(ToolError::failed(
                "the engine did not attach to the command's output",
            ));
        };
        let (mut stdout, mut stderr, mut cut) = (Vec::new(), Vec::new(), false);
        let collect = async {
            while let Some(frame) = output.next().await {
                match frame.map_err(|error| self.engine.explain(error))? {
                    LogOutput::StdOut { message } | LogOutput::Console { message } => {
                        cut |= append(&mut stdout, &message, max_bytes);
                    }
                    LogOutput::StdErr { message } => {
                        cut |= append(&mut stderr, &message, max_bytes)
                    }
                    LogOutput::StdIn { .. } => {}
                }
            }
            Ok::<(), ToolError>(())
        };
        enum Ended {
            Done(Result<(), ToolError>),
            TimedOut,
        }
        let ended = tokio::select! {
            collected = tokio::time::timeout(Duration::from_secs(timeout), collect) => match collected {
                Ok(result) => Ended::Done(result),
                Err(_) => Ended::TimedOut,
            },
            // A cancelled call stops the command as a timeout does.
            () = context.cancel.cancelled() => Ended::TimedOut,
        };
        let timed_out = match ended {
            Ended::Done(result) => {
                result?;
                false
            }
            Ended::TimedOut => true,
        };
        let inspected = docker
            .inspect_exec(&exec_id)
            .await
            .map_err(|error| self.engine.explain(error))?;
        if timed_out && inspected.running == Some(true) {
            // The Engine API cannot stop an exec; its process is killed by its host pid.
            if let Some(pid) = inspected.pid.filter(|pid| *pid > 1) {
                let _ = rustix::process::kill_process(
                    rustix::process::Pid::from_raw(pid as i32).ok_or_else(|| {
                        ToolError::failed("the engine reported an invalid pid for the command")
                    })?,
                    rustix::process::Signal::KILL,
                );
            }
        }
        Ok(ExecResult {
            container,
            exit_code: if timed_out { None } else { inspected.exit_code },
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
            output_cut: cut,
            timed_out,
            duration_ms: started.elapsed().as_millis() as u64,
        })
    }
}
