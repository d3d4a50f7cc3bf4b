//! The `system` domain: what the host is and how it is doing — the overview, CPU and memory.

pub(crate) mod cpu;
pub(crate) mod memory;
pub(crate) mod overview;

use crate::config::Config;
use crate::tool::Registry;

pub(crate) fn register(registry: &mut Registry, config: &Config) {
    registry.register_collector(overview::OverviewCollector::new(config.host.clone()));
    registry.register_collector(cpu::CpuMonitor::new(&config.host, &config.sampler));
    registry.register_collector(memory::MemoryMonitor::new(config.host.proc.clone()));
}
