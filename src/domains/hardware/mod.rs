//! The `hardware` domain: `hardware_info`, what the host is made of — CPU, memory, block, PCI
//! and USB devices, temperature sensors and GPUs — read from `/proc` and `/sys` (`[host]`) and
//! NVIDIA's NVML, named from the pci.ids and usb.ids databases (the host's, else built in); and
//! `gpu_processes` (gpu_processes.rs).

pub(crate) mod cpu;
pub(crate) mod devices;
pub(crate) mod gpu;
pub(crate) mod gpu_processes;
pub(crate) mod ids;
pub(crate) mod sensors;

use std::sync::Arc;
use std::time::Duration;

use procfs::Meminfo;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::{Config, HostConfig};
use crate::domains::shared::cached::Cached;
use crate::domains::shared::kernel;
use crate::domains::shared::nvidia::Nvidia;
use crate::domains::shared::users::UserNames;
use crate::render;
use crate::tool::{Collect, Declaration, Domain, Registry, Render, ToolContext, ToolError};

use cpu::CpuDetails;
use ids::{Embedded, IdDatabase};

pub(crate) fn register(
    registry: &mut Registry,
    config: &Config,
    nvidia: &Arc<Nvidia>,
    users: &Arc<UserNames>,
) {
    registry.register_collector(Inventory::new(config.host.clone(), Arc::clone(nvidia)));
    registry.register_collector(gpu_processes::GpuProcesses::new(
        config.host.clone(),
        Arc::clone(nvidia),
        Arc::clone(users),
    ));
}

pub(crate) static HARDWARE_INFO: Declaration = Declaration::read(
    Domain::Hardware,
    "hardware_info",
    "Hardware inventory",
    "What the host is made of: CPU (vendor, model, sockets/cores/threads, \
     frequency range, caches, notable feature flags, virtualization), memory size, \
     block devices (size, model, rotational), PCI and USB devices (ids, names, \
     drivers), temperature sensors with high and critical points, and GPUs: every PCI \
     display controller, with NVIDIA's view through NVML (name, UUID, memory, busy and \
     memory-controller %, temperature, power and limit, clocks, fan, performance state, \
     throttle reasons, ECC errors, persistence and MIG mode, driver and CUDA versions) and \
     sysfs's for other drivers. `sections` picks parts.",
)
.paged("ask for fewer `sections`");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Section {
    Cpu,
    Memory,
    Block,
    Pci,
    Usb,
    Sensors,
    Gpu,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct HardwareArguments {
    /// Parts to report: cpu, memory, block, pci, usb, sensors, gpu (default all).
    pub sections: Option<Vec<Section>>,
}

/// The answer of `hardware_info`; sections not asked for are left out.
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub(crate) struct HardwareInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<cpu::CpuDetails>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemorySize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub block_devices: Option<Vec<devices::BlockDevice>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pci_devices: Option<Vec<devices::PciDevice>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usb_devices: Option<Vec<devices::UsbDevice>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sensors: Option<Vec<sensors::Sensor>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpus: Option<Vec<gpu::Gpu>>,
    /// NVIDIA's driver, where NVML answered (with the gpu section).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nvidia: Option<gpu::NvidiaDriver>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct MemorySize {
    /// RAM the kernel manages (`MemTotal`).
    pub total_bytes: u64,
    /// Physical memory online, in memory blocks (`lsmem`), when the kernel exposes them;
    /// larger than `total_bytes` by what firmware and the kernel image reserve.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub online_bytes: Option<u64>,
}

/// Answers `hardware_info` for the host `[host]` locates.
pub(crate) struct Inventory {
    host: HostConfig,
    pci_ids: IdDatabase,
    usb_ids: IdDatabase,
    /// Facts that change only on hotplug, kept for a minute: the CPU's take a few hundred
    /// sysfs and cpuinfo reads, the memory blocks one read each.
    cpu: Cached<CpuDetails>,
    online_memory: Cached<Option<u64>>,
    pci: Cached<Vec<devices::PciDevice>>,
    usb: Cached<Vec<devices::UsbDevice>>,
    nvidia: Arc<Nvidia>,
}

/// How long the slowly changing facts are kept; hotplugged devices show within this time.
const INVENTORY_KEPT: Duration = Duration::from_secs(60);

impl Inventory {
    pub(crate) fn new(host: HostConfig, nvidia: Arc<Nvidia>) -> Self {
        Self {
            pci_ids: IdDatabase::find(
                &host.rootfs,
                &[
                    "usr/share/misc/pci.ids",
                    "usr/share/hwdata/pci.ids",
                    "usr/share/pci.ids",
                ],
                Embedded::Pci,
            ),
            usb_ids: IdDatabase::find(
                &host.rootfs,
                &[
                    "usr/share/misc/usb.ids",
                    "usr/share/hwdata/usb.ids",
                    "var/lib/usbutils/usb.ids",
                ],
                Embedded::Usb,
            ),
            host,
            cpu: Cached::new(INVENTORY_KEPT),
            online_memory: Cached::new(INVENTORY_KEPT),
            pci: Cached::new(INVENTORY_KEPT),
            usb: Cached::new(INVENTORY_KEPT),
            nvidia,
        }
    }

