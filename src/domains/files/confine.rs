//! Confinement: every path a caller names is opened beneath one of the configured roots, by
//! the kernel, never by comparing strings.
//!
//! A root is opened once as a directory handle (`cap_std::fs::Dir`). A caller's absolute path
//! picks its root by a component-wise prefix; the rest is opened relative to that handle with
//! `openat2(RESOLVE_BENEATH)` (cap-std's own checked resolution on kernels without it), so
//! `..`, absolute symlinks, symlinks that lead out, `/proc/self/root` tricks and a symlink
//! swapped in mid-request all fail inside the kernel. A file is opened for its contents only
//! if it is regular at the moment of opening (`opening.rs`). What was opened is then checked
//! against the deny list twice: as the caller named it, and by its real path from
//! `/proc/self/fd` (a symlink inside a root to a denied file inside the root is still
//! denied). Walks (search) open entries by their single name, without following symlinks, and
//! check each handle's real path the same way.
//!
//! The deny list binds names: a hard link, a bind mount, or a rename by someone who can write
//! inside a root gives a denied file's contents another name. `files.refuse_hardlinks` refuses
//! regular files with more than one link, for roots where untrusted users can write.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use cap_std::ambient_authority;
use cap_std::fs::{Dir, File, OpenOptions, OpenOptionsExt};
use globset::GlobSet;

use super::opening::{self, NotOpened};

use crate::config::FilesConfig;
use crate::render;
use crate::tool::{ClientRoots, ToolError};

/// The longest path accepted (the kernel's `PATH_MAX`).
const MAX_PATH_BYTES: usize = 4096;

/// One configured root, opened.
pub(crate) struct Root {
    /// As configured: what callers write.
    pub path: PathBuf,
    /// Where it really is (symlinks in the configured path resolved).
    real: PathBuf,
    dir: Dir,
}

/// The configured roots and the deny list.
pub(crate) struct Roots {
    roots: Vec<Root>,
    deny: GlobSet,
    deny_texts: Vec<String>,
    /// `files.refuse_hardlinks`: regular files with more than one link are not read.
    refuse_hardlinks: bool,
    /// The descriptors all file calls together may hold.
    descriptors: super::descriptors::DescriptorBudget,
}

/// Why a file met in a walk was not opened for reading (or an open of a named path failed):
/// each kind is counted apart by a search, and said in words by [`Refusal::explain`].
#[derive(Debug)]
pub(crate) enum Refusal {
    Io(io::Error),
    /// Not a regular file when it was opened: its kind.
    NotRegular(&'static str),
    /// More than one hard link (this many), under `files.refuse_hardlinks`.
    HardLinked(u64),
    /// On the deny list, by this pattern, as named or as really opened.
    Denied(String),
    /// Really outside its root (renamed out from under a walk, for one).
    Escapes,
    /// Really outside the client's MCP Roots.
    OutsideClientRoots(std::sync::Arc<[PathBuf]>),
}

impl From<NotOpened> for Refusal {
    fn from(not_opened: NotOpened) -> Self {
        match not_opened {
            NotOpened::Io(error) => Self::Io(error),
            NotOpened::NotRegular(kind) => Self::NotRegular(kind),
            NotOpened::HardLinked(links) => Self::HardLinked(links),
        }
    }
}

impl Refusal {
    /// The refusal as a sentence about the caller's path.
    pub(crate) fn explain(self, shown: &Path) -> ToolError {
        match self {
            Self::Io(error) => explain(shown, error),
            Self::NotRegular(kind) => non_file(shown, kind),
            Self::HardLinked(links) => ToolError::invalid_arguments(format!(
                "`{}` has {links} hard links; this server reads no file with more than one \
                 (files.refuse_hardlinks), since another of its names could be a denied file's",
                path_text(shown)
            )),
            Self::Denied(pattern) => ToolError::invalid_arguments(format!(
                "`{}` is on the deny list (`{pattern}`); it is never read",
                path_text(shown)
            )),
            Self::Escapes => escapes(shown),
            Self::OutsideClientRoots(client_roots) => outside_client_roots(shown, &client_roots),
        }
    }
}

/// A path resolved to a root and a path beneath it.
pub(crate) struct Located<'a> {
    pub root: &'a Root,
    /// Relative to the root, `.` for the root itself.
    pub relative: PathBuf,
    /// The path as the caller should see it: the root's path joined with `relative`.
    pub shown: PathBuf,
}

