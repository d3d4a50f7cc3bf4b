//! GPUs: every PCI display controller (class `0x03`: VGA, 3D, other display) under
//! `/sys/bus/pci/devices`, whether or not a DRM driver made a card of it (datacenter NVIDIA hosts
//! often run without `nvidia-drm`, so there is no `/sys/class/drm` at all), and every GPU NVML
//! reports, merged by full PCI address (`domain:bus:device.function`). DRM cards add their
//! sysfs facts (amdgpu, i915: memory, load, temperature); NVML adds what `nvidia-smi` shows.

use std::path::Path;

use schemars::JsonSchema;
use serde::Serialize;

use super::ids::{Id, IdDatabase};
use crate::domains::shared::nvidia::Nvidia;

/// The PCI base class of display controllers.
const DISPLAY_CLASS: u8 = 0x03;
const NVIDIA: &str = "0x10de";

#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub(crate) struct Gpu {
    /// `domain:bus:device.function`, as `lspci -D` writes it (NVML's own form is normalised
    /// to this).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pci_address: Option<String>,
    /// The DRM card (`card0`), when a DRM driver made one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub card: Option<String>,
    pub vendor_id: String,
    pub device_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
    /// The model: NVML's name, else pci.ids' (the host's file or the built-in one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// VGA compatible controller, 3D controller, Display controller.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_total_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_used_bytes: Option<u64>,
    /// Share of the last sample period the GPU was busy, %.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub busy_percent: Option<u32>,
    /// Share of the last sample period device memory was read or written, %.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_busy_percent: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature_celsius: Option<f64>,
    /// Power draw, W.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub power_watts: Option<f64>,
    /// The enforced power limit, W.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub power_limit_watts: Option<f64>,
    /// Fan speed, % of its maximum (cards without fans: absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fan_percent: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clocks: Option<Clocks>,
    /// P0 (most performance) to P15 (least).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub performance_state: Option<String>,
    /// Why clocks are held down now (NVML's throttle reasons: `gpu_idle`, `sw_power_cap`,
    /// `hw_slowdown`, …); empty when running free.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throttle_reasons: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ecc: Option<EccErrors>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub persistence_mode: Option<bool>,
    /// Multi-Instance GPU mode is on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mig_mode: Option<bool>,
    /// Where the details came from: `sysfs`, `nvml`, or both.
    pub source: String,
}

/// Clock speeds, MHz: now and the maximum.
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub(crate) struct Clocks {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub graphics_mhz: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sm_mhz: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_mhz: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub graphics_max_mhz: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_max_mhz: Option<u32>,
}

/// ECC memory errors: volatile (since the driver loaded) and aggregate (the card's lifetime).
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub(crate) struct EccErrors {
    pub enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volatile_corrected: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volatile_uncorrected: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aggregate_corrected: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aggregate_uncorrected: Option<u64>,
}

/// The driver's versions, when NVML answered.
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub(crate) struct NvidiaDriver {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver_version: Option<String>,
    /// The newest CUDA version the driver supports (`12.8`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cuda_version: Option<String>,
    /// Where NVML was found.
    pub library: String,
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

fn hex(path: &Path) -> Option<u32> {
    u32::from_str_radix(read(path)?.trim_start_matches("0x"), 16).ok()
}

/// `0000:65:00.0`: lower-case, a 4-digit domain (NVML writes 8: `00000000:65:00.0`).
pub(crate) fn normalize_address(address: &str) -> Option<String> {
    let (domain, rest) = address.trim().split_once(':')?;
    let domain = u32::from_str_radix(domain, 16).ok()?;
    let (bus, slot) = rest.split_once(':')?;
    let (device, function) = slot.split_once('.')?;
    let bus = u8::from_str_radix(bus, 16).ok()?;
    let device = u8::from_str_radix(device, 16).ok()?;
    let function = u8::from_str_radix(function, 16).ok()?;
    Some(format!("{domain:04x}:{bus:02x}:{device:02x}.{function:x}"))
}

/// Cards, not connectors: `card0`, not `card0-HDMI-A-1`.
fn is_card(name: &str) -> bool {
    name.strip_prefix("card")
        .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()))
}

