//! `files_stat`: one path's metadata, its symlink target, and optionally its SHA-256.

use std::io::Read;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use super::confine::{Roots, kind_of, path_text};
use crate::domains::shared::users::{UserNames, name_of};
use crate::render;
use crate::tool::{ClientRoots, Collect, Declaration, Domain, Render, ToolContext, ToolError};

pub(crate) static FILES_STAT: Declaration = Declaration::read(
    Domain::Files,
    "files_stat",
    "File metadata",
    "Metadata of one path inside the file roots: type, size, permissions, owner and \
     group, modified/accessed/changed times, inode and links; a symlink's target \
     (the link itself is described, not followed); with sha256: true, the SHA-256 \
     of a regular file up to the server's size cap.",
)
.within_client_roots();

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct StatArguments {
    /// Absolute path inside a root, written as answers print names
    /// (`\xNN` for a byte that is not UTF-8, `\\` for a backslash).
    pub path: String,
    /// Also hash the file's content (regular files up to files.max_hash_bytes).
    pub sha256: Option<bool>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct FileStat {
    pub path: String,
    /// file, directory, symlink, fifo, socket, block_device, char_device.
    #[serde(rename = "type")]
    pub kind: String,
    pub size_bytes: u64,
    /// Permission bits in octal, e.g. "0644".
    pub mode: String,
    pub owner: String,
    pub uid: u32,
    pub group: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub modified: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accessed: Option<DateTime<Utc>>,
    /// Status change (ctime).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changed: Option<DateTime<Utc>>,
    pub inode: u64,
    pub links: u64,
    /// For a symlink: what it points to, as written in the link.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub symlink_target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Render for FileStat {
    fn render_text(&self) -> String {
        let mut text = format!(
            "{} {} {} {} {}",
            self.path,
            self.kind,
            render::bytes(self.size_bytes),
            self.mode,
            render::text(&self.owner)
        );
        if let Some(modified) = self.modified {
            text.push_str(&format!(" modified {}", modified.to_rfc3339()));
        }
        if let Some(target) = &self.symlink_target {
            text.push_str(&format!(" -> {target}"));
        }
        if let Some(hash) = &self.sha256 {
            text.push_str(&format!(" sha256 {hash}"));
        }
        text
    }
}

pub(crate) struct FileInspector {
    pub roots: Arc<Roots>,
    pub users: Arc<UserNames>,
    pub max_hash_bytes: u64,
}

pub(crate) fn time_of(seconds: i64, nanoseconds: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(seconds, nanoseconds.clamp(0, 999_999_999) as u32)
}

impl FileInspector {
    /// Blocking: a stat, and a full read when hashing (which stops when `cancel` is
    /// cancelled: the call timed out or the client gave up).
    pub(crate) fn stat(
        &self,
        arguments: &StatArguments,
        scope: &ClientRoots,
        cancel: &CancellationToken,
    ) -> Result<FileStat, ToolError> {
        use cap_std::fs::MetadataExt;
        let (located, metadata, target) = self.roots.symlink_metadata(&arguments.path, scope)?;
        let shown = path_text(&located.shown);
        let kind = kind_of(&metadata);
        let mut notes = Vec::new();
        let sha256 = if arguments.sha256 == Some(true) {
            if kind != "file" && kind != "symlink" {
                notes.push(format!("a {kind} has no content to hash"));
                None
            } else {
                let (_, file) = self.roots.open_file(&arguments.path, scope)?;
                let size = file
                    .metadata()
                    .map_err(|error| ToolError::failed(format!("`{shown}`: {error}")))?
                    .len();
                if size > self.max_hash_bytes {
                    notes.push(format!(
                        "not hashed: {} is over this server's cap of {} (files.max_hash_bytes)",
                        render::bytes(size),
                        render::bytes(self.max_hash_bytes)
                    ));
                    None
                } else {
                    Some(
                        hash(file.into_std(), cancel)
                            .map_err(|error| ToolError::failed(format!("`{shown}`: {error}")))?,
                    )
                }
            }
        } else {
            None
        };
        let users = self.users.table();
        Ok(FileStat {
            path: shown,
            kind: kind.to_string(),
            size_bytes: metadata.len(),
            mode: format!("{:04o}", metadata.mode() & 0o7777),
            owner: name_of(&users, metadata.uid()),
            uid: metadata.uid(),
            group: metadata.gid(),
            modified: time_of(metadata.mtime(), metadata.mtime_nsec()),
            accessed: time_of(metadata.atime(), metadata.atime_nsec()),
            changed: time_of(metadata.ctime(), metadata.ctime_nsec()),
            inode: metadata.ino(),
            links: metadata.nlink(),
            symlink_target: target.map(|target| path_text(&target)),
            sha256,
            notes,
        })
    }
}

fn hash(mut file: std::fs::File, cancel: &CancellationToken) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 256 * 1024];
    loop {
        // A hash of up to files.max_hash_bytes (1 TiB at most) must not outlive its call.
        if cancel.is_cancelled() {
            return Err(std::io::Error::other(
                "stopped: the call ended before the hash",
            ));
        }
        let read = file.read(&mut buffer)?;
        if read == 0 {
            return Ok(hex::encode(hasher.finalize()));
        }
        hasher.update(&buffer[..read]);
    }
}

impl Collect for FileInspector {
    type Arguments = StatArguments;
    type Output = FileStat;

    const DECLARATION: &'static Declaration = &FILES_STAT;

    fn collect(
        &self,
        arguments: StatArguments,
        context: &ToolContext,
    ) -> Result<FileStat, ToolError> {
        self.stat(&arguments, &context.client_roots, &context.cancel)
    }

    async fn reserve(&self, _: &Self::Arguments) -> Result<Option<Box<dyn Send>>, ToolError> {
        self.roots
            .hold_descriptors(super::descriptors::ONE_FILE)
            .await
    }
}
