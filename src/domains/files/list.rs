//! `files_list`: one directory's entries, paged. Only names are read for the whole directory
//! (one `getdents` pass); the rows of the page alone are `lstat`ed, so a directory of 100,000
//! entries pages in the time of its names.

use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::confine::{Roots, kind_of, name_text, path_text};
use super::stat::time_of;
use crate::domains::shared::paging::{PageInfo, PageRequest};
use crate::domains::shared::users::{Table, UserNames, name_of};
use crate::render;
use crate::tool::{
    ClientRoots, Collect, Declaration, Domain, OutputCap, Render, ToolContext, ToolError,
};

pub(crate) static FILES_LIST: Declaration = Declaration::read(
    Domain::Files,
    "files_list",
    "List a directory",
    "The entries of a directory inside the file roots: name, type, size, modified \
     time, permissions, owner, and a symlink's target. Sorted by name (default), \
     size or modified (newest first), or left in directory order (`none`, the \
     cheapest on huge directories); hidden (dot) entries only with hidden: true; \
     paged with limit (default 100, at most 1000) and cursor.",
)
.paged("use `limit` and `cursor`")
.within_client_roots();

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum SortKey {
    #[default]
    Name,
    Size,
    Modified,
    None,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListArguments {
    /// Absolute path of a directory inside a root, written as answers print names
    /// (`\xNN` for a byte that is not UTF-8, `\\` for a backslash).
    pub path: String,
    /// name (default, A to Z), size (largest first), modified (newest first), none.
    pub sort: Option<SortKey>,
    /// Include names starting with a dot.
    pub hidden: Option<bool>,
    /// Entries per page (default 100, at most 1000).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct Entry {
    pub name: String,
    /// file, directory, symlink, fifo, socket, block_device, char_device.
    #[serde(rename = "type")]
    pub kind: String,
    pub size_bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub modified: Option<DateTime<Utc>>,
    /// Permission bits in octal.
    pub mode: String,
    pub owner: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub symlink_target: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct Listing {
    pub path: String,
    pub entries: Vec<Entry>,
    #[serde(flatten)]
    pub page: PageInfo,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Render for Listing {
    fn render_text(&self) -> String {
        // Names, paths and targets are already in their escaped form (`name_text`); the owner
        // comes from the host's user database.
        let mut lines = vec![format!(
            "{}: {}",
            self.path,
            render::count(self.page.total, "entry", "entries")
        )];
        for entry in &self.entries {
            let mut line = format!(
                "{} {} {} {} {}",
                entry.mode,
                render::text(&entry.owner),
                render::bytes(entry.size_bytes),
                entry
                    .modified
                    .map(|time| time.format("%Y-%m-%d %H:%M").to_string())
                    .unwrap_or_default(),
                entry.name
            );
            if entry.kind == "directory" {
                line.push('/');
            }
            if let Some(target) = &entry.symlink_target {
                line.push_str(&format!(" -> {target}"));
            }
            lines.push(line);
        }
        lines.extend(
            self.page
                .footer(self.entries.len(), ("entry", "entries"), &self.notes),
        );
        lines.join("\n")
    }
}

/// One entry, `lstat`ed through the directory handle (never followed).
pub(crate) fn describe(
    dir: &cap_std::fs::Dir,
    name: &std::ffi::OsStr,
    users: &Table,
) -> Option<Entry> {
    use cap_std::fs::MetadataExt;
    let metadata = dir.symlink_metadata(name).ok()?;
    let kind = kind_of(&metadata);
    Some(Entry {
        name: name_text(name),
        kind: kind.to_string(),
        size_bytes: metadata.len(),
        modified: time_of(metadata.mtime(), metadata.mtime_nsec()),
        mode: format!("{:04o}", metadata.mode() & 0o7777),
        owner: name_of(users, metadata.uid()),
        symlink_target: (kind == "symlink")
            .then(|| dir.read_link_contents(name).ok())
            .flatten()
            .map(|target| path_text(&target)),
    })
}

pub(crate) struct DirectoryLister {
    pub roots: Arc<Roots>,
    pub users: Arc<UserNames>,
}

impl DirectoryLister {
    /// Blocking: reads the directory.
    pub(crate) fn list(
        &self,
        arguments: &ListArguments,
        scope: &ClientRoots,
        cap: OutputCap,
    ) -> Result<Listing, ToolError> {
        let page = PageRequest::new(
            arguments.limit,
            arguments.cursor.as_deref(),
            DEFAULT_LIMIT,
            MAX_LIMIT,
        )?;
        let (located, dir) = self.roots.open_dir(&arguments.path, scope)?;
        let shown = path_text(&located.shown);
        let hidden = arguments.hidden == Some(true);
        let mut names: Vec<std::ffi::OsString> = dir
            .entries()
            .map_err(|error| ToolError::failed(format!("`{shown}`: {error}")))?
            .filter_map(Result::ok)
            .map(|entry| entry.file_name())
            .filter(|name| hidden || !name.as_bytes().starts_with(b"."))
            .collect();
        let users = self.users.table();
        let sort = arguments.sort.unwrap_or_default();
        let (mut entries, mut page_info) = match sort {
            SortKey::Name | SortKey::None => {
                if sort == SortKey::Name {
                    names.sort();
                }
                let (names, next) = page.take(names);
                let entries = names
                    .iter()
                    .filter_map(|name| describe(&dir, name, &users))
                    .collect();
                (entries, next)
            }
            SortKey::Size | SortKey::Modified => {
                // Sorting by a metadata field needs every entry's metadata.
                let mut entries: Vec<Entry> = names
                    .iter()
                    .filter_map(|name| describe(&dir, name, &users))
                    .collect();
                entries.sort_by(|a, b| {
                    match sort {
                        SortKey::Size => b.size_bytes.cmp(&a.size_bytes),
                        _ => b.modified.cmp(&a.modified),
                    }
                    .then_with(|| a.name.cmp(&b.name))
                });
                page.take(entries)
            }
        };
        let mut notes: Vec<String> = page.note.clone().into_iter().collect();
        notes.extend(page.fit(&mut entries, &mut page_info, cap));
        Ok(Listing {
            path: shown,
            entries,
            page: page_info,
            notes,
        })
    }
}

impl Collect for DirectoryLister {
    type Arguments = ListArguments;
    type Output = Listing;

    const DECLARATION: &'static Declaration = &FILES_LIST;

    fn collect(
        &self,
        arguments: ListArguments,
        context: &ToolContext,
    ) -> Result<Listing, ToolError> {
        self.list(&arguments, &context.client_roots, context.output_cap)
    }

    async fn reserve(&self, _: &Self::Arguments) -> Result<Option<Box<dyn Send>>, ToolError> {
        self.roots
            .hold_descriptors(super::descriptors::ONE_FILE)
            .await
    }
}