/// GPUs from sysfs: PCI display controllers, then DRM cards that are not PCI devices (a
/// platform GPU on an ARM board), each with what its driver publishes.
pub(crate) fn from_sysfs(sys: &Path, ids: &IdDatabase) -> Vec<Gpu> {
    let mut addresses: Vec<String> = std::fs::read_dir(sys.join("bus/pci/devices"))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    addresses.sort();
    let mut gpus: Vec<Gpu> = Vec::new();
    for address in &addresses {
        let device = sys.join("bus/pci/devices").join(address);
        let Some(class) = hex(&device.join("class")) else {
            continue;
        };
        if (class >> 16) as u8 != DISPLAY_CLASS {
            continue;
        }
        let gpu = describe(&device, class, ids);
        // Two links to one device are one GPU.
        if gpu.pci_address.is_some() && gpus.iter().any(|seen| seen.pci_address == gpu.pci_address)
        {
            continue;
        }
        gpus.push(gpu);
    }
    // DRM cards whose device is not a PCI display controller seen above.
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
    for card in cards {
        let device = sys.join("class/drm").join(&card).join("device");
        // A card with no device behind it is not hardware to report.
        if !device.exists() {
            continue;
        }
        let address = resolved_name(&device);
        if address
            .as_deref()
            .and_then(normalize_address)
            .is_some_and(|a| {
                gpus.iter()
                    .any(|gpu| gpu.pci_address.as_deref() == Some(&a))
            })
        {
            continue;
        }
        let class = hex(&device.join("class")).unwrap_or(0);
        let mut gpu = describe(&device, class, ids);
        gpu.card = Some(card);
        gpus.push(gpu);
    }
    gpus
}

/// The last component of a sysfs link's target: a PCI device's address.
fn resolved_name(link: &Path) -> Option<String> {
    std::fs::canonicalize(link)
        .ok()
        .and_then(|path| Some(path.file_name()?.to_string_lossy().into_owned()))
}

fn describe(device: &Path, class: u32, ids: &IdDatabase) -> Gpu {
    let vendor = hex(&device.join("vendor")).unwrap_or(0) as u16;
    let model = hex(&device.join("device")).unwrap_or(0) as u16;
    let names = ids.names(&[
        Id::Vendor(vendor),
        Id::Device(vendor, model),
        Id::Class((class >> 16) as u8, Some((class >> 8) as u8)),
    ]);
    let [vendor_name, model_name, class_name] =
        <[Option<String>; 3]>::try_from(names).unwrap_or_default();
    let card = std::fs::read_dir(device.join("drm"))
        .ok()
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .find(|name| is_card(name));
    let temperature = std::fs::read_dir(device.join("hwmon"))
        .ok()
        .and_then(|mut entries| entries.find_map(Result::ok))
        .and_then(|hwmon| number(&hwmon.path().join("temp1_input")))
        .map(|millis| millis as f64 / 1000.0);
    Gpu {
        pci_address: resolved_name(device).as_deref().and_then(normalize_address),
        card,
        vendor_id: format!("0x{vendor:04x}"),
        device_id: format!("0x{model:04x}"),
        vendor: vendor_name,
        model: model_name,
        class: class_name,
        driver: std::fs::read_link(device.join("driver"))
            .ok()
            .and_then(|target| Some(target.file_name()?.to_string_lossy().into_owned())),
        memory_total_bytes: number(&device.join("mem_info_vram_total")),
        memory_used_bytes: number(&device.join("mem_info_vram_used")),
        busy_percent: number(&device.join("gpu_busy_percent")).map(|p| p as u32),
        temperature_celsius: temperature,
        source: "sysfs".into(),
        ..Gpu::default()
    }
}

