//! NVIDIA's management library (NVML, `libnvidia-ml.so.1`, installed with the driver), loaded at
//! run time by `nvml-wrapper`: every dynamically linked build carries it, and a host without the
//! library gets one note and nothing fails. `hardware_info` and `gpu_processes` read GPUs
//! through it, the process tools the GPU memory of each process.
//!
//! The library is looked for where drivers put it (NVIDIA's container toolkit mounts it at
//! `/usr/local/nvidia/lib64`), then by the dynamic loader's own search (`LD_LIBRARY_PATH`,
//! `ld.so.cache`). A failed look is remembered for a minute, so a host without NVIDIA pays for
//! it once a minute at most; an NVML that stops answering (a driver upgraded under it) is
//! dropped and loaded again at the next look.
//!
//! A statically linked build (glibc's `crt-static`: the container image, the static release)
//! cannot load a shared library safely — the library needs the host's `libc.so.6`, which a
//! static binary does not share — so it does not try, and says so.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nvml_wrapper::Nvml;
use nvml_wrapper::enums::device::UsedGpuMemory;

/// Where the library is looked for, in order; the bare name last asks the dynamic loader.
const CANDIDATES: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1",
    "/usr/lib/aarch64-linux-gnu/libnvidia-ml.so.1",
    "/usr/lib64/libnvidia-ml.so.1",
    "/usr/lib/libnvidia-ml.so.1",
    "/usr/local/nvidia/lib64/libnvidia-ml.so.1",
    "libnvidia-ml.so.1",
];

/// How long a failed look is remembered before the next.
const RETRY_AFTER: Duration = Duration::from_secs(60);
/// How long the GPU memory of processes is reused: process_list and process_get may be called
/// many times a second, and NVML asks the driver for each GPU.
const PROCESS_MEMORY_KEPT: Duration = Duration::from_secs(1);

/// NVML, once loaded, and where it was found.
#[derive(Clone)]
pub(crate) struct Loaded {
    pub nvml: Arc<Nvml>,
    /// The library as found: a path, or `libnvidia-ml.so.1 (through the dynamic loader)`.
    pub library: String,
}

enum State {
    Untried,
    Loaded(Loaded),
    Missing { why: String, at: Instant },
}

/// GPU memory in use by a process, summed over GPUs: bytes, or `None` where NVML holds a
/// process on a GPU but cannot say how much (MIG without the rights, WDDM).
pub(crate) type ProcessMemory = HashMap<u32, Option<u64>>;

/// The host's NVML, shared by the domains that read GPUs.
pub(crate) struct Nvidia {
    state: Mutex<State>,
    by_pid: Mutex<Option<(Instant, Arc<ProcessMemory>)>>,
}

impl Default for Nvidia {
    fn default() -> Self {
        Self {
            state: Mutex::new(State::Untried),
            by_pid: Mutex::new(None),
        }
    }
}

impl Nvidia {
    /// NVML, loading it the first time (and again a minute after a failed look). Errors: why
    /// it is not there, for a note: not installed (where it was looked for), installed but not
    /// loadable (the loader's words), or loaded but the driver does not answer (NVML's words).
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

    /// Drops a loaded NVML that stopped answering (the driver was upgraded or unloaded under
    /// it), so the next look loads it again; `why` is what callers are told until then.
    pub(crate) fn forget(&self, why: String) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        *state = State::Missing {
            why,
            at: Instant::now(),
        };
    }

    /// GPU memory in use by each process on an NVIDIA GPU (compute and graphics lists; a
    /// process in both on one GPU counted once), summed over GPUs; empty where NVML is not
    /// there. Kept for a second.
    pub(crate) fn memory_by_pid(&self) -> Arc<ProcessMemory> {
        let mut kept = self.by_pid.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, memory)) = kept.as_ref()
            && at.elapsed() < PROCESS_MEMORY_KEPT
        {
            return Arc::clone(memory);
        }
        let memory = Arc::new(self.read_memory_by_pid());
        *kept = Some((Instant::now(), Arc::clone(&memory)));
        memory
    }

    fn read_memory_by_pid(&self) -> ProcessMemory {
        let mut by_pid: ProcessMemory = HashMap::new();
        let Ok(loaded) = self.get() else {
            return by_pid;
        };
        let count = loaded.nvml.device_count().unwrap_or(0);
        for index in 0..count {
            let Ok(device) = loaded.nvml.device_by_index(index) else {
                continue;
            };
            // One GPU: a process in both lists (compute and graphics) is one process there.
            let mut on_this_gpu: HashMap<u32, Option<u64>> = HashMap::new();
            let compute = device.running_compute_processes().unwrap_or_default();
            let graphics = device.running_graphics_processes().unwrap_or_default();
            for process in compute.into_iter().chain(graphics) {
                let bytes = match process.used_gpu_memory {
                    UsedGpuMemory::Used(bytes) => Some(bytes),
                    UsedGpuMemory::Unavailable => None,
                };
                let entry = on_this_gpu.entry(process.pid).or_insert(bytes);
                *entry = (*entry).max(bytes);
            }
            for (pid, bytes) in on_this_gpu {
                let total = by_pid.entry(pid).or_insert(None);
                *total = match (*total, bytes) {
                    (Some(a), Some(b)) => Some(a + b),
                    (known, None) | (None, known) => known,
                };
            }
        }
        by_pid
    }
}

fn load() -> Result<Loaded, String> {
    if cfg!(target_feature = "crt-static") {
        return Err(
            "this build of SystemManager is statically linked (the container image, the static \
             release) and cannot load NVIDIA's NVML; on GPU hosts run the dynamically linked \
             build (cargo build --release, scripts/install.sh)"
                .into(),
        );
    }
    let mut looked = Vec::new();
    for candidate in CANDIDATES {
        let is_path = candidate.starts_with('/');
        looked.push(*candidate);
        if is_path && !std::path::Path::new(candidate).exists() {
            continue;
        }
        match Nvml::builder().lib_path(OsStr::new(candidate)).init() {
            Ok(nvml) => {
                let library = if is_path {
                    (*candidate).to_string()
                } else {
                    format!("{candidate} (through the dynamic loader)")
                };
                return Ok(Loaded {
                    nvml: Arc::new(nvml),
                    library,
                });
            }
            Err(nvml_wrapper::error::NvmlError::LibloadingError(error)) => {
                let text = error.to_string();
                // The loader found nothing by that name: look further.
                if !is_path && text.contains("No such file or directory") {
                    continue;
                }
                return Err(format!(
                    "NVIDIA's NVML ({candidate}) cannot be loaded: {text}"
                ));
            }
            Err(error) => {
                return Err(format!(
                    "NVIDIA's NVML ({candidate}) loaded, but the driver did not answer: {error}"
                ));
            }
        }
    }
    Err(format!(
        "NVIDIA's NVML library is not installed (looked for {}); GPUs show their PCI and sysfs \
         facts only",
        looked.join(", ")
    ))
}
