//! `docker_image_pull`: pulls an image, reporting progress from the engine's pull stream as MCP
//! progress notifications; registry logins come from the config (`docker.registries`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bollard::auth::DockerCredentials;
use bollard::query_parameters::CreateImageOptions;
use futures::StreamExt;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::engine::Engine;
use super::names::{image_reference, registry_of, short_id};
use crate::config::RegistryCredentials;
use crate::tool::{Declaration, Domain, Render, Tool, ToolContext, ToolError};

pub(crate) static DOCKER_IMAGE_PULL: Declaration = Declaration::admin(
    Domain::Docker,
    "docker_image_pull",
    "Pull a Docker image",
    "Pulls an image from its registry (`docker pull`), with progress notifications \
     while layers download. A reference without a tag pulls `latest`. Registry \
     logins come from the server's config (docker.registries), never from the \
     arguments. Answers with the image id and whether anything new was pulled.",
)
.idempotent()
.open_world();

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PullArguments {
    /// `name[:tag]`, `registry[:port]/name[:tag]` or `name@sha256:...`.
    pub image: String,
    /// e.g. `linux/arm64`; default the engine's own platform.
    pub platform: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct ImagePulled {
    /// The reference pulled, with its tag.
    pub image: String,
    pub id: String,
    /// The registry's digest of what was pulled, when it gave one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// The engine's last word: "Downloaded newer image for ..." or "Image is up to date for ...".
    pub status: String,
    /// Layers the engine reported on.
    pub layers: usize,
    /// Whether credentials from docker.registries were used.
    pub authenticated: bool,
}

impl Render for ImagePulled {
    fn render_text(&self) -> String {
        format!(
            "{}: {} ({}, id {})",
            crate::render::text(&self.image),
            crate::render::text(&self.status),
            crate::render::count(self.layers, "layer", "layers"),
            short_id(&self.id)
        )
    }
}

pub(crate) struct ImagePullTool {
    pub engine: Arc<Engine>,
    pub registries: BTreeMap<String, RegistryCredentials>,
}

impl ImagePullTool {
    fn credentials(&self, registry: &str) -> Result<Option<DockerCredentials>, ToolError> {
        let Some(login) = self.registries.get(registry) else {
            return Ok(None);
        };
        let password = std::fs::read_to_string(&login.password_file.0).map_err(|error| {
            ToolError::unavailable(format!(
                "the password file for {registry} ({}) cannot be read: {error}",
                login.password_file.0.display()
            ))
        })?;
        Ok(Some(DockerCredentials {
            username: Some(login.username.clone()),
            password: Some(password.trim_end_matches(['\n', '\r']).to_string()),
            serveraddress: Some(registry.to_string()),
            ..Default::default()
        }))
    }
}

/// A registry that refused for want of a login says which config entry gives it one.
fn login_hint(error: ToolError, image: &str, authenticated: bool) -> ToolError {
    let refused_login = [
        "no basic auth credentials",
        "unauthorized",
        "authentication required",
    ]
    .iter()
    .any(|phrase| error.message.contains(phrase));
    if !refused_login {
        return error;
    }
    let registry = registry_of(image);
    let advice = if authenticated {
        format!(
            "the login in docker.registries.\"{registry}\" was refused; check its username and password_file"
        )
    } else {
        format!(
            "{registry} wants a login: add [docker.registries.\"{registry}\"] with username and \
             password_file to the server's config"
        )
    };
    ToolError::failed(format!("pulling {image}: {advice} ({})", error.message))
}

/// `name:tag` when the reference has neither tag nor digest.
fn with_tag(reference: &str) -> String {
    let last = reference.rsplit('/').next().unwrap_or(reference);
    if last.contains(':') || reference.contains('@') {
        reference.to_string()
    } else {
        format!("{reference}:latest")
    }
}

impl Tool for ImagePullTool {
    type Arguments = PullArguments;
    type Output = ImagePulled;

    fn declaration(&self) -> &'static Declaration {
        &DOCKER_IMAGE_PULL
    }

    async fn run(
        &self,
        arguments: PullArguments,
        context: ToolContext,
    ) -> Result<ImagePulled, ToolError> {
        let image = with_tag(&image_reference(&arguments.image)?);
        let credentials = self.credentials(registry_of(&image))?;
        let authenticated = credentials.is_some();
        let options = CreateImageOptions {
            from_image: Some(image.clone()),
            platform: arguments.platform.unwrap_or_default(),
            ..Default::default()
        };
        let docker = self.engine.client().await?;
        let mut stream = docker.create_image(Some(options), None, credentials);
        // Per layer: bytes done and bytes in all, from "Downloading" progress.
        let mut layers: HashMap<String, (i64, i64)> = HashMap::new();
        let mut status = String::new();
        let mut digest = None;
        while let Some(update) = stream.next().await {
            if context.cancel.is_cancelled() {
                return Err(ToolError::failed(format!(
                    "the pull of {image} was cancelled; layers already downloaded stay"
                )));
            }
            let update = update
                .map_err(|error| login_hint(self.engine.explain(error), &image, authenticated))?;
            if let Some(error) = update.error_detail.and_then(|detail| detail.message) {
                let failed = ToolError::failed(format!("pulling {image}: {error}"));
                return Err(login_hint(failed, &image, authenticated));
            }
            let text = update.status.unwrap_or_default();
            if let Some(found) = text.strip_prefix("Digest: ") {
                digest = Some(found.to_string());
            }
            if let Some(layer) = update.id.filter(|id| id.len() == 12) {
                let entry = layers.entry(layer).or_default();
                if let Some(detail) = update.progress_detail
                    && let (Some(current), Some(total)) = (detail.current, detail.total)
                    && text == "Downloading"
                {
                    *entry = (current, total);
                }
                if text == "Download complete"
                    || text == "Pull complete"
                    || text == "Already exists"
                {
                    entry.0 = entry.1;
                }
                let (done, all) = layers
                    .values()
                    .fold((0, 0), |(done, all), (current, total)| {
                        (done + current, all + total)
                    });
                if all > 0 {
                    context.progress.report(
                        done as f64,
                        Some(all as f64),
                        format!("{image}: {text}"),
                    );
                }
            }
            if !text.is_empty() {
                status = text.strip_prefix("Status: ").unwrap_or(&text).to_string();
            }
        }
        let target = image.clone();
        let inspected = self
            .engine
            .run(|docker| async move { docker.inspect_image(&target).await })
            .await?;
        Ok(ImagePulled {
            image,
            id: inspected.id.unwrap_or_default(),
            digest,
            status,
            layers: layers.len(),
            authenticated,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reference_without_a_tag_pulls_latest() {
        assert_eq!(with_tag("nginx"), "nginx:latest");
        assert_eq!(with_tag("nginx:1.27"), "nginx:1.27");
        assert_eq!(with_tag("127.0.0.1:5000/app"), "127.0.0.1:5000/app:latest");
        assert_eq!(with_tag("127.0.0.1:5000/app:2"), "127.0.0.1:5000/app:2");
        assert_eq!(
            with_tag("app@sha256:0123456789abcdef0123456789abcdef"),
            "app@sha256:0123456789abcdef0123456789abcdef"
        );
    }
}
