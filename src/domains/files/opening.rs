//! Opening for contents: a file is read only if it is a regular file at the moment it is
//! opened, and a walk never follows a symlink.
//!
//! A `stat` of a name followed by an `open` of the same name is a race: between the two, the
//! name can become a FIFO (the open then waits for a writer, forever, holding a blocking
//! thread), a device (whose open may act) or a symlink to a denied file. So nothing is
//! stat-ed before it is opened; the handle is `fstat`ed.
//!
//! A path a caller names ([`open_regular`]) is first opened `O_PATH`, which neither waits for
//! a FIFO's writer nor runs a device's open (a caller may name `/dev/watchdog`, whose open
//! arms a reboot), and only a regular file is reopened for reading, through
//! `/proc/self/fd/N`: the same inode, without looking the name up again. Without `/proc`, the
//! name is opened again with `O_NONBLOCK` and must turn out to be the same inode.
//!
//! A walk (search) met the name in `readdir` as a regular file, so it opens it once
//! ([`open_child_regular`]): `O_NONBLOCK` (a FIFO swapped in cannot block the open),
//! `O_NOFOLLOW` (a symlink swapped in fails), `O_NOCTTY`, then `fstat`. That saves a second
//! open per file on the hot path; a device could be opened only if one were renamed into the
//! walk, which takes a device node on the root's filesystem and write access beside it.
//!
//! Directory walks open each child directory by its single name, with `O_NOFOLLOW` and
//! `O_DIRECTORY`, through the parent's handle: a symlink swapped in for a directory fails the
//! open instead of leading elsewhere.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};

use cap_std::fs::Dir;
use rustix::fs::{Mode, OFlags};

/// Why a file was not opened for reading.
#[derive(Debug)]
pub(crate) enum NotOpened {
    /// The system refused (missing, permission, a symlink where none is followed, ...).
    Io(io::Error),
    /// Not a regular file at the moment of opening: its kind, as answers name kinds.
    NotRegular(&'static str),
    /// A regular file with more than one hard link (this many), refused under
    /// `files.refuse_hardlinks`.
    HardLinked(u64),
}

impl From<io::Error> for NotOpened {
    fn from(error: io::Error) -> Self {
        Self::Io(error)
    }
}

/// A regular file opened for reading, and its size in bytes when it was opened.
#[derive(Debug)]
pub(crate) struct Regular {
    pub file: File,
    pub size: u64,
}

/// The flags a regular file is read with: `O_NONBLOCK` so that nothing swapped in under the
/// name can make the open wait, `O_NOCTTY` so that no terminal becomes ours.
fn read_flags() -> i32 {
    // The OFlags bits are small positive constants; the cast keeps their value.
    (OFlags::NONBLOCK | OFlags::NOCTTY).bits() as i32
}

/// `O_PATH`: a handle that names an inode without opening it for I/O.
pub(crate) fn path_flag() -> i32 {
    OFlags::PATH.bits() as i32
}

/// Opens the single name `name` (from `readdir`) in `dir` as a directory to read, never
/// following a symlink: a symlink swapped in for a directory fails with `ELOOP`/`ENOTDIR`.
pub(crate) fn open_child_dir(dir: &Dir, name: &OsStr) -> io::Result<Dir> {
    refuse_dot_names(name)?;
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    Ok(Dir::from(fd))
}

/// `.` and `..` would leave the single-name rule (`..` the directory itself); `readdir` never
/// hands them to a walk, and a name with a slash is not one name.
fn refuse_dot_names(name: &OsStr) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes == b"." || bytes == b".." || bytes.contains(&b'/') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a single file name",
        ));
    }
    Ok(())
}

/// Opens the single name `name` (from `readdir`) in `dir` for reading, never following a
/// symlink and never waiting (`O_NONBLOCK`), and keeps it only if the handle is a regular
/// file (and, with `refuse_hardlinks`, has one link).
pub(crate) fn open_child_regular(
    dir: &Dir,
    name: &OsStr,
    refuse_hardlinks: bool,
) -> Result<Regular, NotOpened> {
    refuse_dot_names(name)?;
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOFOLLOW | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(io::Error::from)?;
    checked(File::from(fd), None, refuse_hardlinks)
}

/// Turns an `O_PATH` handle into a regular file open for reading, or says why not.
///
/// `again` opens the same name anew with the given extra flags (`O_NONBLOCK | O_NOCTTY`); it
/// is used only when `/proc/self/fd` cannot reopen the handle. With `refuse_hardlinks`, a
/// regular file with more than one link is refused. The returned file is blocking again
/// (`O_NONBLOCK` is cleared once it is known to be regular).
pub(crate) fn open_regular(
    path: OwnedFd,
    refuse_hardlinks: bool,
    again: impl FnOnce(i32) -> io::Result<File>,
) -> Result<Regular, NotOpened> {
    let path = File::from(path);
    let before = path.metadata()?;
    let kind = kind_name(&before.file_type());
    if kind != "file" {
        return Err(NotOpened::NotRegular(kind));
    }
    let file = match reopen(&path) {
        Ok(file) => file,
        // No /proc (or not ours to read): the name, once more, without waiting.
        Err(error) if error.kind() == io::ErrorKind::NotFound => again(read_flags())?,
        Err(error) => return Err(NotOpened::Io(error)),
    };
    checked(file, Some((before.dev(), before.ino())), refuse_hardlinks)
}