/// What NVML says of one GPU.
#[derive(Debug, Clone, Default)]
pub(crate) struct NvmlFacts {
    pub pci_address: Option<String>,
    pub vendor_id: u16,
    pub device_id: u16,
    pub name: Option<String>,
    pub uuid: Option<String>,
    pub memory_total_bytes: Option<u64>,
    pub memory_used_bytes: Option<u64>,
    pub busy_percent: Option<u32>,
    pub memory_busy_percent: Option<u32>,
    pub temperature_celsius: Option<f64>,
    pub power_watts: Option<f64>,
    pub power_limit_watts: Option<f64>,
    pub fan_percent: Option<u32>,
    pub clocks: Option<Clocks>,
    pub performance_state: Option<String>,
    pub throttle_reasons: Option<Vec<String>>,
    pub ecc: Option<EccErrors>,
    pub persistence_mode: Option<bool>,
    pub mig_mode: Option<bool>,
}

/// NVML's facts laid over the sysfs GPUs, matched by PCI address; a GPU NVML reports that
/// sysfs does not show (an unreadable `/sys`) is added as it is.
pub(crate) fn merge(gpus: &mut Vec<Gpu>, facts: Vec<NvmlFacts>, ids: &IdDatabase) {
    for fact in facts {
        let index = fact.pci_address.as_ref().and_then(|address| {
            gpus.iter()
                .position(|gpu| gpu.pci_address.as_ref() == Some(address))
        });
        let gpu = match index {
            Some(index) => {
                gpus[index].source = "sysfs+nvml".into();
                &mut gpus[index]
            }
            None => {
                let names = ids.names(&[
                    Id::Vendor(fact.vendor_id),
                    Id::Device(fact.vendor_id, fact.device_id),
                ]);
                gpus.push(Gpu {
                    pci_address: fact.pci_address.clone(),
                    vendor_id: format!("0x{:04x}", fact.vendor_id),
                    device_id: format!("0x{:04x}", fact.device_id),
                    vendor: names.first().cloned().flatten(),
                    model: names.get(1).cloned().flatten(),
                    source: "nvml".into(),
                    ..Gpu::default()
                });
                gpus.last_mut().expect("just pushed")
            }
        };
        gpu.model = fact.name.or(gpu.model.take());
        gpu.uuid = fact.uuid;
        gpu.memory_total_bytes = fact.memory_total_bytes.or(gpu.memory_total_bytes);
        gpu.memory_used_bytes = fact.memory_used_bytes.or(gpu.memory_used_bytes);
        gpu.busy_percent = fact.busy_percent.or(gpu.busy_percent);
        gpu.memory_busy_percent = fact.memory_busy_percent;
        gpu.temperature_celsius = fact.temperature_celsius.or(gpu.temperature_celsius);
        gpu.power_watts = fact.power_watts;
        gpu.power_limit_watts = fact.power_limit_watts;
        gpu.fan_percent = fact.fan_percent;
        gpu.clocks = fact.clocks;
        gpu.performance_state = fact.performance_state;
        gpu.throttle_reasons = fact.throttle_reasons;
        gpu.ecc = fact.ecc;
        gpu.persistence_mode = fact.persistence_mode;
        gpu.mig_mode = fact.mig_mode;
    }
}

/// Every GPU: sysfs's, with NVML's facts where NVIDIA GPUs are there (or NVML reports some);
/// the driver's versions; notes for what could not be read.
pub(crate) fn gpus(
    sys: &Path,
    ids: &IdDatabase,
    nvidia: &Nvidia,
    notes: &mut Vec<String>,
) -> (Vec<Gpu>, Option<NvidiaDriver>) {
    let mut gpus = from_sysfs(sys, ids);
    let has_nvidia = gpus.iter().any(|gpu| gpu.vendor_id == NVIDIA);
    match nvidia.get() {
        Ok(loaded) => match nvml::read(&loaded, notes) {
            Ok((facts, driver)) => {
                merge(&mut gpus, facts, ids);
                (gpus, Some(driver))
            }
            // Loaded, but the driver stopped answering: say so, and load it afresh next time.
            Err(why) => {
                nvidia.forget(why.clone());
                notes.push(why);
                (gpus, None)
            }
        },
        Err(why) => {
            if has_nvidia {
                notes.push(why);
            }
            (gpus, None)
        }
    }
}

