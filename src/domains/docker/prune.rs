//! `docker_prune` (admin): removes what nothing uses — stopped containers, dangling (or all
//! unused) images, unused networks, unused volumes, build cache — or, as a dry run (the
//! default), lists what would go.
//!
//! The dry run asks the engine the questions its prune answers: stopped containers, dangling
//! images, networks with no container attached, volumes no container uses.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use bollard::Docker;
use bollard::errors::Error as DockerError;
use bollard::query_parameters::{
    InspectNetworkOptions, ListContainersOptions, ListImagesOptions, ListNetworksOptions,
    ListVolumesOptions, PruneBuildOptions, PruneContainersOptions, PruneImagesOptions,
    PruneNetworksOptions, PruneVolumesOptions,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::engine::Engine;
use super::names::short_id;
use crate::tool::{Declaration, Domain, Render, Tool, ToolContext, ToolError};

pub(crate) static DOCKER_PRUNE: Declaration = Declaration::admin(
    Domain::Docker,
    "docker_prune",
    "Prune unused Docker objects",
    "Removes what nothing uses (`docker system prune` by parts): stopped \
     containers, dangling images (all unused images with all_images), networks \
     no container is attached to, volumes no container uses (and their data), \
     build cache. A dry run (the default) lists what would go and removes \
     nothing; pass dry_run false to prune. `label` limits it to objects carrying \
     a label.",
)
.destructive()
.idempotent()
.paged("prune fewer kinds at once");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Prunable {
    Containers,
    Images,
    Networks,
    Volumes,
    BuildCache,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PruneArguments {
    /// What to prune.
    pub what: Vec<Prunable>,
    /// List what would go, remove nothing (default true).
    pub dry_run: Option<bool>,
    /// Images: every image no container uses, not only dangling (untagged) ones.
    #[serde(default)]
    pub all_images: bool,
    /// Only objects with this label: `key` or `key=value` (build cache has no labels).
    pub label: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct PruneReport {
    pub dry_run: bool,
    pub kinds: Vec<PrunedKind>,
    /// Bytes freed (after a prune) or at most freed (dry run; image layers may be shared).
    pub space_bytes: u64,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct PrunedKind {
    pub kind: Prunable,
    /// Names or short ids of what goes (or went).
    pub items: Vec<String>,
    pub space_bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Render for PruneReport {
    fn render_text(&self) -> String {
        let verb = if self.dry_run {
            "would remove"
        } else {
            "removed"
        };
        let mut lines: Vec<String> = self
            .kinds
            .iter()
            .map(|kind| {
                let mut line = format!(
                    "{verb} {} {:?}: {}",
                    kind.items.len(),
                    kind.kind,
                    crate::render::join(&kind.items, ", ")
                );
                if let Some(note) = &kind.note {
                    line.push_str(&format!(" ({})", crate::render::sentence(note)));
                }
                line
            })
            .collect();
        lines.push(format!(
            "{} {}",
            if self.dry_run {
                "space at most"
            } else {
                "space freed"
            },
            crate::render::bytes(self.space_bytes)
        ));
        lines.join("\n")
    }
}

const BUILT_IN_NETWORKS: [&str; 3] = ["bridge", "host", "none"];

fn positive(bytes: Option<i64>) -> u64 {
    bytes.unwrap_or(0).max(0) as u64
}

/// What a prune of `kind` would remove, asked of the engine.
async fn candidates(
    docker: &Docker,
    kind: Prunable,
    all_images: bool,
    label: Option<&str>,
) -> Result<PrunedKind, DockerError> {
    let (mut items, space_bytes, note) = match kind {
        Prunable::Containers => stopped_containers(docker, label).await?,
        Prunable::Images => unused_images(docker, all_images, label).await?,
        Prunable::Networks => unused_networks(docker, label).await?,
        Prunable::Volumes => dangling_volumes(docker, label).await?,
        Prunable::BuildCache if label.is_some() => {
            (Vec::new(), 0, Some("build cache has no labels: left alone"))
        }
        Prunable::BuildCache => (
            Vec::new(),
            0,
            Some("the engine does not list build cache before pruning it"),
        ),
    };
    items.sort();
    Ok(PrunedKind {
        kind,
        items,
        space_bytes,
        note: note.map(str::to_string),
    })
}

/// What a prune of one kind would remove: names, the bytes they hold, and a note.
type Candidates = (Vec<String>, u64, Option<&'static str>);

/// The engine's filters, with `label` (`key` or `key=value`) when the caller gave one.
fn with_label(
    mut filters: HashMap<String, Vec<String>>,
    label: Option<&str>,
) -> HashMap<String, Vec<String>> {
    if let Some(label) = label {
        filters.insert("label".into(), vec![label.to_string()]);
    }
    filters
}

/// Created, exited and dead containers, by name, with their writable layers' size.
async fn stopped_containers(
    docker: &Docker,
    label: Option<&str>,
) -> Result<Candidates, DockerError> {
    let filters = with_label(
        HashMap::from([(
            "status".to_string(),
            vec!["created".into(), "exited".into(), "dead".into()],
        )]),
        label,
    );
    let stopped = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            size: true,
            filters: Some(filters),
            ..Default::default()
        }))
        .await?;
    let names = stopped
        .iter()
        .map(|container| {
            container
                .names
                .as_ref()
                .and_then(|names| names.first())
                .map(|name| name.trim_start_matches('/').to_string())
                .unwrap_or_else(|| short_id(container.id.as_deref().unwrap_or_default()))
        })
        .collect();
    let space = stopped
        .iter()
        .map(|container| positive(container.size_rw))
        .sum();
    Ok((names, space, None))
}

/// Images no container uses: dangling ones, or every one with `all_images`.
async fn unused_images(
    docker: &Docker,
    all_images: bool,
    label: Option<&str>,
) -> Result<Candidates, DockerError> {
    let images = docker
        .list_images(Some(ListImagesOptions {
            all: false,
            filters: Some(with_label(HashMap::new(), label)),
            ..Default::default()
        }))
        .await?;
    let used: HashSet<String> = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            ..Default::default()
        }))
        .await?
        .into_iter()
        .filter_map(|container| container.image_id)
        .collect();
    let going: Vec<_> = images
        .into_iter()
        .filter(|image| !used.contains(&image.id))
        .filter(|image| {
            let dangling = image.repo_tags.iter().all(|tag| tag == "<none>:<none>");
            all_images || dangling
        })
        .collect();
    let names = going
        .iter()
        .map(|image| {
            image
                .repo_tags
                .iter()
                .find(|tag| *tag != "<none>:<none>")
                .cloned()
                .unwrap_or_else(|| short_id(&image.id))
        })
        .collect();
    let space = going.iter().map(|image| positive(Some(image.size))).sum();
    Ok((
        names,
        space,
        Some("sizes count shared layers once per image"),
    ))
}

