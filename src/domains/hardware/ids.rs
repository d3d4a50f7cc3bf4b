//! Vendor, device and class names from the `pci.ids` and `usb.ids` databases (pciutils' and
//! usbutils' files, under `[host] rootfs`), as `lspci` and `lsusb` name things.
//!
//! The host's own file comes first: it is what `lspci` shows there, and distributions update it.
//! Its format is simple (a vendor at column 0, its devices indented by a tab, a `C` section of
//! classes) and no maintained crate reads an arbitrary file of it, so it is parsed here; the
//! files are large (1.3 MB): a lookup scans once for every id not yet known and remembers the
//! answers. Where the host has no file (minimal images, many datacenter hosts) or the file has
//! no name for an id, the databases built into the binary answer (the `pci-ids` and `usb-ids`
//! crates, generated from the same repositories at build time).

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

/// Which built-in database backs a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Embedded {
    Pci,
    Usb,
}

impl Embedded {
    fn name(self, id: Id) -> Option<&'static str> {
        match (self, id) {
            (Embedded::Pci, Id::Vendor(vendor)) => {
                <pci_ids::Vendor as pci_ids::FromId<u16>>::from_id(vendor).map(|v| v.name())
            }
            (Embedded::Pci, Id::Device(vendor, device)) => {
                pci_ids::Device::from_vid_pid(vendor, device).map(|d| d.name())
            }
            (Embedded::Pci, Id::Class(class, None)) => {
                <pci_ids::Class as pci_ids::FromId<u8>>::from_id(class).map(|c| c.name())
            }
            (Embedded::Pci, Id::Class(class, Some(subclass))) => {
                pci_ids::Subclass::from_cid_sid(class, subclass).map(|s| s.name())
            }
            (Embedded::Usb, Id::Vendor(vendor)) => {
                <usb_ids::Vendor as usb_ids::FromId<u16>>::from_id(vendor).map(|v| v.name())
            }
            (Embedded::Usb, Id::Device(vendor, device)) => {
                usb_ids::Device::from_vid_pid(vendor, device).map(|d| d.name())
            }
            (Embedded::Usb, Id::Class(class, None)) => {
                <usb_ids::Class as usb_ids::FromId<u8>>::from_id(class).map(|c| c.name())
            }
            (Embedded::Usb, Id::Class(_, Some(_))) => None,
        }
    }
}

/// One database file, the built-in database behind it, and the names already found.
pub(crate) struct IdDatabase {
    path: Option<PathBuf>,
    embedded: Embedded,
    known: Mutex<HashMap<Id, Option<String>>>,
}

impl IdDatabase {
    /// The first of `candidates` (relative to `rootfs`) that exists, backed by `embedded`.
    pub(crate) fn find(rootfs: &Path, candidates: &[&str], embedded: Embedded) -> Self {
        let path = candidates
            .iter()
            .map(|candidate| rootfs.join(candidate))
            .find(|path| path.is_file());
        Self {
            path,
            embedded,
            known: Mutex::new(HashMap::new()),
        }
    }

    /// The host's file, when it has one (else names come from the built-in database).
    pub(crate) fn file(&self) -> Option<&Path> {
        self.path.as_deref()
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
                let name = found
                    .get(&id)
                    .cloned()
                    .or_else(|| self.embedded.name(id).map(str::to_string));
                known.insert(id, name);
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

    #[test]
    fn without_a_file_the_built_in_database_names_devices() {
        let nowhere = IdDatabase::find(Path::new("/nonexistent"), &["pci.ids"], Embedded::Pci);
        assert!(nowhere.file().is_none());
        let names = nowhere.names(&[
            Id::Vendor(0x10de),
            Id::Device(0x10de, 0x2335),
            Id::Class(0x03, Some(0x02)),
        ]);
        assert_eq!(names[0].as_deref(), Some("NVIDIA Corporation"));
        assert_eq!(names[1].as_deref(), Some("GH100 [H200 SXM 141GB]"));
        assert_eq!(names[2].as_deref(), Some("3D controller"));
        let usb = IdDatabase::find(Path::new("/nonexistent"), &["usb.ids"], Embedded::Usb);
        assert_eq!(
            usb.names(&[Id::Vendor(0x1d6b)])[0].as_deref(),
            Some("Linux Foundation")
        );
    }
}