/// One line for the text answer: address, names, and NVML's figures where there are some.
pub(crate) fn render(gpu: &Gpu) -> String {
    use crate::render;
    let vendor = gpu.vendor.as_deref().unwrap_or(&gpu.vendor_id);
    let model = gpu.model.as_deref().unwrap_or(&gpu.device_id);
    // NVML's names carry the vendor already ("NVIDIA H200").
    let vendor_word = vendor.split_whitespace().next().unwrap_or(vendor);
    let name = if model.starts_with(vendor_word) {
        model.to_string()
    } else {
        format!("{vendor} {model}")
    };
    let mut line = format!(
        "gpu {} {}",
        render::text(
            gpu.pci_address
                .as_deref()
                .or(gpu.card.as_deref())
                .unwrap_or("?")
        ),
        render::text(&name)
    );
    if let (Some(used), Some(total)) = (gpu.memory_used_bytes, gpu.memory_total_bytes) {
        line.push_str(&format!(
            ", memory {} of {}",
            render::bytes(used),
            render::bytes(total)
        ));
    }
    if let Some(busy) = gpu.busy_percent {
        line.push_str(&format!(", {busy}% busy"));
    }
    if let Some(celsius) = gpu.temperature_celsius {
        line.push_str(&format!(", {celsius}°C"));
    }
    if let Some(watts) = gpu.power_watts {
        line.push_str(&format!(", {watts:.0} W"));
        if let Some(limit) = gpu.power_limit_watts {
            line.push_str(&format!(" of {limit:.0} W"));
        }
    }
    if let Some(state) = &gpu.performance_state {
        line.push_str(&format!(", {}", render::text(state)));
    }
    if let Some(driver) = &gpu.driver {
        line.push_str(&format!(" [{}]", render::text(driver)));
    }
    line
}

/// Reading NVML, kept apart from the merging so the merge can be tested without a GPU.
mod nvml {
    use nvml_wrapper::enum_wrappers::device::{
        Clock, EccCounter, MemoryError, PerformanceState, TemperatureSensor,
    };

    use super::{Clocks, EccErrors, NvidiaDriver, NvmlFacts, normalize_address};
    use crate::domains::shared::nvidia::Loaded;

