//! `disk_usage`: mounted filesystems with their size, use and inodes, as `df` shows them (the
//! measuring is `domains/shared/filesystems.rs`, which `/metrics` uses too).

use crate::domains::shared::filesystems::{DiskUsage, DiskUsageArguments, DiskUsageCollector};
use crate::render;
use crate::tool::{Collect, Declaration, Domain, Render, ToolContext, ToolError};

pub(crate) static DISK_USAGE: Declaration = Declaration::read(
    Domain::Storage,
    "disk_usage",
    "Disk usage",
    "Mounted filesystems, as `df` lists them: device, type, mount point, size, used \
     and available bytes, use %, inodes, read-only flag. Pseudo filesystems \
     (proc, sysfs, cgroup...) and bind mounts are left out unless include_pseudo \
     is true; `path` answers for the one filesystem holding that path.",
)
.paged("pass `path` to ask about one filesystem");

impl Render for DiskUsage {
    fn render_text(&self) -> String {
        let mut lines: Vec<String> = self
            .filesystems
            .iter()
            .map(|fs| {
                let mut line = format!(
                    "{} {} {} {} used of {} ({}%), {} available",
                    render::text(&fs.mount_point),
                    render::text(&fs.device),
                    render::text(&fs.fs_type),
                    render::bytes(fs.used_bytes),
                    render::bytes(fs.size_bytes),
                    fs.used_percent,
                    render::bytes(fs.available_bytes),
                );
                if let Some(inodes) = &fs.inodes {
                    line.push_str(&format!(", inodes {}%", inodes.used_percent));
                }
                if fs.read_only {
                    line.push_str(", read-only");
                }
                line
            })
            .collect();
        if self.hidden > 0 {
            lines.push(format!(
                "({} hidden; include_pseudo=true shows them)",
                render::count(
                    self.hidden,
                    "pseudo, empty or duplicate mount",
                    "pseudo, empty or duplicate mounts"
                )
            ));
        }
        lines.join("\n")
    }
}

impl Collect for DiskUsageCollector {
    type Arguments = DiskUsageArguments;
    type Output = DiskUsage;

    const DECLARATION: &'static Declaration = &DISK_USAGE;

    fn collect(
        &self,
        arguments: DiskUsageArguments,
        _: &ToolContext,
    ) -> Result<DiskUsage, ToolError> {
        self.usage(&arguments)
    }
}
