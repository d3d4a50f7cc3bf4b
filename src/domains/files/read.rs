//! `files_read`: part of a file, by line range or byte range, bounded in bytes.

use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::confine::{Roots, path_text};
use super::{bytes_text, fit_to_cap};
use crate::render;
use crate::tool::{
    ClientRoots, Collect, Declaration, Domain, OutputCap, Render, ToolContext, ToolError,
};

pub(crate) static FILES_READ: Declaration = Declaration::read(
    Domain::Files,
    "files_read",
    "Read a file",
    "Part of a text file inside the file roots: from start_line (1-based) for \
     `lines` lines, or from byte `offset`; at most max_bytes (default 64 KiB). The \
     answer gives the file's size and line count and where to continue \
     (next_line or next_offset). Invalid UTF-8 bytes are shown as \\xNN; binary \
     files are refused (files_stat describes them). For the end of a log, use \
     files_tail.",
)
.paged("ask again from next_line or next_offset")
.within_client_roots();

/// Lines are counted for files up to this size; a larger file's count would cost a full read.
const COUNT_LINES_UP_TO: u64 = 64 * 1024 * 1024;
const DEFAULT_MAX_BYTES: u64 = 64 * 1024;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReadArguments {
    /// Absolute path of a file inside a root, written as answers print names
    /// (`\xNN` for a byte that is not UTF-8, `\\` for a backslash).
    pub path: String,
    /// First line to return, counting from 1. Not with `offset`.
    #[schemars(range(min = 1))]
    pub start_line: Option<u64>,
    /// How many lines to return from start_line (default: as many as max_bytes allows).
    #[schemars(range(min = 1))]
    pub lines: Option<u64>,
    /// First byte to return, counting from 0. Not with `start_line`.
    pub offset: Option<u64>,
    /// At most this many bytes (default 64 KiB, at most the server's files.max_read_bytes).
    #[schemars(range(min = 1))]
    pub max_bytes: Option<u64>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct FileContent {
    pub path: String,
    pub size_bytes: u64,
    /// Lines in the whole file; left out for files over 64 MiB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_lines: Option<u64>,
    /// Byte offset of the first byte returned.
    pub offset: u64,
    /// Line number of the first line returned, when reading by lines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_line: Option<u64>,
    pub bytes_returned: u64,
    pub content: String,
    /// Bytes that were not valid UTF-8, each shown as \xNN in `content`.
    #[serde(skip_serializing_if = "crate::render::is_zero")]
    pub invalid_bytes: u64,
    /// Where to continue: the next line (when reading by lines) or byte.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_line: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_offset: Option<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Render for FileContent {
    fn render_text(&self) -> String {
        let end = self.offset + self.bytes_returned;
        let mut header = format!(
            "{}: bytes {}-{} of {}",
            self.path, self.offset, end, self.size_bytes
        );
        if let Some(lines) = self.total_lines {
            header.push_str(&format!(", {}", render::count(lines, "line", "lines")));
        }
        if let Some(next) = self.next_line {
            header.push_str(&format!("; more from start_line {next}"));
        } else if let Some(next) = self.next_offset {
            header.push_str(&format!("; more from offset {next}"));
        }
        // The path is already escaped; the content is shown as it is, its newlines kept.
        format!("{header}\n{}", render::block(&self.content))
    }
}

pub(crate) struct FileReader {
    pub roots: Arc<Roots>,
    pub max_read_bytes: u64,
}

impl FileReader {
    /// Blocking: reads the file.
    pub(crate) fn read(
        &self,
        arguments: &ReadArguments,
        scope: &ClientRoots,
        cap: OutputCap,
    ) -> Result<FileContent, ToolError> {
        if arguments.start_line.is_some() && arguments.offset.is_some() {
            return Err(ToolError::invalid_arguments(
                "give start_line or offset, not both",
            ));
        }
        if arguments.lines.is_some() && arguments.offset.is_some() {
            return Err(ToolError::invalid_arguments(
                "`lines` counts from start_line; with offset, bound the answer with max_bytes",
            ));
        }
        let mut notes = Vec::new();
        let max_bytes = bounded_bytes(arguments.max_bytes, self.max_read_bytes, &mut notes)?;
        let mut budget_stopped = false;
        let (mut content, budget) = fit_to_cap::read_fitting(max_bytes, cap.max_bytes, |budget| {
            let (content, stopped) = self.read_at_most(arguments, scope, budget, notes.clone())?;
            budget_stopped = stopped;
            Ok(content)
        })?;
        // Only when the smaller budget is what stopped the read: `lines` or the end of the
        // file stopping it first held nothing back.
        if budget < max_bytes && budget_stopped {
            content
                .notes
                .push(fit_to_cap::held_note(budget, max_bytes, cap.max_bytes));
        }
        Ok(content)
    }

    /// One read of at most `max_bytes` (a little more only when `max_bytes` is smaller than
    /// the one character it would split), cut between characters. Also says whether the
    /// byte budget is what stopped it (more was there to read).
    fn read_at_most(
        &self,
        arguments: &ReadArguments,
        scope: &ClientRoots,
        max_bytes: u64,
        mut notes: Vec<String>,
    ) -> Result<(FileContent, bool), ToolError> {
        let (located, file) = self.roots.open_file(&arguments.path, scope)?;
        let shown = path_text(&located.shown);
        let size = file
            .metadata()
            .map_err(|error| ToolError::failed(format!("`{shown}`: {error}")))?
            .len();
        let mut file = file.into_std();
        let failed = |error: std::io::Error| ToolError::failed(format!("`{shown}`: {error}"));

        let by_lines = arguments.offset.is_none();
        let mut budget_stopped = false;
        let (offset, bytes, start_line, next_line) = if by_lines {
            let start_line = arguments.start_line.unwrap_or(1);
            let mut reader = BufReader::with_capacity(64 * 1024, &mut file);
            let offset = skip_lines(&mut reader, start_line - 1).map_err(failed)?;
            let mut bytes = Vec::new();
            let mut taken = 0;
            let mut more = false;
            loop {
                if arguments.lines.is_some_and(|lines| taken >= lines) {
                    more = offset + (bytes.len() as u64) < size;
                    break;
                }
                let mut line = Vec::new();
                let read = (&mut reader)
                    .take(max_bytes + 1 + bytes_text::LOOKAHEAD)
                    .read_until(b'\n', &mut line)
                    .map_err(failed)?;
                if read == 0 {
                    break;
                }
                if (bytes.len() + line.len()) as u64 > max_bytes {
                    if taken == 0 {
                        // One line longer than the whole budget: give its start, cut
                        // between characters.
                        let cut = bytes_text::cut_before(&line, max_bytes as usize);
                        bytes.extend_from_slice(&line[..cut]);
                        notes.push(format!(
                            "line {start_line} is longer than the {} this answer holds; read \
                             the rest by offset {}",
                            render::count(max_bytes, "byte", "bytes"),
                            offset + cut as u64
                        ));
                    }
                    more = true;
                    budget_stopped = true;
                    break;
                }
                bytes.extend_from_slice(&line);
                taken += 1;
            }
            let next = more.then_some(start_line + taken);
            (offset, bytes, Some(start_line), next)
        } else {
            let offset = arguments.offset.unwrap_or(0);
            let mut bytes = Vec::new();
            if offset < size {
                file.seek(SeekFrom::Start(offset)).map_err(failed)?;
                (&mut file)
                    .take(max_bytes + bytes_text::LOOKAHEAD)
                    .read_to_end(&mut bytes)
                    .map_err(failed)?;
                if bytes.len() as u64 > max_bytes {
                    bytes.truncate(bytes_text::cut_before(&bytes, max_bytes as usize));
                    budget_stopped = offset + (bytes.len() as u64) < size;
                }
            }
            (offset, bytes, None, None)
        };
        if let Some(at) = bytes_text::first_nul(&bytes) {
            return Err(binary(&shown, offset + at as u64));
        }
        let end = offset + bytes.len() as u64;
        let next_offset = (!by_lines && end < size).then_some(end);
        if offset > size {
            notes.push(format!("offset {offset} is past the end ({size} bytes)"));
        }
        let total_lines = (size <= COUNT_LINES_UP_TO)
            .then(|| count_lines(&mut file).ok())
            .flatten();
        let content = FileContent {
            path: shown,
            size_bytes: size,
            total_lines,
            offset,
            start_line,
            bytes_returned: bytes.len() as u64,
            invalid_bytes: bytes_text::invalid_count(&bytes) as u64,
            content: bytes_text::escape_invalid(&bytes),
            next_line,
            next_offset,
            notes,
        };
        Ok((content, budget_stopped))
    }
}

/// The caller's max_bytes, bounded by the server's limit (and said so when reduced).
pub(crate) fn bounded_bytes(
    asked: Option<u64>,
    limit: u64,
    notes: &mut Vec<String>,
) -> Result<u64, ToolError> {
    match asked {
        None => Ok(DEFAULT_MAX_BYTES.min(limit)),
        Some(0) => Err(ToolError::invalid_arguments(
            "max_bytes 0 would return nothing: give at least 1",
        )),
        Some(asked) if asked > limit => {
            notes.push(format!(
                "max_bytes {asked} is over this server's limit: gave at most {limit}"
            ));
            Ok(limit)
        }
        Some(asked) => Ok(asked),
    }
}

pub(crate) fn binary(shown: &str, at: u64) -> ToolError {
    ToolError::invalid_arguments(format!(
        "`{shown}` looks binary (a NUL byte at offset {at}); files_stat gives its type, size \
         and SHA-256"
    ))
}

/// Skips `lines` lines; returns the byte offset reached.
fn skip_lines(reader: &mut impl BufRead, lines: u64) -> std::io::Result<u64> {
    let mut offset = 0;
    let mut skipped = 0;
    while skipped < lines {
        let buffer = reader.fill_buf()?;
        if buffer.is_empty() {
            break;
        }
        let mut used = buffer.len();
        for (index, byte) in buffer.iter().enumerate() {
            if *byte == b'\n' {
                skipped += 1;
                if skipped == lines {
                    used = index + 1;
                    break;
                }
            }
        }
        offset += used as u64;
        reader.consume(used);
    }
    Ok(offset)
}

/// Lines in the whole file: newlines, plus one for a last line without its newline.
fn count_lines(file: &mut std::fs::File) -> std::io::Result<u64> {
    file.seek(SeekFrom::Start(0))?;
    let mut buffer = vec![0u8; 64 * 1024];
    let (mut lines, mut last) = (0u64, b'\n');
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        lines += buffer[..read].iter().filter(|byte| **byte == b'\n').count() as u64;
        last = buffer[read - 1];
    }
    Ok(lines + u64::from(last != b'\n'))
}

impl Collect for FileReader {
    type Arguments = ReadArguments;
    type Output = FileContent;

    const DECLARATION: &'static Declaration = &FILES_READ;

    fn collect(
        &self,
        arguments: ReadArguments,
        context: &ToolContext,
    ) -> Result<FileContent, ToolError> {
        self.read(&arguments, &context.client_roots, context.output_cap)
    }

    async fn reserve(&self, _: &Self::Arguments) -> Result<Option<Box<dyn Send>>, ToolError> {
        self.roots
            .hold_descriptors(super::descriptors::ONE_FILE)
            .await
    }
}