    /// NVML's facts for every GPU it can reach, and the driver's versions; a GPU it cannot
    /// reach (fallen off the bus) is a note. Errors: NVML does not say how many GPUs there are
    /// (the driver is gone, or not the library's version).
    pub(super) fn read(
        loaded: &Loaded,
        notes: &mut Vec<String>,
    ) -> Result<(Vec<NvmlFacts>, NvidiaDriver), String> {
        let nvml = &loaded.nvml;
        let count = nvml.device_count().map_err(|error| {
            format!(
                "NVIDIA's NVML ({}) does not answer: {error}; GPUs show their PCI and sysfs \
                 facts only",
                loaded.library
            )
        })?;
        let cuda = nvml.sys_cuda_driver_version().ok().map(|version| {
            format!(
                "{}.{}",
                nvml_wrapper::cuda_driver_version_major(version),
                nvml_wrapper::cuda_driver_version_minor(version)
            )
        });
        let driver = NvidiaDriver {
            driver_version: nvml.sys_driver_version().ok(),
            cuda_version: cuda,
            library: loaded.library.clone(),
        };
        let facts = (0..count)
            .filter_map(|index| match nvml.device_by_index(index) {
                Ok(device) => Some(device),
                Err(error) => {
                    notes.push(format!("NVML cannot reach GPU {index}: {error}"));
                    None
                }
            })
            .map(|device| {
                let pci = device.pci_info().ok();
                let memory = device.memory_info().ok();
                let load = device.utilization_rates().ok();
                let ecc_enabled = device.is_ecc_enabled().ok().map(|m| m.currently_enabled);
                let ecc_count = |kind: MemoryError, counter: EccCounter| {
                    device.total_ecc_errors(kind, counter).ok()
                };
                let fans = device.num_fans().unwrap_or(0);
                NvmlFacts {
                    pci_address: pci.as_ref().and_then(|p| normalize_address(&p.bus_id)),
                    vendor_id: pci
                        .as_ref()
                        .map_or(0, |p| (p.pci_device_id & 0xffff) as u16),
                    device_id: pci.as_ref().map_or(0, |p| (p.pci_device_id >> 16) as u16),
                    name: device.name().ok(),
                    uuid: device.uuid().ok(),
                    memory_total_bytes: memory.as_ref().map(|m| m.total),
                    memory_used_bytes: memory.as_ref().map(|m| m.used),
                    busy_percent: load.as_ref().map(|l| l.gpu),
                    memory_busy_percent: load.as_ref().map(|l| l.memory),
                    temperature_celsius: device
                        .temperature(TemperatureSensor::Gpu)
                        .ok()
                        .map(f64::from),
                    power_watts: device.power_usage().ok().map(milliwatts),
                    power_limit_watts: device.enforced_power_limit().ok().map(milliwatts),
                    fan_percent: (fans > 0).then(|| device.fan_speed(0).ok()).flatten(),
                    clocks: Some(Clocks {
                        graphics_mhz: device.clock_info(Clock::Graphics).ok(),
                        sm_mhz: device.clock_info(Clock::SM).ok(),
                        memory_mhz: device.clock_info(Clock::Memory).ok(),
                        graphics_max_mhz: device.max_clock_info(Clock::Graphics).ok(),
                        memory_max_mhz: device.max_clock_info(Clock::Memory).ok(),
                    }),
                    performance_state: device.performance_state().ok().and_then(p_state),
                    throttle_reasons: device.current_throttle_reasons().ok().map(|reasons| {
                        reasons
                            .iter_names()
                            .map(|(name, _)| name.to_ascii_lowercase())
                            .collect()
                    }),
                    ecc: ecc_enabled.map(|enabled| EccErrors {
                        enabled,
                        volatile_corrected: ecc_count(MemoryError::Corrected, EccCounter::Volatile),
                        volatile_uncorrected: ecc_count(
                            MemoryError::Uncorrected,
                            EccCounter::Volatile,
                        ),
                        aggregate_corrected: ecc_count(
                            MemoryError::Corrected,
                            EccCounter::Aggregate,
                        ),
                        aggregate_uncorrected: ecc_count(
                            MemoryError::Uncorrected,
                            EccCounter::Aggregate,
                        ),
                    }),
                    persistence_mode: device.is_in_persistent_mode().ok(),
                    // NotSupported (no MIG on this GPU) and other errors alike: not reported.
                    mig_mode: device.mig_mode().ok().map(|mode| mode.current == 1),
                }
            })
            .collect();
        Ok((facts, driver))
    }

    fn milliwatts(value: u32) -> f64 {
        f64::from(value) / 1000.0
    }