/// Keeps `file` if its handle is a regular file (the inode `expected`, when given), with one
/// link under `refuse_hardlinks`; it is made blocking again.
fn checked(
    file: File,
    expected: Option<(u64, u64)>,
    refuse_hardlinks: bool,
) -> Result<Regular, NotOpened> {
    let after = file.metadata()?;
    if expected.is_some_and(|inode| inode != (after.dev(), after.ino())) {
        // Only the fallback can get here: the name was swapped between the two opens.
        return Err(NotOpened::Io(io::Error::other(
            "the file changed while it was being opened",
        )));
    }
    let kind = kind_name(&after.file_type());
    if kind != "file" {
        return Err(NotOpened::NotRegular(kind));
    }
    if refuse_hardlinks && after.nlink() > 1 {
        return Err(NotOpened::HardLinked(after.nlink()));
    }
    // Regular files ignore O_NONBLOCK in the kernel, but FUSE passes it on to its daemon.
    rustix::fs::fcntl_setfl(file.as_fd(), OFlags::empty()).map_err(io::Error::from)?;
    Ok(Regular {
        size: after.len(),
        file,
    })
}

/// Reopens the inode an `O_PATH` handle names, for reading, through its `/proc/self/fd` link.
fn reopen(path: &File) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(read_flags())
        .open(format!("/proc/self/fd/{}", path.as_raw_fd()))
}

/// The kind of a file, as answers name it.
pub(crate) fn kind_name(kind: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    super::confine::kind_name!(kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn dir(path: &std::path::Path) -> Dir {
        Dir::open_ambient_dir(path, cap_std::ambient_authority()).expect("open dir")
    }

    fn no_fallback(_: i32) -> io::Result<File> {
        Err(io::Error::other("no fallback in tests"))
    }

    /// A named path's way: `O_PATH` first, then reopened only if regular.
    fn open_named(path: &str, refuse_hardlinks: bool) -> Result<Regular, NotOpened> {
        let handle = rustix::fs::openat(
            rustix::fs::CWD,
            path,
            OFlags::PATH | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(io::Error::from)?;
        open_regular(handle, refuse_hardlinks, no_fallback)
    }

    fn mkfifo(path: &std::path::Path) {
        let made = std::process::Command::new("mkfifo")
            .arg(path)
            .status()
            .expect("mkfifo");
        assert!(made.success());
    }

    #[test]
    fn a_fifo_or_device_is_refused_without_being_opened_for_reading() {
        let temp = tempfile::tempdir().expect("tempdir");
        let fifo = temp.path().join("fifo");
        mkfifo(&fifo);
        // Each would block (a FIFO without a writer) if opened for reading without O_NONBLOCK.
        assert!(matches!(
            open_child_regular(&dir(temp.path()), OsStr::new("fifo"), false),
            Err(NotOpened::NotRegular("fifo"))
        ));
        assert!(matches!(
            open_named(&fifo.to_string_lossy(), false),
            Err(NotOpened::NotRegular("fifo"))
        ));
        assert!(matches!(
            open_named("/dev/null", false),
            Err(NotOpened::NotRegular("char_device"))
        ));
    }

    #[test]
    fn a_symlink_is_not_followed_and_a_regular_file_reads() {
        let temp = tempfile::tempdir().expect("tempdir");
        std::fs::write(temp.path().join("plain"), "text\n").expect("write");
        std::os::unix::fs::symlink("plain", temp.path().join("link")).expect("symlink");
        std::fs::create_dir(temp.path().join("sub")).expect("mkdir");
        std::os::unix::fs::symlink("sub", temp.path().join("sub-link")).expect("symlink");
        let root = dir(temp.path());
        for mut opened in [
            open_child_regular(&root, OsStr::new("plain"), false).expect("plain opens"),
            open_named(&temp.path().join("plain").to_string_lossy(), false).expect("named"),
        ] {
            let mut text = String::new();
            opened.file.read_to_string(&mut text).expect("read");
            assert_eq!((text.as_str(), opened.size), ("text\n", 5));
        }
        let link = open_child_regular(&root, OsStr::new("link"), false);
        assert!(
            matches!(&link, Err(NotOpened::Io(error)) if error.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error())),
            "{link:?}"
        );
        assert!(open_child_dir(&root, OsStr::new("sub")).is_ok());
        assert!(open_child_dir(&root, OsStr::new("sub-link")).is_err());
        assert!(open_child_dir(&root, OsStr::new("..")).is_err());
        assert!(open_child_regular(&root, OsStr::new("sub/../plain"), false).is_err());
    }

    #[test]
    fn hard_links_are_refused_only_when_asked() {
        let temp = tempfile::tempdir().expect("tempdir");
        std::fs::write(temp.path().join("a"), "x").expect("write");
        std::fs::hard_link(temp.path().join("a"), temp.path().join("b")).expect("link");
        let root = dir(temp.path());
        assert!(open_child_regular(&root, OsStr::new("b"), false).is_ok());
        assert!(matches!(
            open_child_regular(&root, OsStr::new("b"), true),
            Err(NotOpened::HardLinked(2))
        ));
        assert!(matches!(
            open_named(&temp.path().join("a").to_string_lossy(), true),
            Err(NotOpened::HardLinked(2))
        ));
    }
}
