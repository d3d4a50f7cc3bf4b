//! `files_search`: find files by name (glob) and/or content (regex) under a directory.
//!
//! The walk is our own, through directory handles (symlinks never followed), so it stays
//! beneath the root like every other file tool; ripgrep's crates do the rest: `grep-regex` +
//! `grep-searcher` search content (binary files skipped at the first NUL), `ignore` reads
//! .gitignore rules, `globset` matches names. Bounded by results, file size and time; reports
//! progress, and stops when the call is cancelled.

use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use grep_regex::RegexMatcherBuilder;
use grep_searcher::sinks::Lossy;
use grep_searcher::{BinaryDetection, SearcherBuilder};
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::confine::{Roots, name_text};
use crate::render;
use crate::tool::{Declaration, Domain, Render, Tier, Tool, ToolContext, ToolError, blocking};

pub static FILES_SEARCH: Declaration = Declaration {
    name: "files_search",
    title: "Search files",
    description: "Find files under a directory inside the file roots by name (`name`, a glob \
                  such as *.log; with a slash it matches the path below the directory) and/or \
                  content (`content`, a regular expression, like grep -E / ripgrep). Answers \
                  path, line number and the matching line (cut to 200 characters). Binary \
                  files and files over the server's size cap are skipped; hidden entries only \
                  with hidden: true; .gitignore rules with gitignore: true. Bounded by \
                  max_results (default 100, at most 1000) and timeout_seconds (default 10).",
    domain: Domain::Files,
    tier: Tier::Read,
    destructive: false,
    idempotent: true,
    open_world: false,
    paging_hint: Some("narrow the directory, name or pattern"),
};

const DEFAULT_RESULTS: usize = 100;
const MAX_RESULTS: usize = 1000;
const SNIPPET_CHARS: usize = 200;
/// Progress goes out every this many files or this often, whichever comes first.
const PROGRESS_FILES: u64 = 1000;
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchArguments {
    /// Absolute path of the directory to search, inside a root.
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
pub struct SearchHit {
    pub path: String,
    /// 1-based; absent for a name-only match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

#[derive(Debug, Default, Serialize, JsonSchema)]
pub struct SearchResults {
    pub path: String,
    pub results: Vec<SearchHit>,
    pub files_searched: u64,
    #[serde(skip_serializing_if = "crate::render::is_zero")]
    pub binary_skipped: u64,
    #[serde(skip_serializing_if = "crate::render::is_zero")]
    pub large_skipped: u64,
    #[serde(skip_serializing_if = "crate::render::is_zero")]
    pub denied_skipped: u64,
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
                (Some(line), Some(text)) => format!("{}:{line}: {text}", hit.path),
                _ => hit.path.clone(),
            })
            .collect();
        lines.push(format!(
            "{} results in {} files searched{}",
            self.results.len(),
            self.files_searched,
            if self.stopped_early {
                " (stopped early)"
            } else {
                ""
            }
        ));
        lines.extend(self.notes.iter().cloned());
        lines.join("\n")
    }
}

pub struct FileSearcher {
    pub roots: Arc<Roots>,
    pub max_file_bytes: u64,
}

/// A directory waiting to be searched, with the .gitignore rules in force there.
struct Pending {
    dir: cap_std::fs::Dir,
    below: PathBuf,
    shown: PathBuf,
    ignores: Vec<Arc<Gitignore>>,
}

