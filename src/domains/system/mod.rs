//! The `system` domain: what the host is and how it is doing — the overview, CPU and memory.

pub mod cpu;
pub mod memory;
pub mod overview;

use std::sync::Arc;

use crate::config::Config;
use crate::tool::Registry;

pub fn register(registry: &mut Registry, config: &Config) {
    registry.register(overview::SystemOverviewTool {
        collector: Arc::new(overview::OverviewCollector::new(config.host.clone())),
    });
    registry.register(cpu::CpuUsageTool {
        monitor: cpu::CpuMonitor::new(&config.host, &config.sampler),
    });
    registry.register(memory::MemoryUsageTool {
        monitor: memory::MemoryMonitor::new(config.host.proc.clone()),
    });
}
