//! `docker_events`: what the engine reported in a window of time.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bollard::query_parameters::EventsOptions;
use futures::StreamExt;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::engine::Engine;
use super::names::{short_id, unix_time_text};
use crate::domains::shared::time::parse_time;
use crate::tool::{Declaration, Domain, Render, Tool, ToolContext, ToolError};

pub(crate) static DOCKER_EVENTS: Declaration = Declaration::read(
    Domain::Docker,
    "docker_events",
    "Recent Docker events",
    "What the engine reported in a window of time (`docker events --since \
     --until`): container start/die/oom/kill, image pull/delete, network and volume \
     changes. since defaults to 10 minutes ago, until to now (RFC 3339 times or \
     durations ago: 30s, 10m, 2h, 1d); filter by type, action and container; at \
     most `limit` events (default 100, at most 1000), the newest kept.",
)
.paged("narrow the window with since/until, or filter by type or container");

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EventsArguments {
    /// Start of the window (default 10m ago).
    pub since: Option<String>,
    /// End of the window (default now).
    pub until: Option<String>,
    /// container, image, network, volume, daemon, plugin...
    pub r#type: Option<Vec<String>>,
    /// start, die, stop, kill, oom, pull, delete, create, destroy, connect...
    pub action: Option<Vec<String>>,
    /// Container ids or names.
    pub container: Option<Vec<String>>,
    /// Default 100, at most 1000; the newest are kept.
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct EventList {
    pub since: String,
    pub until: String,
    pub events: Vec<EventRow>,
    /// Older events left out by `limit`.
    #[serde(skip_serializing_if = "crate::render::is_zero")]
    pub dropped: usize,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct EventRow {
    pub time: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub action: String,
    /// The object's short id (or name for volumes and networks).
    pub id: String,
    /// Its name when it has one.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// A few attributes that matter: image, exitCode, signal, container...
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
}

impl Render for EventList {
    fn render_text(&self) -> String {
        let mut lines: Vec<String> = self
            .events
            .iter()
            .map(|event| {
                let mut line = format!(
                    "{} {} {} {}",
                    event.time,
                    crate::render::text(&event.kind),
                    crate::render::text(&event.action),
                    crate::render::text(if event.name.is_empty() {
                        &event.id
                    } else {
                        &event.name
                    })
                );
                for (key, value) in &event.attributes {
                    line.push_str(&format!(
                        " {}={}",
                        crate::render::text(key),
                        crate::render::text(value)
                    ));
                }
                line
            })
            .collect();
        if lines.is_empty() {
            lines.push(format!("no events from {} to {}", self.since, self.until));
        }
        if self.dropped > 0 {
            lines.insert(
                0,
                format!(
                    "({} left out: limit)",
                    crate::render::count(self.dropped, "older event", "older events")
                ),
            );
        }
        lines.join("\n")
    }
}

const KEPT_ATTRIBUTES: [&str; 6] = ["image", "exitCode", "signal", "container", "type", "driver"];

pub(crate) struct EventsTool {
    pub engine: Arc<Engine>,
}

impl Tool for EventsTool {
    type Arguments = EventsArguments;
    type Output = EventList;

    fn declaration(&self) -> &'static Declaration {
        &DOCKER_EVENTS
    }

    async fn run(
        &self,
        arguments: EventsArguments,
        context: ToolContext,
    ) -> Result<EventList, ToolError> {
        let clock = chrono::Utc::now();
        let now = clock.timestamp();
        let since = parse_time(arguments.since.as_deref().unwrap_or("10m"), now)?;
        let until = match arguments.until.as_deref() {
            Some(text) => parse_time(text, now)?,
            None => now,
        };
        // The engine compares event times to the nanosecond: "now" in whole seconds would
        // leave out what happened in the current second.
        let until_text = if arguments.until.is_none() {
            format!("{now}.{:09}", clock.timestamp_subsec_nanos())
        } else {
            until.to_string()
        };
        if until < since {
            return Err(ToolError::invalid_arguments(
                "until is before since: the window is empty",
            ));
        }
        if until > now {
            return Err(ToolError::invalid_arguments(
                "until is in the future: this tool reads past events only",
            ));
        }
        let limit = arguments.limit.unwrap_or(100);
        if !(1..=1000).contains(&limit) {
            return Err(ToolError::invalid_arguments(format!(
                "limit {limit} is out of range: give 1 to 1000"
            )));
        }
        let mut filters: HashMap<String, Vec<String>> = HashMap::new();
        for (key, values) in [
            ("type", arguments.r#type),
            ("event", arguments.action),
            ("container", arguments.container),
        ] {
            if let Some(values) = values.filter(|values| !values.is_empty()) {
                filters.insert(key.into(), values);
            }
        }
        let options = EventsOptions {
            since: Some(since.to_string()),
            until: Some(until_text),
            filters: (!filters.is_empty()).then_some(filters),
        };
        let docker = self.engine.client().await?;
        // With `until` in the past or now, the engine sends the window and ends the stream.
        let mut stream = docker.events(Some(options));
        let mut events = Vec::new();
        while let Some(event) = stream.next().await {
            if context.cancel.is_cancelled() {
                break;
            }
            let event = event.map_err(|error| self.engine.explain(error))?;
            let actor = event.actor.unwrap_or_default();
            let mut attributes = actor.attributes.unwrap_or_default();
            let name = attributes.remove("name").unwrap_or_default();
            let id = actor.id.unwrap_or_default();
            events.push(EventRow {
                time: unix_time_text(event.time.unwrap_or(0)),
                kind: event.typ.map(|typ| typ.to_string()).unwrap_or_default(),
                action: event.action.unwrap_or_default(),
                id: if id.len() == 64 { short_id(&id) } else { id },
                name,
                attributes: attributes
                    .into_iter()
                    .filter(|(key, _)| KEPT_ATTRIBUTES.contains(&key.as_str()))
                    .collect(),
            });
        }
        let dropped = events.len().saturating_sub(limit);
        let events = events.split_off(dropped);
        Ok(EventList {
            since: unix_time_text(since),
            until: unix_time_text(until),
            events,
            dropped,
        })
    }
}