    fn p_state(state: PerformanceState) -> Option<String> {
        let number = match state {
            PerformanceState::Zero => 0,
            PerformanceState::One => 1,
            PerformanceState::Two => 2,
            PerformanceState::Three => 3,
            PerformanceState::Four => 4,
            PerformanceState::Five => 5,
            PerformanceState::Six => 6,
            PerformanceState::Seven => 7,
            PerformanceState::Eight => 8,
            PerformanceState::Nine => 9,
            PerformanceState::Ten => 10,
            PerformanceState::Eleven => 11,
            PerformanceState::Twelve => 12,
            PerformanceState::Thirteen => 13,
            PerformanceState::Fourteen => 14,
            PerformanceState::Fifteen => 15,
            PerformanceState::Unknown => return None,
        };
        Some(format!("P{number}"))
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::symlink;
    use std::path::Path;

    use super::*;
    use crate::domains::hardware::ids::Embedded;

    fn write(path: &Path, text: &str) {
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(path, format!("{text}\n")).expect("write");
    }

    /// A PCI device as sysfs lays it out: the device under `devices/`, a link to it under
    /// `bus/pci/devices/`, its driver a link too.
    fn pci_device(
        sys: &Path,
        address: &str,
        class: &str,
        vendor: &str,
        device: &str,
        driver: &str,
    ) -> std::path::PathBuf {
        let directory = sys.join("devices/pci0000:00").join(address);
        write(&directory.join("class"), class);
        write(&directory.join("vendor"), vendor);
        write(&directory.join("device"), device);
        let drivers = sys.join("bus/pci/drivers").join(driver);
        fs::create_dir_all(&drivers).expect("driver");
        symlink(&drivers, directory.join("driver")).expect("driver link");
        fs::create_dir_all(sys.join("bus/pci/devices")).expect("bus");
        symlink(&directory, sys.join("bus/pci/devices").join(address)).expect("bus link");
        directory
    }

    /// A DRM card for `device`: `class/drm/cardN` and the device's own `drm/cardN`.
    fn drm_card(sys: &Path, device: &Path, card: &str) {
        let under_device = device.join("drm").join(card);
        fs::create_dir_all(&under_device).expect("drm");
        symlink(device, under_device.join("device")).expect("device link");
        fs::create_dir_all(sys.join("class/drm")).expect("class/drm");
        symlink(&under_device, sys.join("class/drm").join(card)).expect("class link");
    }

    fn no_files() -> IdDatabase {
        IdDatabase::find(Path::new("/nonexistent"), &["pci.ids"], Embedded::Pci)
    }

    #[test]
    fn a_display_controller_without_drm_is_a_gpu() {
        let sys = tempfile::tempdir().expect("tempdir");
        pci_device(
            sys.path(),
            "0000:65:00.0",
            "0x030200",
            "0x10de",
            "0x2335",
            "nvidia",
        );
        // Not a GPU: a network controller.
        pci_device(
            sys.path(),
            "0000:66:00.0",
            "0x020000",
            "0x8086",
            "0x1572",
            "i40e",
        );
        assert!(!sys.path().join("class/drm").exists());
        let gpus = from_sysfs(sys.path(), &no_files());
        assert_eq!(gpus.len(), 1, "{gpus:?}");
        let gpu = &gpus[0];
        assert_eq!(gpu.pci_address.as_deref(), Some("0000:65:00.0"));
        assert_eq!(gpu.card, None);
        assert_eq!(gpu.vendor.as_deref(), Some("NVIDIA Corporation"));
        assert_eq!(gpu.model.as_deref(), Some("GH100 [H200 SXM 141GB]"));
        assert_eq!(gpu.class.as_deref(), Some("3D controller"));
        assert_eq!(gpu.driver.as_deref(), Some("nvidia"));
        assert_eq!(gpu.source, "sysfs");
    }

    #[test]
    fn drm_cards_keep_their_sysfs_facts_and_platform_cards_are_found() {
        let sys = tempfile::tempdir().expect("tempdir");
        let amd = pci_device(
            sys.path(),
            "0000:03:00.0",
            "0x030000",
            "0x1002",
            "0x73bf",
            "amdgpu",
        );
        write(&amd.join("mem_info_vram_total"), &(16u64 << 30).to_string());
        write(&amd.join("mem_info_vram_used"), &(1u64 << 30).to_string());
        write(&amd.join("gpu_busy_percent"), "37");
        drm_card(sys.path(), &amd, "card0");
        pci_device(
            sys.path(),
            "0000:65:00.0",
            "0x030200",
            "0x10de",
            "0x2335",
            "nvidia",
        );
        // A GPU on no PCI bus (an ARM board's), known only as a DRM card.
        let platform = sys.path().join("devices/platform/fde60000.gpu");
        write(&platform.join("uevent"), "DRIVER=panfrost");
        drm_card(sys.path(), &platform, "card1");
        let gpus = from_sysfs(sys.path(), &no_files());
        let summary: Vec<_> = gpus
            .iter()
            .map(|gpu| (gpu.pci_address.clone(), gpu.card.clone()))
            .collect();
        assert_eq!(
            summary,
            [
                (Some("0000:03:00.0".into()), Some("card0".into())),
                (Some("0000:65:00.0".into()), None),
                (None, Some("card1".into())),
            ]
        );
        assert_eq!(gpus[0].memory_total_bytes, Some(16 << 30));
        assert_eq!(gpus[0].busy_percent, Some(37));
        assert_eq!(gpus[0].class.as_deref(), Some("VGA compatible controller"));
    }

    #[test]
    fn nvml_facts_join_the_gpu_at_the_same_address() {
        let sys = tempfile::tempdir().expect("tempdir");
        pci_device(
            sys.path(),
            "0000:65:00.0",
            "0x030200",
            "0x10de",
            "0x2335",
            "nvidia",
        );
        pci_device(
            sys.path(),
            "0000:65:00.1",
            "0x030200",
            "0x10de",
            "0x2335",
            "nvidia",
        );
        let ids = no_files();
        let mut gpus = from_sysfs(sys.path(), &ids);
        let facts = vec![
            NvmlFacts {
                // NVML's own spelling: an 8-digit domain, upper case.
                pci_address: normalize_address("00000000:65:00.1"),
                vendor_id: 0x10de,
                device_id: 0x2335,
                name: Some("NVIDIA H200".into()),
                uuid: Some("GPU-1234".into()),
                memory_total_bytes: Some(150_754_820_096),
                memory_used_bytes: Some(1 << 20),
                power_watts: Some(76.0),
                ..NvmlFacts::default()
            },
            // Seen by NVML only (sysfs unreadable for it).
            NvmlFacts {
                pci_address: normalize_address("00000000:B1:00.0"),
                vendor_id: 0x10de,
                device_id: 0x2335,
                name: Some("NVIDIA H200".into()),
                ..NvmlFacts::default()
            },
        ];
        merge(&mut gpus, facts, &ids);
        assert_eq!(gpus.len(), 3);
        assert_eq!(gpus[0].source, "sysfs");
        assert_eq!(gpus[0].model.as_deref(), Some("GH100 [H200 SXM 141GB]"));
        let joined = &gpus[1];
        assert_eq!(joined.pci_address.as_deref(), Some("0000:65:00.1"));
        assert_eq!(joined.source, "sysfs+nvml");
        assert_eq!(joined.model.as_deref(), Some("NVIDIA H200"));
        assert_eq!(joined.uuid.as_deref(), Some("GPU-1234"));
        assert_eq!(joined.memory_total_bytes, Some(150_754_820_096));
        assert_eq!(joined.power_watts, Some(76.0));
        assert_eq!(joined.driver.as_deref(), Some("nvidia"));
        let alone = &gpus[2];
        assert_eq!(
            (alone.pci_address.as_deref(), alone.source.as_str()),
            (Some("0000:b1:00.0"), "nvml")
        );
        assert_eq!(alone.vendor.as_deref(), Some("NVIDIA Corporation"));
    }

    #[test]
    fn addresses_are_written_as_lspci_writes_them() {
        assert_eq!(
            normalize_address("00000000:65:00.0").as_deref(),
            Some("0000:65:00.0")
        );
        assert_eq!(
            normalize_address("0001:B1:1F.7").as_deref(),
            Some("0001:b1:1f.7")
        );
        assert_eq!(normalize_address("65:00.0"), None);
        assert_eq!(normalize_address("card0"), None);
    }
}
