//! `journal_query` and `journal_boots`: the journal, read through `journalctl -o json`.
//!
//! Why journalctl and not a library: it is systemd's own reader, so matches, priorities, boots,
//! `--grep` and cursors mean exactly what they mean to an administrator; it reads the journal
//! files through their indexes, so a page of 100 lines of one unit costs the same in a 10 GB
//! journal as in a small one, and it stops when we stop reading (flat memory); `--directory`
//! reads a host's journal mounted into a container. The libsystemd binding would link C into
//! a static binary, and the pure-Rust readers do not follow journald's file format as it
//! changes (compact mode, new compression). Arguments are passed as a list (no shell), every
//! value checked first, and the child is killed when the call ends or is cancelled.

use std::path::PathBuf;
use std::process::Stdio;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, BufReader};
use tokio::process::Command;

use super::bus::{rfc3339_micros, unit_name};
use crate::domains::shared::time::parse_time;
use crate::render;
use crate::tool::{Declaration, Domain, Render, Tool, ToolContext, ToolError};

pub(crate) static JOURNAL_QUERY: Declaration = Declaration::read(
    Domain::Services,
    "journal_query",
    "Query the journal",
    "Log lines from the systemd journal, like `journalctl`: filter by unit (and user_unit), \
     priority (`err`, `warning..err`, 0-7), since/until (RFC 3339 or a duration ago: 30s, \
     10m, 2h, 1d), boot (0 this boot, -1 the one before, or a boot id), identifier \
     (SYSLOG_IDENTIFIER), grep (a regular expression over the message, journalctl's \
     --grep) and kernel (kernel messages only). Newest first by default (order: \
     oldest_first for the other way); at most `limit` lines (default 100, at most 1000) and \
     max_bytes of messages; next_cursor continues exactly where this page ended.",
)
.paged("pass next_cursor as cursor, or narrow by unit, priority or time");

pub(crate) static JOURNAL_BOOTS: Declaration = Declaration::read(
    Domain::Services,
    "journal_boots",
    "Boots in the journal",
    "The boots the journal holds, like `journalctl --list-boots`: offset (0 is this boot, -1 \
     the one before), boot id, and the times of its first and last entries. Use the id or \
     the offset as journal_query's boot.",
);

const DEFAULT_LINES: u64 = 100;
const MAX_LINES: u64 = 1000;
const DEFAULT_MAX_BYTES: u64 = 64 * 1024;
const MAX_MAX_BYTES: u64 = 1024 * 1024;
/// One journal entry's JSON longer than this is cut (a binary blob, a core dump's metadata).
const MAX_ENTRY_BYTES: usize = 256 * 1024;
/// The longest message `service_status` shows of each of its last lines, bytes.
const STATUS_LINE_BYTES: usize = 2048;
/// Bytes a text line adds beside the message (time, priority, identifier and pid).
const TEXT_LINE_OVERHEAD: u64 = 80;
/// Bytes of an answer that are not entries (the cursor, notes, the envelope).
const ANSWER_OVERHEAD: u64 = 4096;
/// Shown when `journalctl` cannot be started.
const JOURNALCTL: &str = "journalctl";

