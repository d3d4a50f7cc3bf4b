//! `docker_container_start`, `docker_container_stop`, `docker_container_restart`,
//! `docker_container_pause` and `docker_container_unpause`: one tool per action, tier `operate`
//! (each is reversible). The answer says the state before and after, read from the engine.
//! Start and restart first check the container against the create policy as the engine would
//! run it now (`admission.rs`): bind sources are resolved when a container starts, so a check
//! made only at create could be undone by a symlink swapped in since.

use std::sync::Arc;

use bollard::Docker;
use bollard::errors::Error as DockerError;
use bollard::query_parameters::{
    InspectContainerOptions, RestartContainerOptions, StartContainerOptions, StopContainerOptions,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::admission;
use super::engine::Engine;
use super::names::{container_reference, short_id};
use crate::config::DockerPolicy;
use crate::tool::{Declaration, Domain, Render, Tool, ToolContext, ToolError};

const DEFAULT_STOP_SECONDS: u32 = 10;
const MAX_STOP_SECONDS: u32 = 300;

pub(crate) static DOCKER_CONTAINER_START: Declaration = Declaration::operate(
    Domain::Docker,
    "docker_container_start",
    "Start a Docker container",
    "Starts a created or stopped container (`docker start`). Starting a running container \
     changes nothing. A container the create policy (docker.policy) would refuse as it is now \
     (its settings, bind sources and volumes as the host resolves them) is not started; the \
     refusal names the rule. Answers with the state before and after.",
)
.idempotent();
pub(crate) static DOCKER_CONTAINER_STOP: Declaration = Declaration::operate(
    Domain::Docker,
    "docker_container_stop",
    "Stop a Docker container",
    "Stops a running container (`docker stop`): SIGTERM (or the image's stop signal), then \
     SIGKILL after timeout_seconds (default 10, at most 300). Answers with the state before and \
     after and the exit code.",
)
.idempotent();
pub(crate) static DOCKER_CONTAINER_RESTART: Declaration = Declaration::operate(
    Domain::Docker,
    "docker_container_restart",
    "Restart a Docker container",
    "Restarts a container (`docker restart`): stops it as docker_container_stop does \
     (timeout_seconds, default 10) and starts it again, after the create policy check of \
     docker_container_start (a refused container is left as it is). Answers with the state \
     before and after.",
)
.idempotent();
pub(crate) static DOCKER_CONTAINER_PAUSE: Declaration = Declaration::operate(
    Domain::Docker,
    "docker_container_pause",
    "Pause a Docker container",
    "Freezes every process of a running container (`docker pause`, the cgroup freezer); \
     docker_container_unpause resumes them.",
)
.idempotent();
pub(crate) static DOCKER_CONTAINER_UNPAUSE: Declaration = Declaration::operate(
    Domain::Docker,
    "docker_container_unpause",
    "Unpause a Docker container",
    "Resumes a paused container's processes (`docker unpause`).",
)
.idempotent();

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    Start,
    Stop,
    Restart,
    Pause,
    Unpause,
}

impl Action {
    pub(crate) const ALL: [Action; 5] = [
        Action::Start,
        Action::Stop,
        Action::Restart,
        Action::Pause,
        Action::Unpause,
    ];

