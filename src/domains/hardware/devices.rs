//! Devices as sysfs lists them: block devices (`/sys/block`), PCI (`/sys/bus/pci/devices`) and
//! USB (`/sys/bus/usb/devices`), named from the id databases when the host has them.

use std::path::Path;

use schemars::JsonSchema;
use serde::Serialize;

use super::ids::{Id, IdDatabase};

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct BlockDevice {
    pub name: String,
    pub size_bytes: u64,
    /// A spinning disk (or a device that says it is).
    pub rotational: bool,
    pub removable: bool,
    pub read_only: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct PciDevice {
    /// Domain:bus:device.function, as `lspci -D` prints it.
    pub address: String,
    /// Class, subclass and programming interface, e.g. `0x020000`.
    pub class_id: String,
    /// The class name (`Ethernet controller`), from pci.ids or the standard base classes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    pub vendor_id: String,
    pub device_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// The kernel driver bound to it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct UsbDevice {
    pub bus: u32,
    pub device: u32,
    pub vendor_id: String,
    pub product_id: String,
    /// What the device calls its maker, else the usb.ids name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manufacturer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub speed_mbps: Option<f64>,
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|text| text.trim().to_string())
        .filter(|text| !text.is_empty())
}

fn hex(text: &str) -> Option<u32> {
    u32::from_str_radix(text.trim_start_matches("0x"), 16).ok()
}

fn entries(directory: &Path) -> Vec<std::fs::DirEntry> {
    let mut entries: Vec<_> = std::fs::read_dir(directory)
        .map(|entries| entries.filter_map(Result::ok).collect())
        .unwrap_or_default();
    entries.sort_by_key(|entry| entry.file_name());
    entries
}

/// Block devices as `lsblk -d` lists them: unused loop devices and RAM disks left out.
pub(crate) fn block_devices(sys: &Path) -> Vec<BlockDevice> {
    entries(&sys.join("block"))
        .into_iter()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().replace('!', "/");
            let path = entry.path();
            let sectors: u64 = read(&path.join("size"))?.parse().ok()?;
            let major =
                read(&path.join("dev")).and_then(|dev| dev.split(':').next()?.parse::<u32>().ok());
            if major == Some(1) || (name.starts_with("loop") && sectors == 0) {
                return None;
            }
            let flag = |file: &str| read(&path.join(file)).as_deref() == Some("1");
            Some(BlockDevice {
                size_bytes: sectors * 512,
                rotational: flag("queue/rotational"),
                removable: flag("removable"),
                read_only: flag("ro"),
                model: read(&path.join("device/model")),
                vendor: read(&path.join("device/vendor")),
                name,
            })
        })
        .collect()
}

/// PCI base class names, for hosts without pci.ids.
fn base_class(code: u8) -> Option<&'static str> {
    Some(match code {
        0x00 => "Unclassified device",
        0x01 => "Mass storage controller",
        0x02 => "Network controller",
        0x03 => "Display controller",
        0x04 => "Multimedia controller",
        0x05 => "Memory controller",
        0x06 => "Bridge",
        0x07 => "Communication controller",
        0x08 => "Generic system peripheral",
        0x09 => "Input device controller",
        0x0a => "Docking station",
        0x0b => "Processor",
        0x0c => "Serial bus controller",
        0x0d => "Wireless controller",
        0x0e => "Intelligent controller",
        0x0f => "Satellite communications controller",
        0x10 => "Encryption controller",
        0x11 => "Signal processing controller",
        0x12 => "Processing accelerators",
        0x13 => "Non-Essential Instrumentation",
        0x40 => "Coprocessor",
        0xff => "Unassigned class",
        _ => return None,
    })
}

pub(crate) fn pci_devices(sys: &Path, ids: &IdDatabase) -> Vec<PciDevice> {
    let raw: Vec<(String, u32, u16, u16, Option<String>)> = entries(&sys.join("bus/pci/devices"))
        .into_iter()
        .filter_map(|entry| {
            let path = entry.path();
            let class = hex(&read(&path.join("class"))?)?;
            let vendor = hex(&read(&path.join("vendor"))?)? as u16;
            let device = hex(&read(&path.join("device"))?)? as u16;
            let driver = std::fs::read_link(path.join("driver"))
                .ok()
                .and_then(|target| Some(target.file_name()?.to_string_lossy().into_owned()));
            Some((
                entry.file_name().to_string_lossy().into_owned(),
                class,
                vendor,
                device,
                driver,
            ))
        })
        .collect();
    raw.into_iter()
        .map(|(address, class, vendor, device, driver)| {
            let (base, sub) = ((class >> 16) as u8, (class >> 8) as u8);
            let names = ids.names(&[
                Id::Vendor(vendor),
                Id::Device(vendor, device),
                Id::Class(base, Some(sub)),
                Id::Class(base, None),
            ]);
            let [vendor_name, device_name, subclass_name, class_name] =
                <[Option<String>; 4]>::try_from(names).unwrap_or_default();
            PciDevice {
                address,
                class_id: format!("0x{class:06x}"),
                class: subclass_name
                    .or(class_name)
                    .or_else(|| base_class(base).map(String::from)),
                vendor_id: format!("0x{vendor:04x}"),
                device_id: format!("0x{device:04x}"),
                vendor: vendor_name,
                device: device_name,
                driver,
            }
        })
        .collect()
}

/// USB devices (not interfaces: the entries with an `idVendor`).
pub(crate) fn usb_devices(sys: &Path, ids: &IdDatabase) -> Vec<UsbDevice> {
    let mut devices: Vec<UsbDevice> = entries(&sys.join("bus/usb/devices"))
        .into_iter()
        .filter_map(|entry| {
            let path = entry.path();
            let vendor = hex(&read(&path.join("idVendor"))?)? as u16;
            let product = hex(&read(&path.join("idProduct"))?)? as u16;
            let number = |file: &str| read(&path.join(file))?.parse::<u32>().ok();
            let names = ids.names(&[Id::Vendor(vendor), Id::Device(vendor, product)]);
            let [vendor_name, product_name] =
                <[Option<String>; 2]>::try_from(names).unwrap_or_default();
            Some(UsbDevice {
                bus: number("busnum")?,
                device: number("devnum")?,
                vendor_id: format!("0x{vendor:04x}"),
                product_id: format!("0x{product:04x}"),
                manufacturer: read(&path.join("manufacturer")).or(vendor_name),
                product: read(&path.join("product")).or(product_name),
                speed_mbps: read(&path.join("speed")).and_then(|speed| speed.parse().ok()),
            })
        })
        .collect();
    devices.sort_by_key(|device| (device.bus, device.device));
    devices
}
