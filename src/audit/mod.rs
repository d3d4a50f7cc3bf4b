//! The audit log: one JSON Lines record per decision — allowed, denied, rate-limited, failed,
//! timed out, and every refusal of a request — chained by hashes so that an edited, deleted,
//! reordered or cut record shows (`systemmanager audit verify`).
//!
//! Each record carries `seq` (one more than the record before) and `prev` (the SHA-256 of the
//! previous line). The file itself — several writers, rotation, an anchored start, a file deleted
//! under the server — is [`writer`]'s job; what one record may hold is bounded here
//! ([`bound`]), and a flood of refused requests is summarised rather than written one by one
//! ([`flood`]), so that it cannot rotate the record of real actions away. When the optional
//! journald copy is on, the same lines go there too.

mod bound;
mod flood;
pub(crate) mod redact;
pub mod verify;
mod writer;

use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::access::Caller;
use crate::config::AuditConfig;

use flood::{FloodGate, Verdict};
use writer::Writer;

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
    /// An HTTP request or connection was refused before it reached a tool (a foreign `Origin`
    /// or `Host`, a body over the limit, invalid JSON, an unknown method, headers too large or
    /// too slow, a session of another identity).
    Request,
    /// The log itself: its start, a rotation, or the file found deleted or cut under the server.
    Log,
}

/// What a [`Event::Log`] record says about the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogNotice {
    /// The first record of a new log (seq 1).
    Started,
    /// The first record of the file after a rotation; chained to the last of the file before.
    Rotated,
    /// The file was deleted or replaced while the server ran; a new one starts here.
    Reopened,
    /// The file shrank while the server ran: records were cut from its end.
    Truncated,
}

impl LogNotice {
    pub fn outcome(self) -> &'static str {
        match self {
            LogNotice::Started => "started",
            LogNotice::Rotated => "rotated",
            LogNotice::Reopened => "reopened",
            LogNotice::Truncated => "truncated",
        }
    }

    fn entry(self, detail: Option<String>) -> Entry {
        Entry {
            event: Some(Event::Log),
            decision: Some(if matches!(self, LogNotice::Started | LogNotice::Rotated) {
                Decision::Allowed
            } else {
                Decision::Refused
            }),
            outcome: self.outcome().into(),
            detail,
            ..Entry::default()
        }
    }
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
    /// For a summary of a flood of refusals: how many like it were counted, not written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suppressed: Option<u64>,
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

    /// An entry about a request refused before it reached a tool: by `caller` when it was
    /// authenticated by then, else by whoever it was (the site adds the remote it knows).
    pub fn refused_request(
        caller: Option<&Caller>,
        outcome: impl Into<String>,
        detail: impl Into<String>,
    ) -> Self {
        let mut entry = match caller {
            Some(caller) => Self::call(caller, Decision::Refused, outcome),
            None => Self {
                decision: Some(Decision::Refused),
                outcome: outcome.into(),
                ..Self::default()
            },
        };
        entry.event = Some(Event::Request);
        entry.detail = Some(detail.into());
        entry
    }
}

/// Why a record could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the audit log {path}: {source}")]
pub struct AuditError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

