//! `systemmanager audit verify FILE...`: walks the hash chain and names the first record that
//! was edited, deleted or reordered, by file and line — and a log that does not start where a
//! log starts.
//!
//! Files are given oldest first (`audit.jsonl.2 audit.jsonl.1 audit.jsonl`), so the chain is
//! checked across rotations too. The first record must be the log's `started` record (seq 1; or,
//! for logs written before it existed, any record with seq 1 and the all-zero `prev`), or a
//! `rotated` record that continues from the last record of a deleted file as `FILE.anchor`
//! remembers it: records cut from the start therefore show. A `reopened` or `truncated` record
//! is the server's own report that the file was deleted or cut while it ran, and is named too.
//! What a hash chain cannot show: the last record edited, or records cut from the end; the
//! journald copy is the independent witness for those.

use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::writer::Anchor;
use super::{GENESIS, hash};

/// The result of a verification.
#[derive(Debug, PartialEq, Eq)]
pub enum Report {
    Intact {
        records: u64,
        first_seq: u64,
        last_seq: u64,
        /// The first file starts after a rotated-away file, whose last record (this seq) the
        /// anchor kept beside the log vouches for.
        continues_from: Option<u64>,
    },
    Broken {
        path: PathBuf,
        line: usize,
        problem: String,
    },
}

impl Report {
    pub fn is_ok(&self) -> bool {
        matches!(self, Report::Intact { .. })
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Report::Intact {
                records,
                first_seq,
                last_seq,
                continues_from,
            } => {
                write!(
                    f,
                    "intact: {records} records, seq {first_seq} to {last_seq}, every record \
                     chained to the one before"
                )?;
                if let Some(seq) = continues_from {
                    write!(
                        f,
                        " (it continues from seq {seq}, the last record of a file rotation \
                         deleted, as the anchor kept beside the log says)"
                    )?;
                }
                Ok(())
            }
            Report::Broken {
                path,
                line,
                problem,
            } => write!(f, "{}:{line}: {problem}", path.display()),
        }
    }
}

struct Parsed {
    seq: u64,
    prev: String,
    /// For the log's own records (`event: "log"`): started, rotated, reopened, truncated.
    notice: Option<String>,
    detail: Option<String>,
}

