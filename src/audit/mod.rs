//! The audit log: one JSON Lines record per decision — allowed, denied, rate-limited, failed,
//! timed out, and every authentication failure — chained by hashes so that an edited, deleted or
//! reordered record shows (`systemmanager audit verify`).
//!
//! Each record carries `seq` (one more than the record before) and `prev` (the SHA-256 of the
//! previous line). Rotation by size keeps the chain: the first record of a new file links to the
//! last of the old one. A record is written with one `write` on a file opened for appending; when
//! the optional journald copy is on, the same line goes there too.

pub mod redact;
pub mod verify;

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{SecondsFormat, Utc};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::config::AuditConfig;
use crate::gate::Caller;

/// The `prev` of the very first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What kind of event a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// A tool call, at one of its stages.
    Call,
    /// A credential was refused.
    Auth,
    /// An HTTP request was refused before it was authenticated or decoded (a foreign `Origin`
    /// or `Host`, a body over the limit).
    Request,
}

/// The decision a record documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Allowed,
    Denied,
    RateLimited,
    /// Not a permission matter: unknown tool, server shutting down.
    Refused,
    AuthFailed,
}

/// One record, before the log numbers and chains it. Absent fields are left out of the record.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Entry {
    #[serde(skip)]
    pub event: Option<Event>,
    #[serde(skip)]
    pub decision: Option<Decision>,
    /// How it ended: `started` (written before an action), `ok`, `failed`, `timed_out`, ...
    pub outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transport: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    /// The argument summary, secrets redacted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_us: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<usize>,
    /// Why, for refusals and failures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Entry {
    /// An entry about a call by `caller`.
    pub fn call(caller: &Caller, decision: Decision, outcome: impl Into<String>) -> Self {
        Self {
            event: Some(Event::Call),
            decision: Some(decision),
            outcome: outcome.into(),
            identity: Some(caller.identity.to_string()),
            role: Some(caller.role.name.clone()),
            transport: Some(caller.transport.as_str().into()),
            remote: caller.remote.clone(),
            ..Self::default()
        }
    }
}

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

/// Why a record could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the audit log {path}: {source}")]
pub struct AuditError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

struct Writer {
    path: PathBuf,
    file: File,
    size: u64,
    next_seq: u64,
    prev: String,
}

/// The audit log of one server.
pub struct AuditLog {
    writer: Option<Mutex<Writer>>,
    max_bytes: u64,
    keep: usize,
    fail_closed: bool,
    journald: Option<(UnixDatagram, PathBuf)>,
    healthy: AtomicBool,
}

impl AuditLog {
    /// Opens (or creates, mode 0600 in a 0700 directory) the log, continuing its chain.
    pub fn open(config: &AuditConfig) -> Result<Self, AuditError> {
        let journald = config.journald.then(|| {
            UnixDatagram::unbound()
                .map(|socket| (socket, config.journald_socket.clone()))
                .map_err(|error| tracing::warn!(%error, "cannot open a socket for journald"))
                .ok()
        });
        if !config.enabled {
            return Ok(Self {
                writer: None,
                max_bytes: 0,
                keep: 0,
                fail_closed: false,
                journald: None,
                healthy: AtomicBool::new(true),
            });
        }
        let path = config.path();
        let fail = |source| AuditError {
            path: path.clone(),
            source,
        };
        let writer = Writer::open(&path).map_err(fail)?;
        Ok(Self {
            writer: Some(Mutex::new(writer)),
            max_bytes: config.max_bytes.get(),
            keep: usize::try_from(config.keep.get()).unwrap_or(usize::MAX),
            fail_closed: config.fail_closed,
            journald: journald.flatten(),
            healthy: AtomicBool::new(true),
        })
    }

    /// A log that records nothing (`audit.enabled = false`, and tests).
    pub fn disabled() -> Self {
        Self {
            writer: None,
            max_bytes: 0,
            keep: 0,
            fail_closed: false,
            journald: None,
            healthy: AtomicBool::new(true),
        }
    }

    /// Whether a call whose record cannot be written must be refused.
    pub fn fails_closed(&self) -> bool {
        self.fail_closed && self.writer.is_some()
    }

