//! `docker_image_list`, `docker_image_inspect` and `docker_image_remove`: the images the
//! engine holds.

use std::collections::HashMap;
use std::sync::Arc;

use bollard::query_parameters::ListImagesOptions;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::engine::Engine;
use super::names::{short_id, unix_time_text};
use crate::domains::shared::paging::{PageInfo, PageRequest};
use crate::tool::{Declaration, Domain, Render, Tool, ToolContext, ToolError};

pub(crate) static DOCKER_IMAGE_LIST: Declaration = Declaration::read(
    Domain::Docker,
    "docker_image_list",
    "Docker images",
    "Images, like `docker images`: id, tags, size, created, and how many \
     containers use each. Filter by reference (`nginx`, `nginx:1.*`) or dangling \
     (untagged) images; newest first; paged with limit (default 100) and cursor.",
)
.paged("use `limit` and `cursor`, or filter by reference");

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ImageListArguments {
    /// A reference pattern: `name`, `name:tag`, with `*` wildcards.
    pub reference: Option<String>,
    /// Only untagged images (true) or only tagged ones (false).
    pub dangling: Option<bool>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct ImageList {
    pub images: Vec<ImageRow>,
    #[serde(flatten)]
    pub page: PageInfo,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct ImageRow {
    pub id: String,
    /// `repository:tag`; empty for an image pulled by digest only, or a dangling one.
    pub tags: Vec<String>,
    /// `repository@sha256:…`: the digests it was pulled by (an image pulled by digest only has
    /// these and no tag).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub digests: Vec<String>,
    pub size_bytes: i64,
    pub created: String,
    /// Containers using it, running or not (counted from the container list when the engine
    /// does not count them itself, as API 1.41 does not).
    pub containers: u64,
}

impl Render for ImageList {
    fn render_text(&self) -> String {
        let mut lines: Vec<String> = self
            .images
            .iter()
            .map(|image| {
                // As `docker images` shows them: an image pulled by digest only is its
                // repository with no tag, and the digest says which one.
                let tags = match (image.tags.is_empty(), image.digests.first()) {
                    (false, _) => crate::render::join(&image.tags, ", "),
                    (true, Some(digest)) => match digest.split_once('@') {
                        Some((repository, digest)) => format!(
                            "{}:<none> ({})",
                            crate::render::text(repository),
                            crate::render::text(digest)
                        ),
                        None => crate::render::text(digest).into_owned(),
                    },
                    (true, None) => "<none>".to_string(),
                };
                format!(
                    "{} {tags} {} created {}, {}",
                    image.id,
                    crate::render::bytes(image.size_bytes.max(0) as u64),
                    image.created,
                    crate::render::count(image.containers, "container", "containers")
                )
            })
            .collect();
        lines.extend(
            self.page
                .footer(self.images.len(), ("image", "images"), &self.notes),
        );
        lines.join("\n")
    }
}

pub(crate) struct ImageListTool {
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
        context: ToolContext,
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
        let counted = if images.iter().any(|image| image.containers < 0) {
            Some(containers_by_image(&self.engine).await?)
        } else {
            None
        };
        let rows = images
            .into_iter()
            .map(|image| ImageRow {
                id: short_id(&image.id),
                tags: image
                    .repo_tags
                    .into_iter()
                    .filter(|tag| tag != "<none>:<none>")
                    .collect(),
                digests: image
                    .repo_digests
                    .into_iter()
                    .filter(|digest| !digest.starts_with("<none>@"))
                    .collect(),
                size_bytes: image.size,
                created: unix_time_text(image.created),
                containers: match (u64::try_from(image.containers), &counted) {
                    (Ok(count), _) => count,
                    (Err(_), Some(counted)) => counted.get(&image.id).copied().unwrap_or(0),
                    (Err(_), None) => 0,
                },
            })
            .collect();
        let (mut images, mut page_info) = page.take(rows);
        let mut notes: Vec<String> = page.note.clone().into_iter().collect();
        notes.extend(page.fit(&mut images, &mut page_info, context.output_cap));
        Ok(ImageList {
            images,
            page: page_info,
            notes,
        })
    }
}

/// How many containers, running or not, use each image (by full image id), from the container
/// list: what the engine counts for `docker system df -v` but leaves at -1 in the image list.
async fn containers_by_image(engine: &Engine) -> Result<HashMap<String, u64>, ToolError> {
    let options = bollard::query_parameters::ListContainersOptions {
        all: true,
        ..Default::default()
    };
    let containers = engine
        .run(|docker| async move { docker.list_containers(Some(options)).await })
        .await?;
    let mut counts = HashMap::new();
    for container in containers {
        if let Some(image) = container.image_id {
            *counts.entry(image).or_insert(0) += 1;
        }
    }
    Ok(counts)
}

pub(crate) static DOCKER_IMAGE_INSPECT: Declaration = Declaration::read(
    Domain::Docker,
    "docker_image_inspect",
    "Docker image details",
    "One image (by reference or id): id, tags and digests, created, size, OS and \
     architecture, the default command and entrypoint, working dir, user, exposed \
     ports, volumes, labels, and layer count.",
);

pub(crate) static DOCKER_IMAGE_REMOVE: Declaration = Declaration::admin(
    Domain::Docker,
    "docker_image_remove",
    "Remove a Docker image",
    "Removes an image or one of its tags (`docker rmi`): untags the reference and \
     deletes layers nothing else uses. Docker refuses while a container uses the \
     image, unless force.",
)
.destructive();

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ImageArguments {
    /// A reference (`nginx:1.27`) or an image id.
    pub image: String,
    /// Remove: even when containers use it or it has several tags.
    #[serde(default)]
    pub force: bool,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct ImageDetails {
    pub id: String,
    pub tags: Vec<String>,
    pub digests: Vec<String>,
    pub created: String,
    pub size_bytes: i64,
    pub os: String,
    pub architecture: String,
    pub command: Vec<String>,
    pub entrypoint: Vec<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub working_dir: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub user: String,
    pub exposed_ports: Vec<String>,
    pub volumes: Vec<String>,
    pub labels: std::collections::BTreeMap<String, String>,
    pub layers: usize,
}

impl Render for ImageDetails {
    fn render_text(&self) -> String {
        format!(
            "{} {} {} {}/{} created {}; cmd {} entrypoint {}; {}",
            short_id(&self.id),
            crate::render::join(&self.tags, ", "),
            crate::render::bytes(self.size_bytes.max(0) as u64),
            crate::render::text(&self.os),
            crate::render::text(&self.architecture),
            self.created,
            crate::render::join(&self.command, " "),
            crate::render::join(&self.entrypoint, " "),
            crate::render::count(self.layers, "layer", "layers")
        )
    }
}

pub(crate) struct ImageInspectTool {
    pub engine: Arc<Engine>,
}

impl Tool for ImageInspectTool {
    type Arguments = ImageArguments;
    type Output = ImageDetails;

    fn declaration(&self) -> &'static Declaration {
        &DOCKER_IMAGE_INSPECT
    }

    async fn run(
        &self,
        arguments: ImageArguments,
        _: ToolContext,
    ) -> Result<ImageDetails, ToolError> {
        if arguments.force {
            return Err(ToolError::invalid_arguments(
                "force applies to removing an image, not inspecting it",
            ));
        }
        let image = super::names::image_reference(&arguments.image)?;
        let inspected = self
            .engine
            .run(|docker| async move { docker.inspect_image(&image).await })
            .await?;
        let config = inspected.config.unwrap_or_default();
        Ok(ImageDetails {
            id: inspected.id.unwrap_or_default(),
            tags: inspected.repo_tags.unwrap_or_default(),
            digests: inspected.repo_digests.unwrap_or_default(),
            created: inspected
                .created
                .map(super::names::time_text)
                .unwrap_or_default(),
            size_bytes: inspected.size.unwrap_or(0),
            os: inspected.os.unwrap_or_default(),
            architecture: inspected.architecture.unwrap_or_default(),
            command: config.cmd.unwrap_or_default(),
            entrypoint: config.entrypoint.unwrap_or_default(),
            working_dir: config.working_dir.unwrap_or_default(),
            user: config.user.unwrap_or_default(),
            exposed_ports: config.exposed_ports.unwrap_or_default(),
            volumes: config.volumes.unwrap_or_default(),
            labels: config.labels.unwrap_or_default().into_iter().collect(),
            layers: inspected
                .root_fs
                .and_then(|root| root.layers)
                .map_or(0, |layers| layers.len()),
        })
    }
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct ImageRemoved {
    pub image: String,
    /// References untagged.
    pub untagged: Vec<String>,
    /// Image and layer ids deleted.
    pub deleted: Vec<String>,
}

impl Render for ImageRemoved {
    fn render_text(&self) -> String {
        format!(
            "removed {}: untagged {}; deleted {}",
            crate::render::text(&self.image),
            crate::render::join(&self.untagged, ", "),
            self.deleted
                .iter()
                .map(|id| short_id(id))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

pub(crate) struct ImageRemoveTool {
    pub engine: Arc<Engine>,
}

impl Tool for ImageRemoveTool {
    type Arguments = ImageArguments;
    type Output = ImageRemoved;

    fn declaration(&self) -> &'static Declaration {
        &DOCKER_IMAGE_REMOVE
    }

    async fn run(
        &self,
        arguments: ImageArguments,
        _: ToolContext,
    ) -> Result<ImageRemoved, ToolError> {
        let image = super::names::image_reference(&arguments.image)?;
        let target = image.clone();
        let options = bollard::query_parameters::RemoveImageOptions {
            force: arguments.force,
            noprune: false,
            platforms: None,
        };
        let items = self
            .engine
            .run(|docker| async move { docker.remove_image(&target, Some(options), None).await })
            .await?;
        Ok(ImageRemoved {
            image,
            untagged: items
                .iter()
                .filter_map(|item| item.untagged.clone())
                .collect(),
            deleted: items
                .iter()
                .filter_map(|item| item.deleted.clone())
                .collect(),
        })
    }
}
