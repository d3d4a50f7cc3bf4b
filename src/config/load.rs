//! Finding and parsing the configuration file, with errors that point at the key and line.

use std::path::{Path, PathBuf};

use super::Config;

/// The system-wide file, read when neither `--config` nor `$SYSTEMMANAGER_CONFIG` names one.
pub(super) const SYSTEM_CONFIG_PATH: &str = "/etc/systemmanager/config.toml";
/// The environment variable naming a config file.
pub(super) const CONFIG_ENV: &str = "SYSTEMMANAGER_CONFIG";

/// Where the effective configuration came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// No file: the embedded defaults.
    Defaults,
    /// `--config FILE`.
    Flag(PathBuf),
    /// `$SYSTEMMANAGER_CONFIG`.
    Environment(PathBuf),
    /// `/etc/systemmanager/config.toml`.
    System(PathBuf),
}

impl std::fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigSource::Defaults => f.write_str("embedded defaults (no config file)"),
            ConfigSource::Flag(path) => write!(f, "{} (--config)", path.display()),
            ConfigSource::Environment(path) => write!(f, "{} (${CONFIG_ENV})", path.display()),
            ConfigSource::System(path) => write!(f, "{}", path.display()),
        }
    }
}

/// A configuration that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A bad key or value: `key` is the dotted path (`http.max_body_bytes`), `line` is 1-based.
    #[error("{origin}:{line}: `{key}`: {message}")]
    Invalid {
        origin: String,
        key: String,
        line: usize,
        message: String,
    },
}

/// Resolves the file to use (`--config`, then `$SYSTEMMANAGER_CONFIG`, then the system file) and
/// parses it; with none of them, the embedded defaults.
pub fn load(flag: Option<&Path>) -> Result<(Config, ConfigSource), ConfigError> {
    let env = std::env::var_os(CONFIG_ENV).filter(|value| !value.is_empty());
    let source = match (flag, env) {
        (Some(path), _) => ConfigSource::Flag(path.to_path_buf()),
        (None, Some(path)) => ConfigSource::Environment(PathBuf::from(path)),
        (None, None) if Path::new(SYSTEM_CONFIG_PATH).exists() => {
            ConfigSource::System(PathBuf::from(SYSTEM_CONFIG_PATH))
        }
        (None, None) => return Ok((Config::default(), ConfigSource::Defaults)),
    };
    let path = match &source {
        ConfigSource::Flag(path) | ConfigSource::Environment(path) | ConfigSource::System(path) => {
            path
        }
        ConfigSource::Defaults => unreachable!("handled above"),
    };
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.clone(),
        source,
    })?;
    let config = parse(&text, &path.display().to_string())?;
    Ok((config, source))
}

/// Parses configuration text; `origin` names it in errors (a path, or `<string>`).
pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
    let invalid = |key: String, span: Option<std::ops::Range<usize>>, message: String| {
        let line = span.map_or(1, |span| line_of(text, span.start));
        ConfigError::Invalid {
            origin: origin.to_string(),
            key,
            line,
            message,
        }
    };
    let deserializer = toml::Deserializer::parse(text).map_err(|error| {
        invalid(
            key_at(text, error.span()),
            error.span(),
            error.message().to_string(),
        )
    })?;
    let config: Config = serde_path_to_error::deserialize(deserializer).map_err(|error| {
        // The path names the key even when the key itself is the problem (unknown).
        let key = error.path().to_string();
        let inner = error.into_inner();
        invalid(key, inner.span(), inner.message().to_string())
    })?;
    config.validate().map_err(|(key, message)| {
        let span = span_of_key(text, &key);
        invalid(key, span, message)
    })?;
    Ok(config)
}

/// Where a dotted key (`security.local_role`) is written in the document; for a key that is
/// missing, where its nearest written parent is (`[tls]` for a missing `tls.key`).
fn span_of_key(text: &str, key: &str) -> Option<std::ops::Range<usize>> {
    let document = toml::de::DeTable::parse(text).ok()?;
    let mut table = document.get_ref();
    let mut found = None;
    let mut segments = key.split('.').peekable();
    while let Some(segment) = segments.next() {
        let Some((name, value)) = table.iter().find(|(name, _)| name.get_ref() == segment) else {
            return found;
        };
        found = Some(name.span());
        if segments.peek().is_none() {
            break;
        }
        match value.get_ref() {
            toml::de::DeValue::Table(inner) => table = inner,
            _ => return Some(value.span()),
        }
    }
    found
}

/// The dotted key written on the line of a syntax error, when there is one.
fn key_at(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    let Some(span) = span else {
        return "<document>".into();
    };
    let start = text[..span.start.min(text.len())]
        .rfind('\n')
        .map_or(0, |i| i + 1);
    let line = text[start..].lines().next().unwrap_or("").trim();
    match line.split_once('=') {
        Some((key, _)) if !key.trim().is_empty() => key.trim().to_string(),
        _ => line.to_string(),
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|byte| **byte == b'\n')
        .count()
        + 1
}