    /// Whether the last write succeeded.
    pub fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Acquire)
    }

    pub fn path(&self) -> Option<PathBuf> {
        let writer = self.writer.as_ref()?;
        let writer = writer.lock().unwrap_or_else(|p| p.into_inner());
        Some(writer.path.clone())
    }

    /// Writes one record. A failure is also logged with the whole record, so that it is never
    /// silently lost; whether the call goes on is the gate's decision.
    pub fn record(&self, entry: &Entry) -> Result<(), AuditError> {
        let Some(writer) = &self.writer else {
            return Ok(());
        };
        let mut writer = writer.lock().unwrap_or_else(|p| p.into_inner());
        let line = writer.render(entry);
        let result = writer
            .append(&line)
            .and_then(|()| writer.rotate_if_full(self.max_bytes, self.keep));
        match result {
            Ok(()) => {
                self.healthy.store(true, Ordering::Release);
                drop(writer);
                self.copy_to_journald(&line, entry);
                Ok(())
            }
            Err(source) => {
                self.healthy.store(false, Ordering::Release);
                tracing::error!(
                    target: "systemmanager::audit",
                    path = %writer.path.display(),
                    error = %source,
                    record = %String::from_utf8_lossy(&line),
                    "cannot write an audit record"
                );
                Err(AuditError {
                    path: writer.path.clone(),
                    source,
                })
            }
        }
    }

    /// journald's native protocol: one datagram of `FIELD=value` lines (a value with a newline
    /// would need the binary form; a JSON line has none).
    fn copy_to_journald(&self, line: &[u8], entry: &Entry) {
        let Some((socket, path)) = &self.journald else {
            return;
        };
        let priority = match entry.decision {
            Some(Decision::Allowed) => 6,
            _ => 4,
        };
        let mut datagram = Vec::with_capacity(line.len() + 96);
        datagram.extend_from_slice(b"SYSLOG_IDENTIFIER=systemmanager-audit\n");
        datagram.extend_from_slice(format!("PRIORITY={priority}\n").as_bytes());
        datagram.extend_from_slice(b"MESSAGE=");
        datagram.extend_from_slice(line.strip_suffix(b"\n").unwrap_or(line));
        datagram.push(b'\n');
        if let Err(error) = socket.send_to(&datagram, path) {
            tracing::debug!(%error, "cannot copy an audit record to journald");
        }
    }
}

