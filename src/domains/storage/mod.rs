//! The `storage` domain: filesystems and how full they are, block devices and how busy.

pub mod disk_io;
pub mod disk_usage;

use crate::config::Config;
use crate::tool::Registry;

pub fn register(registry: &mut Registry, config: &Config) {
    registry.register_collector(disk_usage::DiskUsageCollector::new(config.host.clone()));
    registry.register_collector(disk_io::DiskIoMonitor::new(&config.host, &config.sampler));
}
