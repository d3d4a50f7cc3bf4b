//! `files_tail`: the last lines of a file, read backwards from its end (a 10 GB log answers as
//! fast as a small one), and optionally what is appended in the next few seconds.

use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::confine::{Roots, path_text};
use super::read::{binary, bounded_bytes};
use super::{bytes_text, fit_to_cap};
use crate::render;
use crate::tool::{
    ClientRoots, Declaration, Domain, OutputCap, Render, Tool, ToolContext, ToolError, blocking,
};

pub(crate) static FILES_TAIL: Declaration = Declaration::read(
    Domain::Files,
    "files_tail",
    "Tail a file",
    "The last `lines` lines (default 50) of a text file inside the file roots, read \
     from the end so even a huge log answers at once; at most max_bytes (default \
     64 KiB). follow_seconds (at most 60) then waits and returns what was appended \
     meanwhile, like tail -f for a moment.",
)
.paged("read earlier parts with files_read")
.within_client_roots();

const DEFAULT_LINES: u64 = 50;
const MAX_LINES: u64 = 10_000;
const MAX_FOLLOW_SECONDS: u64 = 60;
const FOLLOW_POLL: Duration = Duration::from_millis(200);
const BLOCK: u64 = 64 * 1024;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TailArguments {
    /// Absolute path of a file inside a root, written as answers print names
    /// (`\xNN` for a byte that is not UTF-8, `\\` for a backslash).
    pub path: String,
    /// How many lines from the end (default 50, at most 10,000).
    #[schemars(range(min = 1, max = 10000))]
    pub lines: Option<u64>,
    /// At most this many bytes (default 64 KiB, at most the server's files.max_read_bytes).
    #[schemars(range(min = 1))]
    pub max_bytes: Option<u64>,
    /// Then wait this long (at most 60 s) and return what was appended.
    #[schemars(range(min = 0, max = 60))]
    pub follow_seconds: Option<u64>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct FileTail {
    pub path: String,
    pub size_bytes: u64,
    /// Byte offset where `content` starts.
    pub offset: u64,
    pub lines_returned: u64,
    pub content: String,
    /// Bytes that were not valid UTF-8, each shown as \xNN.
    #[serde(skip_serializing_if = "crate::render::is_zero")]
    pub invalid_bytes: u64,
    /// With follow_seconds: what was appended while waiting.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub appended: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Render for FileTail {
    fn render_text(&self) -> String {
        // The path is already escaped; the content is shown as it is, its newlines kept.
        let mut text = format!(
            "{}: last {} (from byte {} of {})\n{}",
            self.path,
            render::count(self.lines_returned, "line", "lines"),
            self.offset,
            self.size_bytes,
            render::block(&self.content)
        );
        if let Some(appended) = &self.appended {
            text.push_str("--- appended while following ---\n");
            text.push_str(&render::block(appended));
        }
        text
    }
}

pub(crate) struct FileTailer {
    pub roots: Arc<Roots>,
    pub max_read_bytes: u64,
}

/// An open file being tailed, handed from the first read to the follow loop.
struct Opened {
    file: std::fs::File,
    shown: String,
    end: u64,
    max_bytes: u64,
}

impl FileTailer {
    /// Blocking: the backwards read.
    fn tail(
        &self,
        arguments: &TailArguments,
        scope: &ClientRoots,
        cap: OutputCap,
    ) -> Result<(FileTail, Opened), ToolError> {
        let wanted = arguments.lines.unwrap_or(DEFAULT_LINES);
        if !(1..=MAX_LINES).contains(&wanted) {
            return Err(ToolError::invalid_arguments(format!(
                "lines {wanted} is out of range: give 1 to {MAX_LINES}"
            )));
        }
        let mut notes = Vec::new();
        let max_bytes = bounded_bytes(arguments.max_bytes, self.max_read_bytes, &mut notes)?;
        let mut opened = None;
        let (mut tail, budget) = fit_to_cap::read_fitting(max_bytes, cap.max_bytes, |budget| {
            // With the max_bytes the caller gave; a smaller budget is the output cap's doing,
            // and the held note below says that instead.
            let short = (budget == max_bytes).then(|| {
                format!(
                    "max_bytes ({max_bytes}) holds fewer than {}; files_read reads earlier \
                     parts",
                    render::count(wanted, "line", "lines")
                )
            });
            let (tail, file) =
                self.tail_at_most(arguments, scope, wanted, budget, notes.clone(), short)?;
            opened = Some(file);
            Ok(tail)
        })?;
        let mut opened = opened.ok_or_else(|| ToolError::failed("the tail was never read"))?;
        if budget < max_bytes && tail.offset > 0 && tail.lines_returned < wanted {
            tail.notes
                .push(fit_to_cap::held_note(budget, max_bytes, cap.max_bytes));
        }
        // What a follow appends shares the answer with what was read.
        opened.max_bytes = budget.saturating_sub(tail.content.len() as u64);
        Ok((tail, opened))
    }

    /// One backwards read of at most `max_bytes`, starting between characters; `short` is
    /// noted when `max_bytes` holds fewer lines than wanted.
    fn tail_at_most(
        &self,
        arguments: &TailArguments,
        scope: &ClientRoots,
        wanted: u64,
        max_bytes: u64,
        mut notes: Vec<String>,
        short: Option<String>,
    ) -> Result<(FileTail, Opened), ToolError> {
        let (located, file) = self.roots.open_file(&arguments.path, scope)?;
        let shown = path_text(&located.shown);
        let mut file = file.into_std();
        let failed = |error: std::io::Error| ToolError::failed(format!("`{shown}`: {error}"));
        let size = file.metadata().map_err(failed)?.len();

        // Read blocks backwards until the window holds `wanted` line ends before the last
        // line, or the budget or the start is reached.
        let mut window: Vec<u8> = Vec::new();
        let mut start = size;
        let newlines_needed = wanted as usize + 1;
        while start > 0 && (window.len() as u64) < max_bytes {
            let block = BLOCK.min(start).min(max_bytes - window.len() as u64);
            start -= block;
            let mut chunk = vec![0u8; block as usize];
            file.seek(SeekFrom::Start(start)).map_err(failed)?;
            file.read_exact(&mut chunk).map_err(failed)?;
            chunk.extend_from_slice(&window);
            window = chunk;
            let trailing = usize::from(window.last() == Some(&b'\n'));
            if window.iter().filter(|byte| **byte == b'\n').count()
                >= newlines_needed - 1 + trailing
            {
                break;
            }
        }
        // Keep only the last `wanted` lines.
        let body_end = window.len() - usize::from(window.last() == Some(&b'\n'));
        let mut cut = 0;
        let mut seen = 0;
        for (index, byte) in window[..body_end].iter().enumerate().rev() {
            if *byte == b'\n' {
                seen += 1;
                if seen == wanted {
                    cut = index + 1;
                    break;
                }
            }
        }
        if seen < wanted && start > 0 {
            // The budget ran out first: drop the partial first line.
            if let Some(first) = window[..body_end].iter().position(|byte| *byte == b'\n') {
                cut = first + 1;
            }
            notes.extend(short);
        }
        if cut == 0 && start > 0 {
            // No line end to start at: start after the character the window's first byte
            // falls inside, if it does (its lead bytes are just before the window).
            let before = start.min(bytes_text::LOOKAHEAD);
            let mut edge = vec![0u8; before as usize];
            file.seek(SeekFrom::Start(start - before)).map_err(failed)?;
            file.read_exact(&mut edge).map_err(failed)?;
            edge.extend(window.iter().take(bytes_text::LOOKAHEAD as usize));
            if let Some((_, end)) = bytes_text::split_char(&edge, before as usize) {
                cut = (end - before as usize).min(window.len());
            }
        }
        let content = &window[cut..];
        let offset = start + cut as u64;
        if let Some(at) = bytes_text::first_nul(content) {
            return Err(binary(&shown, offset + at as u64));
        }
        let lines_returned = content.iter().filter(|byte| **byte == b'\n').count() as u64
            + u64::from(!content.is_empty() && content.last() != Some(&b'\n'));
        let tail = FileTail {
            path: shown.clone(),
            size_bytes: size,
            offset,
            lines_returned,
            invalid_bytes: bytes_text::invalid_count(content) as u64,
            content: bytes_text::escape_invalid(content),
            appended: None,
            notes,
        };
        Ok((
            tail,
            Opened {
                file,
                shown,
                end: size,
                max_bytes,
            },
        ))
    }
}

/// Waits up to `seconds`, collecting what is appended to the open file (at most `max_bytes`).
async fn follow(
    mut opened: Opened,
    seconds: u64,
    context: &ToolContext,
    notes: &mut Vec<String>,
) -> Result<String, ToolError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
    let mut appended = Vec::new();
    loop {
        tokio::select! {
            () = tokio::time::sleep(FOLLOW_POLL) => {}
            () = context.cancel.cancelled() => break,
        }
        let (file, shown, end) = (&mut opened.file, &opened.shown, opened.end);
        let failed = |error: std::io::Error| ToolError::failed(format!("`{shown}`: {error}"));
        let size = file.metadata().map_err(failed)?.len();
        if size < end {
            notes.push(format!(
                "the file was truncated while following (from {end} to {size} bytes); \
                 following from its new end"
            ));
            opened.end = size;
        } else if size > end {
            let room = opened.max_bytes.saturating_sub(appended.len() as u64);
            let take = (size - end).min(room);
            file.seek(SeekFrom::Start(end)).map_err(failed)?;
            let mut chunk = vec![0u8; take as usize];
            file.read_exact(&mut chunk).map_err(failed)?;
            appended.extend_from_slice(&chunk);
            opened.end = end + take;
            if take < size - end {
                notes.push(format!(
                    "more was appended than max_bytes ({}) holds; stopped following",
                    opened.max_bytes
                ));
                break;
            }
        }
        if tokio::time::Instant::now() >= deadline {
            break;
        }
    }
    Ok(bytes_text::escape_invalid(&appended))
}

