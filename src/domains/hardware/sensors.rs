//! Temperature sensors: hwmon chips (`/sys/class/hwmon`, what `sensors` reads) and thermal
//! zones (`/sys/class/thermal`) that no hwmon chip already reports.

use std::collections::HashSet;
use std::path::Path;

use schemars::JsonSchema;
use serde::Serialize;

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct Sensor {
    /// The chip or zone: `coretemp`, `k10temp`, `nvme`, `acpitz`, ...
    pub chip: String,
    /// What it measures: `Package id 0`, `Core 3`, `Composite`, `temp1`, ...
    pub label: String,
    pub celsius: f64,
    /// Where the hardware starts to worry (`tempN_max`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub high_celsius: Option<f64>,
    /// Where it shuts down or throttles hard (`tempN_crit`, a zone's critical trip point).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub critical_celsius: Option<f64>,
}

/// Millidegrees as sysfs writes them, to degrees with one decimal.
fn degrees(path: &Path) -> Option<f64> {
    let millis: f64 = std::fs::read_to_string(path).ok()?.trim().parse().ok()?;
    Some((millis / 100.0).round() / 10.0)
}

fn text(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|text| text.trim().to_string())
        .filter(|text| !text.is_empty())
}

fn sorted_entries(directory: &Path, prefix: &str) -> Vec<std::path::PathBuf> {
    let mut paths: Vec<_> = std::fs::read_dir(directory)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|entry| entry.file_name().to_string_lossy().starts_with(prefix))
                .map(|entry| entry.path())
                .collect()
        })
        .unwrap_or_default();
    // hwmon10 after hwmon9: sort by the number, then the name.
    paths.sort_by_key(|path| {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let number: u32 = name.trim_start_matches(prefix).parse().unwrap_or(u32::MAX);
        (number, name)
    });
    paths
}

pub(crate) fn temperatures(sys: &Path) -> Vec<Sensor> {
    let mut sensors = Vec::new();
    let mut chips = HashSet::new();
    for chip in sorted_entries(&sys.join("class/hwmon"), "hwmon") {
        let name = text(&chip.join("name")).unwrap_or_else(|| "hwmon".into());
        let mut inputs: Vec<u32> = std::fs::read_dir(&chip)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter_map(|entry| {
                        let file = entry.file_name().to_string_lossy().into_owned();
                        file.strip_prefix("temp")?
                            .strip_suffix("_input")?
                            .parse()
                            .ok()
                    })
                    .collect()
            })
            .unwrap_or_default();
        inputs.sort_unstable();
        for index in inputs {
            let file = |suffix: &str| chip.join(format!("temp{index}_{suffix}"));
            let Some(celsius) = degrees(&file("input")) else {
                continue;
            };
            sensors.push(Sensor {
                chip: name.clone(),
                label: text(&file("label")).unwrap_or_else(|| format!("temp{index}")),
                celsius,
                high_celsius: degrees(&file("max")),
                critical_celsius: degrees(&file("crit")),
            });
        }
        chips.insert(name);
    }
    for zone in sorted_entries(&sys.join("class/thermal"), "thermal_zone") {
        let Some(kind) = text(&zone.join("type")) else {
            continue;
        };
        let Some(celsius) = degrees(&zone.join("temp")) else {
            continue;
        };
        if chips.contains(&kind) {
            continue;
        }
        let critical = (0..16).find_map(|trip| {
            let kind = text(&zone.join(format!("trip_point_{trip}_type")))?;
            (kind == "critical")
                .then(|| degrees(&zone.join(format!("trip_point_{trip}_temp"))))
                .flatten()
        });
        sensors.push(Sensor {
            chip: zone
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default(),
            label: kind,
            celsius,
            high_celsius: None,
            critical_celsius: critical,
        });
    }
    sensors
}
