//! GPUs: every DRM card (`/sys/class/drm/cardN`) with its PCI identity and driver, the memory
//! and load that amdgpu and others publish in sysfs, and — built with the `nvml` feature, on a
//! host with NVIDIA's driver — name, memory, utilisation, temperature and power from NVML.

use std::path::Path;

use schemars::JsonSchema;
use serde::Serialize;

use super::ids::{Id, IdDatabase};

#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub(crate) struct Gpu {
    /// The DRM card: `card0`, ...
    pub card: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pci_address: Option<String>,
    pub vendor_id: String,
    pub device_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
    /// The model: NVML's name, else pci.ids'.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_total_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_used_bytes: Option<u64>,
    /// Share of time the GPU was busy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub busy_percent: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature_celsius: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub power_watts: Option<f64>,
    /// Where the details came from: `sysfs`, or `nvml`.
    pub source: String,
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|text| text.trim().to_string())
        .filter(|text| !text.is_empty())
}

fn number(path: &Path) -> Option<u64> {
    read(path)?.parse().ok()
}

/// Cards, not connectors: `card0`, not `card0-HDMI-A-1`.
fn is_card(name: &str) -> bool {
    name.strip_prefix("card")
        .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()))
}

pub(crate) fn gpus(sys: &Path, ids: &IdDatabase, notes: &mut Vec<String>) -> Vec<Gpu> {
    let mut cards: Vec<String> = std::fs::read_dir(sys.join("class/drm"))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .filter(|name| is_card(name))
                .collect()
        })
        .unwrap_or_default();
    cards.sort_by_key(|name| name[4..].parse::<u32>().unwrap_or(u32::MAX));
    let mut gpus: Vec<Gpu> = cards
        .into_iter()
        .filter_map(|card| {
            let device = sys.join("class/drm").join(&card).join("device");
            let hex = |file: &str| {
                u16::from_str_radix(read(&device.join(file))?.trim_start_matches("0x"), 16).ok()
            };
            let (vendor, model) = (hex("vendor")?, hex("device")?);
            let names = ids.names(&[Id::Vendor(vendor), Id::Device(vendor, model)]);
            let [vendor_name, model_name] =
                <[Option<String>; 2]>::try_from(names).unwrap_or_default();
            let link_name = |link: &str| {
                std::fs::read_link(device.join(link))
                    .ok()
                    .and_then(|target| Some(target.file_name()?.to_string_lossy().into_owned()))
            };
            let hwmon_temperature = std::fs::read_dir(device.join("hwmon"))
                .ok()
                .and_then(|mut entries| entries.find_map(Result::ok))
                .and_then(|hwmon| number(&hwmon.path().join("temp1_input")))
                .map(|millis| millis as f64 / 1000.0);
            Some(Gpu {
                card,
                pci_address: std::fs::canonicalize(&device)
                    .ok()
                    .and_then(|path| Some(path.file_name()?.to_string_lossy().into_owned()))
                    .filter(|name| name.contains(':')),
                vendor_id: format!("0x{vendor:04x}"),
                device_id: format!("0x{model:04x}"),
                vendor: vendor_name,
                model: model_name,
                driver: link_name("driver"),
                memory_total_bytes: number(&device.join("mem_info_vram_total")),
                memory_used_bytes: number(&device.join("mem_info_vram_used")),
                busy_percent: number(&device.join("gpu_busy_percent")).map(|p| p as u32),
                temperature_celsius: hwmon_temperature,
                power_watts: None,
                source: "sysfs".into(),
            })
        })
        .collect();
    nvml::enrich(&mut gpus, notes);
    gpus
}

const NVIDIA: &str = "0x10de";

#[cfg(feature = "nvml")]
mod nvml {
    use nvml_wrapper::Nvml;
    use nvml_wrapper::enum_wrappers::device::TemperatureSensor;

    use super::{Gpu, NVIDIA};

    /// NVIDIA cards (matched by PCI address) get NVML's figures.
    pub(super) fn enrich(gpus: &mut [Gpu], notes: &mut Vec<String>) {
        if !gpus.iter().any(|gpu| gpu.vendor_id == NVIDIA) {
            return;
        }
        let nvml = match Nvml::init() {
            Ok(nvml) => nvml,
            Err(error) => {
                notes.push(format!("NVIDIA GPU details need NVML: {error}"));
                return;
            }
        };
        let count = nvml.device_count().unwrap_or(0);
        for index in 0..count {
            let Ok(device) = nvml.device_by_index(index) else {
                continue;
            };
            let address = device
                .pci_info()
                .ok()
                .map(|pci| format!("{:04x}:{:02x}:{:02x}.0", pci.domain, pci.bus, pci.device));
            let Some(gpu) = gpus
                .iter_mut()
                .find(|gpu| gpu.pci_address.is_some() && gpu.pci_address == address)
            else {
                continue;
            };
            gpu.source = "nvml".into();
            gpu.model = device.name().ok().or(gpu.model.take());
            if let Ok(memory) = device.memory_info() {
                gpu.memory_total_bytes = Some(memory.total);
                gpu.memory_used_bytes = Some(memory.used);
            }
            if let Ok(load) = device.utilization_rates() {
                gpu.busy_percent = Some(load.gpu);
            }
            if let Ok(celsius) = device.temperature(TemperatureSensor::Gpu) {
                gpu.temperature_celsius = Some(f64::from(celsius));
            }
            if let Ok(milliwatts) = device.power_usage() {
                gpu.power_watts = Some(f64::from(milliwatts) / 1000.0);
            }
        }
    }
}

#[cfg(not(feature = "nvml"))]
mod nvml {
    use super::{Gpu, NVIDIA};

    /// Built without the `nvml` feature: NVIDIA cards keep their sysfs facts, and the answer
    /// says how to get more.
    pub(super) fn enrich(gpus: &mut [Gpu], notes: &mut Vec<String>) {
        if gpus.iter().any(|gpu| gpu.vendor_id == NVIDIA) {
            notes.push(
                "NVIDIA GPU details (memory, load, temperature, power) need a build with the \
                 `nvml` feature"
                    .into(),
            );
        }
    }
}