impl Roots {
    /// Reserves `count` descriptors of the budget all file calls share (see
    /// [`super::descriptors`]); held until the permit is dropped.
    pub(crate) async fn reserve_descriptors(
        &self,
        count: u32,
    ) -> Result<tokio::sync::OwnedSemaphorePermit, ToolError> {
        self.descriptors.reserve(count).await
    }

    /// [`Self::reserve_descriptors`] in the form a [`crate::tool::Collect`]'s `reserve` answers.
    pub(crate) async fn hold_descriptors(
        &self,
        count: u32,
    ) -> Result<Option<Box<dyn Send>>, ToolError> {
        Ok(Some(Box::new(self.reserve_descriptors(count).await?)))
    }

    /// Opens the configured roots; a root that cannot be opened is left out with a warning.
    pub(crate) fn open(config: &FilesConfig) -> Self {
        let roots = config
            .roots
            .iter()
            .filter_map(|root| {
                let path = root.0.clone();
                let opened = Dir::open_ambient_dir(&path, ambient_authority())
                    .and_then(|dir| Ok((std::fs::canonicalize(&path)?, dir)));
                match opened {
                    Ok((real, dir)) => Some(Root { path, real, dir }),
                    Err(error) => {
                        tracing::warn!(root = %path.display(), %error, "file root left out: cannot open it");
                        None
                    }
                }
            })
            .collect();
        let mut deny = globset::GlobSetBuilder::new();
        for glob in &config.deny {
            deny.add(glob.glob.clone());
        }
        Self {
            roots,
            deny: deny.build().unwrap_or_else(|_| GlobSet::empty()),
            deny_texts: config.deny.iter().map(|glob| glob.text.clone()).collect(),
            refuse_hardlinks: config.refuse_hardlinks,
            descriptors: super::descriptors::DescriptorBudget::from_limit(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.roots.is_empty()
    }

    fn listed(&self) -> String {
        self.roots
            .iter()
            .map(|root| path_text(&root.path))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Which root `requested` is in, and the path beneath it, when the client's roots allow it.
    /// Checks only the string: the kernel decides at open time whether the path stays inside,
    /// and the opened handle's real path is checked against the client's roots again.
    pub(crate) fn locate(
        &self,
        requested: &str,
        scope: &ClientRoots,
    ) -> Result<Located<'_>, ToolError> {
        // Names are accepted in the escaped form answers show them in (`\xff`, `\\`, `\n`),
        // so whatever a listing printed can be passed back (see `render::unescape`).
        let bytes = render::unescape(requested).map_err(|error| {
            ToolError::invalid_arguments(format!(
                "path `{}`: {error}; a backslash in a name is written `\\\\`",
                render::sentence(requested)
            ))
        })?;
        if bytes.contains(&0) {
            return Err(ToolError::invalid_arguments(
                "the path contains a NUL byte; no file name can",
            ));
        }
        if bytes.len() > MAX_PATH_BYTES {
            return Err(ToolError::invalid_arguments(format!(
                "the path is {} bytes; the longest path Linux opens is {MAX_PATH_BYTES}",
                bytes.len()
            )));
        }
        let path = Path::new(OsStr::from_bytes(&bytes));
        if !path.is_absolute() {
            return Err(ToolError::invalid_arguments(format!(
                "`{}` is not absolute: give a full path inside a root ({})",
                path_text(path),
                self.listed()
            )));
        }
        let root = self
            .roots
            .iter()
            .filter(|root| path.starts_with(&root.path))
            // The innermost root when roots nest.
            .max_by_key(|root| root.path.components().count())
            .ok_or_else(|| {
                ToolError::invalid_arguments(format!(
                    "`{}` is outside the file roots ({}); only paths inside them are readable",
                    path_text(path),
                    self.listed()
                ))
            })?;
        let rest = path.strip_prefix(&root.path).unwrap_or(Path::new(""));
        let relative = if rest.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            rest.to_path_buf()
        };
        let located = Located {
            root,
            // Joining an empty rest would add a trailing slash.
            shown: if rest.as_os_str().is_empty() {
                root.path.clone()
            } else {
                root.path.join(rest)
            },
            relative,
        };
        within_client_roots(&located.shown, scope)?;
        Ok(located)
    }

    /// The deny-list pattern `path` matches, if any.
    pub(crate) fn denied_by(&self, path: &Path) -> Option<&str> {
        self.deny
            .matches(path)
            .first()
            .map(|index| self.deny_texts[*index].as_str())
    }

    fn refuse_denied(&self, shown: &Path, real: Option<&Path>) -> Result<(), Refusal> {
        // The real path is usually the name already checked: match it once.
        for path in std::iter::once(shown).chain(real.filter(|real| *real != shown)) {
            if let Some(pattern) = self.denied_by(path) {
                return Err(Refusal::Denied(pattern.to_string()));
            }
        }
        Ok(())
    }

    /// Opens a regular file for reading. The path is resolved beneath its root (symlinks
    /// inside the root are followed there) to an `O_PATH` handle; only if that handle is a
    /// regular file is it reopened for reading, so a FIFO, device or socket is never opened,
    /// whatever is swapped in (see `opening.rs`). Then the handle's real path is checked
    /// against the root, the client's roots and the deny list.
    pub(crate) fn open_file(
        &self,
        requested: &str,
        scope: &ClientRoots,
    ) -> Result<(Located<'_>, File), ToolError> {
        let located = self.locate(requested, scope)?;
        let shown = located.shown.clone();
        self.open_located(&located, scope)
            .map(|file| (located, file))
            .map_err(|refusal| refusal.explain(&shown))
    }

    fn open_located(&self, located: &Located<'_>, scope: &ClientRoots) -> Result<File, Refusal> {
        self.refuse_denied(&located.shown, None)?;
        let mut options = OpenOptions::new();
        options.read(true).custom_flags(opening::path_flag());
        let path = located
            .root
            .dir
            .open_with(&located.relative, &options)
            .map_err(Refusal::Io)?;
        let opened = opening::open_regular(
            OwnedFd::from(path.into_std()),
            self.refuse_hardlinks,
            |flags| {
                let mut options = OpenOptions::new();
                options.read(true).custom_flags(flags);
                Ok(located
                    .root
                    .dir
                    .open_with(&located.relative, &options)?
                    .into_std())
            },
        )?;
        let real = real_path(opened.file.as_raw_fd());
        self.check_real(located.root, &located.shown, real.as_deref(), scope)?;
        Ok(File::from_std(opened.file))
    }

    /// Opens the regular file `name`, an entry of `dir` met in a walk beneath `root` and
    /// shown as `shown`, for reading: without following a symlink or waiting, kept only if
    /// the handle is a regular file, with the handle's real path checked against the root,
    /// the client's roots and the deny list (a directory swapped for another, or a file
    /// renamed, is caught here). Returns the file and its size in bytes.
    pub(crate) fn open_entry(
        &self,
        root: &Root,
        dir: &Dir,
        name: &OsStr,
        shown: &Path,
        scope: &ClientRoots,
    ) -> Result<(std::fs::File, u64), Refusal> {
        self.refuse_denied(shown, None)?;
        let opened = opening::open_child_regular(dir, name, self.refuse_hardlinks)?;
        let real = real_path(opened.file.as_raw_fd());
        self.check_real(root, shown, real.as_deref(), scope)?;
        Ok((opened.file, opened.size))
    }

    /// Opens the directory `name`, an entry of `dir` met in a walk beneath `root`, without
    /// following a symlink, and checks that it really is inside the root and the client's
    /// roots (names in it may be shown; contents are checked file by file).
    pub(crate) fn open_entry_dir(
        &self,
        root: &Root,
        dir: &Dir,
        name: &OsStr,
        shown: &Path,
        scope: &ClientRoots,
    ) -> Result<Dir, Refusal> {
        let child = opening::open_child_dir(dir, name).map_err(Refusal::Io)?;
        let real = real_path(child.as_raw_fd());
        self.check_real_scope(root, shown, real.as_deref(), scope)?;
        Ok(child)
    }

    /// Opens a directory for listing.
    pub(crate) fn open_dir(
        &self,
        requested: &str,
        scope: &ClientRoots,
    ) -> Result<(Located<'_>, Dir), ToolError> {
        let located = self.locate(requested, scope)?;
        let opened = self.refuse_denied(&located.shown, None).and_then(|()| {
            let dir = located
                .root
                .dir
                .open_dir(&located.relative)
                .map_err(Refusal::Io)?;
            let real = real_path(dir.as_raw_fd());
            self.check_real(located.root, &located.shown, real.as_deref(), scope)?;
            Ok(dir)
        });
        match opened {
            Ok(dir) => Ok((located, dir)),
            Err(refusal) => Err(refusal.explain(&located.shown)),
        }
    }

    /// `lstat` of a path beneath its root (a final symlink is not followed), and its target.
    /// Under client roots, the directory holding it must really be inside them (a symlinked
    /// parent could lead elsewhere in the root).
    pub(crate) fn symlink_metadata(
        &self,
        requested: &str,
        scope: &ClientRoots,
    ) -> Result<(Located<'_>, cap_std::fs::Metadata, Option<PathBuf>), ToolError> {
        let located = self.locate(requested, scope)?;
        self.refuse_denied(&located.shown, None)
            .map_err(|refusal| refusal.explain(&located.shown))?;
        if let ClientRoots::Within(_) = scope
            && let Some(parent) = located.relative.parent()
        {
            let parent = if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent
            };
            let dir = located
                .root
                .dir
                .open_dir(parent)
                .map_err(|error| explain(&located.shown, error))?;
            let real = real_path(dir.as_raw_fd());
            self.check_real_scope(located.root, &located.shown, real.as_deref(), scope)
                .map_err(|refusal| refusal.explain(&located.shown))?;
        }
        let metadata = located
            .root
            .dir
            .symlink_metadata(&located.relative)
            .map_err(|error| explain(&located.shown, error))?;
        let target = metadata
            .is_symlink()
            .then(|| located.root.dir.read_link_contents(&located.relative).ok())
            .flatten();
        Ok((located, metadata, target))
    }