fn parse(line: &str) -> Option<Parsed> {
    let record: Value = serde_json::from_str(line).ok()?;
    let notice = (record.get("event").and_then(Value::as_str) == Some("log"))
        .then(|| {
            record
                .get("outcome")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .flatten();
    Some(Parsed {
        seq: record.get("seq")?.as_u64()?,
        prev: record.get("prev")?.as_str()?.to_string(),
        notice,
        detail: record
            .get("detail")
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

/// The log a file belongs to: `audit.jsonl.3` → `audit.jsonl`.
fn log_of(path: &Path) -> PathBuf {
    let text = path.to_string_lossy();
    match text.rsplit_once('.') {
        Some((base, number))
            if !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()) =>
        {
            PathBuf::from(base)
        }
        _ => path.to_path_buf(),
    }
}

/// Verifies `files`, oldest first. Errors: a file or the anchor beside the log cannot be read.
pub fn verify_files(files: &[PathBuf]) -> std::io::Result<Report> {
    let mut lines: Vec<(PathBuf, usize, String)> = Vec::new();
    for path in files {
        let bytes = std::fs::read(path)?;
        let text = String::from_utf8_lossy(&bytes);
        for (index, line) in text.lines().enumerate() {
            lines.push((path.clone(), index + 1, line.to_string()));
        }
    }
    if let (true, Some(first)) = (lines.is_empty(), files.first()) {
        // A log the server opened begins with its `started` record at once: a file without a
        // single record was emptied.
        return Ok(broken(
            first,
            1,
            "empty: it holds no records; the server begins every log with a `started` record, \
             so this one was emptied"
                .into(),
        ));
    }
    let anchor = match files.first() {
        Some(first) => super::writer::read_anchor(&log_of(first))?,
        None => None,
    };
    Ok(verify_lines(&lines, anchor.as_ref()))
}

/// Whether the first record is where a log may start; `Err` names why not.
fn check_start(record: &Parsed, anchor: Option<&Anchor>) -> Result<Option<u64>, String> {
    match record.notice.as_deref() {
        Some("started") | None if record.seq == 1 && record.prev == GENESIS => Ok(None),
        Some("rotated") => match anchor {
            Some(anchor) if anchor.seq + 1 == record.seq && anchor.hash == record.prev => {
                Ok(Some(anchor.seq))
            }
            Some(anchor) => Err(format!(
                "cut at the start, or older files not given: this rotated file begins at seq {}, \
                 but the last record rotation deleted was seq {} (FILE.anchor). Give the older \
                 files first (FILE.2 FILE.1 FILE); if you did, the records between were removed",
                record.seq, anchor.seq
            )),
            None => Err(format!(
                "this file begins with a rotation (seq {}) and its link cannot be checked: give the \
                 older files first (FILE.2 FILE.1 FILE), or FILE.anchor was removed",
                record.seq
            )),
        },
        Some(notice @ ("reopened" | "truncated")) => Err(notice_problem(notice, record)),
        _ => Err(format!(
            "cut at the start: the first record is seq {}, not the start of the log (seq 1) or of \
             a rotated file; the records before it were removed",
            record.seq
        )),
    }
}

fn notice_problem(notice: &str, record: &Parsed) -> String {
    let what = if notice == "reopened" {
        "deleted or replaced"
    } else {
        "cut"
    };
    format!(
        "the server found the audit file {what} while it ran (record seq {}): {}",
        record.seq,
        record.detail.as_deref().unwrap_or("")
    )
}

fn broken(path: &Path, line: usize, problem: String) -> Report {
    Report::Broken {
        path: path.to_path_buf(),
        line,
        problem,
    }
}

fn verify_lines(lines: &[(PathBuf, usize, String)], anchor: Option<&Anchor>) -> Report {
    let mut previous: Option<(&Path, usize, String, u64)> = None;
    let mut first_seq = None;
    let mut continues_from = None;
    for (position, (path, line, text)) in lines.iter().enumerate() {
        let Some(record) = parse(text) else {
            return broken(
                path,
                *line,
                "not an audit record (edited: it is not the JSON the server writes)".into(),
            );
        };
        match &previous {
            None => {
                first_seq = Some(record.seq);
                match check_start(&record, anchor) {
                    Ok(after) => continues_from = after,
                    Err(problem) => return broken(path, *line, problem),
                }
            }
            Some((previous_path, previous_line, previous_hash, previous_seq)) => {
                let expected = previous_seq + 1;
                if record.seq == expected && record.prev != *previous_hash {
                    return broken(
                        previous_path,
                        *previous_line,
                        format!(
                            "edited: record seq {previous_seq} no longer matches the hash the \
                             record after it holds"
                        ),
                    );
                }
                if record.seq != expected {
                    let next_seq = lines
                        .get(position + 1)
                        .and_then(|(_, _, next)| parse(next))
                        .map(|next| next.seq);
                    let problem = if record.seq > expected && next_seq != Some(expected) {
                        let missing = if record.seq - expected == 1 {
                            format!("seq {expected} is missing")
                        } else {
                            format!("seq {expected} to {} are missing", record.seq - 1)
                        };
                        format!("deleted: {missing} before this record (seq {})", record.seq)
                    } else {
                        format!(
                            "reordered: seq {} where seq {expected} should come",
                            record.seq
                        )
                    };
                    return broken(path, *line, problem);
                }
                if let Some(notice @ ("reopened" | "truncated")) = record.notice.as_deref() {
                    return broken(path, *line, notice_problem(notice, &record));
                }
            }
        }
        previous = Some((path, *line, hash(text.as_bytes()), record.seq));
    }
    match (first_seq, previous) {
        (Some(first_seq), Some((_, _, _, last_seq))) => Report::Intact {
            records: last_seq - first_seq + 1,
            first_seq,
            last_seq,
            continues_from,
        },
        _ => Report::Intact {
            records: 0,
            first_seq: 0,
            last_seq: 0,
            continues_from: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(count: u64) -> Vec<String> {
        let mut prev = GENESIS.to_string();
        (1..=count)
            .map(|seq| {
                let line = format!(r#"{{"seq":{seq},"outcome":"ok","prev":"{prev}"}}"#);
                prev = hash(line.as_bytes());
                line
            })
            .collect()
    }

    fn check(lines: &[String]) -> Report {
        let numbered: Vec<(PathBuf, usize, String)> = lines
            .iter()
            .enumerate()
            .map(|(i, l)| (PathBuf::from("audit.jsonl"), i + 1, l.clone()))
            .collect();
        verify_lines(&numbered, None)
    }

    #[test]
    fn an_intact_chain_verifies() {
        let report = check(&chain(5));
        assert!(report.is_ok());
        assert_eq!(
            report.to_string(),
            "intact: 5 records, seq 1 to 5, every record chained to the one before"
        );
    }

    #[test]
    fn one_changed_byte_names_the_edited_line() {
        let mut lines = chain(5);
        lines[2] = lines[2].replace("\"ok\"", "\"OK\"");
        assert_eq!(
            check(&lines).to_string(),
            "audit.jsonl:3: edited: record seq 3 no longer matches the hash the record after it holds"
        );
        let mut lines = chain(5);
        lines[1] = lines[1].replacen('{', "[", 1);
        assert!(
            check(&lines)
                .to_string()
                .starts_with("audit.jsonl:2: not an audit record")
        );
    }

    #[test]
    fn a_deleted_line_is_named() {
        let mut lines = chain(6);
        lines.remove(2);
        assert_eq!(
            check(&lines).to_string(),
            "audit.jsonl:3: deleted: seq 3 is missing before this record (seq 4)"
        );
        let mut lines = chain(6);
        lines.drain(1..4);
        assert_eq!(
            check(&lines).to_string(),
            "audit.jsonl:2: deleted: seq 2 to 4 are missing before this record (seq 5)"
        );
    }

    #[test]
    fn swapped_lines_are_named() {
        let mut lines = chain(6);
        lines.swap(2, 3);
        assert_eq!(
            check(&lines).to_string(),
            "audit.jsonl:3: reordered: seq 4 where seq 3 should come"
        );
    }
}

#[cfg(test)]
mod start_tests {
    use super::*;

    fn record(seq: u64, prev: &str, event: &str, outcome: &str) -> String {
        format!(r#"{{"seq":{seq},"event":"{event}","outcome":"{outcome}","prev":"{prev}"}}"#)
    }

    fn lines(texts: &[String]) -> Vec<(PathBuf, usize, String)> {
        texts
            .iter()
            .enumerate()
            .map(|(i, l)| (PathBuf::from("audit.jsonl"), i + 1, l.clone()))
            .collect()
    }

    fn chain_from(seq: u64, prev: &str, first: (&str, &str), count: u64) -> Vec<String> {
        let mut prev = prev.to_string();
        let mut out = Vec::new();
        for n in 0..count {
            let (event, outcome) = if n == 0 { first } else { ("call", "ok") };
            let line = record(seq + n, &prev, event, outcome);
            prev = hash(line.as_bytes());
            out.push(line);
        }
        out
    }

    #[test]
    fn a_log_cut_at_the_start_is_named() {
        let log = chain_from(1, GENESIS, ("log", "started"), 100);
        assert!(verify_lines(&lines(&log), None).is_ok());
        let cut = verify_lines(&lines(&log[50..]), None);
        assert!(
            cut.to_string()
                .contains("cut at the start: the first record is seq 51"),
            "{cut}"
        );
    }

    #[test]
    fn a_rotated_file_is_checked_against_the_anchor() {
        let file = chain_from(41, &"ab".repeat(32), ("log", "rotated"), 10);
        let anchor = Anchor {
            seq: 40,
            hash: "ab".repeat(32),
        };
        let report = verify_lines(&lines(&file), Some(&anchor));
        assert!(report.is_ok(), "{report}");
        assert!(
            report.to_string().contains("continues from seq 40"),
            "{report}"
        );
        let wrong = Anchor {
            seq: 30,
            hash: "cd".repeat(32),
        };
        assert!(
            verify_lines(&lines(&file), Some(&wrong))
                .to_string()
                .contains("cut at the start")
        );
        assert!(
            verify_lines(&lines(&file), None)
                .to_string()
                .contains("give the older files first")
        );
    }

    #[test]
    fn the_servers_own_notices_are_named() {
        let mut log = chain_from(1, GENESIS, ("log", "started"), 3);
        let prev = hash(log[2].as_bytes());
        log.push(record(4, &prev, "log", "truncated"));
        let report = verify_lines(&lines(&log), None);
        assert!(
            report.to_string().contains("found the audit file cut"),
            "{report}"
        );
        let reopened = chain_from(9, &"ef".repeat(32), ("log", "reopened"), 2);
        let report = verify_lines(&lines(&reopened), None);
        assert!(
            report.to_string().contains("deleted or replaced"),
            "{report}"
        );
    }
}
