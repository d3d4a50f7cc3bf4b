//! `systemmanager audit verify FILE...`.

use std::io::Write;
use std::path::PathBuf;

use crate::audit::verify;

/// Verifies the chain of `files` (oldest first); true when intact.
pub fn verify(files: &[PathBuf], out: &mut dyn Write) -> anyhow::Result<bool> {
    anyhow::ensure!(!files.is_empty(), "name the audit files, oldest first");
    let report = verify::verify_files(files)
        .map_err(|error| anyhow::anyhow!("cannot read the audit log: {error}"))?;
    writeln!(out, "{report}")?;
    Ok(report.is_ok())
}