/// Where the journal is, and how to run its reader.
pub(crate) struct Journal {
    /// `--directory`: a journal mounted from elsewhere (`[host] journal`).
    pub directory: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Order {
    #[default]
    NewestFirst,
    OldestFirst,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct QueryArguments {
    /// A unit (`nginx`, `nginx.service`): its own lines and systemd's about it.
    pub unit: Option<String>,
    /// A user unit (`--user-unit`).
    pub user_unit: Option<String>,
    /// `emerg`, `alert`, `crit`, `err`, `warning`, `notice`, `info`, `debug` or 0-7, or a
    /// range `warning..err`.
    pub priority: Option<String>,
    /// RFC 3339, or a duration ago (`30s`, `10m`, `2h`, `1d`).
    pub since: Option<String>,
    pub until: Option<String>,
    /// `0` this boot, `-1` the one before, or a 32-hex boot id.
    pub boot: Option<String>,
    /// SYSLOG_IDENTIFIER, as `journalctl -t`.
    pub identifier: Option<String>,
    /// A regular expression over the message (journalctl's `--grep`, PCRE2); case-insensitive
    /// when all lower case.
    pub grep: Option<String>,
    /// Kernel messages only (`-k`), of this boot unless `boot` says otherwise.
    #[serde(default)]
    pub kernel: bool,
    #[serde(default)]
    pub order: Order,
    /// Lines (default 100, at most 1000).
    pub limit: Option<u64>,
    /// Bytes of messages (default 65,536, at most 1,048,576); the page ends before the line
    /// that would pass it.
    pub max_bytes: Option<u64>,
    /// A previous answer's next_cursor: the page after it, in the same order.
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct JournalPage {
    pub entries: Vec<JournalEntry>,
    /// Pass as `cursor` (with the same filters and order) for the next page; absent when the
    /// journal has no more.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct JournalEntry {
    /// When the entry was written (`__REALTIME_TIMESTAMP`), RFC 3339 with microseconds.
    pub time: String,
    /// emerg, alert, crit, err, warning, notice, info or debug.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<String>,
    /// `_SYSTEMD_UNIT`, or `UNIT` for systemd's messages about a unit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// SYSLOG_IDENTIFIER, else `_COMM`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identifier: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// The message, one line: controls written `\n`, `\x1b`…, a backslash `\\`, bytes that
    /// are not UTF-8 `\xNN`.
    pub message: String,
    /// This entry's position: `cursor` continues after it.
    pub cursor: String,
}

impl Render for JournalPage {
    fn render_text(&self) -> String {
        let mut lines: Vec<String> = self
            .entries
            .iter()
            .map(|entry| {
                // Fields are already in their escaped form (see `entry`).
                let source = match (&entry.identifier, entry.pid) {
                    (Some(identifier), Some(pid)) => format!("{identifier}[{pid}]"),
                    (Some(identifier), None) => identifier.clone(),
                    (None, _) => "-".into(),
                };
                format!(
                    "{} {} {source}: {}",
                    entry.time,
                    entry.priority.as_deref().unwrap_or("-"),
                    entry.message
                )
            })
            .collect();
        if lines.is_empty() {
            lines.push("no entries match".into());
        }
        if let Some(cursor) = &self.next_cursor {
            lines.push(format!("(more with cursor {cursor})"));
        }
        lines.extend(
            self.notes
                .iter()
                .map(|note| format!("({})", render::sentence(note))),
        );
        lines.join("\n")
    }
}

const PRIORITIES: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];

/// A priority as journalctl takes it: a name or digit, or a range of them.
fn priority(text: &str) -> Result<String, ToolError> {
    let valid = |part: &str| {
        PRIORITIES.contains(&part)
            || (part.len() == 1 && part.as_bytes()[0].is_ascii_digit() && part < "8")
    };
    let ok = match text.split_once("..") {
        Some((low, high)) => valid(low) && valid(high),
        None => valid(text),
    };
    if ok {
        Ok(text.to_string())
    } else {
        Err(ToolError::invalid_arguments(format!(
            "priority `{}` is not one: give {} or 0-7, or a range such as warning..err",
            render::text(text),
            PRIORITIES.join(", ")
        )))
    }
}

/// A boot as journalctl takes it: an offset (`0`, `-1`) or a 32-hex id.
fn boot(text: &str) -> Result<String, ToolError> {
    let offset = text
        .strip_prefix('-')
        .or(text.strip_prefix('+'))
        .unwrap_or(text);
    let is_offset =
        !offset.is_empty() && offset.len() <= 6 && offset.bytes().all(|b| b.is_ascii_digit());
    let is_id = text.len() == 32 && text.bytes().all(|b| b.is_ascii_hexdigit());
    if is_offset || is_id {
        Ok(text.to_string())
    } else {
        Err(ToolError::invalid_arguments(format!(
            "boot `{}` is not one: give 0 (this boot), -1 (the one before) or a boot id from \
             journal_boots",
            render::text(text)
        )))
    }
}

/// A cursor as journalctl writes them: `s=…;i=…;b=…;m=…;t=…;x=…`.
fn cursor(text: &str) -> Result<String, ToolError> {
    let valid = text.len() <= 512
        && text.starts_with("s=")
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'=' || b == b';');
    if valid {
        Ok(text.to_string())
    } else {
        Err(ToolError::invalid_arguments(
            "cursor is not one this tool gave; leave it out to start from the newest (or \
             oldest) entry",
        ))
    }
}

/// A free-text filter value: no control characters, bounded, and never read as an option.
fn plain(what: &str, text: &str) -> Result<String, ToolError> {
    if text.is_empty() || text.len() > 1024 || text.chars().any(char::is_control) {
        return Err(ToolError::invalid_arguments(format!(
            "{what}: give 1 to 1024 characters, no control characters"
        )));
    }
    Ok(text.to_string())
}

impl Journal {
    fn command(&self) -> Command {
        let mut command = Command::new(JOURNALCTL);
        command
            .arg("--no-pager")
            .env("SYSTEMD_COLORS", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(directory) = &self.directory {
            command.arg(format!("--directory={}", directory.display()));
        }
        command
    }

    /// The arguments of a query, every value checked.
    fn query_arguments(arguments: &QueryArguments) -> Result<Vec<String>, ToolError> {
        let mut args = vec!["--output=json".to_string(), "--all".to_string()];
        let now = chrono::Utc::now().timestamp();
        if let Some(unit) = &arguments.unit {
            args.push(format!("--unit={}", unit_name(unit)?));
        }
        if let Some(unit) = &arguments.user_unit {
            args.push(format!("--user-unit={}", unit_name(unit)?));
        }
        if let Some(text) = &arguments.priority {
            args.push(format!("--priority={}", priority(text)?));
        }
        if let Some(text) = &arguments.since {
            args.push(format!("--since=@{}", parse_time(text, now)?));
        }
        if let Some(text) = &arguments.until {
            args.push(format!("--until=@{}", parse_time(text, now)?));
        }
        if let Some(text) = &arguments.boot {
            args.push(format!("--boot={}", boot(text)?));
        }
        if let Some(text) = &arguments.identifier {
            args.push(format!("--identifier={}", plain("identifier", text)?));
        }
        if let Some(text) = &arguments.grep {
            args.push(format!("--grep={}", plain("grep", text)?));
        }
        if arguments.kernel {
            args.push("--dmesg".into());
        }
        if arguments.order == Order::NewestFirst {
            args.push("--reverse".into());
        }
        if let Some(text) = &arguments.cursor {
            // After the cursor in the order asked: reverse continues backwards from it.
            args.push(format!("--after-cursor={}", cursor(text)?));
        }
        // No --lines: it counts from the end whatever the order. The reader stops after one
        // entry more than the page (to know there is a next page) and ends journalctl.
        Ok(args)
    }

    /// Runs a query and reads one page.
    pub(crate) async fn query(
        &self,
        arguments: &QueryArguments,
        context: &ToolContext,
    ) -> Result<JournalPage, ToolError> {
        let mut notes = Vec::new();
        let lines = match arguments.limit.unwrap_or(DEFAULT_LINES) {
            0 => {
                return Err(ToolError::invalid_arguments(format!(
                    "limit 0 is out of range: give at least 1 (default {DEFAULT_LINES}, at most \
                     {MAX_LINES})"
                )));
            }
            asked if asked > MAX_LINES => {
                notes.push(format!(
                    "limit {asked} is more than one page holds: gave at most {MAX_LINES}; use \
                     next_cursor for the rest"
                ));
                MAX_LINES
            }
            asked => asked,
        };
        // Messages appear twice in an answer (structured and text), with their fields.
        let fits = (context.output_cap.max_bytes.saturating_sub(4096) / 3).max(1);
        let asked_bytes = arguments.max_bytes.unwrap_or(DEFAULT_MAX_BYTES.min(fits));
        if !(1..=MAX_MAX_BYTES).contains(&asked_bytes) {
            return Err(ToolError::invalid_arguments(format!(
                "max_bytes {asked_bytes} is out of range: give 1 to {MAX_MAX_BYTES}"
            )));
        }
        let max_bytes = if asked_bytes > fits {
            notes.push(format!(
                "max_bytes {asked_bytes} is more than an answer holds \
                 (limits.max_output_bytes): read at most {fits}"
            ));
            fits
        } else {
            asked_bytes
        };
        let args = Self::query_arguments(arguments)?;
        let mut child = self.command().args(&args).spawn().map_err(spawn_error)?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| ToolError::failed("no output from journalctl"))?;
        let mut stderr = child.stderr.take();
        let mut reader = BufReader::new(stdout);
        let mut entries = Vec::new();
        let mut bytes = 0u64;
        // The whole answer stays under the output cap, with room for its other fields.
        let answer_budget = context.output_cap.max_bytes.saturating_sub(ANSWER_OVERHEAD);
        let mut answer = 0u64;
        let mut more = false;
        let mut line = Vec::new();
        let read = async {
            loop {
                line.clear();
                let read = (&mut reader)
                    .take(MAX_ENTRY_BYTES as u64 + 1)
                    .read_until(b'\n', &mut line)
                    .await
                    .map_err(|error| ToolError::failed(format!("reading journalctl: {error}")))?;
                if read == 0 {
                    break;
                }
                if line.last() != Some(&b'\n') {
                    // An entry longer than the bound: skip the rest of it.
                    let mut rest = Vec::new();
                    reader.read_until(b'\n', &mut rest).await.map_err(|error| {
                        ToolError::failed(format!("reading journalctl: {error}"))
                    })?;
                    notes.push("an entry longer than 256 KiB was left out".into());
                    continue;
                }
                let Ok(value) = serde_json::from_slice::<Value>(&line) else {
                    continue;
                };
                let mut entry = entry(&value);
                // One message larger than a page may hold is cut, so paging always moves on.
                let per_entry = max_bytes.min(answer_budget / 3).max(1) as usize;
                if entry.message.len() > per_entry {
                    let whole = entry.message.len();
                    let mut end = per_entry;
                    while !entry.message.is_char_boundary(end) {
                        end -= 1;
                    }
                    entry.message.truncate(end);
                    entry.message.push('…');
                    notes.push(format!(
                        "the message at {} was cut to {end} of its {whole} bytes",
                        entry.time
                    ));
                }
                // What the entry adds to the answer: its JSON and its text line. A page the gate
                // had to cut would lose lines between it and the cursor.
                let size = serde_json::to_vec(&entry).map_or(0, |json| json.len() as u64)
                    + entry.message.len() as u64
                    + TEXT_LINE_OVERHEAD;
                let full =
                    bytes + entry.message.len() as u64 > max_bytes || answer + size > answer_budget;
                if entries.len() as u64 == lines || (full && !entries.is_empty()) {
                    more = true;
                    break;
                }
                bytes += entry.message.len() as u64;
                answer += size;
                entries.push(entry);
            }
            Ok::<(), ToolError>(())
        };
        tokio::select! {
            result = read => result?,
            () = context.cancel.cancelled() => {
                return Err(ToolError::failed("the query was cancelled"));
            }
        }
        if !more {
            // journalctl ended by itself: a failure says why (a bad --grep, no journal).
            let status = child
                .wait()
                .await
                .map_err(|error| ToolError::failed(format!("journalctl: {error}")))?;
            if !status.success() {
                let mut message = String::new();
                if let Some(stderr) = stderr.as_mut() {
                    let _ = stderr.take(4096).read_to_string(&mut message).await;
                }
                // journalctl ends with status 1 and says nothing when no entry matches (a
                // --grep or a time with none): an empty page, not an error.
                if !message.trim().is_empty() {
                    return Err(ToolError::invalid_arguments(format!(
                        "journalctl refused the query: {}",
                        render::text(message.trim())
                    )));
                }
            }
        } else {
            let _ = child.start_kill();
        }
        let next_cursor = if more {
            entries
                .last()
                .map(|entry: &JournalEntry| entry.cursor.clone())
        } else {
            None
        };
        if more && (entries.len() as u64) < lines {
            notes.push(format!(
                "the page ended before {lines} lines, at max_bytes ({max_bytes} bytes of \
                 messages) or the output cap (limits.max_output_bytes); next_cursor continues"
            ));
        }
        Ok(JournalPage {
            entries,
            next_cursor,
            notes,
        })
    }