/// Networks no container is attached to, never the built-in ones or swarm's.
async fn unused_networks(docker: &Docker, label: Option<&str>) -> Result<Candidates, DockerError> {
    let mut unused = Vec::new();
    for network in docker.list_networks(None::<ListNetworksOptions>).await? {
        let name = network.name.unwrap_or_default();
        if BUILT_IN_NETWORKS.contains(&name.as_str()) || network.scope.as_deref() == Some("swarm") {
            continue;
        }
        let inspected = docker
            .inspect_network(&name, None::<InspectNetworkOptions>)
            .await?;
        let labelled = label.is_none_or(|label| {
            let labels = inspected.labels.clone().unwrap_or_default();
            match label.split_once('=') {
                Some((key, value)) => labels.get(key).is_some_and(|found| found == value),
                None => labels.contains_key(label),
            }
        });
        if labelled && inspected.containers.unwrap_or_default().is_empty() {
            unused.push(name);
        }
    }
    Ok((unused, 0, None))
}

/// Volumes no container mounts.
async fn dangling_volumes(docker: &Docker, label: Option<&str>) -> Result<Candidates, DockerError> {
    let filters = with_label(
        HashMap::from([("dangling".to_string(), vec!["true".to_string()])]),
        label,
    );
    let listed = docker
        .list_volumes(Some(ListVolumesOptions {
            filters: Some(filters),
        }))
        .await?;
    let names = listed
        .volumes
        .unwrap_or_default()
        .into_iter()
        .map(|volume| volume.name)
        .collect();
    Ok((
        names,
        0,
        Some("volume sizes are not listed by this engine API"),
    ))
}

