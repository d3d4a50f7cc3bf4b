//! The `system` domain: what the host is and how it is doing, at a glance.

pub mod overview;

use std::sync::Arc;

use crate::config::Config;
use crate::tool::{Declaration, Domain, NoArguments, Registry, Tier, Tool, ToolContext, ToolError};

use overview::{OverviewCollector, SystemOverview};

pub fn register(registry: &mut Registry, config: &Config) {
    registry.register(SystemOverviewTool {
        collector: Arc::new(OverviewCollector::new(config.host.clone())),
    });
}

pub static SYSTEM_OVERVIEW: Declaration = Declaration {
    name: "system_overview",
    title: "System overview",
    description: "One-call summary of the host: hostname, OS and kernel, architecture, uptime and \
                  boot time, CPU model and core counts, load averages, memory and swap, the root \
                  filesystem, and the number of processes. Start here when asked how a machine \
                  is doing.",
    domain: Domain::System,
    tier: Tier::Read,
    destructive: false,
    idempotent: true,
    open_world: false,
    paging_hint: None,
};

pub struct SystemOverviewTool {
    collector: Arc<OverviewCollector>,
}

impl Tool for SystemOverviewTool {
    type Arguments = NoArguments;
    type Output = SystemOverview;

    fn declaration(&self) -> &'static Declaration {
        &SYSTEM_OVERVIEW
    }

    async fn run(
        &self,
        _arguments: NoArguments,
        _context: ToolContext,
    ) -> Result<SystemOverview, ToolError> {
        // statvfs on a hung network root could block; keep it off the async workers.
        let collector = Arc::clone(&self.collector);
        tokio::task::spawn_blocking(move || collector.collect())
            .await
            .map_err(|error| ToolError::failed(format!("collection did not finish: {error}")))?
    }
}
