//! `files_search`: find files by name (glob) and/or content (regex) under a directory.
//!
//! The walk is our own, through directory handles (symlinks never followed), so it stays
//! beneath the root like every other file tool; ripgrep's crates do the rest: `grep-regex` +
//! `grep-searcher` search content (binary files skipped at the first NUL), `ignore` reads
//! .gitignore rules, `globset` matches names. Bounded by results, file size and time; reports
//! progress, and stops when the call is cancelled.
//!
//! Everything one search holds is bounded, because a root's contents may be hostile: each
//! file (and each `.gitignore`) is opened only if it is regular at that moment and its real
//! path passes the deny list (`Roots::open_entry`); reads stop at the deadline; a `.gitignore`
//! is read only up to 1 MiB, at most 256 of them (8 MiB) per search, and at most 64 KiB of
//! distinct rules are compiled per search; lines are held up to 4 MiB; the walk is depth-first holding only the directory handles on the current path (at
//! most 64 levels), and at most 100,000 names of one directory and 100,000 directories waiting.
//! What a bound leaves out is said in `notes`.

use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::ops::ControlFlow;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cap_std::fs::Dir;

use grep_regex::RegexMatcherBuilder;
use grep_searcher::sinks::Lossy;
use grep_searcher::{BinaryDetection, Searcher, SearcherBuilder};
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::confine::{Refusal, Root, Roots, name_text, path_text};
use crate::render;
use crate::tool::{ClientRoots, Collect, Declaration, Domain, Render, ToolContext, ToolError};

pub(crate) static FILES_SEARCH: Declaration = Declaration::read(
    Domain::Files,
    "files_search",
    "Search files",
    "Find files under a directory inside the file roots by name (`name`, a glob \
     such as *.log; with a slash it matches the path below the directory) and/or \
     content (`content`, a regular expression, like grep -E / ripgrep). Answers \
     path, line number and the matching line (cut to 200 characters). Binary \
     files and files over the server's size cap are skipped; hidden entries only \
     with hidden: true; .gitignore rules with gitignore: true. Bounded by \
     max_results (default 100, at most 1000) and timeout_seconds (default 10).",
)
.paged("narrow the directory, name or pattern")
.within_client_roots();