    /// The real path must be inside the root (it always is for a named path, by
    /// construction: this is the belt to the kernel's braces; a walk's handle can be renamed
    /// out) and not denied.
    fn check_real(
        &self,
        root: &Root,
        shown: &Path,
        real: Option<&Path>,
        scope: &ClientRoots,
    ) -> Result<(), Refusal> {
        let respelled = self.check_real_scope(root, shown, real, scope)?;
        self.refuse_denied(shown, real)?;
        if respelled.as_deref() != real {
            self.refuse_denied(shown, respelled.as_deref())?;
        }
        Ok(())
    }

    /// The real path must be inside the root and, under client roots, inside one of them (in
    /// either spelling). Returns the real path in the root's own spelling, so deny globs
    /// written for the configured path match too.
    fn check_real_scope(
        &self,
        root: &Root,
        shown: &Path,
        real: Option<&Path>,
        scope: &ClientRoots,
    ) -> Result<Option<PathBuf>, Refusal> {
        if let Some(real) = real
            && !real.starts_with(&root.real)
        {
            return Err(Refusal::Escapes);
        }
        let respelled = real.and_then(|real| {
            real.strip_prefix(&root.real)
                .ok()
                .map(|rest| root.path.join(rest))
        });
        if let ClientRoots::Within(client_roots) = scope {
            let inside = |path: &Path| client_roots.iter().any(|root| path.starts_with(root));
            // No real path (no /proc) leaves the lexical check made by `locate` (and, in a
            // walk, the caller's check of `shown`).
            if real.is_some()
                && !real.is_some_and(inside)
                && !respelled.as_deref().is_some_and(inside)
            {
                return Err(Refusal::OutsideClientRoots(client_roots.clone()));
            }
            if real.is_none() && !inside(shown) {
                return Err(Refusal::OutsideClientRoots(client_roots.clone()));
            }
        }
        Ok(respelled)
    }
}