impl FileSearcher {
    /// Blocking: walks and reads files.
    pub fn search(
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
        let hidden = arguments.hidden == Some(true);
        let gitignore = arguments.gitignore == Some(true);

        let (located, dir) = self
            .roots
            .open_dir(&arguments.path, &context.client_roots)?;
        let mut answer = SearchResults {
            path: located.shown.display().to_string(),
            ..SearchResults::default()
        };
        let mut searcher = SearcherBuilder::new()
            .binary_detection(BinaryDetection::quit(0))
            .line_number(true)
            .build();
        let mut stack = vec![Pending {
            dir,
            below: PathBuf::new(),
            shown: located.shown.clone(),
            ignores: Vec::new(),
        }];
        let mut last_report = Instant::now();
        'walk: while let Some(pending) = stack.pop() {
            let mut ignores = pending.ignores.clone();
            if gitignore && let Some(rules) = read_gitignore(&pending.dir, &pending.shown) {
                ignores.push(Arc::new(rules));
            }
            let Ok(entries) = pending.dir.entries() else {
                answer.unreadable += 1;
                continue;
            };
            let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
            entries.sort_by_key(|entry| entry.file_name());
            // Depth-first in name order: push subdirectories in reverse.
            let mut subdirectories = Vec::new();
            for entry in entries {
                if context.cancel.is_cancelled() {
                    return Err(ToolError::failed("the search was cancelled"));
                }
                if Instant::now() >= deadline || answer.results.len() >= limit {
                    answer.stopped_early = true;
                    break 'walk;
                }
                let file_name = entry.file_name();
                if !hidden && file_name.as_bytes().starts_with(b".") {
                    continue;
                }
                let Ok(kind) = entry.file_type() else {
                    continue;
                };
                let below = pending.below.join(&file_name);
                let shown = pending.shown.join(&file_name);
                if gitignore && ignored(&ignores, &shown, kind.is_dir()) {
                    continue;
                }
                if kind.is_dir() {
                    match pending.dir.open_dir(&file_name) {
                        Ok(dir) => subdirectories.push(Pending {
                            dir,
                            below,
                            shown,
                            ignores: ignores.clone(),
                        }),
                        Err(_) => answer.unreadable += 1,
                    }
                    continue;
                }
                if !kind.is_file() {
                    continue;
                }
                if let Some((glob, by_path)) = &name {
                    let subject = if *by_path {
                        below.as_path()
                    } else {
                        std::path::Path::new(&file_name)
                    };
                    if !glob.is_match(subject) {
                        continue;
                    }
                }
                let shown_text = name_text(shown.as_os_str());
                let Some(matcher) = &matcher else {
                    answer.files_searched += 1;
                    answer.results.push(SearchHit {
                        path: shown_text,
                        line: None,
                        text: None,
                    });
                    continue;
                };
                if self.roots.denied_by(&shown).is_some() {
                    answer.denied_skipped += 1;
                    continue;
                }
                let Ok(file) = entry.open() else {
                    answer.unreadable += 1;
                    continue;
                };
                let file = file.into_std();
                if file.metadata().map(|m| m.len()).unwrap_or(0) > self.max_file_bytes {
                    answer.large_skipped += 1;
                    continue;
                }
                if has_nul_prefix(&file) {
                    answer.binary_skipped += 1;
                    continue;
                }
                answer.files_searched += 1;
                let room = limit - answer.results.len();
                let mut hits = Vec::new();
                // A NUL further in stops the search of that file there (as ripgrep does).
                let searched = searcher.search_file(
                    matcher,
                    &file,
                    Lossy(|line, text| {
                        hits.push((line, text.trim_end().to_string()));
                        Ok(hits.len() < room)
                    }),
                );
                if searched.is_err() {
                    answer.unreadable += 1;
                }
                answer
                    .results
                    .extend(hits.into_iter().map(|(line, text)| SearchHit {
                        path: shown_text.clone(),
                        line: Some(line),
                        text: Some(render::cut(&text, SNIPPET_CHARS)),
                    }));
                if answer.files_searched.is_multiple_of(PROGRESS_FILES)
                    || last_report.elapsed() >= PROGRESS_EVERY
                {
                    last_report = Instant::now();
                    context.progress.report(
                        answer.files_searched as f64,
                        None,
                        format!(
                            "{} files searched, {} results",
                            answer.files_searched,
                            answer.results.len()
                        ),
                    );
                }
            }
            stack.extend(subdirectories.into_iter().rev());
        }
        if answer.stopped_early {
            answer.notes.push(if answer.results.len() >= limit {
                format!("stopped at max_results ({limit}); narrow the search for the rest")
            } else {
                "stopped at timeout_seconds; narrow the directory or pattern".to_string()
            });
        }
        Ok(answer)
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

/// A directory's .gitignore, read through its handle.
fn read_gitignore(dir: &cap_std::fs::Dir, shown: &std::path::Path) -> Option<Gitignore> {
    let text = dir.read_to_string(".gitignore").ok()?;
    let mut builder = GitignoreBuilder::new(shown);
    for line in text.lines() {
        let _ = builder.add_line(None, line);
    }
    builder.build().ok()
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

pub struct FilesSearchTool {
    pub searcher: Arc<FileSearcher>,
}

impl Tool for FilesSearchTool {
    type Arguments = SearchArguments;
    type Output = SearchResults;

    fn declaration(&self) -> &'static Declaration {
        &FILES_SEARCH
    }

    async fn run(
        &self,
        arguments: SearchArguments,
        context: ToolContext,
    ) -> Result<SearchResults, ToolError> {
        let searcher = Arc::clone(&self.searcher);
        blocking(move || searcher.search(&arguments, &context)).await
    }
}
