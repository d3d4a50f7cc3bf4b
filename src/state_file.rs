//! Files the server keeps its state in (the token file, the audit log's anchor): replaced whole
//! and at once, never half-written, readable by the server's user alone.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Replaces `path` with `bytes` all at once, mode 0600, creating its directory (0700): written
/// to a temporary file beside it, synced, renamed over it, and the directory synced. The file
/// belongs to the directory's owner: root running `systemmanager token create` on the state
/// directory of a service user (`/var/lib/systemmanager`, owned by `systemmanager`) leaves a file
/// that service can read. Errors: the directory or file cannot be created, written, handed to
/// the directory's owner, or renamed.
pub(crate) fn replace(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let directory = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !directory.exists() {
        std::fs::create_dir_all(directory)?;
        std::fs::set_permissions(directory, std::fs::Permissions::from_mode(0o700))?;
    }
    let temporary = directory.join(format!(
        ".{}.tmp-{}",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        std::process::id()
    ));
    {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temporary)?;
        file.write_all(bytes)?;
        hand_to_directory_owner(&file, directory)?;
        file.sync_all()?;
    }
    std::fs::rename(&temporary, path)?;
    File::open(directory)?.sync_all()
}

/// Gives `file` the owner and group of `directory` when they differ from ours and we may
/// (root); otherwise leaves it ours. Errors: `chown` fails.
pub(crate) fn hand_to_directory_owner(file: &File, directory: &Path) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    if !rustix::process::geteuid().is_root() {
        return Ok(());
    }
    let owner = std::fs::metadata(directory)?;
    if owner.uid() == 0 {
        return Ok(());
    }
    std::os::unix::fs::fchown(file, Some(owner.uid()), Some(owner.gid()))
}
