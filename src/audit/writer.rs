//! The audit file itself: appending chained records so that the chain stays one chain whatever
//! happens to the file, and whoever else appends to it.
//!
//! - **Several writers.** Two stdio servers of one user share the default file. Every append
//!   takes an exclusive `flock` on `FILE.lock` (a file that is never rotated, so every writer
//!   locks the same inode) and continues from the last record *on disk*, not from what this
//!   process wrote last.
//! - **An anchored start.** A new log begins with a `started` record (seq 1, `prev` all zeros);
//!   each rotated file begins with a `rotated` record chained to the last record of the file
//!   before it; when rotation deletes the oldest file, the seq and hash of its last record are
//!   kept in `FILE.anchor`. So a log whose first records were cut no longer starts with one of
//!   these, and `audit verify` names the cut.
//! - **Deleted, replaced or truncated under the server.** Before each append the writer checks
//!   the path still names the file it holds (device and inode) and that the file did not shrink.
//!   When it did, the writer reopens the path and writes a `reopened` or `truncated` record
//!   chained to the last record it knew, so the loss is itself on the record.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use chrono::{SecondsFormat, Utc};
use rustix::fs::{FlockOperation, flock};
use serde::Serialize;
use serde_json::Value;

use super::{Decision, Entry, Event, GENESIS, LogNotice, hash};

/// The record as written: the entry, numbered and chained.
#[derive(Serialize)]
struct Record<'a> {
    seq: u64,
    time: String,
    event: Event,
    decision: Decision,
    #[serde(flatten)]
    entry: &'a Entry,
    prev: &'a str,
}

/// Where the chain stands: the next seq and the hash of the last record.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Chain {
    next_seq: u64,
    prev: String,
}

impl Chain {
    fn fresh() -> Self {
        Self {
            next_seq: 1,
            prev: GENESIS.to_string(),
        }
    }
}

/// What `FILE.anchor` holds: the last record of the newest file rotation deleted.
#[derive(Debug, Serialize, serde::Deserialize, PartialEq, Eq)]
pub(super) struct Anchor {
    pub seq: u64,
    pub hash: String,
}

/// The path of the anchor kept beside `log` (`audit.jsonl` → `audit.jsonl.anchor`).
pub(super) fn anchor_path(log: &Path) -> PathBuf {
    PathBuf::from(format!("{}.anchor", log.display()))
}

fn lock_path(log: &Path) -> PathBuf {
    PathBuf::from(format!("{}.lock", log.display()))
}

fn numbered(log: &Path, n: usize) -> PathBuf {
    PathBuf::from(format!("{}.{n}", log.display()))
}

fn open_log(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
}

/// The file one server appends to.
pub(super) struct Writer {
    /// The `started` record written when the file was new, until [`Writer::take_opening`].
    opening: Option<Vec<u8>>,
    path: PathBuf,
    /// `FILE.lock`, flocked around every append; none when the log is not a regular file.
    lock: Option<File>,
    file: File,
    /// Device and inode of `file`: when the path names another file, it was rotated, deleted or
    /// replaced.
    identity: (u64, u64),
    /// The file's size after this process's last look; a smaller size later means it was cut.
    end: u64,
    chain: Chain,
}