const DEFAULT_RESULTS: usize = 100;
const MAX_RESULTS: usize = 1000;
const SNIPPET_CHARS: usize = 200;
/// Progress goes out every this many files or this often, whichever comes first.
const PROGRESS_FILES: u64 = 1000;
const PROGRESS_EVERY: Duration = Duration::from_millis(250);
/// A `.gitignore` larger than this (bytes) is skipped: its rules are compiled into matchers
/// that take far more memory than its text (16 MiB of rules took 1.5 GB).
const MAX_IGNORE_FILE_BYTES: u64 = 1024 * 1024;
/// At most this many `.gitignore` files, and this many bytes of them, are read per search.
const MAX_IGNORE_FILES: usize = 256;
const MAX_IGNORE_BYTES: u64 = 8 * 1024 * 1024;
/// Bytes of distinct rules compiled, over all `.gitignore` files of one search. A rule's
/// matcher costs some 500 times its text (1 MiB of `a*b` lines took 830 MB; 1 MiB of
/// distinct 4 KiB wildcard lines, 440 MB), so a file whose rules would go past this is skipped
/// whole (skipping part of it could ignore what a later `!rule` keeps). Real ignore files
/// hold a few KiB of rules.
const MAX_IGNORE_RULE_BYTES: usize = 64 * 1024;
/// A longer `.gitignore` line cannot name a path (PATH_MAX) and is left out.
const MAX_IGNORE_LINE_BYTES: usize = 4096;
/// The longest line held in memory while searching (bytes); a file with a longer one is
/// skipped.
const MAX_LINE_BYTES: usize = 4 * 1024 * 1024;
/// Levels below the searched directory: one directory handle is held per level.
const MAX_DEPTH: usize = 64;
/// Names read from one directory.
const MAX_DIR_ENTRIES: usize = 100_000;
/// Subdirectory names waiting to be searched, over all levels.
const MAX_WAITING_DIRS: usize = 100_000;
/// Examples named in a note before the rest are only counted.
const NOTE_EXAMPLES: usize = 3;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SearchArguments {
    /// Absolute path of the directory to search, inside a root, written as answers print names
    /// (`\xNN` for a byte that is not UTF-8, `\\` for a backslash).
    pub path: String,
    /// A glob over file names (`*.conf`), or over the path below `path` when it has a `/`.
    pub name: Option<String>,
    /// A regular expression searched in each file's lines.
    pub content: Option<String>,
    /// Match content ignoring case.
    pub case_insensitive: Option<bool>,
    /// Look into dot files and directories.
    pub hidden: Option<bool>,
    /// Skip what .gitignore files exclude.
    pub gitignore: Option<bool>,
    /// At most this many results (default 100, at most 1000).
    #[schemars(range(min = 1, max = 1000))]
    pub max_results: Option<u32>,
    /// Stop after this many seconds (default 10, at most 300; the server's call timeout
    /// still applies).
    #[schemars(range(min = 1, max = 300))]
    pub timeout_seconds: Option<u64>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct SearchHit {
    pub path: String,
    /// 1-based; absent for a name-only match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

#[derive(Debug, Default, Serialize, JsonSchema)]
pub(crate) struct SearchResults {
    pub path: String,
    pub results: Vec<SearchHit>,
    pub files_searched: u64,
    #[serde(skip_serializing_if = "crate::render::is_zero")]
    pub binary_skipped: u64,
    #[serde(skip_serializing_if = "crate::render::is_zero")]
    pub large_skipped: u64,
    #[serde(skip_serializing_if = "crate::render::is_zero")]
    pub denied_skipped: u64,
    /// Files with more than one hard link, skipped under files.refuse_hardlinks.
    #[serde(skip_serializing_if = "crate::render::is_zero")]
    pub hardlinks_skipped: u64,
    #[serde(skip_serializing_if = "crate::render::is_zero")]
    pub unreadable: u64,
    /// True when max_results or timeout_seconds stopped the search early.
    pub stopped_early: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Render for SearchResults {
    fn render_text(&self) -> String {
        let mut lines: Vec<String> = self
            .results
            .iter()
            .map(|hit| match (hit.line, &hit.text) {
                // The path is already escaped; the matching line is the file's own text.
                (Some(line), Some(text)) => {
                    format!("{}:{line}: {}", hit.path, render::text(text))
                }
                _ => hit.path.clone(),
            })
            .collect();
        lines.push(format!(
            "{} in {}{}",
            render::count(self.results.len(), "result", "results"),
            render::count(self.files_searched, "file searched", "files searched"),
            if self.stopped_early {
                " (stopped early)"
            } else {
                ""
            }
        ));
        lines.extend(
            self.notes
                .iter()
                .map(|note| render::sentence(note).into_owned()),
        );
        lines.join("\n")
    }
}

pub(crate) struct FileSearcher {
    pub roots: Arc<Roots>,
    pub max_file_bytes: u64,
}

/// One directory on the current path of the walk: its handle, where it is, the .gitignore
/// rules in force there, and its subdirectories still to search.
struct Frame {
    dir: Dir,
    below: PathBuf,
    shown: PathBuf,
    ignores: Vec<Arc<Gitignore>>,
    /// Last name first: the next one is popped from the end.
    subdirectories: Vec<OsString>,
}

/// What a bound left out, for the notes.
#[derive(Default)]
struct Skipped {
    /// `.gitignore` files not used: path and why.
    ignore_files: Vec<(String, String)>,
    ignore_budget: u64,
    too_deep: u64,
    crowded_dirs: Vec<String>,
    waiting_dirs: u64,
    long_lines: u64,
}

/// One search in progress.
struct Search<'a> {
    roots: &'a Roots,
    root: &'a Root,
    scope: &'a ClientRoots,
    context: &'a ToolContext,
    name: Option<(globset::GlobMatcher, bool)>,
    matcher: Option<grep_regex::RegexMatcher>,
    searcher: Searcher,
    max_file_bytes: u64,
    limit: usize,
    deadline: Instant,
    hidden: bool,
    gitignore: bool,
    answer: SearchResults,
    skipped: Skipped,
    ignore_files_read: usize,
    ignore_bytes_read: u64,
    ignore_rule_bytes: usize,
    waiting: usize,
    last_report: Instant,
}

impl FileSearcher {
    /// Blocking: walks and reads files.
    pub(crate) fn search(
        &self,
        arguments: &SearchArguments,
        context: &ToolContext,
    ) -> Result<SearchResults, ToolError> {
        if arguments.name.is_none() && arguments.content.is_none() {
            return Err(ToolError::invalid_arguments(
                "give `name` (a glob), `content` (a regular expression), or both",
            ));
        }
        let name = arguments
            .name
            .as_deref()
            .map(|glob| {
                globset::GlobBuilder::new(glob)
                    .literal_separator(true)
                    .build()
                    .map(|glob| (glob.compile_matcher(), glob.glob().contains('/')))
                    .map_err(|error| {
                        ToolError::invalid_arguments(format!(
                            "name `{glob}` is not a valid glob: {error}"
                        ))
                    })
            })
            .transpose()?;
        let matcher = arguments
            .content
            .as_deref()
            .map(|pattern| {
                RegexMatcherBuilder::new()
                    .case_insensitive(arguments.case_insensitive == Some(true))
                    .build(pattern)
                    .map_err(|error| {
                        ToolError::invalid_arguments(format!(
                            "content `{pattern}` is not a valid regular expression: {error}"
                        ))
                    })
            })
            .transpose()?;
        let limit = arguments
            .max_results
            .map_or(DEFAULT_RESULTS, |max| max as usize)
            .clamp(1, MAX_RESULTS);
        let deadline = Instant::now()
            + Duration::from_secs(arguments.timeout_seconds.unwrap_or(10).clamp(1, 300));

        let (located, dir) = self
            .roots
            .open_dir(&arguments.path, &context.client_roots)?;
        let mut search = Search {
            roots: &self.roots,
            root: located.root,
            scope: &context.client_roots,
            context,
            name,
            matcher,
            searcher: SearcherBuilder::new()
                .binary_detection(BinaryDetection::quit(0))
                .line_number(true)
                .heap_limit(Some(MAX_LINE_BYTES))
                .build(),
            max_file_bytes: self.max_file_bytes,
            limit,
            deadline,
            hidden: arguments.hidden == Some(true),
            gitignore: arguments.gitignore == Some(true),
            answer: SearchResults {
                path: path_text(&located.shown),
                ..SearchResults::default()
            },
            skipped: Skipped::default(),
            ignore_files_read: 0,
            ignore_bytes_read: 0,
            ignore_rule_bytes: 0,
            waiting: 0,
            last_report: Instant::now(),
        };
        search.walk(dir, located.shown.clone())?;
        Ok(search.finish())
    }
}

impl Search<'_> {
    /// Depth-first in name order, holding only the handles of the directories on the current
    /// path.
    fn walk(&mut self, start: Dir, shown: PathBuf) -> Result<(), ToolError> {
        let mut path = Vec::new();
        match self.enter(start, PathBuf::new(), shown, Vec::new())? {
            ControlFlow::Continue(frame) => path.push(frame),
            ControlFlow::Break(()) => return Ok(()),
        }
        while let Some(top) = path.last_mut() {
            let Some(name) = top.subdirectories.pop() else {
                path.pop();
                continue;
            };
            self.waiting -= 1;
            if self.stop_now()? {
                return Ok(());
            }
            let below = top.below.join(&name);
            let shown = top.shown.join(&name);
            let child = self
                .roots
                .open_entry_dir(self.root, &top.dir, &name, &shown, self.scope);
            // A directory that became something else (a symlink, a file) since it was listed,
            // was moved out of the root, or cannot be read.
            let Ok(dir) = child else {
                self.answer.unreadable += 1;
                continue;
            };
            let ignores = top.ignores.clone();
            match self.enter(dir, below, shown, ignores)? {
                ControlFlow::Continue(frame) => path.push(frame),
                ControlFlow::Break(()) => return Ok(()),
            }
        }
        Ok(())
    }

    /// Whether to stop: cancelled (an error), or the deadline or max_results reached.
    fn stop_now(&mut self) -> Result<bool, ToolError> {
        if self.context.cancel.is_cancelled() {
            return Err(ToolError::failed("the search was cancelled"));
        }
        if Instant::now() >= self.deadline || self.answer.results.len() >= self.limit {
            self.answer.stopped_early = true;
            return Ok(true);
        }
        Ok(false)
    }

    /// Reads one directory: its .gitignore, its files (searched now), and the names of its
    /// subdirectories (searched later, by `walk`).
    fn enter(
        &mut self,
        dir: Dir,
        below: PathBuf,
        shown: PathBuf,
        mut ignores: Vec<Arc<Gitignore>>,
    ) -> Result<ControlFlow<(), Frame>, ToolError> {
        if self.gitignore
            && let Some(rules) = self.read_gitignore(&dir, &shown)
        {
            ignores.push(Arc::new(rules));
        }
        let mut frame = Frame {
            dir,
            below,
            shown,
            ignores,
            subdirectories: Vec::new(),
        };
        let Ok(listing) = frame.dir.entries() else {
            self.answer.unreadable += 1;
            return Ok(ControlFlow::Continue(frame));
        };
        let mut entries: Vec<(OsString, cap_std::fs::FileType)> = Vec::new();
        for entry in listing.filter_map(Result::ok) {
            if entries.len() >= MAX_DIR_ENTRIES {
                self.skipped
                    .crowded_dirs
                    .push(name_text(frame.shown.as_os_str()));
                break;
            }
            let name = entry.file_name();
            if !self.hidden && name.as_bytes().starts_with(b".") {
                continue;
            }
            if let Ok(kind) = entry.file_type() {
                entries.push((name, kind));
            }
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, kind) in entries {
            if self.stop_now()? {
                return Ok(ControlFlow::Break(()));
            }
            let shown = frame.shown.join(&name);
            if self.gitignore && ignored(&frame.ignores, &shown, kind.is_dir()) {
                continue;
            }
            if kind.is_dir() {
                frame.subdirectories.push(name);
            } else if kind.is_file() {
                let below = frame.below.join(&name);
                self.visit_file(&frame.dir, &name, &below, &shown);
            }
        }
        let depth = frame.below.components().count();
        let found = frame.subdirectories.len();
        if depth >= MAX_DEPTH {
            self.skipped.too_deep += found as u64;
            frame.subdirectories.clear();
        } else if self.waiting + found > MAX_WAITING_DIRS {
            let room = MAX_WAITING_DIRS - self.waiting;
            self.skipped.waiting_dirs += (found - room) as u64;
            frame.subdirectories.truncate(room);
        }
        frame.subdirectories.reverse();
        self.waiting += frame.subdirectories.len();
        Ok(ControlFlow::Continue(frame))
    }

    /// Matches one regular file (as listed) by name, then searches its content.
    fn visit_file(&mut self, dir: &Dir, name: &OsStr, below: &Path, shown: &Path) {
        if let Some((glob, by_path)) = &self.name {
            let subject = if *by_path { below } else { Path::new(name) };
            if !glob.is_match(subject) {
                return;
            }
        }
        let shown_text = name_text(shown.as_os_str());
        let Some(matcher) = &self.matcher else {
            self.answer.files_searched += 1;
            self.answer.results.push(SearchHit {
                path: shown_text,
                line: None,
                text: None,
            });
            return;
        };
        let (file, size) = match self
            .roots
            .open_entry(self.root, dir, name, shown, self.scope)
        {
            Ok(opened) => opened,
            Err(Refusal::Denied(_)) => {
                self.answer.denied_skipped += 1;
                return;
            }
            Err(Refusal::HardLinked(_)) => {
                self.answer.hardlinks_skipped += 1;
                return;
            }
            // Swapped for a FIFO, device, socket or symlink since it was listed: not a file
            // to search any more.
            Err(Refusal::NotRegular(_)) => return,
            Err(_) => {
                self.answer.unreadable += 1;
                return;
            }
        };
        if size > self.max_file_bytes {
            self.answer.large_skipped += 1;
            return;
        }
        if has_nul_prefix(&file) {
            self.answer.binary_skipped += 1;
            return;
        }
        self.answer.files_searched += 1;
        let room = self.limit - self.answer.results.len();
        let mut hits = Vec::new();
        // The file may grow while it is read: no more than the cap is read, and nothing past
        // the deadline or a cancellation.
        let reader = Until {
            inner: (&file).take(self.max_file_bytes),
            deadline: self.deadline,
            context: self.context,
        };
        // A NUL further in stops the search of that file there (as ripgrep does).
        let searched = self.searcher.search_reader(
            matcher,
            reader,
            Lossy(|line, text| {
                hits.push((line, render::cut(text.trim_end(), SNIPPET_CHARS)));
                Ok(hits.len() < room)
            }),
        );
        if let Err(error) = searched {
            if error.to_string().contains("allocation limit") {
                self.skipped.long_lines += 1;
            } else {
                self.answer.unreadable += 1;
            }
        }
        self.answer
            .results
            .extend(hits.into_iter().map(|(line, text)| SearchHit {
                path: shown_text.clone(),
                line: Some(line),
                text: Some(text),
            }));
        if self.answer.files_searched.is_multiple_of(PROGRESS_FILES)
            || self.last_report.elapsed() >= PROGRESS_EVERY
        {
            self.last_report = Instant::now();
            self.context.progress.report(
                self.answer.files_searched as f64,
                None,
                format!(
                    "{}, {}",
                    render::count(
                        self.answer.files_searched,
                        "file searched",
                        "files searched"
                    ),
                    render::count(self.answer.results.len(), "result", "results")
                ),
            );
        }
    }

    /// A directory's .gitignore, read through its handle like any file (regular at the moment
    /// of opening, real path not denied), at most 1 MiB of it, within the search's budget.
    fn read_gitignore(&mut self, dir: &Dir, shown: &Path) -> Option<Gitignore> {
        let name = OsStr::new(".gitignore");
        let path = shown.join(name);
        let (file, size) = match self
            .roots
            .open_entry(self.root, dir, name, &path, self.scope)
        {
            Ok(opened) => opened,
            Err(Refusal::Io(error)) if error.kind() == std::io::ErrorKind::NotFound => {
                return None;
            }
            Err(refusal) => {
                let why = match refusal {
                    Refusal::NotRegular(kind) => {
                        format!("a {}, not a regular file", kind.replace('_', " "))
                    }
                    Refusal::HardLinked(links) => {
                        format!("{links} hard links (files.refuse_hardlinks)")
                    }
                    Refusal::Denied(pattern) => format!("on the deny list (`{pattern}`)"),
                    Refusal::Io(error) => error.to_string(),
                    Refusal::Escapes | Refusal::OutsideClientRoots(_) => {
                        "outside what this search may read".to_string()
                    }
                };
                self.skip_ignore_file(&path, why);
                return None;
            }
        };
        if size > MAX_IGNORE_FILE_BYTES {
            self.skip_ignore_file(
                &path,
                format!(
                    "{} is over the {} read of an ignore file",
                    render::bytes(size),
                    render::bytes(MAX_IGNORE_FILE_BYTES)
                ),
            );
            return None;
        }
        if self.ignore_files_read >= MAX_IGNORE_FILES
            || self.ignore_bytes_read + size > MAX_IGNORE_BYTES
        {
            self.skipped.ignore_budget += 1;
            return None;
        }
        // It may have grown since fstat: read one byte past the bound to know.
        let mut text = Vec::new();
        if (&file)
            .take(MAX_IGNORE_FILE_BYTES + 1)
            .read_to_end(&mut text)
            .is_err()
        {
            self.skip_ignore_file(&path, "it could not be read".to_string());
            return None;
        }
        if text.len() as u64 > MAX_IGNORE_FILE_BYTES {
            self.skip_ignore_file(&path, "it grew past 1 MiB while being read".to_string());
            return None;
        }
        self.ignore_files_read += 1;
        self.ignore_bytes_read += text.len() as u64;
        let text = String::from_utf8_lossy(&text);
        // Blank lines and comments are no rules; a repeated rule changes nothing.
        let mut rules: Vec<&str> = text
            .lines()
            .filter(|line| {
                let rule = line.trim();
                !rule.is_empty() && !rule.starts_with('#') && line.len() <= MAX_IGNORE_LINE_BYTES
            })
            .collect();
        let mut seen = std::collections::HashSet::new();
        rules.retain(|rule| seen.insert(*rule));
        let rule_bytes: usize = rules.iter().map(|rule| rule.len()).sum();
        if self.ignore_rule_bytes + rule_bytes > MAX_IGNORE_RULE_BYTES {
            self.skip_ignore_file(
                &path,
                format!(
                    "its {} ({}) would take the search past {} of rules",
                    render::count(rules.len(), "rule", "rules"),
                    render::bytes(rule_bytes as u64),
                    render::bytes(MAX_IGNORE_RULE_BYTES as u64)
                ),
            );
            return None;
        }
        self.ignore_rule_bytes += rule_bytes;
        let mut builder = GitignoreBuilder::new(shown);
        for rule in rules {
            // A line ignore cannot parse is left out, as git leaves it out.
            let _ = builder.add_line(None, rule);
        }
        builder.build().ok()
    }

    fn skip_ignore_file(&mut self, path: &Path, why: String) {
        self.skipped
            .ignore_files
            .push((name_text(path.as_os_str()), why));
    }

    /// The answer, with a note for each bound that left something out.
    fn finish(mut self) -> SearchResults {
        let answer = &mut self.answer;
        let skipped = self.skipped;
        if answer.stopped_early {
            answer.notes.push(if answer.results.len() >= self.limit {
                format!(
                    "stopped at max_results ({}); narrow the search for the rest",
                    self.limit
                )
            } else {
                "stopped at timeout_seconds; narrow the directory or pattern".to_string()
            });
        }
        let count = skipped.ignore_files.len();
        for (path, why) in skipped.ignore_files.iter().take(NOTE_EXAMPLES) {
            answer.notes.push(format!(
                "ignore file `{path}` skipped: {why}; its rules were not applied"
            ));
        }
        if count > NOTE_EXAMPLES {
            answer.notes.push(format!(
                "{} more skipped likewise",
                render::count(count - NOTE_EXAMPLES, "ignore file", "ignore files")
            ));
        }
        if skipped.ignore_budget > 0 {
            answer.notes.push(format!(
                "{} not read: one search reads at most {MAX_IGNORE_FILES} of them, {} in \
                 all; their rules were not applied",
                render::count(skipped.ignore_budget, "ignore file", "ignore files"),
                render::bytes(MAX_IGNORE_BYTES)
            ));
        }
        if skipped.too_deep > 0 {
            answer.notes.push(format!(
                "{} more than {MAX_DEPTH} levels down {} not searched; search from a deeper \
                 directory",
                render::count(skipped.too_deep, "directory", "directories"),
                if skipped.too_deep == 1 { "was" } else { "were" }
            ));
        }
        for dir in skipped.crowded_dirs.iter().take(NOTE_EXAMPLES) {
            answer.notes.push(format!(
                "`{dir}` has more than {MAX_DIR_ENTRIES} entries; only the first \
                 {MAX_DIR_ENTRIES} read were searched"
            ));
        }
        if skipped.waiting_dirs > 0 {
            answer.notes.push(format!(
                "{} not searched (at most {MAX_WAITING_DIRS} wait at once); narrow the \
                 directory",
                render::count(skipped.waiting_dirs, "directory", "directories")
            ));
        }
        if skipped.long_lines > 0 {
            answer.notes.push(format!(
                "{} skipped at a line longer than {}",
                render::count(skipped.long_lines, "file", "files"),
                render::bytes(MAX_LINE_BYTES as u64)
            ));
        }
        if answer.hardlinks_skipped > 0 {
            answer.notes.push(format!(
                "{} with more than one hard link skipped (files.refuse_hardlinks)",
                render::count(answer.hardlinks_skipped, "file", "files")
            ));
        }
        self.answer
    }
}

/// A reader that ends at the search's deadline or when the call is cancelled, so no file,
/// however large or slow, holds the blocking thread past the call's time.
struct Until<'a, R> {
    inner: R,
    deadline: Instant,
    context: &'a ToolContext,
}

