//! `docker_system_df`: what Docker's objects take on disk, as `docker system df` shows it.

use std::collections::HashSet;
use std::sync::Arc;

use bollard::query_parameters::{
    DataUsageOptions, ListContainersOptions, ListImagesOptions, ListVolumesOptions,
};
use schemars::JsonSchema;
use serde::Serialize;

use super::engine::Engine;
use crate::tool::{Declaration, Domain, Render, Tool, ToolContext, ToolError};

pub(crate) static DOCKER_SYSTEM_DF: Declaration = Declaration::read(
    Domain::Docker,
    "docker_system_df",
    "Docker disk use",
    "What Docker's objects take on disk, like `docker system df`: per kind \
     (images, containers, volumes, build cache) how many there are, how many are \
     in use, their size and what a prune could reclaim.",
);

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct DiskUse {
    pub kinds: Vec<KindUse>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct KindUse {
    /// images, containers, volumes or build_cache.
    pub kind: &'static str,
    pub total: u64,
    pub active: u64,
    /// Absent when this engine does not report it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reclaimable_bytes: Option<u64>,
}

impl Render for DiskUse {
    fn render_text(&self) -> String {
        let size = |bytes: Option<u64>| bytes.map_or("?".into(), crate::render::bytes);
        let mut lines: Vec<String> = self
            .kinds
            .iter()
            .map(|kind| {
                format!(
                    "{}: {} ({} active), {} ({} reclaimable)",
                    kind.kind,
                    kind.total,
                    kind.active,
                    size(kind.size_bytes),
                    size(kind.reclaimable_bytes)
                )
            })
            .collect();
        lines.extend(
            self.notes
                .iter()
                .map(|note| crate::render::sentence(note).into_owned()),
        );
        lines.join("\n")
    }
}

fn count(value: Option<i64>) -> u64 {
    value.unwrap_or(0).max(0) as u64
}

pub(crate) struct SystemDfTool {
    pub engine: Arc<Engine>,
}

impl Tool for SystemDfTool {
    type Arguments = crate::tool::NoArguments;
    type Output = DiskUse;

    fn declaration(&self) -> &'static Declaration {
        &DOCKER_SYSTEM_DF
    }

    async fn run(&self, _: crate::tool::NoArguments, _: ToolContext) -> Result<DiskUse, ToolError> {
        // Images and containers from their lists (the same on every API version), volumes
        // and build cache from the engine's df where it speaks the shape bollard reads.
        let (images, containers, volumes, df) = self
            .engine
            .run(|docker| async move {
                let images = docker.list_images(None::<ListImagesOptions>).await?;
                let containers = docker
                    .list_containers(Some(ListContainersOptions {
                        all: true,
                        size: true,
                        ..Default::default()
                    }))
                    .await?;
                let volumes = docker.list_volumes(None::<ListVolumesOptions>).await?;
                let df = docker.df(None::<DataUsageOptions>).await.ok();
                Ok((images, containers, volumes, df))
            })
            .await?;
        let mut notes = Vec::new();
        let used_images: HashSet<&str> = containers
            .iter()
            .filter_map(|container| container.image_id.as_deref())
            .collect();
        let image_size: u64 = images.iter().map(|image| count(Some(image.size))).sum();
        let unused_size: u64 = images
            .iter()
            .filter(|image| !used_images.contains(image.id.as_str()))
            .map(|image| count(Some(image.size)))
            .sum();
        let running = containers
            .iter()
            .filter(|container| {
                container.state == Some(bollard::models::ContainerSummaryStateEnum::RUNNING)
            })
            .count() as u64;
        let writable: u64 = containers
            .iter()
            .map(|container| count(container.size_rw))
            .sum();
        let stopped_writable: u64 = containers
            .iter()
            .filter(|container| {
                container.state != Some(bollard::models::ContainerSummaryStateEnum::RUNNING)
            })
            .map(|container| count(container.size_rw))
            .sum();
        let mut kinds = vec![
            KindUse {
                kind: "images",
                total: images.len() as u64,
                active: images
                    .iter()
                    .filter(|image| used_images.contains(image.id.as_str()))
                    .count() as u64,
                size_bytes: Some(image_size),
                reclaimable_bytes: Some(unused_size),
            },
            KindUse {
                kind: "containers",
                total: containers.len() as u64,
                active: running,
                size_bytes: Some(writable),
                reclaimable_bytes: Some(stopped_writable),
            },
        ];
        let volume_count = volumes.volumes.as_ref().map_or(0, Vec::len) as u64;
        match df.as_ref().and_then(|df| df.volume_usage.as_ref()) {
            Some(usage) => kinds.push(KindUse {
                kind: "volumes",
                total: count(usage.total_count),
                active: count(usage.active_count),
                size_bytes: usage.total_size.map(|size| size.max(0) as u64),
                reclaimable_bytes: usage.reclaimable.map(|size| size.max(0) as u64),
            }),
            None => {
                kinds.push(KindUse {
                    kind: "volumes",
                    total: volume_count,
                    active: 0,
                    size_bytes: None,
                    reclaimable_bytes: None,
                });
                notes.push(
                    "this engine reports volume and build cache sizes in an older form than this \
                     server reads; volume counts shown, sizes left out"
                        .to_string(),
                );
            }
        }
        if let Some(usage) = df.as_ref().and_then(|df| df.build_cache_usage.as_ref()) {
            kinds.push(KindUse {
                kind: "build_cache",
                total: count(usage.total_count),
                active: count(usage.active_count),
                size_bytes: usage.total_size.map(|size| size.max(0) as u64),
                reclaimable_bytes: usage.reclaimable.map(|size| size.max(0) as u64),
            });
        }
        notes.push("image sizes count shared layers once per image".into());
        Ok(DiskUse { kinds, notes })
    }
}