impl Writer {
    /// Opens (or creates, mode 0600 in a 0700 directory) the log at `path`, continuing its
    /// chain. Errors: the directory or file cannot be created or read, or the last line is not
    /// an audit record.
    pub(super) fn open(path: &Path) -> io::Result<Self> {
        if let Some(directory) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && !directory.exists()
        {
            std::fs::create_dir_all(directory)?;
            std::fs::set_permissions(directory, std::fs::Permissions::from_mode(0o700))?;
        }
        let file = open_log(path)?;
        let metadata = file.metadata()?;
        // Only a regular file gets a lock file beside it: a device standing in for the log
        // (`/dev/full` in tests) has one writer and nothing to coordinate.
        let lock = if metadata.is_file() {
            Some(
                OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .mode(0o600)
                    .open(lock_path(path))?,
            )
        } else {
            None
        };
        let mut writer = Self {
            opening: None,
            path: path.to_path_buf(),
            lock,
            identity: (metadata.dev(), metadata.ino()),
            end: 0,
            file,
            chain: Chain::fresh(),
        };
        let regular = writer.lock.is_some();
        writer.with_lock(|writer| {
            let size = writer.file.metadata()?.len();
            writer.end = size;
            if size == 0 && regular {
                // A log begins with its own record at once, so that an empty file is never a
                // log: `audit verify` calls an empty file emptied.
                writer.chain = Chain::fresh();
                writer.opening = Some(writer.write(&LogNotice::Started.entry(None))?);
                return Ok(());
            }
            writer.chain = match last_line(&mut writer.file, size)? {
                Some(line) => chain_after(&line).ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "its last line is not an audit record; run `systemmanager audit \
                             verify {}` and move the file aside",
                            writer.path.display()
                        ),
                    )
                })?,
                None => Chain::fresh(),
            };
            Ok(())
        })?;
        Ok(writer)
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// The `started` record [`Writer::open`] wrote, if it began the log (for the journald copy).
    pub(super) fn take_opening(&mut self) -> Option<Vec<u8>> {
        self.opening.take()
    }

    /// Runs `work` holding the lock every writer of this log shares.
    fn with_lock<T>(&mut self, work: impl FnOnce(&mut Self) -> io::Result<T>) -> io::Result<T> {
        if let Some(lock) = &self.lock {
            flock(lock, FlockOperation::LockExclusive)?;
        }
        let result = work(self);
        if let Some(lock) = &self.lock {
            let _ = flock(lock, FlockOperation::Unlock);
        }
        result
    }

    /// Appends `entry` (and, first, any record about what happened to the file), then rotates
    /// when the file reached `max_bytes`. Returns the lines written, for the journald copy.
    pub(super) fn append(
        &mut self,
        entry: &Entry,
        max_bytes: u64,
        keep: usize,
    ) -> io::Result<Vec<Vec<u8>>> {
        self.with_lock(|writer| {
            let mut written = Vec::new();
            if let Some(notice) = writer.catch_up()? {
                written.push(writer.write(&notice)?);
            }
            if writer.chain == Chain::fresh() {
                written.push(writer.write(&LogNotice::Started.entry(None))?);
            }
            written.push(writer.write(entry)?);
            if writer.end >= max_bytes {
                written.push(writer.rotate(keep)?);
            }
            Ok(written)
        })
    }

    /// Brings `chain` up to the file as it is now: another writer's records, a rotation by
    /// another writer, or the file deleted, replaced or cut under us (which returns the record
    /// that says so).
    fn catch_up(&mut self) -> io::Result<Option<Entry>> {
        let on_disk = match std::fs::metadata(&self.path) {
            Ok(metadata) => Some((metadata.dev(), metadata.ino())),
            Err(error) if error.kind() == io::ErrorKind::NotFound => None,
            Err(error) => return Err(error),
        };
        if on_disk != Some(self.identity) {
            let known = self.chain.clone();
            self.file = open_log(&self.path)?;
            let metadata = self.file.metadata()?;
            self.identity = (metadata.dev(), metadata.ino());
            self.end = metadata.len();
            return match last_line(&mut self.file, self.end)? {
                // Another writer rotated (its new file starts with a `rotated` record) or appended
                // since: continue from its last record.
                Some(line) => {
                    self.chain =
                        chain_after(&line).unwrap_or_else(|| chain_after_garbage(&line, &known));
                    Ok(None)
                }
                None => {
                    self.chain = known.clone();
                    let why = match on_disk {
                        None => "the audit file was deleted while the server ran",
                        Some(_) => {
                            "the audit file was replaced by an empty file while the server ran"
                        }
                    };
                    Ok(Some(LogNotice::Reopened.entry(Some(format!(
                        "{why}; records up to seq {} are not in this file",
                        known.next_seq.saturating_sub(1)
                    )))))
                }
            };
        }
        let size = self.file.metadata()?.len();
        if size == self.end {
            return Ok(None);
        }
        let shrunk = size < self.end;
        let before = self.end;
        let known = self.chain.clone();
        self.end = size;
        let mut what_is_left = "nothing is left".to_string();
        match last_line(&mut self.file, size)? {
            Some(line) => {
                match chain_after(&line) {
                    Some(chain) => {
                        what_is_left = format!(
                            "the last record left is seq {}",
                            chain.next_seq.saturating_sub(1)
                        );
                        self.chain = chain;
                    }
                    None => {
                        what_is_left = "it ends in the middle of a record".into();
                        self.chain = chain_after_garbage(&line, &known);
                    }
                }
                if !self.ends_with_newline(size)? {
                    // A line cut in the middle: start ours on a line of its own.
                    self.file.write_all(b"\n")?;
                    self.end += 1;
                }
            }
            None => self.chain = known.clone(),
        }
        if shrunk && self.chain.next_seq < known.next_seq {
            // Never hand out a seq twice: the records cut had these numbers.
            self.chain.next_seq = known.next_seq;
        }
        Ok(shrunk.then(|| {
            LogNotice::Truncated.entry(Some(format!(
                "the audit file shrank from {before} to {size} bytes while the server ran: \
                 records up to seq {} were written, {what_is_left}",
                known.next_seq.saturating_sub(1)
            )))
        }))
    }

    fn ends_with_newline(&mut self, size: u64) -> io::Result<bool> {
        if size == 0 {
            return Ok(true);
        }
        let mut last = [0u8; 1];
        self.file.seek(SeekFrom::Start(size - 1))?;
        self.file.read_exact(&mut last)?;
        Ok(last[0] == b'\n')
    }

    /// Writes one record with one `write` on the append-mode file.
    fn write(&mut self, entry: &Entry) -> io::Result<Vec<u8>> {
        let record = Record {
            seq: self.chain.next_seq,
            time: Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true),
            event: entry.event.unwrap_or(Event::Call),
            decision: entry.decision.unwrap_or(Decision::Allowed),
            entry,
            prev: &self.chain.prev,
        };
        // Serializing our own struct of strings and numbers cannot fail.
        let mut line = serde_json::to_vec(&record).unwrap_or_default();
        line.push(b'\n');
        self.file.write_all(&line)?;
        self.end += line.len() as u64;
        self.chain = Chain {
            next_seq: self.chain.next_seq + 1,
            prev: hash(&line[..line.len() - 1]),
        };
        Ok(line)
    }

    /// Moves `FILE` to `FILE.1` (older ones up, keeping `keep`, the oldest's last record kept in
    /// `FILE.anchor`) and starts the new file with a `rotated` record.
    fn rotate(&mut self, keep: usize) -> io::Result<Vec<u8>> {
        let keep = keep.max(1);
        let oldest = numbered(&self.path, keep);
        if let Ok(mut file) = File::open(&oldest) {
            let size = file.metadata()?.len();
            if let Some(line) = last_line(&mut file, size)?
                && let Some(chain) = chain_after(&line)
            {
                write_anchor(
                    &self.path,
                    &Anchor {
                        seq: chain.next_seq - 1,
                        hash: chain.prev,
                    },
                )?;
            }
            std::fs::remove_file(&oldest)?;
        }
        for n in (1..keep).rev() {
            if numbered(&self.path, n).exists() {
                std::fs::rename(numbered(&self.path, n), numbered(&self.path, n + 1))?;
            }
        }
        std::fs::rename(&self.path, numbered(&self.path, 1))?;
        self.file = open_log(&self.path)?;
        let metadata = self.file.metadata()?;
        self.identity = (metadata.dev(), metadata.ino());
        self.end = 0;
        let name = numbered(&self.path, 1);
        let name = name.file_name().map(|n| n.to_string_lossy().into_owned());
        self.write(
            &LogNotice::Rotated.entry(Some(format!("continues from {}", name.unwrap_or_default()))),
        )
    }
}

