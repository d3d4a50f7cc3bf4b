//! NVIDIA's management library (NVML, `libnvidia-ml.so.1`, installed with the driver), loaded at
//! run time by `nvml-wrapper`: every build carries it, and a host without the library gets one
//! note and nothing fails. `hardware_info` and `gpu_processes` read GPUs through it, the process
//! tools the GPU memory of each process.
//!
//! The library is looked for where drivers put it: the dynamic loader's own search path, then
//! the usual directories (NVIDIA's container toolkit mounts it at `/usr/local/nvidia/lib64`).
//! A failed look is remembered for a minute, so a host without NVIDIA pays for it once a
//! minute at most.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nvml_wrapper::Nvml;
use nvml_wrapper::enums::device::UsedGpuMemory;

/// Where the library is looked for, in order: a bare name asks the dynamic loader.
const CANDIDATES: &[&str] = &[
    "libnvidia-ml.so.1",
    "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1",
    "/usr/lib/aarch64-linux-gnu/libnvidia-ml.so.1",
    "/usr/lib64/libnvidia-ml.so.1",
    "/usr/lib/libnvidia-ml.so.1",
    "/usr/local/nvidia/lib64/libnvidia-ml.so.1",
];

/// How long a failed look is remembered before the next.
const RETRY_AFTER: Duration = Duration::from_secs(60);

/// NVML, once loaded, and where it was found.
#[derive(Clone)]
pub(crate) struct Loaded {
    pub nvml: Arc<Nvml>,
    /// The library as found: a path, or `libnvidia-ml.so.1 (dynamic loader)`.
    pub library: String,
}

enum State {
    Untried,
    Loaded(Loaded),
    Missing { why: String, at: Instant },
}

/// The host's NVML, shared by the domains that read GPUs.
pub(crate) struct Nvidia {
    state: Mutex<State>,
}

impl Default for Nvidia {
    fn default() -> Self {
        Self {
            state: Mutex::new(State::Untried),
        }
    }
}

impl Nvidia {
    /// NVML, loading it the first time (and again a minute after a failed look). Errors: why
    /// it is not there, for a note (`libnvidia-ml.so.1 not found (looked in …)`, or NVML's own
    /// error when the library loads but the driver does not answer).
    pub(crate) fn get(&self) -> Result<Loaded, String> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match &*state {
            State::Loaded(loaded) => return Ok(loaded.clone()),
            State::Missing { why, at } if at.elapsed() < RETRY_AFTER => return Err(why.clone()),
            _ => {}
        }
        match load() {
            Ok(loaded) => {
                *state = State::Loaded(loaded.clone());
                Ok(loaded)
            }
            Err(why) => {
                *state = State::Missing {
                    why: why.clone(),
                    at: Instant::now(),
                };
                Err(why)
            }
        }
    }

    /// GPU memory in use by each process (bytes, summed over GPUs), from every GPU's compute
    /// and graphics process lists; empty where NVML is not there.
    pub(crate) fn memory_by_pid(&self) -> HashMap<u32, u64> {
        let mut by_pid = HashMap::new();
        let Ok(loaded) = self.get() else {
            return by_pid;
        };
        let count = loaded.nvml.device_count().unwrap_or(0);
        for index in 0..count {
            let Ok(device) = loaded.nvml.device_by_index(index) else {
                continue;
            };
            let compute = device.running_compute_processes().unwrap_or_default();
            let graphics = device.running_graphics_processes().unwrap_or_default();
            for process in compute.into_iter().chain(graphics) {
                let bytes = match process.used_gpu_memory {
                    UsedGpuMemory::Used(bytes) => bytes,
                    UsedGpuMemory::Unavailable => 0,
                };
                *by_pid.entry(process.pid).or_insert(0) += bytes;
            }
        }
        by_pid
    }
}

fn load() -> Result<Loaded, String> {
    let mut missing = Vec::new();
    for candidate in CANDIDATES {
        let is_path = candidate.starts_with('/');
        if is_path && !std::path::Path::new(candidate).exists() {
            missing.push(*candidate);
            continue;
        }
        match Nvml::builder().lib_path(OsStr::new(candidate)).init() {
            Ok(nvml) => {
                let library = if is_path {
                    (*candidate).to_string()
                } else {
                    format!("{candidate} (dynamic loader)")
                };
                return Ok(Loaded {
                    nvml: Arc::new(nvml),
                    library,
                });
            }
            // Found but the driver does not answer: say so rather than look further.
            Err(nvml_wrapper::error::NvmlError::LibloadingError(_)) => missing.push(*candidate),
            Err(error) => return Err(format!("NVML ({candidate}) is there but failed: {error}")),
        }
    }
    Err(format!(
        "NVIDIA's NVML library is not installed (looked for {}); GPUs show their PCI and sysfs \
         facts only",
        missing.join(", ")
    ))
}
