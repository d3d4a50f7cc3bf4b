//! The host's mounted filesystems, measured as `df` measures them: what `disk_usage` answers and
//! `/metrics` exports (node_filesystem_*).
//!
//! The mount table is the host's: `/proc/1/mountinfo` (PID 1's mount namespace), so a server in
//! a container or a private namespace still lists the host's mounts; `/proc/self/mountinfo`
//! when PID 1's is unreadable. Each filesystem is measured with `statvfs` at its mount point
//! under `[host] rootfs`.
//!
//! Like `df`, the default list leaves out what holds no files of anyone's: pseudo filesystems
//! (proc, sysfs, cgroup, ...), filesystems of size zero, mounts hidden under a later mount on
//! the same point, and second mounts of a device already listed (bind mounts).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use procfs::FromRead;
use procfs::process::{MountInfo, MountInfos};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::HostConfig;
use crate::domains::shared::kernel::tenths;
use crate::tool::ToolError;

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DiskUsageArguments {
    /// Also list pseudo filesystems, empty ones, and bind or hidden mounts (like `df -a`).
    pub include_pseudo: Option<bool>,
    /// Only the filesystem holding this absolute path (like `df PATH`).
    pub path: Option<String>,
}

/// The answer of `disk_usage`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct DiskUsage {
    pub filesystems: Vec<Filesystem>,
    /// Mounts left out: pseudo, empty, hidden under another mount, bind or duplicate mounts,
    /// and mounts that could not be measured (with include_pseudo, only the last).
    pub hidden: u32,
}

/// One mounted filesystem. Sizes count as `df` counts them: `used` is blocks in use;
/// `available` is what unprivileged users may still write (reserved blocks excluded).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct Filesystem {
    /// What is mounted: a device such as `/dev/sda1`, a remote share, or a name like `tmpfs`.
    pub device: String,
    /// Filesystem type: ext4, xfs, btrfs, tmpfs, nfs4, ...
    pub fs_type: String,
    pub mount_point: String,
    pub size_bytes: u64,
    pub used_bytes: u64,
    pub available_bytes: u64,
    /// `used / (used + available)`, as `df` computes `Use%`.
    pub used_percent: f64,
    /// Inode counts, when the filesystem has a fixed number of inodes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inodes: Option<Inodes>,
    pub read_only: bool,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct Inodes {
    pub total: u64,
    pub used: u64,
    pub free: u64,
    pub used_percent: f64,
}

/// Filesystem types that hold no stored data: kernel interfaces and control filesystems.
const PSEUDO_TYPES: &[&str] = &[
    "autofs",
    "binfmt_misc",
    "bpf",
    "cgroup",
    "cgroup2",
    "configfs",
    "debugfs",
    "devpts",
    "efivarfs",
    "fusectl",
    "hugetlbfs",
    "mqueue",
    "nsfs",
    "proc",
    "pstore",
    "rpc_pipefs",
    "securityfs",
    "selinuxfs",
    "sysfs",
    "tracefs",
];

/// Measures the filesystems of the host `[host]` locates.
pub(crate) struct DiskUsageCollector {
    host: HostConfig,
}

impl DiskUsageCollector {
    pub(crate) fn new(host: HostConfig) -> Self {
        Self { host }
    }

    /// Blocking: `statvfs` on a network filesystem can wait on the network.
    pub(crate) fn usage(&self, arguments: &DiskUsageArguments) -> Result<DiskUsage, ToolError> {
        let mounts = self.mount_table()?;
        if let Some(path) = &arguments.path {
            return self.holding(&mounts, path);
        }
        let everything = arguments.include_pseudo.unwrap_or(false);
        let visible = topmost(&mounts);
        let mut seen_devices = HashSet::new();
        let mut filesystems = Vec::new();
        let mut hidden = 0;
        for (index, mount) in mounts.iter().enumerate() {
            let shown = everything
                || (visible.contains(&index)
                    && !PSEUDO_TYPES.contains(&mount.fs_type.as_str())
                    && seen_devices.insert(mount.majmin.as_str()));
            let measured = shown.then(|| self.measure(mount)).flatten();
            match measured {
                Some(fs) if everything || fs.size_bytes > 0 => filesystems.push(fs),
                _ => hidden += 1,
            }
        }
        Ok(DiskUsage {
            filesystems,
            hidden,
        })
    }

    fn mount_table(&self) -> Result<Vec<MountInfo>, ToolError> {
        let proc = &self.host.proc;
        let read = |path: PathBuf| MountInfos::from_file(path).map(|infos| infos.0);
        read(proc.join("1/mountinfo"))
            .or_else(|_| read(proc.join("self/mountinfo")))
            .map_err(|error| {
                ToolError::unavailable(format!(
                    "cannot read the mount table under {}: {error} (is host.proc right?)",
                    proc.display()
                ))
            })
    }

