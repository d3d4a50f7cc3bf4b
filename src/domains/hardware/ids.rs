//! Vendor, device and class names from the `pci.ids` and `usb.ids` databases (pciutils' and
//! usbutils' files, under `[host] rootfs`), as `lspci` and `lsusb` name things.
//!
//! The format is simple (a vendor at column 0, its devices indented by a tab, a `C` section of
//! classes) and no maintained crate reads both files, so it is parsed here. The files are
//! large (1.3 MB): a lookup scans once for every id not yet known and remembers the answers.
//! Without the files, devices carry their numeric ids only.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// What to look up: a vendor, a device of a vendor, or (PCI) a class and subclass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Id {
    Vendor(u16),
    Device(u16, u16),
    Class(u8, Option<u8>),
}

/// One database file and the names already found in it.
pub(crate) struct IdDatabase {
    path: Option<PathBuf>,
    known: Mutex<HashMap<Id, Option<String>>>,
}

impl IdDatabase {
    /// The first of `candidates` (relative to `rootfs`) that exists.
    pub(crate) fn find(rootfs: &Path, candidates: &[&str]) -> Self {
        let path = candidates
            .iter()
            .map(|candidate| rootfs.join(candidate))
            .find(|path| path.is_file());
        Self {
            path,
            known: Mutex::new(HashMap::new()),
        }
    }

    /// Names for `ids`, in the same order; `None` where the database has no name (or there is
    /// no database).
    pub(crate) fn names(&self, ids: &[Id]) -> Vec<Option<String>> {
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        let missing: Vec<Id> = ids
            .iter()
            .filter(|id| !known.contains_key(id))
            .copied()
            .collect();
        if !missing.is_empty() {
            let text = self
                .path
                .as_ref()
                .and_then(|path| std::fs::read(path).ok())
                .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                .unwrap_or_default();
            let found = scan(&text, &missing);
            for id in missing {
                known.insert(id, found.get(&id).cloned());
            }
        }
        ids.iter()
            .map(|id| known.get(id).cloned().flatten())
            .collect()
    }
}

/// One pass over the file, collecting the names of `wanted`.
fn scan(text: &str, wanted: &[Id]) -> HashMap<Id, String> {
    let mut found = HashMap::new();
    let mut vendor: Option<u16> = None;
    let mut class: Option<u8> = None;
    let hex16 = |text: &str| u16::from_str_radix(text, 16).ok();
    let hex8 = |text: &str| u8::from_str_radix(text, 16).ok();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let depth = line.len() - line.trim_start_matches('\t').len();
        let entry = line.trim_start_matches('\t');
        let Some((id, name)) = entry.split_once("  ") else {
            continue;
        };
        let name = name.trim().to_string();
        match depth {
            0 => {
                if let Some(code) = id.strip_prefix("C ") {
                    vendor = None;
                    class = hex8(code);
                    if let Some(class) = class {
                        remember(&mut found, wanted, Id::Class(class, None), name);
                    }
                } else {
                    // Other top-level sections (usb.ids' `AT`, `HID`, ...) end the vendors.
                    class = None;
                    vendor = hex16(id).filter(|_| id.len() == 4);
                    if let Some(vendor) = vendor {
                        remember(&mut found, wanted, Id::Vendor(vendor), name);
                    }
                }
            }
            1 => {
                if let (Some(vendor), Some(device)) = (vendor, hex16(id)) {
                    remember(&mut found, wanted, Id::Device(vendor, device), name);
                } else if let (Some(class), Some(subclass)) = (class, hex8(id)) {
                    remember(&mut found, wanted, Id::Class(class, Some(subclass)), name);
                }
            }
            _ => {}
        }
    }
    found
}

fn remember(found: &mut HashMap<Id, String>, wanted: &[Id], id: Id, name: String) {
    if wanted.contains(&id) {
        found.entry(id).or_insert(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "# comment\n\
                          1af4  Red Hat, Inc.\n\
                          \t1041  Virtio 1.0 network device\n\
                          \t\t1af4 1100  QEMU Virtual Machine\n\
                          8086  Intel Corporation\n\
                          C 02  Network controller\n\
                          \t00  Ethernet controller\n\
                          C ff  Unassigned class\n";

    #[test]
    fn vendors_devices_and_classes_are_found() {
        let found = scan(
            SAMPLE,
            &[
                Id::Vendor(0x1af4),
                Id::Device(0x1af4, 0x1041),
                Id::Device(0x8086, 0x0d57),
                Id::Class(0x02, Some(0x00)),
                Id::Class(0xff, None),
            ],
        );
        assert_eq!(found[&Id::Vendor(0x1af4)], "Red Hat, Inc.");
        assert_eq!(
            found[&Id::Device(0x1af4, 0x1041)],
            "Virtio 1.0 network device"
        );
        assert!(!found.contains_key(&Id::Device(0x8086, 0x0d57)));
        assert_eq!(found[&Id::Class(0x02, Some(0x00))], "Ethernet controller");
        assert_eq!(found[&Id::Class(0xff, None)], "Unassigned class");
    }
}