    /// The last `lines` entries of a unit, oldest first (for `service_status`); empty when the
    /// journal cannot be read.
    pub(crate) async fn last_lines(&self, unit: &str, lines: u64) -> Vec<JournalEntry> {
        let Ok(mut child) = self
            .command()
            .args([
                "--output=json".to_string(),
                "--all".into(),
                format!("--unit={unit}"),
                format!("--lines={lines}"),
            ])
            .spawn()
        else {
            return Vec::new();
        };
        let Some(stdout) = child.stdout.take() else {
            return Vec::new();
        };
        let mut reader = BufReader::new(stdout).lines();
        let mut entries = Vec::new();
        while let Ok(Some(line)) = reader.next_line().await {
            if let Ok(value) = serde_json::from_str::<Value>(&line) {
                let mut entry = entry(&value);
                // A status shows lines, not blobs: a long message keeps its start.
                if entry.message.len() > STATUS_LINE_BYTES {
                    let mut end = STATUS_LINE_BYTES;
                    while !entry.message.is_char_boundary(end) {
                        end -= 1;
                    }
                    entry.message.truncate(end);
                    entry.message.push('…');
                }
                entries.push(entry);
            }
        }
        let _ = child.wait().await;
        entries
    }

    /// `journalctl --list-boots`.
    pub(crate) async fn boots(&self) -> Result<Vec<Boot>, ToolError> {
        let output = self
            .command()
            .args(["--list-boots", "--output=json"])
            .output()
            .await
            .map_err(spawn_error)?;
        if !output.status.success() {
            return Err(ToolError::unavailable(format!(
                "journalctl --list-boots failed: {}",
                render::text(String::from_utf8_lossy(&output.stderr).trim())
            )));
        }
        let listed: Vec<Value> = serde_json::from_slice(&output.stdout)
            .map_err(|error| ToolError::failed(format!("journalctl's boot list: {error}")))?;
        let mut boots: Vec<Boot> = listed
            .iter()
            .map(|boot| Boot {
                offset: boot["index"].as_i64().unwrap_or_default(),
                boot_id: boot["boot_id"].as_str().unwrap_or_default().to_string(),
                first_entry: boot["first_entry"].as_u64().and_then(rfc3339_micros),
                last_entry: boot["last_entry"].as_u64().and_then(rfc3339_micros),
            })
            .collect();
        boots.sort_by_key(|boot| std::cmp::Reverse(boot.offset));
        Ok(boots)
    }
}

fn spawn_error(error: std::io::Error) -> ToolError {
    ToolError::unavailable(format!(
        "cannot run {JOURNALCTL}: {error}; the journal tools need systemd's journalctl on the \
         server's PATH"
    ))
}

/// One entry of `journalctl -o json`.
fn entry(value: &Value) -> JournalEntry {
    // Every field as answers write host strings (render::bytes_text): controls and bidi
    // characters escaped, `\` doubled, bytes that are not UTF-8 as `\xNN`; one form, in
    // structured answers and text alike.
    let field = |name: &str| -> Option<String> {
        match &value[name] {
            Value::String(text) => Some(render::bytes_text(text.as_bytes())),
            // journalctl writes a field that is not UTF-8 as an array of bytes.
            Value::Array(bytes) => {
                let bytes: Vec<u8> = bytes
                    .iter()
                    .filter_map(|byte| byte.as_u64().and_then(|b| u8::try_from(b).ok()))
                    .collect();
                Some(render::bytes_text(&bytes))
            }
            _ => None,
        }
    };
    JournalEntry {
        time: field("__REALTIME_TIMESTAMP")
            .and_then(|micros| micros.parse().ok())
            .and_then(rfc3339_micros)
            .unwrap_or_default(),
        priority: field("PRIORITY")
            .and_then(|digit| digit.parse::<usize>().ok())
            .and_then(|index| PRIORITIES.get(index))
            .map(|name| name.to_string()),
        unit: field("_SYSTEMD_UNIT").or_else(|| field("UNIT")),
        identifier: field("SYSLOG_IDENTIFIER").or_else(|| field("_COMM")),
        pid: field("_PID").and_then(|pid| pid.parse().ok()),
        message: field("MESSAGE").unwrap_or_default(),
        cursor: field("__CURSOR").unwrap_or_default(),
    }
}

pub(crate) struct JournalQueryTool {
    pub journal: std::sync::Arc<Journal>,
}

impl Tool for JournalQueryTool {
    type Arguments = QueryArguments;
    type Output = JournalPage;

