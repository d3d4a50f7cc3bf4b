//! The CPU as `lscpu` describes it: vendor, model, topology, frequency range, caches and a
//! summary of its feature flags, from `/proc/cpuinfo` and `/sys/devices/system/cpu`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use schemars::JsonSchema;
use serde::Serialize;

use crate::domains::shared::kernel;

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct CpuDetails {
    /// `GenuineIntel`, `AuthenticAMD`, or an ARM implementer code.
    pub vendor: String,
    pub model: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_number: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stepping: Option<u32>,
    pub sockets: u32,
    /// Physical cores, all sockets.
    pub cores: u32,
    /// Logical CPUs (hardware threads) online.
    pub threads: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_mhz: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_mhz: Option<f64>,
    pub caches: Vec<CpuCache>,
    /// Running under a hypervisor (the `hypervisor` flag).
    pub virtualized: bool,
    /// Hardware virtualization this CPU offers guests: `vmx` (Intel) or `svm` (AMD).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub virtualization: Option<String>,
    /// Feature flags people ask about (aes, avx2, avx512f, sha_ni, ...) that this CPU has.
    pub notable_flags: Vec<String>,
    /// How many flags the CPU reports in all.
    pub flag_count: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub(crate) struct CpuCache {
    /// L1d, L1i, L2, L3, ...
    pub name: String,
    pub level: u32,
    /// Data, Instruction or Unified.
    #[serde(rename = "type")]
    pub kind: String,
    /// The size of one instance.
    pub size_bytes: u64,
    /// Separate instances across the CPUs (one per core for L1, often one per socket for L3).
    pub instances: u32,
}

const NOTABLE_FLAGS: &[&str] = &[
    "aes",
    "avx",
    "avx2",
    "avx512f",
    "avx512_bf16",
    "avx512_vnni",
    "amx_tile",
    "sha_ni",
    "sse4_2",
    "rdrand",
    "nx",
    "lm",
    "pdpe1gb",
    "x2apic",
    "asimd",
    "sve",
    "sve2",
    "sha2",
    "sha3",
    "crc32",
    "atomics",
];

pub(crate) fn details(proc: &Path, sys: &Path) -> CpuDetails {
    let first = kernel::first_cpuinfo_block(proc);
    let value = |keys: &[&str]| kernel::cpuinfo_field(&first, keys);
    let number = |keys: &[&str]| value(keys).and_then(|text| text.parse::<u32>().ok());
    let flags: BTreeSet<String> = value(&["flags", "Features"])
        .unwrap_or_default()
        .split_ascii_whitespace()
        .map(String::from)
        .collect();
    let cpu_root = sys.join("devices/system/cpu");
    let online = kernel::online_cpus(sys).unwrap_or_default();
    let (cores, sockets) = kernel::topology(sys, &online).unwrap_or((online.len() as u32, 1));
    let frequency = |file: &str| {
        let khz: f64 = std::fs::read_to_string(cpu_root.join("cpu0/cpufreq").join(file))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        Some(khz / 1000.0)
    };
    CpuDetails {
        vendor: value(&["vendor_id", "CPU implementer"]).unwrap_or_else(|| "unknown".into()),
        model: value(kernel::CPU_MODEL_KEYS).unwrap_or_else(|| "unknown".into()),
        family: number(&["cpu family"]),
        model_number: number(&["model"]),
        stepping: number(&["stepping"]),
        sockets,
        cores,
        threads: online.len() as u32,
        min_mhz: frequency("cpuinfo_min_freq"),
        max_mhz: frequency("cpuinfo_max_freq"),
        caches: caches(&cpu_root, &online),
        virtualized: flags.contains("hypervisor"),
        virtualization: ["vmx", "svm"]
            .iter()
            .find(|flag| flags.contains(**flag))
            .map(|flag| flag.to_string()),
        notable_flags: NOTABLE_FLAGS
            .iter()
            .filter(|flag| flags.contains(**flag))
            .map(|flag| flag.to_string())
            .collect(),
        flag_count: flags.len(),
    }
}

/// Caches per `cacheN/indexM`, instances counted by their distinct `shared_cpu_list`.
fn caches(cpu_root: &Path, online: &[u32]) -> Vec<CpuCache> {
    let mut by_name: BTreeMap<(u32, String), (CpuCache, BTreeSet<String>)> = BTreeMap::new();
    for cpu in online {
        let Ok(indexes) = std::fs::read_dir(cpu_root.join(format!("cpu{cpu}/cache"))) else {
            continue;
        };
        for index in indexes.filter_map(Result::ok) {
            let read = |file: &str| {
                std::fs::read_to_string(index.path().join(file))
                    .ok()
                    .map(|text| text.trim().to_string())
            };
            let (Some(level), Some(kind), Some(size)) = (
                read("level").and_then(|l| l.parse::<u32>().ok()),
                read("type"),
                read("size").and_then(|s| parse_size(&s)),
            ) else {
                continue;
            };
            let name = match kind.as_str() {
                "Data" => format!("L{level}d"),
                "Instruction" => format!("L{level}i"),
                _ => format!("L{level}"),
            };
            let entry = by_name.entry((level, name.clone())).or_insert_with(|| {
                (
                    CpuCache {
                        name,
                        level,
                        kind,
                        size_bytes: size,
                        instances: 0,
                    },
                    BTreeSet::new(),
                )
            });
            entry
                .1
                .insert(read("shared_cpu_list").unwrap_or_else(|| cpu.to_string()));
        }
    }
    by_name
        .into_values()
        .map(|(mut cache, sharing)| {
            cache.instances = sharing.len() as u32;
            cache
        })
        .collect()
}

/// Cache sizes as sysfs writes them: `32K`, `1024K`, `32M`.
fn parse_size(text: &str) -> Option<u64> {
    let (digits, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit())?);
    let value: u64 = digits.parse().ok()?;
    match unit {
        "K" => Some(value * 1024),
        "M" => Some(value * 1024 * 1024),
        "G" => Some(value * 1024 * 1024 * 1024),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_sizes_parse() {
        assert_eq!(parse_size("32K"), Some(32 * 1024));
        assert_eq!(parse_size("32M"), Some(32 * 1024 * 1024));
        assert_eq!(parse_size("512"), None);
    }
}
