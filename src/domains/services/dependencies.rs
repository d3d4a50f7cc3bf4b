//! `service_dependencies`: what a unit needs and what needs it, as `systemctl
//! list-dependencies` walks it, depth-bounded.

use std::collections::HashSet;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::bus::{UNIT_INTERFACE, unit_name};
use super::status::Units;
use crate::render;
use crate::tool::{Declaration, Domain, Render, Tool, ToolContext, ToolError};

pub(crate) static SERVICE_DEPENDENCIES: Declaration = Declaration::read(
    Domain::Services,
    "service_dependencies",
    "systemd unit dependencies",
    "What a unit requires and wants, and the units that require or want it (reverse: true), \
     as a tree to `depth` levels (default 1, at most 5, at most 500 units), with its ordering \
     (after, before) at the top. Like `systemctl list-dependencies`.",
);

const MAX_DEPTH: u32 = 5;
const MAX_NODES: usize = 500;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DependencyArguments {
    pub unit: String,
    /// Levels of the tree (default 1, at most 5).
    pub depth: Option<u32>,
    /// The units that require or want this one, instead of those it requires or wants.
    #[serde(default)]
    pub reverse: bool,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct Dependencies {
    pub unit: String,
    /// Units this one is ordered after (starts after them).
    pub after: Vec<String>,
    /// Units this one is ordered before.
    pub before: Vec<String>,
    /// The tree: requires and wants (or, reversed, required_by and wanted_by).
    pub tree: Vec<DependencyNode>,
    /// Units left out past the 500-unit bound.
    #[serde(skip_serializing_if = "crate::render::is_zero")]
    pub cut: u64,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct DependencyNode {
    pub unit: String,
    /// requires or wants (required_by or wanted_by when reversed).
    pub relation: String,
    pub active_state: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<DependencyNode>,
}

impl Render for Dependencies {
    fn render_text(&self) -> String {
        fn walk(nodes: &[DependencyNode], depth: usize, lines: &mut Vec<String>) {
            for node in nodes {
                lines.push(format!(
                    "{}{} ({}, {})",
                    "  ".repeat(depth),
                    render::text(&node.unit),
                    node.relation,
                    node.active_state
                ));
                walk(&node.children, depth + 1, lines);
            }
        }
        let mut lines = vec![render::text(&self.unit).into_owned()];
        walk(&self.tree, 1, &mut lines);
        if !self.after.is_empty() {
            lines.push(format!("after: {}", render::join(&self.after, ", ")));
        }
        if !self.before.is_empty() {
            lines.push(format!("before: {}", render::join(&self.before, ", ")));
        }
        if self.cut > 0 {
            lines.push(format!("({} more past the 500-unit bound)", self.cut));
        }
        lines.join("\n")
    }
}

pub(crate) struct ServiceDependenciesTool {
    pub units: Arc<Units>,
}

impl Tool for ServiceDependenciesTool {
    type Arguments = DependencyArguments;
    type Output = Dependencies;

    fn declaration(&self) -> &'static Declaration {
        &SERVICE_DEPENDENCIES
    }

    async fn run(
        &self,
        arguments: DependencyArguments,
        _: ToolContext,
    ) -> Result<Dependencies, ToolError> {
        let unit = unit_name(&arguments.unit)?;
        let depth = arguments.depth.unwrap_or(1);
        if !(1..=MAX_DEPTH).contains(&depth) {
            return Err(ToolError::invalid_arguments(format!(
                "depth {depth} is out of range: give 1 to {MAX_DEPTH}"
            )));
        }
        let relations: [(&str, &str); 2] = if arguments.reverse {
            [("RequiredBy", "required_by"), ("WantedBy", "wanted_by")]
        } else {
            [("Requires", "requires"), ("Wants", "wants")]
        };
        let path = self.units.path(&unit).await?;
        let systemd = &self.units.systemd;
        let properties = systemd.properties(&path, UNIT_INTERFACE).await?;
        let mut seen = HashSet::from([unit.clone()]);
        let mut cut = 0u64;
        // Breadth-first, one level at a time, so the bound keeps the nearest units.
        let mut tree = Vec::new();
        let mut level: Vec<(Vec<usize>, String)> = vec![(Vec::new(), unit.clone())];
        // One manager for the walk: each fetch of it checks the bus is still there.
        let manager = systemd.manager().await?;
        for _ in 0..depth {
            let mut next = Vec::new();
            for (position, name) in level {
                let Ok(path) = manager.load_unit(name.clone()).await else {
                    continue;
                };
                let Ok(props) = systemd.properties(&path, UNIT_INTERFACE).await else {
                    continue;
                };
                for (property, relation) in relations {
                    let mut names = props.list(property);
                    names.sort();
                    for child in names {
                        if !seen.insert(child.clone()) {
                            continue;
                        }
                        if seen.len() > MAX_NODES {
                            cut += 1;
                            continue;
                        }
                        let active_state = match manager.get_unit(child.clone()).await {
                            Ok(child_path) => systemd
                                .properties(&child_path, UNIT_INTERFACE)
                                .await
                                .map(|p| p.text("ActiveState"))
                                .unwrap_or_default(),
                            // Not loaded: systemd has not needed it.
                            Err(_) => "inactive".into(),
                        };
                        let siblings = children_at(&mut tree, &position);
                        siblings.push(DependencyNode {
                            unit: child.clone(),
                            relation: relation.into(),
                            active_state,
                            children: Vec::new(),
                        });
                        let mut child_position = position.clone();
                        child_position.push(siblings.len() - 1);
                        next.push((child_position, child));
                    }
                }
            }
            level = next;
        }
        Ok(Dependencies {
            unit,
            after: properties.list("After"),
            before: properties.list("Before"),
            tree,
            cut,
        })
    }
}

/// The children list of the node at `position` (indexes from the root).
fn children_at<'a>(
    tree: &'a mut Vec<DependencyNode>,
    position: &[usize],
) -> &'a mut Vec<DependencyNode> {
    let mut nodes = tree;
    for index in position {
        nodes = &mut nodes[*index].children;
    }
    nodes
}