/// Prunes `kind` and reports what the engine removed.
async fn prune(
    docker: &Docker,
    kind: Prunable,
    all_images: bool,
    label: Option<&str>,
) -> Result<PrunedKind, DockerError> {
    let labelled =
        || label.map(|label| HashMap::from([("label".to_string(), vec![label.to_string()])]));
    let (mut items, space) = match kind {
        Prunable::Containers => {
            let options = PruneContainersOptions {
                filters: labelled(),
            };
            let pruned = docker.prune_containers(Some(options)).await?;
            (
                pruned
                    .containers_deleted
                    .unwrap_or_default()
                    .iter()
                    .map(|id| short_id(id))
                    .collect::<Vec<_>>(),
                positive(pruned.space_reclaimed),
            )
        }
        Prunable::Images => {
            let filters =
                HashMap::from([("dangling".to_string(), vec![(!all_images).to_string()])]);
            let pruned = docker
                .prune_images(Some(PruneImagesOptions {
                    filters: Some(filters),
                }))
                .await?;
            (
                pruned
                    .images_deleted
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|item| item.untagged.or(item.deleted.map(|id| short_id(&id))))
                    .collect(),
                positive(pruned.space_reclaimed),
            )
        }
        Prunable::Networks => {
            let options = PruneNetworksOptions {
                filters: labelled(),
            };
            let pruned = docker.prune_networks(Some(options)).await?;
            (pruned.networks_deleted.unwrap_or_default(), 0)
        }
        Prunable::Volumes => {
            let options = PruneVolumesOptions {
                filters: labelled(),
            };
            let pruned = docker.prune_volumes(Some(options)).await?;
            (
                pruned.volumes_deleted.unwrap_or_default(),
                positive(pruned.space_reclaimed),
            )
        }
        Prunable::BuildCache if label.is_some() => (Vec::new(), 0),
        Prunable::BuildCache => {
            let pruned = docker.prune_build(None::<PruneBuildOptions>).await?;
            (
                pruned.caches_deleted.unwrap_or_default(),
                positive(pruned.space_reclaimed),
            )
        }
    };
    items.sort();
    Ok(PrunedKind {
        kind,
        items,
        space_bytes: space,
        note: None,
    })
}

pub(crate) struct PruneTool {
    pub engine: Arc<Engine>,
}

impl Tool for PruneTool {
    type Arguments = PruneArguments;
    type Output = PruneReport;

    fn declaration(&self) -> &'static Declaration {
        &DOCKER_PRUNE
    }

    async fn run(
        &self,
        arguments: PruneArguments,
        _: ToolContext,
    ) -> Result<PruneReport, ToolError> {
        if arguments.what.is_empty() {
            return Err(ToolError::invalid_arguments(
                "what is empty: name containers, images, networks, volumes and/or build_cache",
            ));
        }
        let dry_run = arguments.dry_run.unwrap_or(true);
        let mut seen = HashSet::new();
        let kinds_asked: Vec<Prunable> = arguments
            .what
            .iter()
            .copied()
            .filter(|kind| seen.insert(*kind))
            .collect();
        let all_images = arguments.all_images;
        let label = arguments.label.clone();
        let kinds = self
            .engine
            .run(|docker| async move {
                let mut kinds = Vec::new();
                // Containers first: images and networks they held are then unused too.
                let mut ordered = kinds_asked.clone();
                ordered.sort_by_key(|kind| *kind != Prunable::Containers);
                for kind in ordered {
                    let label = label.as_deref();
                    kinds.push(if dry_run {
                        candidates(&docker, kind, all_images, label).await?
                    } else {
                        prune(&docker, kind, all_images, label).await?
                    });
                }
                Ok(kinds)
            })
            .await?;
        Ok(PruneReport {
            dry_run,
            space_bytes: kinds.iter().map(|kind| kind.space_bytes).sum(),
            kinds,
        })
    }
}