    fn declaration(&self) -> &'static Declaration {
        &JOURNAL_QUERY
    }

    async fn run(
        &self,
        arguments: QueryArguments,
        context: ToolContext,
    ) -> Result<JournalPage, ToolError> {
        self.journal.query(&arguments, &context).await
    }
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct Boot {
    /// 0 is the current boot, -1 the one before, …
    pub offset: i64,
    pub boot_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_entry: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_entry: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct BootList {
    pub boots: Vec<Boot>,
}

impl Render for BootList {
    fn render_text(&self) -> String {
        self.boots
            .iter()
            .map(|boot| {
                format!(
                    "{} {} {} — {}",
                    boot.offset,
                    boot.boot_id,
                    boot.first_entry.as_deref().unwrap_or("?"),
                    boot.last_entry.as_deref().unwrap_or("?")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

pub(crate) struct JournalBootsTool {
    pub journal: std::sync::Arc<Journal>,
}

impl Tool for JournalBootsTool {
    type Arguments = crate::tool::NoArguments;
    type Output = BootList;

    fn declaration(&self) -> &'static Declaration {
        &JOURNAL_BOOTS
    }

    async fn run(
        &self,
        _: crate::tool::NoArguments,
        _: ToolContext,
    ) -> Result<BootList, ToolError> {
        Ok(BootList {
            boots: self.journal.boots().await?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_values_are_checked_before_journalctl_sees_them() {
        assert!(
            priority("err").is_ok() && priority("warning..err").is_ok() && priority("3").is_ok()
        );
        assert!(priority("8").is_err() && priority("--all").is_err() && priority("loud").is_err());
        assert!(boot("0").is_ok() && boot("-1").is_ok());
        assert!(boot("fe2d9481086a408fb7d004d4e3e13fd8").is_ok());
        assert!(boot("--merge").is_err() && boot("").is_err() && boot("-").is_err());
        assert!(cursor("s=00a1;i=37;b=fe2d;m=28aa;t=6618;x=4d3e").is_ok());
        assert!(cursor("--x").is_err() && cursor("s=a b").is_err());
        assert!(plain("grep", "ERROR disk").is_ok() && plain("grep", "a\nb").is_err());
    }

    #[test]
    fn entries_keep_bytes_that_are_not_utf8() {
        let value = serde_json::json!({
            "__REALTIME_TIMESTAMP": "1796066031941611",
            "PRIORITY": "3",
            "_SYSTEMD_UNIT": "x.service",
            "SYSLOG_IDENTIFIER": "x",
            "_PID": "12",
            "MESSAGE": [98, 97, 100, 255],
            "__CURSOR": "s=1;i=2",
        });
        let entry = entry(&value);
        assert_eq!(entry.message, "bad\\xff");
        assert_eq!(entry.priority.as_deref(), Some("err"));
        assert_eq!(entry.time, "2026-11-30T19:13:51.941611Z");
        assert_eq!(entry.pid, Some(12));
    }
}