    /// Blocking: many small sysfs reads, and the id databases the first time.
    pub(crate) fn info(&self, arguments: &HardwareArguments) -> Result<HardwareInfo, ToolError> {
        let wanted = |section: Section| {
            arguments
                .sections
                .as_ref()
                .is_none_or(|sections| sections.contains(&section))
        };
        let (proc, sys) = (&self.host.proc, &self.host.sys);
        let mut info = HardwareInfo::default();
        if wanted(Section::Cpu) {
            info.cpu = Some((*self.cpu.get_or_read(|| cpu::details(proc, sys))).clone());
        }
        if wanted(Section::Memory) {
            let meminfo: Meminfo = kernel::read_proc(proc, "meminfo")?;
            info.memory = Some(MemorySize {
                total_bytes: meminfo.mem_total,
                online_bytes: *self.online_memory.get_or_read(|| online_memory(sys)),
            });
        }
        if wanted(Section::Block) {
            info.block_devices = Some(devices::block_devices(sys));
        }
        if wanted(Section::Pci) {
            let pci = self
                .pci
                .get_or_read(|| devices::pci_devices(sys, &self.pci_ids));
            info.pci_devices = Some((*pci).clone());
        }
        if wanted(Section::Usb) {
            let usb = self
                .usb
                .get_or_read(|| devices::usb_devices(sys, &self.usb_ids));
            info.usb_devices = Some((*usb).clone());
        }
        if wanted(Section::Sensors) {
            info.sensors = Some(sensors::temperatures(sys));
        }
        if (wanted(Section::Pci) || wanted(Section::Gpu)) && self.pci_ids.file().is_none() {
            info.notes.push(
                "PCI names come from the database built into this binary: the host has no \
                 pci.ids (pciutils' or hwdata's)"
                    .into(),
            );
        }
        if wanted(Section::Gpu) {
            let (gpus, nvidia) = gpu::gpus(sys, &self.pci_ids, &self.nvidia, &mut info.notes);
            info.gpus = Some(gpus);
            info.nvidia = nvidia;
        }
        Ok(info)
    }
}

/// Online memory blocks × block size, from `/sys/devices/system/memory`.
fn online_memory(sys: &std::path::Path) -> Option<u64> {
    let root = sys.join("devices/system/memory");
    let block = u64::from_str_radix(
        std::fs::read_to_string(root.join("block_size_bytes"))
            .ok()?
            .trim(),
        16,
    )
    .ok()?;
    let online = std::fs::read_dir(&root)
        .ok()?
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().starts_with("memory"))
        .filter(|entry| {
            std::fs::read_to_string(entry.path().join("online"))
                .is_ok_and(|text| text.trim() == "1")
        })
        .count() as u64;
    (online > 0).then_some(online * block)
}

impl Render for HardwareInfo {
    fn render_text(&self) -> String {
        let mut lines = Vec::new();
        if let Some(cpu) = &self.cpu {
            let caches: Vec<String> = cpu
                .caches
                .iter()
                .map(|cache| {
                    format!(
                        "{} {}",
                        render::text(&cache.name),
                        render::bytes(cache.size_bytes)
                    )
                })
                .collect();
            lines.push(format!(
                "cpu {} {}: {}, {}, {}; {}; flags {}",
                render::text(&cpu.vendor),
                render::text(&cpu.model),
                render::count(cpu.sockets, "socket", "sockets"),
                render::count(cpu.cores, "core", "cores"),
                render::count(cpu.threads, "thread", "threads"),
                caches.join(", "),
                render::join(&cpu.notable_flags, " ")
            ));
        }
        if let Some(memory) = &self.memory {
            lines.push(format!("memory {}", render::bytes(memory.total_bytes)));
        }
        for disk in self.block_devices.iter().flatten() {
            lines.push(format!(
                "block {} {}{}{}",
                render::text(&disk.name),
                render::bytes(disk.size_bytes),
                if disk.rotational { " rotational" } else { "" },
                disk.model
                    .as_ref()
                    .map(|m| format!(" {}", render::text(m)))
                    .unwrap_or_default()
            ));
        }
        for device in self.pci_devices.iter().flatten() {
            lines.push(format!(
                "pci {} {}: {} {}{}",
                render::text(&device.address),
                render::text(device.class.as_deref().unwrap_or(&device.class_id)),
                render::text(device.vendor.as_deref().unwrap_or(&device.vendor_id)),
                render::text(device.device.as_deref().unwrap_or(&device.device_id)),
                device
                    .driver
                    .as_ref()
                    .map(|d| format!(" [{}]", render::text(d)))
                    .unwrap_or_default()
            ));
        }
        for device in self.usb_devices.iter().flatten() {
            lines.push(format!(
                "usb {:03}:{:03} {}:{} {} {}",
                device.bus,
                device.device,
                render::text(&device.vendor_id),
                render::text(&device.product_id),
                render::text(device.manufacturer.as_deref().unwrap_or("")),
                render::text(device.product.as_deref().unwrap_or(""))
            ));
        }
        for sensor in self.sensors.iter().flatten() {
            let mut line = format!(
                "sensor {} {} {}°C",
                render::text(&sensor.chip),
                render::text(&sensor.label),
                sensor.celsius
            );
            if let Some(critical) = sensor.critical_celsius {
                line.push_str(&format!(" (critical {critical}°C)"));
            }
            lines.push(line);
        }
        for gpu in self.gpus.iter().flatten() {
            lines.push(gpu::render(gpu));
        }
        if let Some(nvidia) = &self.nvidia {
            lines.push(format!(
                "nvidia driver {}, CUDA {} ({})",
                render::text(nvidia.driver_version.as_deref().unwrap_or("?")),
                render::text(nvidia.cuda_version.as_deref().unwrap_or("?")),
                render::text(&nvidia.library)
            ));
        }
        lines.extend(
            self.notes
                .iter()
                .map(|note| format!("({})", render::sentence(note))),
        );
        lines.join("\n")
    }
}

impl Collect for Inventory {
    type Arguments = HardwareArguments;
    type Output = HardwareInfo;

    const DECLARATION: &'static Declaration = &HARDWARE_INFO;

    fn collect(
        &self,
        arguments: HardwareArguments,
        _: &ToolContext,
    ) -> Result<HardwareInfo, ToolError> {
        self.info(&arguments)
    }
}