/// The lexical half of the client-roots check: `shown` must lie inside one of them, named
/// without `..` (which the kernel would resolve past a client root that is not a file root).
fn within_client_roots(shown: &Path, scope: &ClientRoots) -> Result<(), ToolError> {
    match scope {
        ClientRoots::Unrestricted => Ok(()),
        ClientRoots::Unavailable(reason) => Err(ToolError::unavailable(format!(
            "the client declared MCP Roots but they could not be read ({reason}); no file is \
             visible until they can"
        ))),
        ClientRoots::Within(client_roots) => {
            if shown
                .components()
                .any(|component| component == std::path::Component::ParentDir)
            {
                return Err(ToolError::invalid_arguments(format!(
                    "`{}` goes through `..`; with the client's roots in force, name the path \
                     without it",
                    path_text(shown)
                )));
            }
            if client_roots.iter().any(|root| shown.starts_with(root)) {
                Ok(())
            } else {
                Err(outside_client_roots(shown, client_roots))
            }
        }
    }
}

fn outside_client_roots(shown: &Path, client_roots: &[PathBuf]) -> ToolError {
    let listed = if client_roots.is_empty() {
        "the client exposes none".to_string()
    } else {
        client_roots
            .iter()
            .map(|root| path_text(root))
            .collect::<Vec<_>>()
            .join(", ")
    };
    ToolError::invalid_arguments(format!(
        "`{}` is outside the client's roots ({listed}); the client narrowed what this server \
         may show",
        path_text(shown)
    ))
}