pub(crate) struct FilesTailTool {
    pub tailer: Arc<FileTailer>,
}

impl Tool for FilesTailTool {
    type Arguments = TailArguments;
    type Output = FileTail;

    fn declaration(&self) -> &'static Declaration {
        &FILES_TAIL
    }

    async fn run(
        &self,
        arguments: TailArguments,
        context: ToolContext,
    ) -> Result<FileTail, ToolError> {
        let follow_seconds = arguments.follow_seconds.unwrap_or(0);
        if follow_seconds > MAX_FOLLOW_SECONDS {
            return Err(ToolError::invalid_arguments(format!(
                "follow_seconds {follow_seconds} is too long: at most {MAX_FOLLOW_SECONDS}"
            )));
        }
        let tailer = Arc::clone(&self.tailer);
        let _held = tailer
            .roots
            .reserve_descriptors(super::descriptors::ONE_FILE)
            .await?;
        let (scope, cap) = (context.client_roots.clone(), context.output_cap);
        let (mut tail, opened) = blocking(move || tailer.tail(&arguments, &scope, cap)).await?;
        if follow_seconds > 0 {
            let mut notes = Vec::new();
            let appended = follow(opened, follow_seconds, &context, &mut notes).await?;
            tail.appended = Some(appended);
            tail.notes.extend(notes);
        }
        Ok(tail)
    }
}
