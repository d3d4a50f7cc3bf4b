//! `gpu_processes`: what is on the GPUs — for each NVIDIA GPU, the processes NVML lists as
//! using it (compute and graphics), with the GPU memory each holds there, as the process table
//! at the bottom of `nvidia-smi` shows it; each process named from the host's `/proc`.

use std::path::Path;
use std::sync::Arc;

use nvml_wrapper::enums::device::UsedGpuMemory;
use schemars::JsonSchema;
use serde::Serialize;

use super::gpu::normalize_address;
use crate::config::HostConfig;
use crate::domains::shared::nvidia::Nvidia;
use crate::domains::shared::users::{UserNames, name_of};
use crate::render;
use crate::tool::{Collect, Declaration, Domain, NoArguments, Render, ToolContext, ToolError};

pub(crate) static GPU_PROCESSES: Declaration = Declaration::read(
    Domain::Hardware,
    "gpu_processes",
    "Processes on the GPUs",
    "What is using each NVIDIA GPU, like nvidia-smi's process table: per GPU (PCI address, \
     UUID, model, memory used of total), each process with its pid, name, user, kind \
     (compute or graphics) and the GPU memory it holds there (bytes). Needs NVIDIA's driver \
     (NVML); elsewhere the list is empty and a note says what is missing.",
);

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct GpuProcessList {
    pub gpus: Vec<GpuUse>,
    /// Why there is nothing to list, where NVML is missing or does not answer.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct GpuUse {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pci_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_used_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_total_bytes: Option<u64>,
    pub processes: Vec<GpuProcess>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct GpuProcess {
    pub pid: u32,
    /// `/proc/PID/comm`; absent when the process is in another PID namespace or gone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// compute (CUDA and the like) or graphics.
    pub kind: String,
    /// GPU memory it holds on this GPU; absent where the driver does not say (MIG without
    /// the rights, or Windows' WDDM).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu_memory_bytes: Option<u64>,
    /// The MIG GPU instance and compute instance it runs in, on a GPU in MIG mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu_instance_id: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compute_instance_id: Option<u32>,
}

impl Render for GpuProcessList {
    fn render_text(&self) -> String {
        let mut lines = Vec::new();
        for gpu in &self.gpus {
            lines.push(format!(
                "gpu {} {}: {} process(es)",
                render::text(gpu.pci_address.as_deref().unwrap_or("?")),
                render::text(gpu.model.as_deref().unwrap_or("")),
                gpu.processes.len()
            ));
            for process in &gpu.processes {
                lines.push(format!(
                    "  {} {} {} {} {}",
                    process.pid,
                    render::text(process.name.as_deref().unwrap_or("?")),
                    render::text(process.user.as_deref().unwrap_or("?")),
                    process.kind,
                    process
                        .gpu_memory_bytes
                        .map(render::bytes)
                        .unwrap_or_else(|| "-".into())
                ));
            }
        }
        if lines.is_empty() {
            lines.push("no NVIDIA GPU".into());
        }
        lines.extend(
            self.notes
                .iter()
                .map(|note| format!("({})", render::sentence(note))),
        );
        lines.join("\n")
    }
}

/// Answers `gpu_processes` for the host `[host]` locates.
pub(crate) struct GpuProcesses {
    host: HostConfig,
    nvidia: Arc<Nvidia>,
    users: Arc<UserNames>,
}

impl GpuProcesses {
    pub(crate) fn new(host: HostConfig, nvidia: Arc<Nvidia>, users: Arc<UserNames>) -> Self {
        Self {
            host,
            nvidia,
            users,
        }
    }
}

impl Collect for GpuProcesses {
    type Arguments = NoArguments;
    type Output = GpuProcessList;

    const DECLARATION: &'static Declaration = &GPU_PROCESSES;

    fn collect(&self, _: NoArguments, _: &ToolContext) -> Result<GpuProcessList, ToolError> {
        let nothing = |why: String| GpuProcessList {
            gpus: Vec::new(),
            notes: vec![why],
        };
        let loaded = match self.nvidia.get() {
            Ok(loaded) => loaded,
            Err(why) => return Ok(nothing(why)),
        };
        let nvml = &loaded.nvml;
        let count = match nvml.device_count() {
            Ok(count) => count,
            Err(error) => {
                let why = format!(
                    "NVIDIA's NVML ({}) does not answer: {error}",
                    loaded.library
                );
                self.nvidia.forget(why.clone());
                return Ok(nothing(why));
            }
        };
        let table = self.users.table();
        let mut gpus = Vec::new();
        for index in 0..count {
            let Ok(device) = nvml.device_by_index(index) else {
                continue;
            };
            let memory = device.memory_info().ok();
            let kinds = [
                ("compute", device.running_compute_processes()),
                ("graphics", device.running_graphics_processes()),
            ];
            let mut processes = Vec::new();
            for (kind, listed) in kinds {
                for process in listed.unwrap_or_default() {
                    let (name, uid) = identify(&self.host.proc, process.pid);
                    processes.push(GpuProcess {
                        pid: process.pid,
                        name,
                        user: uid.map(|uid| name_of(&table, uid)),
                        kind: kind.into(),
                        gpu_memory_bytes: match process.used_gpu_memory {
                            UsedGpuMemory::Used(bytes) => Some(bytes),
                            UsedGpuMemory::Unavailable => None,
                        },
                        gpu_instance_id: process.gpu_instance_id,
                        compute_instance_id: process.compute_instance_id,
                    });
                }
            }
            processes.sort_by_key(|process| std::cmp::Reverse(process.gpu_memory_bytes));
            gpus.push(GpuUse {
                pci_address: device
                    .pci_info()
                    .ok()
                    .and_then(|pci| normalize_address(&pci.bus_id)),
                uuid: device.uuid().ok(),
                model: device.name().ok(),
                memory_used_bytes: memory.as_ref().map(|m| m.used),
                memory_total_bytes: memory.as_ref().map(|m| m.total),
                processes,
            });
        }
        Ok(GpuProcessList {
            gpus,
            notes: Vec::new(),
        })
    }
}

/// A process's name and owner from the host's `/proc` (NVML gives pids only).
fn identify(proc: &Path, pid: u32) -> (Option<String>, Option<u32>) {
    use std::os::unix::fs::MetadataExt;
    let directory = proc.join(pid.to_string());
    let name = std::fs::read_to_string(directory.join("comm"))
        .ok()
        .map(|text| text.trim_end().to_string());
    let uid = std::fs::metadata(&directory).ok().map(|m| m.uid());
    (name, uid)
}