/// The path `/proc/self/fd/N` names: where an open handle really is.
fn real_path(fd: i32) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/self/fd/{fd}")).ok()
}

/// The kind of a file as answers name it — `file`, `directory`, `symlink`, `fifo`, `socket`,
/// `block_device`, `char_device` or `other` — from a std or cap-std file type (the two types
/// are distinct, their methods alike; the caller brings its `FileTypeExt` into scope).
macro_rules! kind_name {
    ($kind:expr) => {{
        let kind = $kind;
        if kind.is_symlink() {
            "symlink"
        } else if kind.is_dir() {
            "directory"
        } else if kind.is_file() {
            "file"
        } else if kind.is_fifo() {
            "fifo"
        } else if kind.is_socket() {
            "socket"
        } else if kind.is_block_device() {
            "block_device"
        } else if kind.is_char_device() {
            "char_device"
        } else {
            "other"
        }
    }};
}
pub(crate) use kind_name;

/// The kind of a directory entry, as answers name it.
pub(crate) fn kind_of(metadata: &cap_std::fs::Metadata) -> &'static str {
    use cap_std::fs::FileTypeExt;
    kind_name!(metadata.file_type())
}

fn non_file(shown: &Path, kind: &str) -> ToolError {
    if kind == "directory" {
        return ToolError::invalid_arguments(format!(
            "`{}` is a directory; files_list or files_tree show what is in it",
            path_text(shown)
        ));
    }
    ToolError::invalid_arguments(format!(
        "`{}` is a {}, not a regular file; only regular files are read",
        path_text(shown),
        kind.replace('_', " ")
    ))
}

fn escapes(shown: &Path) -> ToolError {
    ToolError::invalid_arguments(format!(
        "`{}` leads outside its root (through `..` or a symlink); only what is inside a root \
         is readable",
        path_text(shown)
    ))
}

/// A filesystem error as a sentence about the caller's path.
pub(crate) fn explain(shown: &Path, error: io::Error) -> ToolError {
    match error.raw_os_error() {
        Some(code) if code == rustix::io::Errno::NOENT.raw_os_error() => {
            ToolError::not_found(format!("`{}` does not exist", path_text(shown)))
        }
        Some(code) if code == rustix::io::Errno::NOTDIR.raw_os_error() => {
            ToolError::not_found(format!(
                "`{}`: a component of the path is not a directory",
                path_text(shown)
            ))
        }
        Some(code) if code == rustix::io::Errno::LOOP.raw_os_error() => {
            ToolError::invalid_arguments(format!(
                "`{}` goes through a symlink loop (or too many symlinks)",
                path_text(shown)
            ))
        }
        Some(code) if code == rustix::io::Errno::XDEV.raw_os_error() => escapes(shown),
        Some(code) if code == rustix::io::Errno::ACCESS.raw_os_error() => {
            ToolError::failed(format!(
                "`{}`: permission denied to this server's user",
                path_text(shown)
            ))
        }
        Some(code) if code == rustix::io::Errno::NAMETOOLONG.raw_os_error() => {
            ToolError::invalid_arguments(format!(
                "`{}`: a name in the path is too long",
                path_text(shown)
            ))
        }
        // cap-std's own resolution reports an escape as a PermissionDenied error of its own.
        None if error.kind() == io::ErrorKind::PermissionDenied => escapes(shown),
        _ => ToolError::failed(format!("`{}`: {error}", path_text(shown))),
    }
}

/// A file name as answers show it, in text and structured alike: controls, bidi characters
/// and invalid UTF-8 bytes escaped, a backslash doubled (`render::bytes_text`), so the
/// name is one visible line and the file tools accept it back as it is.
pub(crate) fn name_text(name: &OsStr) -> String {
    render::bytes_text(name.as_bytes())
}

/// A path as answers show it: the same escape as [`name_text`].
pub(crate) fn path_text(path: &Path) -> String {
    render::bytes_text(path.as_os_str().as_bytes())
}
