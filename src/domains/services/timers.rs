//! `timer_list`: systemd's timers with their next and last elapse and the unit each triggers
//! (the cron replacement most admins forget to look at).

use std::sync::Arc;

use futures::StreamExt as _;
use schemars::JsonSchema;
use serde::Serialize;

use super::bus::{Systemd, rfc3339_micros};
use crate::render;
use crate::tool::{Declaration, Domain, NoArguments, Render, Tool, ToolContext, ToolError};

pub(crate) static TIMER_LIST: Declaration = Declaration::read(
    Domain::Services,
    "timer_list",
    "systemd timers",
    "systemd's timers, like `systemctl list-timers --all`: each timer, the unit it \
     activates, when it next elapses and when it last did, and whether it is active. Sorted \
     by next elapse, soonest first.",
);

const TIMER_INTERFACE: &str = "org.freedesktop.systemd1.Timer";

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct TimerList {
    pub timers: Vec<TimerRow>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct TimerRow {
    pub timer: String,
    /// The unit it activates.
    pub activates: String,
    /// active, inactive, failed, …
    pub active_state: String,
    /// When it next elapses (RFC 3339), if scheduled on the wall clock.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// When it last elapsed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last: Option<String>,
}

impl Render for TimerList {
    fn render_text(&self) -> String {
        if self.timers.is_empty() {
            return "no timers".into();
        }
        self.timers
            .iter()
            .map(|timer| {
                format!(
                    "{} → {} ({}); next {}; last {}",
                    render::text(&timer.timer),
                    render::text(&timer.activates),
                    timer.active_state,
                    timer.next.as_deref().unwrap_or("-"),
                    timer.last.as_deref().unwrap_or("-")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// A time on `CLOCK_MONOTONIC` (µs) as RFC 3339 on the wall clock.
fn monotonic_to_wall(micros: u64) -> Option<String> {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let now_micros =
        u64::try_from(now.tv_sec).ok()? * 1_000_000 + u64::try_from(now.tv_nsec).ok()? / 1000;
    let wall_now = u64::try_from(chrono::Utc::now().timestamp_micros()).ok()?;
    rfc3339_micros(wall_now.checked_sub(now_micros)? + micros)
}

pub(crate) struct TimerListTool {
    pub systemd: Arc<Systemd>,
}

impl Tool for TimerListTool {
    type Arguments = NoArguments;
    type Output = TimerList;

    fn declaration(&self) -> &'static Declaration {
        &TIMER_LIST
    }

    async fn run(&self, _: NoArguments, _: ToolContext) -> Result<TimerList, ToolError> {
        let manager = self.systemd.manager().await?;
        let listed = manager
            .list_units_by_patterns(Vec::new(), vec!["*.timer".into()])
            .await
            .map_err(|error| self.systemd.explain(error))?;
        let systemd = &self.systemd;
        let mut timers: Vec<TimerRow> = futures::stream::iter(listed)
            .map(|unit| async move {
                let properties = systemd.properties(&unit.6, TIMER_INTERFACE).await.ok();
                let time = |name: &str| properties.as_ref().and_then(|p| p.time(name));
                // A timer on the monotonic clock (OnBootSec=, OnUnitActiveSec=) says when in
                // microseconds since boot: the same moment on the wall clock.
                let monotonic = properties
                    .as_ref()
                    .and_then(|p| p.number("NextElapseUSecMonotonic"))
                    .filter(|micros| *micros > 0)
                    .and_then(monotonic_to_wall);
                let next = match (time("NextElapseUSecRealtime"), monotonic) {
                    (Some(wall), Some(boot)) => Some(wall.min(boot)),
                    (wall, boot) => wall.or(boot),
                };
                TimerRow {
                    activates: properties
                        .as_ref()
                        .map(|p| p.text("Unit"))
                        .unwrap_or_default(),
                    next,
                    last: time("LastTriggerUSec"),
                    timer: unit.0,
                    active_state: unit.3,
                }
            })
            .buffered(16)
            .collect()
            .await;
        // Soonest first; unscheduled timers last.
        timers.sort_by(|a, b| {
            (a.next.is_none(), &a.next, &a.timer).cmp(&(b.next.is_none(), &b.next, &b.timer))
        });
        Ok(TimerList { timers })
    }
}