impl<R: Read> Read for Until<'_, R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        if self.context.cancel.is_cancelled() || Instant::now() >= self.deadline {
            return Ok(0);
        }
        self.inner.read(buffer)
    }
}

/// Whether the file's first 8 KiB hold a NUL, as the searcher's binary test.
fn has_nul_prefix(file: &std::fs::File) -> bool {
    use std::os::unix::fs::FileExt;
    let mut buffer = vec![0u8; 8192];
    file.read_at(&mut buffer, 0)
        .map(|read| buffer[..read].contains(&0))
        .unwrap_or(false)
}

/// The deepest rule that speaks about `path` decides.
fn ignored(ignores: &[Arc<Gitignore>], path: &std::path::Path, is_dir: bool) -> bool {
    for rules in ignores.iter().rev() {
        let matched = rules.matched(path, is_dir);
        if matched.is_ignore() {
            return true;
        }
        if matched.is_whitelist() {
            return false;
        }
    }
    false
}

impl Collect for FileSearcher {
    type Arguments = SearchArguments;
    type Output = SearchResults;

    const DECLARATION: &'static Declaration = &FILES_SEARCH;

    fn collect(
        &self,
        arguments: SearchArguments,
        context: &ToolContext,
    ) -> Result<SearchResults, ToolError> {
        self.search(&arguments, context)
    }

    async fn reserve(&self, _: &Self::Arguments) -> Result<Option<Box<dyn Send>>, ToolError> {
        self.roots
            .hold_descriptors(super::descriptors::SEARCH)
            .await
    }
}
