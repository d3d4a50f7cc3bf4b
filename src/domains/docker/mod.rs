//! The `docker` domain: the Docker Engine through its API (bollard), read tools and the
//! container lifecycle behind the `operate` tier.
//!
//! The engine is reached on first use and again after it was unreachable, so the tools work
//! as soon as the daemon does, without restarting the server (`engine.rs`).

pub(crate) mod admission;
pub(crate) mod containers;
pub(crate) mod create;
pub(crate) mod create_policy;
pub(crate) mod engine;
pub(crate) mod events;
pub(crate) mod exec;
pub(crate) mod images;
pub(crate) mod info;
pub(crate) mod lifecycle;
pub(crate) mod logs;
pub(crate) mod names;
pub(crate) mod networks;
pub(crate) mod prune;
pub(crate) mod pull;
pub(crate) mod removal;
pub(crate) mod stats;
pub(crate) mod system_df;
pub(crate) mod top;
pub(crate) mod volumes;

use std::sync::Arc;

use crate::config::Config;
use crate::tool::Registry;

/// Where the engine is: the config, else `DOCKER_HOST`, else the default socket.
pub(crate) fn host(config: &Config) -> String {
    config
        .docker
        .host
        .as_ref()
        .map(|host| host.0.clone())
        .or_else(|| {
            std::env::var("DOCKER_HOST")
                .ok()
                .filter(|host| !host.is_empty())
        })
        .unwrap_or_else(|| engine::DEFAULT_HOST.to_string())
}

pub(crate) fn register(registry: &mut Registry, config: &Config) {
    if !config.docker.enabled {
        return;
    }
    let engine = Arc::new(engine::Engine::new(host(config)));
    registry.register(info::DockerInfoTool {
        engine: Arc::clone(&engine),
    });
    registry.register(containers::ContainerListTool {
        engine: Arc::clone(&engine),
    });
    registry.register(containers::ContainerInspectTool {
        engine: Arc::clone(&engine),
    });
    registry.register(logs::ContainerLogsTool {
        engine: Arc::clone(&engine),
    });
    registry.register(stats::ContainerStatsTool {
        engine: Arc::clone(&engine),
    });
    registry.register(top::ContainerTopTool {
        engine: Arc::clone(&engine),
    });
    registry.register(images::ImageListTool {
        engine: Arc::clone(&engine),
    });
    registry.register(images::ImageInspectTool {
        engine: Arc::clone(&engine),
    });
    registry.register(networks::NetworkListTool {
        engine: Arc::clone(&engine),
    });
    registry.register(networks::NetworkInspectTool {
        engine: Arc::clone(&engine),
    });
    registry.register(volumes::VolumeListTool {
        engine: Arc::clone(&engine),
    });
    registry.register(volumes::VolumeInspectTool {
        engine: Arc::clone(&engine),
    });
    registry.register(system_df::SystemDfTool {
        engine: Arc::clone(&engine),
    });
    registry.register(events::EventsTool {
        engine: Arc::clone(&engine),
    });
    for action in lifecycle::Action::ALL {
        registry.register(lifecycle::ContainerLifecycleTool {
            engine: Arc::clone(&engine),
            action,
            policy: config.docker.policy.clone(),
        });
    }
    for connect in [true, false] {
        registry.register(networks::NetworkAttachmentTool {
            engine: Arc::clone(&engine),
            connect,
        });
    }
    for start in [false, true] {
        registry.register(create::ContainerCreateTool {
            engine: Arc::clone(&engine),
            policy: config.docker.policy.clone(),
            start,
        });
    }
    if config.docker.exec_enabled {
        registry.register(exec::ContainerExecTool {
            engine: Arc::clone(&engine),
        });
    }
    registry.register(containers::ContainerRemoveTool {
        engine: Arc::clone(&engine),
    });
    registry.register(pull::ImagePullTool {
        engine: Arc::clone(&engine),
        registries: config.docker.registries.clone(),
    });
    registry.register(images::ImageRemoveTool {
        engine: Arc::clone(&engine),
    });
    registry.register(prune::PruneTool {
        engine: Arc::clone(&engine),
    });
    registry.register(networks::NetworkCreateTool {
        engine: Arc::clone(&engine),
    });
    registry.register(networks::NetworkRemoveTool {
        engine: Arc::clone(&engine),
    });
    registry.register(volumes::VolumeRemoveTool {
        engine: Arc::clone(&engine),
    });
}
