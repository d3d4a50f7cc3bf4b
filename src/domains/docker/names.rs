//! How Docker objects are named in our answers and checked in our arguments.
//!
//! A name or id goes into the Engine API's URL path, so it is checked before it is sent: a
//! `/` or `..` there would address another endpoint.

use crate::tool::ToolError;

/// The first 12 hex digits of an id, as docker shows them (`sha256:` dropped).
pub(crate) fn short_id(id: &str) -> String {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    id.chars().take(12).collect()
}

/// A time from the Engine API (RFC 3339 with nanoseconds), to the second.
pub(crate) fn time_text(time: String) -> String {
    match chrono::DateTime::parse_from_rfc3339(&time) {
        Ok(parsed) => parsed
            .with_timezone(&chrono::Utc)
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string(),
        Err(_) => time,
    }
}

/// Seconds since the epoch, as RFC 3339.
pub(crate) fn unix_time_text(seconds: i64) -> String {
    chrono::DateTime::from_timestamp(seconds, 0)
        .map(|time| time.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// A container (or network, volume) reference: an id, an id prefix or a name, as Docker
/// allows them: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, a leading `/` tolerated.
pub(crate) fn container_reference(reference: &str) -> Result<String, ToolError> {
    object_reference("container", reference)
}

pub(crate) fn object_reference(kind: &str, reference: &str) -> Result<String, ToolError> {
    let name = reference.strip_prefix('/').unwrap_or(reference);
    let valid = !name.is_empty()
        && name.len() <= 255
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if valid {
        Ok(name.to_string())
    } else {
        Err(ToolError::invalid_arguments(format!(
            "`{reference}` is not a {kind} id or name: Docker names are letters, digits, `_`, \
             `.` and `-`, starting with a letter or digit"
        )))
    }
}

/// The distribution reference grammar (docker/distribution `reference/regexp.go`): an optional
/// registry (host[:port]), slash-separated lowercase path components, an optional tag and an
/// optional digest. It never contains `..` or a leading `/`, so it stays one URL path.
static IMAGE_REFERENCE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    let host = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?";
    let component = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*";
    let tag = r"[\w][\w.-]{0,127}";
    let digest = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}";
    regex::Regex::new(&format!(
        "^(?:{host}/)?{component}(?:/{component})*(?::{tag})?(?:@{digest})?$"
    ))
    .expect("the reference grammar compiles")
});

static IMAGE_ID: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new("^(?:sha256:)?[0-9a-f]{12,64}$").expect("the id pattern compiles")
});

/// An image reference (`nginx`, `nginx:1.27`, `registry:5000/team/app@sha256:...`) or id.
pub(crate) fn image_reference(reference: &str) -> Result<String, ToolError> {
    // A first part that names no registry host is a path component, which is lowercase.
    let names_a_host = registry_of(reference) != "docker.io";
    let first_is_lowercase = !reference
        .split('/')
        .next()
        .is_some_and(|first| first.chars().any(|c| c.is_ascii_uppercase()));
    if reference.len() <= 512
        && (names_a_host || first_is_lowercase)
        && (IMAGE_REFERENCE.is_match(reference) || IMAGE_ID.is_match(reference))
    {
        Ok(reference.to_string())
    } else {
        Err(ToolError::invalid_arguments(format!(
            "`{reference}` is not a valid image reference: give [REGISTRY[:PORT]/]NAME[:TAG] \
             [@DIGEST] with a lowercase name (e.g. nginx:1.27, 127.0.0.1:5000/team/app:2), or \
             an image id"
        )))
    }
}

/// The registry a reference pulls from: its first component when that names a host (a `.`
/// or `:` in it, or `localhost`), else Docker Hub.
pub(crate) fn registry_of(reference: &str) -> &str {
    match reference.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            first
        }
        _ => "docker.io",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_that_could_leave_the_url_path_are_refused() {
        assert_eq!(container_reference("/web-1").expect("valid"), "web-1");
        assert_eq!(container_reference("3f2a9c").expect("valid"), "3f2a9c");
        for bad in [
            "",
            "../images/json",
            "a/b",
            "web?x=1",
            ".hidden",
            "a b",
            "-x",
        ] {
            assert!(container_reference(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn image_references_follow_the_distribution_grammar() {
        for good in [
            "nginx",
            "nginx:1.27",
            "library/nginx:latest",
            "127.0.0.1:5000/sm-busybox:1",
            "registry.example.com/team/app@sha256:0123456789abcdef0123456789abcdef",
            "sha256:0123456789abcdef",
            "3d616b698744",
        ] {
            assert!(image_reference(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "UPPER/case",
            "nginx:",
            "../../containers/json",
            "a//b",
            "/nginx",
            "x y",
        ] {
            assert!(image_reference(bad).is_err(), "{bad}");
        }
        assert_eq!(registry_of("127.0.0.1:5000/app:1"), "127.0.0.1:5000");
        assert_eq!(registry_of("ghcr.io/org/app"), "ghcr.io");
        assert_eq!(registry_of("library/nginx"), "docker.io");
        assert_eq!(registry_of("nginx"), "docker.io");
    }

    #[test]
    fn ids_and_times_are_shown_as_docker_shows_them() {
        assert_eq!(short_id("sha256:0123456789abcdef0123"), "0123456789ab");
        assert_eq!(
            time_text("2026-11-24T10:00:01.123456789Z".into()),
            "2026-11-24T10:00:01Z"
        );
        assert_eq!(unix_time_text(0), "1970-01-01T00:00:00Z");
    }
}
