//! `docker_image_list`: the images the engine holds.

use std::collections::HashMap;
use std::sync::Arc;

use bollard::query_parameters::ListImagesOptions;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::engine::Engine;
use super::names::{short_id, unix_time_text};
use crate::domains::paging::PageRequest;
use crate::tool::{Declaration, Domain, Render, Tier, Tool, ToolContext, ToolError};

pub static DOCKER_IMAGE_LIST: Declaration = Declaration {
    name: "docker_image_list",
    title: "Docker images",
    description: "Images, like `docker images`: id, tags, size, created, and how many \
                  containers use each. Filter by reference (`nginx`, `nginx:1.*`) or dangling \
                  (untagged) images; newest first; paged with limit (default 100) and cursor.",
    domain: Domain::Docker,
    tier: Tier::Read,
    destructive: false,
    idempotent: true,
    open_world: false,
    paging_hint: Some("use `limit` and `cursor`, or filter by reference"),
};

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ImageListArguments {
    /// A reference pattern: `name`, `name:tag`, with `*` wildcards.
    pub reference: Option<String>,
    /// Only untagged images (true) or only tagged ones (false).
    pub dangling: Option<bool>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ImageList {
    pub images: Vec<ImageRow>,
    pub total: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ImageRow {
    pub id: String,
    /// `repository:tag`; empty for a dangling image.
    pub tags: Vec<String>,
    pub size_bytes: i64,
    pub created: String,
    /// Containers using it (-1 when the engine did not count).
    pub containers: i64,
}

impl Render for ImageList {
    fn render_text(&self) -> String {
        let mut lines: Vec<String> = self
            .images
            .iter()
            .map(|image| {
                let tags = if image.tags.is_empty() {
                    "<none>".to_string()
                } else {
                    image.tags.join(", ")
                };
                format!(
                    "{} {tags} {} created {}",
                    image.id,
                    crate::render::bytes(image.size_bytes.max(0) as u64),
                    image.created
                )
            })
            .collect();
        lines.push(format!("{} of {} images", self.images.len(), self.total));
        if let Some(cursor) = &self.next_cursor {
            lines.push(format!("more: cursor {cursor}"));
        }
        lines.extend(self.notes.iter().cloned());
        lines.join("\n")
    }
}

pub struct ImageListTool {
    pub engine: Arc<Engine>,
}

impl Tool for ImageListTool {
    type Arguments = ImageListArguments;
    type Output = ImageList;

    fn declaration(&self) -> &'static Declaration {
        &DOCKER_IMAGE_LIST
    }

    async fn run(
        &self,
        arguments: ImageListArguments,
        _: ToolContext,
    ) -> Result<ImageList, ToolError> {
        let page = PageRequest::new(arguments.limit, arguments.cursor.as_deref(), 100, 1000)?;
        let mut filters: HashMap<String, Vec<String>> = HashMap::new();
        if let Some(reference) = &arguments.reference {
            filters.insert("reference".into(), vec![reference.clone()]);
        }
        if let Some(dangling) = arguments.dangling {
            filters.insert("dangling".into(), vec![dangling.to_string()]);
        }
        let options = ListImagesOptions {
            filters: (!filters.is_empty()).then_some(filters),
            ..Default::default()
        };
        let mut images = self
            .engine
            .run(|docker| async move { docker.list_images(Some(options)).await })
            .await?;
        images.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.id.cmp(&b.id)));
        let total = images.len();
        let rows = images
            .into_iter()
            .map(|image| ImageRow {
                id: short_id(&image.id),
                tags: image
                    .repo_tags
                    .into_iter()
                    .filter(|tag| tag != "<none>:<none>")
                    .collect(),
                size_bytes: image.size,
                created: unix_time_text(image.created),
                containers: image.containers,
            })
            .collect();
        let (images, next_cursor) = page.take(rows);
        Ok(ImageList {
            images,
            total,
            next_cursor,
            notes: page.note.into_iter().collect(),
        })
    }
}