    fn declaration(self) -> &'static Declaration {
        match self {
            Action::Start => &DOCKER_CONTAINER_START,
            Action::Stop => &DOCKER_CONTAINER_STOP,
            Action::Restart => &DOCKER_CONTAINER_RESTART,
            Action::Pause => &DOCKER_CONTAINER_PAUSE,
            Action::Unpause => &DOCKER_CONTAINER_UNPAUSE,
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Action::Start => "start",
            Action::Stop => "stop",
            Action::Restart => "restart",
            Action::Pause => "pause",
            Action::Unpause => "unpause",
        }
    }

    fn takes_timeout(self) -> bool {
        matches!(self, Action::Stop | Action::Restart)
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LifecycleArguments {
    /// Id, unique id prefix, or name.
    pub container: String,
    /// For stop and restart: seconds between the stop signal and SIGKILL (default 10, at
    /// most 300).
    pub timeout_seconds: Option<u32>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct ContainerChange {
    pub id: String,
    pub name: String,
    pub action: &'static str,
    pub state_before: String,
    pub state_after: String,
    /// Whether the state changed (starting a running container does not).
    pub changed: bool,
    /// After a stop: the main process's exit code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
}

impl Render for ContainerChange {
    fn render_text(&self) -> String {
        let mut text = format!(
            "{} {} {}: {} -> {}",
            self.action,
            self.id,
            crate::render::text(&self.name),
            crate::render::text(&self.state_before),
            crate::render::text(&self.state_after)
        );
        if !self.changed {
            text.push_str(" (no change)");
        }
        if let Some(code) = self.exit_code {
            text.push_str(&format!(", exit code {code}"));
        }
        text
    }
}

pub(crate) struct ContainerLifecycleTool {
    pub engine: Arc<Engine>,
    pub action: Action,
    /// Checked before a start or restart.
    pub policy: DockerPolicy,
}

/// The container's id, name, state and exit code.
async fn state_of(
    docker: &Docker,
    container: &str,
) -> Result<(String, String, String, i64), DockerError> {
    let inspected = docker
        .inspect_container(container, None::<InspectContainerOptions>)
        .await?;
    let state = inspected.state.unwrap_or_default();
    Ok((
        inspected.id.unwrap_or_default(),
        inspected
            .name
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_string(),
        state
            .status
            .map(|status| status.to_string())
            .unwrap_or_default(),
        state.exit_code.unwrap_or(0),
    ))
}

impl Tool for ContainerLifecycleTool {
    type Arguments = LifecycleArguments;
    type Output = ContainerChange;

    fn declaration(&self) -> &'static Declaration {
        self.action.declaration()
    }

    async fn run(
        &self,
        arguments: LifecycleArguments,
        _: ToolContext,
    ) -> Result<ContainerChange, ToolError> {
        let action = self.action;
        let container = container_reference(&arguments.container)?;
        let timeout = match (arguments.timeout_seconds, action.takes_timeout()) {
            (Some(_), false) => {
                return Err(ToolError::invalid_arguments(format!(
                    "timeout_seconds applies to stop and restart, not {}",
                    action.verb()
                )));
            }
            (Some(seconds), true) if seconds > MAX_STOP_SECONDS => {
                return Err(ToolError::invalid_arguments(format!(
                    "timeout_seconds {seconds} is too long: at most {MAX_STOP_SECONDS}"
                )));
            }
            (seconds, _) => seconds.unwrap_or(DEFAULT_STOP_SECONDS) as i32,
        };
        // Resolve first, so the action addresses exactly the container that was found (a name
        // given to another container in between is not acted on).
        let (id, name, before, _) = self
            .engine
            .run(|docker| async move { state_of(&docker, &container).await })
            .await?;
        if matches!(action, Action::Start | Action::Restart) {
            admission::check_start(&self.engine, &self.policy, &id)
                .await
                .map_err(|refusal| {
                    ToolError::new(
                        refusal.kind,
                        format!("{name} was not {}ed: {}", action.verb(), refusal.message),
                    )
                })?;
        }
        let target = id.clone();
        let (_, _, after, exit_code) = self
            .engine
            .run(|docker| async move {
                match action {
                    Action::Start => {
                        docker
                            .start_container(&target, None::<StartContainerOptions>)
                            .await?
                    }
                    Action::Stop => {
                        let options = StopContainerOptions {
                            t: Some(timeout),
                            signal: None,
                        };
                        docker.stop_container(&target, Some(options)).await?
                    }
                    Action::Restart => {
                        let options = RestartContainerOptions {
                            t: Some(timeout),
                            signal: None,
                        };
                        docker.restart_container(&target, Some(options)).await?
                    }
                    Action::Pause => docker.pause_container(&target).await?,
                    Action::Unpause => docker.unpause_container(&target).await?,
                }
                state_of(&docker, &target).await
            })
            .await?;
        Ok(ContainerChange {
            id: short_id(&id),
            name,
            action: action.verb(),
            changed: before != after || action == Action::Restart,
            exit_code: (action == Action::Stop).then_some(exit_code),
            state_before: before,
            state_after: after,
        })
    }
}