    /// The filesystem holding `path`: the visible mount with the longest matching mount point.
    fn holding(&self, mounts: &[MountInfo], path: &str) -> Result<DiskUsage, ToolError> {
        let wanted = Path::new(path);
        if !wanted.is_absolute() {
            return Err(ToolError::invalid_arguments(format!(
                "path `{path}` is not absolute; give a path starting with /"
            )));
        }
        let visible = topmost(mounts);
        let best = mounts
            .iter()
            .enumerate()
            .filter(|(index, mount)| {
                visible.contains(index) && wanted.starts_with(unescape(&mount.mount_point))
            })
            .max_by_key(|(_, mount)| unescape(&mount.mount_point).components().count())
            .map(|(_, mount)| mount);
        let fs = best
            .and_then(|mount| self.measure(mount))
            .ok_or_else(|| ToolError::not_found(format!("no mounted filesystem holds `{path}`")))?;
        Ok(DiskUsage {
            filesystems: vec![fs],
            hidden: 0,
        })
    }

    /// `statvfs` at the mount point as seen under `rootfs`; `None` when it cannot be measured
    /// (unreachable, or permission denied for this user).
    fn measure(&self, mount: &MountInfo) -> Option<Filesystem> {
        let mount_point = unescape(&mount.mount_point);
        let relative = mount_point.strip_prefix("/").unwrap_or(&mount_point);
        let stats = rustix::fs::statvfs(self.host.rootfs.join(relative)).ok()?;
        let fragment = stats.f_frsize.max(1);
        let size = stats.f_blocks * fragment;
        let used = stats.f_blocks.saturating_sub(stats.f_bfree) * fragment;
        let available = stats.f_bavail * fragment;
        let inodes = (stats.f_files > 0).then(|| {
            let used = stats.f_files.saturating_sub(stats.f_ffree);
            Inodes {
                total: stats.f_files,
                used,
                free: stats.f_ffree,
                used_percent: percent(used, stats.f_ffree),
            }
        });
        Some(Filesystem {
            device: mount
                .mount_source
                .as_deref()
                .map(unescape_text)
                .unwrap_or_else(|| mount.fs_type.clone()),
            fs_type: mount.fs_type.clone(),
            mount_point: mount_point.to_string_lossy().into_owned(),
            size_bytes: size,
            used_bytes: used,
            available_bytes: available,
            used_percent: percent(used, available),
            inodes,
            // The host's mount table says; statvfs would report this server's own view, which
            // a hardened unit (ProtectSystem=strict) or a read-only /host bind makes read-only.
            read_only: mount.mount_options.contains_key("ro")
                || mount.super_options.contains_key("ro"),
        })
    }
}

/// `df`'s `Use%`: used out of what users can have (used + available), reserved blocks aside.
fn percent(used: u64, available: u64) -> f64 {
    let whole = used + available;
    if whole == 0 {
        0.0
    } else {
        tenths(used as f64 * 100.0 / whole as f64)
    }
}

/// Indexes of the mounts not hidden by a later mount on the same mount point.
fn topmost(mounts: &[MountInfo]) -> HashSet<usize> {
    let mut seen = HashSet::new();
    let mut visible = HashSet::new();
    for (index, mount) in mounts.iter().enumerate().rev() {
        if seen.insert(&mount.mount_point) {
            visible.insert(index);
        }
    }
    visible
}

/// The kernel escapes space, tab, newline and backslash in mountinfo as `\ooo` octal.
fn unescape_text(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).filter(|digits| {
            bytes[i] == b'\\' && digits.iter().all(|digit| (b'0'..=b'7').contains(digit))
        });
        match octal {
            Some(digits) => {
                let value = digits
                    .iter()
                    .fold(0u32, |value, digit| value * 8 + u32::from(digit - b'0'));
                out.push(value as u8);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn unescape(path: &Path) -> PathBuf {
    PathBuf::from(unescape_text(&path.to_string_lossy()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape_text(r"/mnt/my\040disk"), "/mnt/my disk");
        assert_eq!(unescape_text(r"/a\134b"), r"/a\b");
        assert_eq!(unescape_text(r"/plain\x"), r"/plain\x");
        assert_eq!(unescape_text(r"/end\04"), r"/end\04");
    }

    #[test]
    fn a_later_mount_on_the_same_point_hides_the_earlier() {
        let line = |id: i32, point: &str| {
            MountInfo::from_line(&format!("{id} 1 0:{id} / {point} rw - tmpfs tmpfs rw"))
                .expect("parses")
        };
        let mounts = vec![line(1, "/"), line(2, "/dev/shm"), line(3, "/dev/shm")];
        let visible = topmost(&mounts);
        assert!(visible.contains(&0) && visible.contains(&2) && !visible.contains(&1));
    }

    #[test]
    fn use_percent_is_of_what_users_can_have() {
        assert_eq!(percent(40, 60), 40.0);
        assert_eq!(percent(0, 0), 0.0);
    }
}