/// Replaces `FILE.anchor` atomically (a reader never sees half of it).
fn write_anchor(log: &Path, anchor: &Anchor) -> io::Result<()> {
    let mut text = serde_json::to_vec(anchor).unwrap_or_default();
    text.push(b'\n');
    crate::state_file::replace(&anchor_path(log), &text)
}

/// Reads `FILE.anchor`, if there is one.
pub(super) fn read_anchor(log: &Path) -> io::Result<Option<Anchor>> {
    match std::fs::read(anchor_path(log)) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error)),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error),
    }
}

/// The chain after `line`, when it is an audit record.
fn chain_after(line: &[u8]) -> Option<Chain> {
    let seq = serde_json::from_slice::<Value>(line)
        .ok()?
        .get("seq")?
        .as_u64()?;
    Some(Chain {
        next_seq: seq + 1,
        prev: hash(line),
    })
}

/// After a line that is not a record (cut mid-line): chain to it anyway, so `verify` points at
/// that line rather than at ours, and go on numbering from what this writer knew.
fn chain_after_garbage(line: &[u8], known: &Chain) -> Chain {
    Chain {
        next_seq: known.next_seq,
        prev: hash(line),
    }
}

/// The last complete line of a file, read from its end.
pub(super) fn last_line(file: &mut File, size: u64) -> io::Result<Option<Vec<u8>>> {
    if size == 0 {
        return Ok(None);
    }
    let mut tail = Vec::new();
    let mut start = size;
    // Records are bounded in size; read backwards until a full line is in hand.
    loop {
        let step = start.min(64 * 1024);
        start -= step;
        file.seek(SeekFrom::Start(start))?;
        let mut chunk = vec![0; usize::try_from(step).unwrap_or(0)];
        file.read_exact(&mut chunk)?;
        chunk.extend_from_slice(&tail);
        tail = chunk;
        let body = tail.strip_suffix(b"\n").unwrap_or(&tail);
        if let Some(newline) = body.iter().rposition(|byte| *byte == b'\n') {
            return Ok(Some(body[newline + 1..].to_vec()));
        }
        if start == 0 {
            return Ok((!body.is_empty()).then(|| body.to_vec()));
        }
    }
}