/// The audit log of one server.
pub struct AuditLog {
    writer: Option<Mutex<Writer>>,
    max_bytes: u64,
    keep: usize,
    fail_closed: bool,
    journald: Option<(UnixDatagram, PathBuf)>,
    healthy: AtomicBool,
    flood: Mutex<FloodGate>,
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
            return Ok(Self::disabled());
        }
        let path = config.path();
        let mut writer = Writer::open(&path).map_err(|source| AuditError {
            path: path.clone(),
            source,
        })?;
        let opening = writer.take_opening();
        let log = Self {
            writer: Some(Mutex::new(writer)),
            max_bytes: config.max_bytes.get(),
            keep: usize::try_from(config.keep.get()).unwrap_or(usize::MAX),
            fail_closed: config.fail_closed,
            journald: journald.flatten(),
            healthy: AtomicBool::new(true),
            flood: Mutex::new(FloodGate::default()),
        };
        if let Some(line) = opening {
            log.copy_to_journald(&line, &LogNotice::Started.entry(None));
        }
        Ok(log)
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
            flood: Mutex::new(FloodGate::default()),
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
        Some(writer.path().to_path_buf())
    }

    /// Writes one record (its long fields cut, see [`bound`]). A refused request that is one of
    /// a flood is counted instead and summarised later ([`flood`]). A failure is also logged with
    /// the whole record, so that it is never silently lost; whether the call goes on is the
    /// gate's decision.
    pub fn record(&self, entry: &Entry) -> Result<(), AuditError> {
        self.record_counted(entry).map(|_| ())
    }

    /// Records a refusal, and says whether it was written one by one (true) or counted as one
    /// of a flood (false): the server's own log line about it follows the same choice, so that
    /// a flood cannot flood stderr (or journald) either. A record that cannot be written is
    /// logged by the log itself and reported as written.
    pub fn record_refusal(&self, entry: &Entry) -> bool {
        self.record_counted(entry).unwrap_or(true)
    }

    fn record_counted(&self, entry: &Entry) -> Result<bool, AuditError> {
        if self.writer.is_none() {
            // No file, but a flood's log lines are still counted rather than printed.
            let mut flood = self.flood.lock().unwrap_or_else(|p| p.into_inner());
            let _ = flood.due_summaries(std::time::Instant::now());
            return Ok(flood.admit(entry, std::time::Instant::now()) == Verdict::Write);
        }
        let (verdict, summaries) = {
            let mut flood = self.flood.lock().unwrap_or_else(|p| p.into_inner());
            let summaries = flood.due_summaries(std::time::Instant::now());
            (flood.admit(entry, std::time::Instant::now()), summaries)
        };
        for summary in &summaries {
            self.write(&bound::bounded(summary))?;
        }
        match verdict {
            Verdict::Write => self.write(&bound::bounded(entry)).map(|()| true),
            Verdict::Counted => Ok(false),
        }
    }

    /// Writes the summaries of refusals still being counted (at shutdown).
    pub fn flush(&self) {
        let summaries = {
            let mut flood = self.flood.lock().unwrap_or_else(|p| p.into_inner());
            flood.all_summaries()
        };
        for summary in &summaries {
            let _ = self.write(&bound::bounded(summary));
        }
    }

    fn write(&self, entry: &Entry) -> Result<(), AuditError> {
        let Some(writer) = &self.writer else {
            return Ok(());
        };
        let mut writer = writer.lock().unwrap_or_else(|p| p.into_inner());
        match writer.append(entry, self.max_bytes, self.keep) {
            Ok(lines) => {
                self.healthy.store(true, Ordering::Release);
                drop(writer);
                for line in &lines {
                    self.copy_to_journald(line, entry);
                }
                Ok(())
            }
            Err(source) => {
                self.healthy.store(false, Ordering::Release);
                tracing::error!(
                    target: "systemmanager::audit",
                    path = %writer.path().display(),
                    error = %source,
                    record = %serde_json::to_string(entry).unwrap_or_default(),
                    "cannot write an audit record"
                );
                Err(AuditError {
                    path: writer.path().to_path_buf(),
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

impl Drop for AuditLog {
    fn drop(&mut self) {
        self.flush();
    }
}

/// The SHA-256 of a line (without its newline), hex: what the next record's `prev` holds.
pub fn hash(line: &[u8]) -> String {
    hex::encode(Sha256::digest(line))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

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
        assert_eq!(lines.len(), 4, "the log's start and three records");
        let records: Vec<Value> = lines
            .iter()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect();
        assert_eq!(records[0]["prev"], GENESIS);
        assert_eq!(records[0]["event"], "log");
        assert_eq!(records[0]["outcome"], "started");
        assert_eq!(records[3]["seq"], 4);
        assert_eq!(records[3]["prev"], hash(lines[2].as_bytes()));
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
        assert!(
            report.to_string().contains("continues from seq"),
            "{report}"
        );
        // Alone, a later file's first record links to a file that was not given.
        let alone = verify::verify_files(&[path]).expect("verify");
        assert!(alone.to_string().contains("older files"), "{alone}");
    }

    fn records_of(path: &Path) -> Vec<Value> {
        std::fs::read_to_string(path)
            .expect("read")
            .lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect()
    }

    #[test]
    fn several_writers_keep_one_chain() {
        let directory = tempfile::tempdir().expect("tempdir");
        let path = directory.path().join("audit.jsonl");
        let extra = "max_bytes = 8192\nkeep = 50\n";
        let logs: Vec<AuditLog> = (0..3)
            .map(|_| AuditLog::open(&config(&path, extra)).expect("open"))
            .collect();
        for round in 0..100 {
            logs[round % 3].record(&entry("ok")).expect("record");
            logs[(round * 7 + 1) % 3]
                .record(&entry("ok"))
                .expect("record");
        }
        let mut files: Vec<PathBuf> = (1..=50)
            .rev()
            .map(|n| PathBuf::from(format!("{}.{n}", path.display())))
            .filter(|p| p.exists())
            .collect();
        assert!(files.len() >= 2, "rotated with several writers");
        files.push(path.clone());
        let report = verify::verify_files(&files).expect("verify");
        assert!(report.is_ok(), "{report}");
        assert!(report.to_string().contains("seq 1 to "), "{report}");
    }

    #[test]
    fn a_file_deleted_or_cut_under_the_server_is_on_the_record() {
        let directory = tempfile::tempdir().expect("tempdir");
        let path = directory.path().join("audit.jsonl");
        let log = AuditLog::open(&config(&path, "")).expect("open");
        for _ in 0..5 {
            log.record(&entry("ok")).expect("record");
        }
        std::fs::remove_file(&path).expect("delete");
        log.record(&entry("after")).expect("record after delete");
        let records = records_of(&path);
        assert_eq!(records[0]["outcome"], "reopened");
        assert_eq!(records[0]["seq"], 7);
        assert_eq!(records[1]["outcome"], "after");
        let report = verify::verify_files(std::slice::from_ref(&path)).expect("verify");
        assert!(
            report.to_string().contains("deleted or replaced"),
            "{report}"
        );

        std::fs::write(&path, b"").expect("truncate");
        log.record(&entry("after cut")).expect("record after cut");
        let records = records_of(&path);
        assert_eq!(records[0]["outcome"], "truncated", "{records:?}");
        let report = verify::verify_files(std::slice::from_ref(&path)).expect("verify");
        assert!(report.to_string().contains("cut"), "{report}");

        // Cut in the middle of its last record: the numbering goes on, never from 1 again.
        let size = std::fs::metadata(&path).expect("meta").len();
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("open");
        file.set_len(size - 10).expect("cut mid-record");
        log.record(&entry("after a mid-record cut"))
            .expect("record");
        let text = std::fs::read_to_string(&path).expect("read");
        let notice: Value =
            serde_json::from_str(text.lines().nth_back(1).expect("notice")).expect("json");
        assert_eq!(notice["outcome"], "truncated");
        assert_eq!(notice["seq"], 11, "{notice}");
        let detail = notice["detail"].as_str().expect("detail");
        assert!(
            detail.contains("records up to seq 10 were written, it ends in the middle of a record"),
            "{detail}"
        );
    }

    #[test]
    fn an_emptied_log_does_not_verify() {
        let directory = tempfile::tempdir().expect("tempdir");
        let path = directory.path().join("audit.jsonl");
        let log = AuditLog::open(&config(&path, "")).expect("open");
        drop(log);
        let first: Value = serde_json::from_str(
            std::fs::read_to_string(&path)
                .expect("read")
                .lines()
                .next()
                .expect("a record at once"),
        )
        .expect("json");
        assert_eq!(first["outcome"], "started");
        std::fs::write(&path, b"").expect("empty it");
        let report = verify::verify_files(&[path]).expect("verify");
        assert!(
            report.to_string().contains("empty: it holds no records"),
            "{report}"
        );
    }

    #[test]
    fn a_flood_of_refusals_cannot_rotate_real_records_away() {
        let directory = tempfile::tempdir().expect("tempdir");
        let path = directory.path().join("audit.jsonl");
        let log = AuditLog::open(&config(&path, "max_bytes = 65536\nkeep = 1\n")).expect("open");
        log.record(&entry("ok")).expect("the action");
        let header = "x".repeat(390 * 1024);
        for port in 0..1100 {
            let refusal = Entry {
                event: Some(Event::Request),
                decision: Some(Decision::Refused),
                outcome: "forbidden".into(),
                remote: Some(format!("127.0.0.1:{}", 30000 + port)),
                detail: Some(format!("Origin `{header}` is not allowed")),
                ..Entry::default()
            };
            log.record(&refusal).expect("refusal");
        }
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.len() < 64 * 1024, "{} bytes", text.len());
        assert!(
            !PathBuf::from(format!("{}.1", path.display())).exists(),
            "nothing rotated"
        );
        assert!(text.contains(r#""outcome":"ok""#));
        drop(log);
        let text = std::fs::read_to_string(&path).expect("read");
        let last = text.lines().last().unwrap_or("");
        assert!(
            last.contains(r#""suppressed":1095"#),
            "the flood is summarised at shutdown: {last}"
        );
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