impl Writer {
    fn open(path: &Path) -> io::Result<Self> {
        if let Some(directory) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && !directory.exists()
        {
            std::fs::create_dir_all(directory)?;
            std::fs::set_permissions(directory, std::fs::Permissions::from_mode(0o700))?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)?;
        let size = file.metadata()?.len();
        let (next_seq, prev) = match last_line(&mut file, size)? {
            Some(line) => {
                let seq = serde_json::from_slice::<Value>(&line)
                    .ok()
                    .and_then(|record| record.get("seq").and_then(Value::as_u64))
                    .ok_or_else(|| {
                        io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!(
                                "its last line is not an audit record; run `systemmanager audit \
                                 verify {}` and move the file aside",
                                path.display()
                            ),
                        )
                    })?;
                (seq + 1, hash(&line))
            }
            None => (1, GENESIS.to_string()),
        };
        Ok(Self {
            path: path.to_path_buf(),
            file,
            size,
            next_seq,
            prev,
        })
    }

    fn render(&self, entry: &Entry) -> Vec<u8> {
        let record = Record {
            seq: self.next_seq,
            time: Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true),
            event: entry.event.unwrap_or(Event::Call),
            decision: entry.decision.unwrap_or(Decision::Allowed),
            entry,
            prev: &self.prev,
        };
        // Serializing our own struct of strings and numbers cannot fail.
        let mut line = serde_json::to_vec(&record).unwrap_or_default();
        line.push(b'\n');
        line
    }

    fn append(&mut self, line: &[u8]) -> io::Result<()> {
        self.file.write_all(line)?;
        self.size += line.len() as u64;
        self.next_seq += 1;
        self.prev = hash(line.strip_suffix(b"\n").unwrap_or(line));
        Ok(())
    }

    /// Moves `audit.jsonl` to `audit.jsonl.1` (and older ones up, keeping `keep`) once it is
    /// over `max_bytes`; the chain goes on in the new file.
    fn rotate_if_full(&mut self, max_bytes: u64, keep: usize) -> io::Result<()> {
        if self.size < max_bytes {
            return Ok(());
        }
        let numbered = |n: usize| PathBuf::from(format!("{}.{n}", self.path.display()));
        let _ = std::fs::remove_file(numbered(keep.max(1)));
        for n in (1..keep.max(1)).rev() {
            if numbered(n).exists() {
                std::fs::rename(numbered(n), numbered(n + 1))?;
            }
        }
        std::fs::rename(&self.path, numbered(1))?;
        self.file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

/// The SHA-256 of a line (without its newline), hex: what the next record's `prev` holds.
pub fn hash(line: &[u8]) -> String {
    hex::encode(Sha256::digest(line))
}

/// The last complete line of a file, read from its end.
fn last_line(file: &mut File, size: u64) -> io::Result<Option<Vec<u8>>> {
    if size == 0 {
        return Ok(None);
    }
    let mut tail = Vec::new();
    let mut start = size;
    // Records are small; read backwards until a full line is in hand.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn config(path: &Path, extra: &str) -> AuditConfig {
        let text = format!("[audit]\npath = \"{}\"\n{extra}", path.display());
        crate::config::parse(&text, "test").expect("config").audit
    }

    fn entry(outcome: &str) -> Entry {
        Entry {
            event: Some(Event::Call),
            decision: Some(Decision::Allowed),
            outcome: outcome.into(),
            identity: Some("user:test".into()),
            tool: Some("system_overview".into()),
            ..Entry::default()
        }
    }

    #[test]
    fn records_chain_and_survive_a_restart() {
        let directory = tempfile::tempdir().expect("tempdir");
        let path = directory.path().join("log/audit.jsonl");
        let log = AuditLog::open(&config(&path, "")).expect("open");
        log.record(&entry("ok")).expect("1");
        log.record(&entry("failed")).expect("2");
        drop(log);
        let log = AuditLog::open(&config(&path, "")).expect("reopen");
        log.record(&entry("ok")).expect("3");
        let text = std::fs::read_to_string(&path).expect("read");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        let records: Vec<Value> = lines
            .iter()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect();
        assert_eq!(records[0]["prev"], GENESIS);
        assert_eq!(records[2]["seq"], 3);
        assert_eq!(records[2]["prev"], hash(lines[1].as_bytes()));
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(verify::verify_files(&[path]).expect("verify").is_ok());
        let _ = Config::default();
    }

    #[test]
    fn rotation_keeps_the_chain_across_files() {
        let directory = tempfile::tempdir().expect("tempdir");
        let path = directory.path().join("audit.jsonl");
        let log = AuditLog::open(&config(&path, "max_bytes = 4096\nkeep = 2\n")).expect("open");
        for _ in 0..60 {
            log.record(&entry("ok")).expect("record");
        }
        let rotated: Vec<PathBuf> = [2, 1]
            .iter()
            .map(|n| PathBuf::from(format!("{}.{n}", path.display())))
            .filter(|p| p.exists())
            .collect();
        assert_eq!(rotated.len(), 2, "two rotated files kept");
        assert!(!PathBuf::from(format!("{}.3", path.display())).exists());
        let mut files = rotated.clone();
        files.push(path.clone());
        let report = verify::verify_files(&files).expect("verify");
        assert!(report.is_ok(), "{report}");
        // Alone, a later file's first record links to a file that is not there.
        let alone = verify::verify_files(&[path]).expect("verify");
        assert!(alone.to_string().contains("continues"), "{alone}");
    }

    #[test]
    fn a_log_that_cannot_be_written_reports_it() {
        let log = AuditLog::open(&config(Path::new("/dev/full"), "")).expect("open /dev/full");
        let error = log.record(&entry("ok")).expect_err("no space");
        assert!(error.to_string().contains("/dev/full"), "{error}");
        assert!(!log.healthy());
        assert!(log.fails_closed());
    }
}
