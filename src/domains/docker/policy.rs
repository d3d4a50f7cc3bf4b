//! The create policy: what a container created through this server may ask of the host.
//!
//! Checked before anything is sent to the engine, so a refusal changes nothing, and every
//! refusal names the setting that would allow it. What the create arguments cannot express
//! (devices, security options, user namespaces off, host IPC) cannot be asked for at all.

use std::path::{Component, Path};

use crate::config::DockerPolicy;
use crate::tool::ToolError;

/// What a create request asks of the host, in the policy's terms.
#[derive(Debug, Default)]
pub struct Request<'a> {
    pub privileged: bool,
    pub host_pid: bool,
    pub host_network: bool,
    pub capabilities: &'a [String],
    pub bind_sources: Vec<&'a str>,
}

fn refused(what: String, setting: &str) -> ToolError {
    ToolError::invalid_arguments(format!(
        "refused by the create policy: {what} (docker.policy.{setting} in the server's config)"
    ))
}

pub fn check(policy: &DockerPolicy, request: &Request<'_>) -> Result<(), ToolError> {
    if request.privileged && !policy.allow_privileged {
        return Err(refused(
            "privileged containers are not allowed".into(),
            "allow_privileged",
        ));
    }
    if request.host_pid && !policy.allow_host_pid {
        return Err(refused(
            "the host's PID namespace is not allowed".into(),
            "allow_host_pid",
        ));
    }
    if request.host_network && !policy.allow_host_network {
        return Err(refused(
            "the host's network namespace is not allowed".into(),
            "allow_host_network",
        ));
    }
    // `net_admin`, `NET_ADMIN` and `CAP_NET_ADMIN` name one capability.
    let normalize = |name: &str| {
        let upper = name.to_ascii_uppercase();
        upper.trim_start_matches("CAP_").to_string()
    };
    for capability in request.capabilities {
        let name = normalize(capability);
        let allowed = policy
            .allowed_capabilities
            .iter()
            .any(|allowed| normalize(allowed) == name);
        if !allowed {
            return Err(refused(
                format!("adding the capability {name} is not allowed"),
                "allowed_capabilities",
            ));
        }
    }
    for source in &request.bind_sources {
        check_bind_source(policy, source)?;
    }
    Ok(())
}

/// A bind mount's host path must be absolute, free of `..`, and inside an allowed root both as
/// written and as it resolves (a symlink inside a root may point out of it).
fn check_bind_source(policy: &DockerPolicy, source: &str) -> Result<(), ToolError> {
    let path = Path::new(source);
    if !path.is_absolute() || path.components().any(|part| part == Component::ParentDir) {
        return Err(ToolError::invalid_arguments(format!(
            "bind mount source `{source}` must be an absolute host path without `..`"
        )));
    }
    let roots: Vec<&Path> = policy
        .bind_mount_roots
        .iter()
        .map(|root| root.0.as_path())
        .collect();
    let inside = |path: &Path| roots.iter().any(|root| path.starts_with(root));
    let resolved = std::fs::canonicalize(path).ok();
    let resolved_inside = resolved.as_deref().is_none_or(|real| {
        inside(real)
            || roots.iter().any(|root| {
                std::fs::canonicalize(root).is_ok_and(|real_root| real.starts_with(real_root))
            })
    });
    if inside(path) && resolved_inside {
        return Ok(());
    }
    let listed = if roots.is_empty() {
        "none are configured".to_string()
    } else {
        roots
            .iter()
            .map(|root| root.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    Err(refused(
        format!("bind mount of `{source}` is outside the allowed bind mount roots ({listed})"),
        "bind_mount_roots",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AbsolutePath;

    #[test]
    fn each_refusal_names_its_setting_and_allowed_requests_pass() {
        let policy = DockerPolicy::default();
        let privileged = Request {
            privileged: true,
            ..Default::default()
        };
        let message = check(&policy, &privileged).expect_err("refused").message;
        assert!(message.ends_with("(docker.policy.allow_privileged in the server's config)"));
        let capabilities = ["NET_ADMIN".to_string()];
        let cap = Request {
            capabilities: &capabilities,
            ..Default::default()
        };
        assert!(check(&policy, &cap).is_err());
        let allowing = DockerPolicy {
            allowed_capabilities: vec!["cap_net_admin".into()],
            ..Default::default()
        };
        assert!(check(&allowing, &cap).is_ok());
        assert!(check(&policy, &Request::default()).is_ok());
    }

    #[test]
    fn bind_sources_stay_inside_the_roots_as_written_and_as_resolved() {
        let directory = tempfile::tempdir().expect("tempdir");
        let root = directory.path().join("data");
        std::fs::create_dir(&root).expect("root");
        std::os::unix::fs::symlink("/etc", root.join("escape")).expect("symlink");
        let policy = DockerPolicy {
            bind_mount_roots: vec![AbsolutePath(root.clone())],
            ..Default::default()
        };
        let inside = format!("{}/app", root.display());
        let escape = format!("{}/escape", root.display());
        let dotdot = format!("{}/../x", root.display());
        let check_one = |source: &str| {
            let sources = vec![source];
            check(
                &policy,
                &Request {
                    bind_sources: sources,
                    ..Default::default()
                },
            )
        };
        assert!(check_one(&inside).is_ok());
        assert!(check_one(&escape).is_err(), "a symlink out of the root");
        assert!(check_one(&dotdot).is_err());
        assert!(check_one("/etc").is_err());
        assert!(check_one("relative/path").is_err());
    }
}
