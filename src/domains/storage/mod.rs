//! The `storage` domain: filesystems and how full they are, block devices and how busy.

pub mod io;
pub mod usage;

use std::sync::Arc;

use crate::config::Config;
use crate::tool::Registry;

pub fn register(registry: &mut Registry, config: &Config) {
    registry.register(usage::DiskUsageTool {
        collector: Arc::new(usage::DiskUsageCollector::new(config.host.clone())),
    });
    registry.register(io::DiskIoTool {
        monitor: io::DiskIoMonitor::new(&config.host, &config.sampler),
    });
}
