//! `process_tree`: the processes under one pid (default 1), as `pstree` draws them, cut at a
//! depth and a node budget so a big host still gets an answer that fits. Shallow levels are
//! filled first; what is cut is counted on the node it hangs from.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::cpu_percent::ProcessUsage;
use super::table::{self, ProcessStat};
use crate::bounded::Bounded;
use crate::domains::shared::users::{UserNames, name_of};
use crate::tool::{Collect, Declaration, Domain, Render, ToolContext, ToolError};

pub(crate) static PROCESS_TREE: Declaration = Declaration::read(
    Domain::Process,
    "process_tree",
    "Process tree",
    "The tree of processes under a pid (default 1, the whole host), like pstree: \
     each node's pid, name and user, and its children. depth (default 4) and \
     max_nodes (default 300) bound the answer; a node whose descendants were cut \
     says how many (`hidden`). Ask again from that pid to see them.",
)
.paged("ask from a deeper pid, or lower depth");

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TreeArguments {
    /// The root of the tree (default 1).
    pub pid: Option<Bounded<1, 4_194_304>>,
    /// Levels below the root to show (default 4).
    pub depth: Option<Bounded<1, 64>>,
    /// Most processes to show (default 300).
    pub max_nodes: Option<Bounded<1, 5000>>,
}

/// The answer of `process_tree`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct ProcessTree {
    pub root: TreeNode,
    /// Processes shown.
    pub shown: usize,
    /// Processes under the root that were cut by depth or max_nodes.
    pub hidden: usize,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct TreeNode {
    pub pid: u32,
    pub name: String,
    pub user: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<TreeNode>,
    /// Descendants not shown under this node.
    #[serde(skip_serializing_if = "crate::render::is_zero")]
    pub hidden: usize,
}

impl Render for ProcessTree {
    fn render_text(&self) -> String {
        fn draw(node: &TreeNode, depth: usize, lines: &mut Vec<String>) {
            let mut line = format!(
                "{}{} {} ({})",
                "  ".repeat(depth),
                node.pid,
                crate::render::text(&node.name),
                crate::render::text(&node.user)
            );
            if node.hidden > 0 {
                line.push_str(&format!(" +{} more", node.hidden));
            }
            lines.push(line);
            for child in &node.children {
                draw(child, depth + 1, lines);
            }
        }
        let mut lines = Vec::new();
        draw(&self.root, 0, &mut lines);
        lines.join("\n")
    }
}

/// Answers `process_tree`.
pub(crate) struct ProcessTreeBuilder {
    usage: Arc<ProcessUsage>,
    users: Arc<UserNames>,
}

impl ProcessTreeBuilder {
    pub(crate) fn new(usage: Arc<ProcessUsage>, users: Arc<UserNames>) -> Self {
        Self { usage, users }
    }

    /// Blocking: reads all of `/proc`.
    pub(crate) fn tree(&self, arguments: &TreeArguments) -> Result<ProcessTree, ToolError> {
        let root = arguments.pid.map_or(1, |pid| pid.get() as u32);
        let depth = arguments.depth.map_or(4, |depth| depth.get() as usize);
        let budget = arguments.max_nodes.map_or(300, |max| max.get() as usize);
        // Every process there is now; parents and names as of the last interval at most.
        let processes = self.usage.ranking()?.processes;
        let by_pid: HashMap<u32, &ProcessStat> = processes.iter().map(|p| (p.pid, p)).collect();
        if !by_pid.contains_key(&root) {
            return Err(ToolError::not_found(format!(
                "no process {root}: it has exited, or never existed"
            )));
        }
        let children = table::children_of(&processes);
        let descendants = count_descendants(root, &children);

        // Breadth first, so a budget cut keeps the shallow levels.
        let mut shown: HashMap<u32, usize> = HashMap::from([(root, 0)]);
        let mut queue = VecDeque::from([(root, 0usize)]);
        while let Some((pid, level)) = queue.pop_front() {
            if level == depth {
                continue;
            }
            for child in children.get(&pid).into_iter().flatten() {
                if shown.len() == budget {
                    break;
                }
                shown.insert(*child, level + 1);
                queue.push_back((*child, level + 1));
            }
        }
        let users = self.users.table();
        let build = Builder {
            by_pid: &by_pid,
            children: &children,
            shown: &shown,
            users: &users,
            descendants: &descendants,
        };
        Ok(ProcessTree {
            root: build.node(root),
            shown: shown.len(),
            hidden: descendants.get(&root).copied().unwrap_or(0) + 1 - shown.len(),
        })
    }
}

/// For every pid under `root` (and `root`), how many descendants it has.
fn count_descendants(root: u32, children: &HashMap<u32, Vec<u32>>) -> HashMap<u32, usize> {
    // Iterative post-order: trees can be deeper than a thread's stack likes.
    let mut counts = HashMap::new();
    let mut stack = vec![(root, false)];
    while let Some((pid, expanded)) = stack.pop() {
        let kids = children.get(&pid).map(Vec::as_slice).unwrap_or(&[]);
        if expanded {
            let total = kids
                .iter()
                .map(|kid| 1 + counts.get(kid).copied().unwrap_or(0))
                .sum();
            counts.insert(pid, total);
        } else {
            stack.push((pid, true));
            stack.extend(kids.iter().map(|kid| (*kid, false)));
        }
    }
    counts
}

struct Builder<'a> {
    by_pid: &'a HashMap<u32, &'a ProcessStat>,
    children: &'a HashMap<u32, Vec<u32>>,
    shown: &'a HashMap<u32, usize>,
    users: &'a crate::domains::shared::users::Table,
    descendants: &'a HashMap<u32, usize>,
}

impl Builder<'_> {
    fn node(&self, pid: u32) -> TreeNode {
        let process = self.by_pid[&pid];
        let mut children = Vec::new();
        let mut hidden = 0;
        for child in self.children.get(&pid).into_iter().flatten() {
            if self.shown.contains_key(child) {
                children.push(self.node(*child));
            } else {
                hidden += 1 + self.descendants.get(child).copied().unwrap_or(0);
            }
        }
        TreeNode {
            pid,
            name: process.name.clone(),
            user: name_of(self.users, process.uid),
            children,
            hidden,
        }
    }
}

impl Collect for ProcessTreeBuilder {
    type Arguments = TreeArguments;
    type Output = ProcessTree;

    const DECLARATION: &'static Declaration = &PROCESS_TREE;

    fn collect(&self, arguments: TreeArguments, _: &ToolContext) -> Result<ProcessTree, ToolError> {
        self.tree(&arguments)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descendants_are_counted_bottom_up() {
        let children = HashMap::from([(1, vec![2, 3]), (2, vec![4, 5]), (5, vec![6])]);
        let counts = count_descendants(1, &children);
        assert_eq!(counts[&1], 5);
        assert_eq!(counts[&2], 3);
        assert_eq!(counts[&6], 0);
    }
}
