//! `memory_usage`: RAM, swap and memory pressure, from `/proc/meminfo` and
//! `/proc/pressure/memory`. Two small in-memory reads per call: no sampler needed.

use std::path::PathBuf;

use procfs::Meminfo;
use schemars::JsonSchema;
use serde::Serialize;

use crate::domains::shared::kernel::{self, tenths};
use crate::domains::shared::pressure::{self, Pressure};
use crate::render;
use crate::tool::{Collect, Declaration, Domain, NoArguments, Render, ToolContext, ToolError};

pub(crate) static MEMORY_USAGE: Declaration = Declaration::read(
    Domain::System,
    "memory_usage",
    "Memory usage",
    "RAM and swap now: total, used, available, free, buffers, cache, shared and \
     dirty bytes, swap use, and memory pressure (share of time tasks stalled \
     waiting for memory) where the kernel reports it.",
);

impl Collect for MemoryMonitor {
    type Arguments = NoArguments;
    type Output = MemoryUsage;

    const DECLARATION: &'static Declaration = &MEMORY_USAGE;
    // Two small in-memory procfs reads.
    const INLINE: bool = true;

    fn collect(&self, _: NoArguments, _: &ToolContext) -> Result<MemoryUsage, ToolError> {
        self.usage()
    }
}

/// The answer of `memory_usage`. Sizes in bytes, counted as `free(1)` counts them.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct MemoryUsage {
    pub total_bytes: u64,
    /// `total - available`: what new work cannot have without swapping.
    pub used_bytes: u64,
    pub used_percent: f64,
    /// The kernel's estimate of what can be given to new work without swapping
    /// (`MemAvailable`).
    pub available_bytes: u64,
    /// Not used for anything, not even cache.
    pub free_bytes: u64,
    /// Block-device buffers.
    pub buffers_bytes: u64,
    /// Page cache plus reclaimable slab, as `free`'s `cache` column.
    pub cached_bytes: u64,
    /// tmpfs and shared memory (`Shmem`), part of `cached_bytes` yet not freeable.
    pub shared_bytes: u64,
    /// Modified pages not yet written back.
    pub dirty_bytes: u64,
    pub swap: SwapUsage,
    /// Share of time tasks stalled waiting for memory, when the kernel reports it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pressure: Option<Pressure>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct SwapUsage {
    pub total_bytes: u64,
    pub used_bytes: u64,
    pub free_bytes: u64,
    /// Pages both in swap and in RAM.
    pub cached_bytes: u64,
}

impl Render for MemoryUsage {
    fn render_text(&self) -> String {
        let swap = &self.swap;
        let mut text = format!(
            "memory {} used of {} ({}%), {} available, {} free, {} buffers, {} cache, {} shared; \
             swap {} used of {}",
            render::bytes(self.used_bytes),
            render::bytes(self.total_bytes),
            self.used_percent,
            render::bytes(self.available_bytes),
            render::bytes(self.free_bytes),
            render::bytes(self.buffers_bytes),
            render::bytes(self.cached_bytes),
            render::bytes(self.shared_bytes),
            render::bytes(swap.used_bytes),
            render::bytes(swap.total_bytes),
        );
        if let Some(pressure) = &self.pressure {
            text.push_str(&format!("; pressure {}", pressure.render()));
        }
        text
    }
}

/// Answers `memory_usage` for the host whose `/proc` is at `proc`.
pub(crate) struct MemoryMonitor {
    proc: PathBuf,
}

impl MemoryMonitor {
    pub(crate) fn new(proc: PathBuf) -> Self {
        Self { proc }
    }

    pub(crate) fn usage(&self) -> Result<MemoryUsage, ToolError> {
        let meminfo: Meminfo = kernel::read_proc(&self.proc, "meminfo")?;
        Ok(usage_from(&meminfo, pressure::memory(&self.proc)))
    }
}

fn usage_from(meminfo: &Meminfo, pressure: Option<Pressure>) -> MemoryUsage {
    let total = meminfo.mem_total;
    // Kernels before 3.14 have no MemAvailable; free + buffers + cache is the old estimate.
    let available = meminfo
        .mem_available
        .unwrap_or(meminfo.mem_free + meminfo.buffers + meminfo.cached)
        .min(total);
    let used = total - available;
    MemoryUsage {
        total_bytes: total,
        used_bytes: used,
        used_percent: if total == 0 {
            0.0
        } else {
            tenths(used as f64 * 100.0 / total as f64)
        },
        available_bytes: available,
        free_bytes: meminfo.mem_free,
        buffers_bytes: meminfo.buffers,
        cached_bytes: meminfo.cached + meminfo.s_reclaimable.unwrap_or(0),
        shared_bytes: meminfo.shmem.unwrap_or(0),
        dirty_bytes: meminfo.dirty,
        swap: SwapUsage {
            total_bytes: meminfo.swap_total,
            used_bytes: meminfo.swap_total.saturating_sub(meminfo.swap_free),
            free_bytes: meminfo.swap_free,
            cached_bytes: meminfo.swap_cached,
        },
        pressure,
    }
}
