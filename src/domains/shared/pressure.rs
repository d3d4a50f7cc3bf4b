//! Pressure stall information (`/proc/pressure/{cpu,memory,io}`): the share of time tasks waited
//! for a resource. Kernels without PSI (or with it disabled) simply have no such files; the
//! tools then leave the field out.

use std::path::Path;

use procfs::{FromRead, PressureRecord};
use schemars::JsonSchema;
use serde::Serialize;

use crate::domains::shared::kernel::tenths;

/// Stall shares over the kernel's three windows.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct Pressure {
    /// Time at least one task was stalled.
    pub some: StallShares,
    /// Time all non-idle tasks were stalled at once (not reported for CPU, where the kernel
    /// defines it as zero system-wide).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full: Option<StallShares>,
}

/// Percent of wall time stalled, averaged over 10 s, 60 s and 300 s.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct StallShares {
    pub avg10: f64,
    pub avg60: f64,
    pub avg300: f64,
}

impl From<&PressureRecord> for StallShares {
    fn from(record: &PressureRecord) -> Self {
        let share = |value: f32| tenths(f64::from(value));
        Self {
            avg10: share(record.avg10),
            avg60: share(record.avg60),
            avg300: share(record.avg300),
        }
    }
}

impl Pressure {
    /// One-line form for text renderings: `some 1.2/0.8/0.3%`.
    pub(crate) fn render(&self) -> String {
        let windows =
            |shares: &StallShares| format!("{}/{}/{}%", shares.avg10, shares.avg60, shares.avg300);
        match &self.full {
            Some(full) => format!("some {} full {}", windows(&self.some), windows(full)),
            None => format!("some {}", windows(&self.some)),
        }
    }
}

pub(crate) fn cpu(proc: &Path) -> Option<Pressure> {
    let pressure = procfs::CpuPressure::from_file(proc.join("pressure/cpu")).ok()?;
    Some(Pressure {
        some: (&pressure.some).into(),
        full: None,
    })
}

pub(crate) fn memory(proc: &Path) -> Option<Pressure> {
    let pressure = procfs::MemoryPressure::from_file(proc.join("pressure/memory")).ok()?;
    Some(Pressure {
        some: (&pressure.some).into(),
        full: Some((&pressure.full).into()),
    })
}

pub(crate) fn io(proc: &Path) -> Option<Pressure> {
    let pressure = procfs::IoPressure::from_file(proc.join("pressure/io")).ok()?;
    Some(Pressure {
        some: (&pressure.some).into(),
        full: Some((&pressure.full).into()),
    })
}
