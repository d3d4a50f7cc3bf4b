//! `systemmanager audit verify FILE...`: walks the hash chain and names the first record that
//! was edited, deleted or reordered, by file and line.
//!
//! Files are given oldest first (`audit.jsonl.2 audit.jsonl.1 audit.jsonl`), so the chain is
//! checked across rotations too. What a hash chain cannot show: the last record edited, or
//! records cut from the end; the journald copy is the independent witness for those.

use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{GENESIS, hash};

/// The result of a verification.
#[derive(Debug, PartialEq, Eq)]
pub enum Report {
    Intact {
        records: u64,
        first_seq: u64,
        last_seq: u64,
        /// The first file starts mid-chain (its predecessor was not given).
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
                        " (the first continues a chain from an earlier file, after seq {seq}: \
                         give the older files first to check that link)"
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
}

fn parse(line: &str) -> Option<Parsed> {
    let record: Value = serde_json::from_str(line).ok()?;
    Some(Parsed {
        seq: record.get("seq")?.as_u64()?,
        prev: record.get("prev")?.as_str()?.to_string(),
    })
}

/// Verifies `files`, oldest first.
pub fn verify_files(files: &[PathBuf]) -> std::io::Result<Report> {
    let mut lines: Vec<(PathBuf, usize, String)> = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(path)?;
        for (index, line) in text.lines().enumerate() {
            lines.push((path.clone(), index + 1, line.to_string()));
        }
    }
    Ok(verify_lines(&lines))
}

fn broken(path: &Path, line: usize, problem: String) -> Report {
    Report::Broken {
        path: path.to_path_buf(),
        line,
        problem,
    }
}

fn verify_lines(lines: &[(PathBuf, usize, String)]) -> Report {
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
                if record.seq != 1 || record.prev != GENESIS {
                    continues_from = Some(record.seq.saturating_sub(1));
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
        verify_lines(&numbered)
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
