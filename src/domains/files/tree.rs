//! `files_tree`: a directory's tree, bounded in depth and entries. Subdirectories are opened
//! through their parent's handle, name by name, and symlinks are never followed, so the walk
//! stays inside the root whatever is renamed or swapped while it runs. Directories waiting
//! to be read are held as names, not handles: one call holds at most three descriptors
//! (the start, a parent, a child) however wide the tree.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::confine::{Root, Roots, name_text, path_text};
use crate::tool::{ClientRoots, Collect, Declaration, Domain, Render, ToolContext, ToolError};

pub(crate) static FILES_TREE: Declaration = Declaration::read(
    Domain::Files,
    "files_tree",
    "Directory tree",
    "The tree under a directory inside the file roots, like `tree`: each node's \
     name, type, and size for files. depth (default 3, at most 10) and \
     max_entries (default 200, at most 5000) bound it; a directory whose entries \
     were cut says how many (`hidden_entries`). Symlinks are shown, not followed; \
     dot entries only with hidden: true.",
)
.paged("ask for the tree of a subdirectory")
.within_client_roots();

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TreeArguments {
    /// Absolute path of a directory inside a root, written as answers print names
    /// (`\xNN` for a byte that is not UTF-8, `\\` for a backslash).
    pub path: String,
    /// Levels below the directory (default 3, at most 10).
    #[schemars(range(min = 1, max = 10))]
    pub depth: Option<u32>,
    /// Entries in the whole answer (default 200, at most 5000).
    #[schemars(range(min = 1, max = 5000))]
    pub max_entries: Option<u32>,
    pub hidden: Option<bool>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct TreeNode {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<TreeNode>,
    /// Entries of this directory left out by the depth or entry bound.
    #[serde(skip_serializing_if = "crate::render::is_zero")]
    pub hidden_entries: usize,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct FileTree {
    pub path: String,
    pub root: TreeNode,
    pub entries: usize,
    /// True when depth or max_entries cut the tree.
    pub cut: bool,
}

impl Render for FileTree {
    fn render_text(&self) -> String {
        fn walk(node: &TreeNode, indent: usize, lines: &mut Vec<String>) {
            let mut line = format!("{}{}", "  ".repeat(indent), node.name);
            if node.kind == "directory" {
                line.push('/');
            } else if node.kind == "symlink" {
                line.push('@');
            }
            if node.hidden_entries > 0 {
                line.push_str(&format!(" (+{} more)", node.hidden_entries));
            }
            lines.push(line);
            for child in &node.children {
                walk(child, indent + 1, lines);
            }
        }
        let mut lines = Vec::new();
        walk(&self.root, 0, &mut lines);
        lines.join("\n")
    }
}

pub(crate) struct TreeBuilder {
    pub roots: Arc<Roots>,
}

/// Names read from one directory; the rest are only counted (as `hidden_entries`).
const MAX_DIR_ENTRIES: usize = 100_000;

/// A directory waiting to be read: its names below the start, depth, and where its node sits
/// in the tree.
struct Pending {
    names: Vec<OsString>,
    depth: u32,
    path: Vec<usize>,
}

impl TreeBuilder {
    /// Blocking: reads directories breadth-first, so a budget cut leaves the upper levels.
    pub(crate) fn tree(
        &self,
        arguments: &TreeArguments,
        scope: &ClientRoots,
    ) -> Result<FileTree, ToolError> {
        let max_depth = arguments.depth.unwrap_or(3).clamp(1, 10);
        let budget = arguments.max_entries.unwrap_or(200).clamp(1, 5000) as usize;
        let hidden = arguments.hidden == Some(true);
        let (located, dir) = self.roots.open_dir(&arguments.path, scope)?;
        let shown = path_text(&located.shown);
        let mut root = TreeNode {
            name: shown.clone(),
            kind: "directory",
            size_bytes: None,
            children: Vec::new(),
            hidden_entries: 0,
        };
        let mut queue = VecDeque::from([Pending {
            names: Vec::new(),
            depth: 0,
            path: Vec::new(),
        }]);
        let mut entries = 0;
        let mut cut = false;
        while let Some(pending) = queue.pop_front() {
            let opened;
            let current = if pending.names.is_empty() {
                &dir
            } else {
                match self.reopen(located.root, &dir, &located.shown, &pending.names, scope) {
                    Some(child) => {
                        opened = child;
                        &opened
                    }
                    // Gone, or swapped for something else since it was listed.
                    None => continue,
                }
            };
            let Ok(listing) = current.entries() else {
                continue;
            };
            let mut children: Vec<(std::ffi::OsString, cap_std::fs::FileType, u64)> = Vec::new();
            let mut unread = 0;
            for entry in listing.filter_map(Result::ok) {
                if !hidden && entry.file_name().as_bytes().starts_with(b".") {
                    continue;
                }
                if children.len() >= MAX_DIR_ENTRIES {
                    unread += 1;
                    continue;
                }
                let Ok(kind) = entry.file_type() else {
                    continue;
                };
                let size = if kind.is_file() {
                    entry.metadata().map(|m| m.len()).unwrap_or(0)
                } else {
                    0
                };
                children.push((entry.file_name(), kind, size));
            }
            children.sort_by(|a, b| a.0.cmp(&b.0));
            let node = node_at(&mut root, &pending.path);
            if unread > 0 {
                node.hidden_entries = unread;
                cut = true;
            }
            for (index, (name, kind, size)) in children.iter().enumerate() {
                if entries >= budget || pending.depth >= max_depth {
                    node.hidden_entries += children.len() - index;
                    cut = true;
                    break;
                }
                entries += 1;
                let kind_name = if kind.is_symlink() {
                    "symlink"
                } else if kind.is_dir() {
                    "directory"
                } else if kind.is_file() {
                    "file"
                } else {
                    "other"
                };
                node.children.push(TreeNode {
                    name: name_text(name),
                    kind: kind_name,
                    size_bytes: kind.is_file().then_some(*size),
                    children: Vec::new(),
                    hidden_entries: 0,
                });
                if kind.is_dir() {
                    let mut path = pending.path.clone();
                    path.push(node.children.len() - 1);
                    let mut names = pending.names.clone();
                    names.push(name.clone());
                    queue.push_back(Pending {
                        names,
                        depth: pending.depth + 1,
                        path,
                    });
                }
            }
        }
        Ok(FileTree {
            path: shown,
            root,
            entries,
            cut,
        })
    }
}

impl TreeBuilder {
    /// Opens the directory `names` below `start` one name at a time, never following a
    /// symlink, holding at most a parent and a child; the last one's real path is checked
    /// against the root and the client's roots.
    fn reopen(
        &self,
        root: &Root,
        start: &cap_std::fs::Dir,
        shown: &std::path::Path,
        names: &[OsString],
        scope: &ClientRoots,
    ) -> Option<cap_std::fs::Dir> {
        let (last, parents) = names.split_last()?;
        let mut parent: Option<cap_std::fs::Dir> = None;
        for name in parents {
            let next =
                super::opening::open_child_dir(parent.as_ref().unwrap_or(start), name).ok()?;
            parent = Some(next);
        }
        let shown: PathBuf = names
            .iter()
            .fold(shown.to_path_buf(), |path, name| path.join(name));
        self.roots
            .open_entry_dir(root, parent.as_ref().unwrap_or(start), last, &shown, scope)
            .ok()
    }
}

fn node_at<'a>(root: &'a mut TreeNode, path: &[usize]) -> &'a mut TreeNode {
    path.iter()
        .fold(root, |node, index| &mut node.children[*index])
}

impl Collect for TreeBuilder {
    type Arguments = TreeArguments;
    type Output = FileTree;

    const DECLARATION: &'static Declaration = &FILES_TREE;

    fn collect(
        &self,
        arguments: TreeArguments,
        context: &ToolContext,
    ) -> Result<FileTree, ToolError> {
        self.tree(&arguments, &context.client_roots)
    }

    async fn reserve(&self, _: &Self::Arguments) -> Result<Option<Box<dyn Send>>, ToolError> {
        self.roots.hold_descriptors(super::descriptors::TREE).await
    }
}
