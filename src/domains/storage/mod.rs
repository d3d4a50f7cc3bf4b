//! The `storage` domain: filesystems and how full they are, block devices and how busy.

pub(crate) mod disk_io;
pub(crate) mod disk_usage;

use crate::config::Config;
use crate::tool::Registry;

pub(crate) fn register(registry: &mut Registry, config: &Config) {
    registry.register_collector(
        crate::domains::shared::filesystems::DiskUsageCollector::new(config.host.clone()),
    );
    registry.register_collector(disk_io::DiskIoMonitor::new(&config.host, &config.sampler));
}
