//! The architecture the compiler cannot see: which module may import which, and that a tool's
//! code is found from its name. Read from the source tree, so a change that breaks a rule
//! fails here with the file and line.
//!
//! Data flows one way — transport → mcp → gate → domains — and each layer imports only the
//! layers below it and the shared vocabulary (`access`, `tool`, `config`, `render`, …). A domain
//! imports no other domain, only `domains::shared`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use systemmanager::config::{AbsolutePath, Config};
use systemmanager::domains;

/// The crate's top-level modules each layer may import (besides itself).
const LAYERS: &[(&str, &[&str])] = &[
    ("access", &[]),
    ("bounded", &[]),
    ("render", &[]),
    ("state_file", &[]),
    ("localapi", &[]),
    ("tool", &["access", "render"]),
    ("config", &["access", "bounded"]),
    // A domain: see `DOMAIN_MAY_USE`; `domains/mod.rs` registers them all.
    (
        "domains",
        &[
            "tool",
            "config",
            "render",
            "bounded",
            "state_file",
            "localapi",
        ],
    ),
    ("audit", &["access", "config", "state_file", "domains"]),
    // The server's own counters and the host's node_exporter-named figures for /metrics.
    ("metrics", &["config", "domains"]),
    (
        "gate",
        &["access", "audit", "config", "metrics", "tool", "render"],
    ),
    (
        "auth",
        &[
            "access",
            "audit",
            "config",
            "gate",
            "localapi",
            "state_file",
        ],
    ),
    ("mcp", &["access", "gate", "tool", "render"]),
    (
        "transport",
        &[
            "access", "audit", "auth", "config", "gate", "mcp", "metrics", "tool", "render",
        ],
    ),
    ("logging", &["config"]),
    ("notify", &[]),
];

/// What a module inside a domain (`domains/docker/…`) may import from `crate::domains`.
const DOMAIN_MAY_USE: &[&str] = &["shared"];

fn source_files(under: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![under.to_path_buf()];
    while let Some(directory) = pending.pop() {
        for entry in fs::read_dir(&directory).expect("read src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|extension| extension == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// `(line number, module path)` for every `crate::a::b` the code (not its comments) names.
fn crate_paths(text: &str) -> Vec<(usize, Vec<String>)> {
    let mut found = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let preceded = rest[..at]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '_');
            rest = &rest[at + "crate::".len()..];
            if preceded {
                continue;
            }
            let path: Vec<String> = rest
                .split("::")
                .map(|part| {
                    part.chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect::<String>()
                })
                .take_while(|part| !part.is_empty())
                .take(2)
                .collect();
            if !path.is_empty() {
                found.push((index + 1, path));
            }
        }
    }
    found
}

/// The module a file belongs to (`transport`, `domains`), and for domains which one.
fn layer_of(file: &Path) -> (String, Option<String>) {
    let relative = file.strip_prefix(src()).expect("under src");
    let mut parts = relative
        .iter()
        .map(|part| part.to_string_lossy().into_owned());
    let first = parts.next().expect("a file");
    let top = first.trim_end_matches(".rs").to_string();
    let domain = (top == "domains")
        .then(|| parts.next())
        .flatten()
        .filter(|part| !part.ends_with(".rs"));
    (top, domain)
}

#[test]
fn every_module_imports_only_the_layers_below_it() {
    let rules: BTreeMap<&str, &[&str]> = LAYERS.iter().copied().collect();
    let mut broken = Vec::new();
    for file in source_files(&src()) {
        let (top, domain) = layer_of(&file);
        let Some(allowed) = rules.get(top.as_str()) else {
            // serve, commands, lib and main wire everything together.
            continue;
        };
        let text = fs::read_to_string(&file).expect("read");
        for (line, path) in crate_paths(&text) {
            let module = path[0].as_str();
            let shown = format!("{}:{line}: crate::{}", file.display(), path.join("::"));
            if module == top {
                // Within a domain, only shared helpers and the domain itself.
                if let (Some(domain), Some(other)) = (&domain, path.get(1))
                    && other != domain
                    && !DOMAIN_MAY_USE.contains(&other.as_str())
                {
                    broken.push(format!(
                        "{shown}: the {domain} domain imports another domain"
                    ));
                }
                if top == "domains"
                    && domain.as_deref() == Some("shared")
                    && path.get(1).is_some_and(|other| other != "shared")
                {
                    broken.push(format!("{shown}: domains/shared imports a domain"));
                }
                continue;
            }
            if !allowed.contains(&module) {
                broken.push(format!("{shown}: `{top}` may not import `{module}`"));
            }
            if module == "domains"
                && top != "domains"
                && path.get(1).is_some_and(|part| part != "shared")
            {
                broken.push(format!("{shown}: only domains/shared is shared"));
            }
        }
        if domain.is_some() && text.contains("super::super::") {
            broken.push(format!(
                "{}: reaches out of its domain with super::super",
                file.display()
            ));
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

/// Every tool there is: the default configuration plus a file root, the admin tier and Docker
/// exec (the last two off by default), on a host that runs systemd (a root with
/// `/run/systemd/system`, whatever this machine runs) and tailscaled (tailscale.enabled).
fn every_tool() -> Vec<(&'static str, &'static str)> {
    let root = std::env::temp_dir().join(format!("sm-architecture-{}", std::process::id()));
    fs::create_dir_all(root.join("run/systemd/system")).expect("a systemd-shaped root");
    let mut config = Config::default();
    config.host.rootfs = root;
    config.files.roots = vec![AbsolutePath(std::env::temp_dir())];
    config.docker.exec_enabled = true;
    config.security.admin_tier = true;
    config.tailscale.enabled = true;
    domains::registry(&config)
        .iter()
        .map(|tool| (tool.declaration().name, tool.declaration().tier.as_str()))
        .collect()
}

/// The file under `src/` that declares each tool: where `Declaration::read(Domain::X, "name"`
/// (or `operate`/`admin`) is written.
fn declaring_files() -> BTreeMap<String, PathBuf> {
    let mut declared = BTreeMap::new();
    for file in source_files(&src().join("domains")) {
        let text = fs::read_to_string(&file).expect("read");
        for (at, _) in text.match_indices("Declaration::") {
            let call = &text[at..];
            let Some(open) = call.find('(') else { continue };
            let constructor = &call["Declaration::".len()..open];
            if !["read", "operate", "admin"].contains(&constructor) {
                continue;
            }
            let arguments = &call[open + 1..];
            if let Some(name) = arguments.split('"').nth(1) {
                declared.insert(name.to_string(), file.clone());
            }
        }
    }
    declared
}

#[test]
fn every_tool_is_found_from_its_name_in_one_step() {
    let declared = declaring_files();
    let mut broken = Vec::new();
    for (name, _) in every_tool() {
        let Some(file) = declared.get(name) else {
            broken.push(format!(
                "`{name}` is registered but declared nowhere under src/domains"
            ));
            continue;
        };
        let header: String = fs::read_to_string(file)
            .expect("read")
            .lines()
            .take_while(|line| line.starts_with("//!"))
            .collect::<Vec<_>>()
            .join("\n");
        if !header.contains(&format!("`{name}`")) {
            broken.push(format!(
                "{}: declares `{name}` but its //! header does not name it",
                file.display()
            ));
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

/// The README's tool table: one row per tool, in `tools/list` order, with its tier and the file
/// that holds its code. Descriptions and examples are the README's own.
#[test]
fn the_readme_lists_every_tool_with_its_tier_and_code() {
    let readme = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let rows: Vec<Vec<String>> = readme
        .lines()
        .skip_while(|line| !line.starts_with("| tool | tier | code |"))
        .skip(2)
        .take_while(|line| line.starts_with('|'))
        .map(|line| {
            line.trim_matches('|')
                .split(" | ")
                .map(|cell| cell.trim().to_string())
                .collect()
        })
        .collect();
    let declared = declaring_files();
    let expected: Vec<(String, String, String)> = every_tool()
        .into_iter()
        .map(|(name, tier)| {
            let file = declared
                .get(name)
                .and_then(|file| {
                    file.strip_prefix(Path::new(env!("CARGO_MANIFEST_DIR")))
                        .ok()
                })
                .map(|file| file.display().to_string())
                .unwrap_or_default();
            (format!("`{name}`"), tier.to_string(), format!("`{file}`"))
        })
        .collect();
    let listed: Vec<(String, String, String)> = rows
        .iter()
        .map(|row| {
            let cell = |index: usize| row.get(index).cloned().unwrap_or_default();
            (cell(0), cell(1), cell(2))
        })
        .collect();
    let mut broken = Vec::new();
    for index in 0..expected.len().max(listed.len()) {
        match (expected.get(index), listed.get(index)) {
            (Some((name, tier, file)), Some((row_name, row_tier, row_file))) => {
                if row_name != name || !row_tier.starts_with(tier.as_str()) || row_file != file {
                    broken.push(format!(
                        "row {}: expected {name} | {tier}… | {file}, the README has \
                         {row_name} | {row_tier} | {row_file}",
                        index + 1
                    ));
                }
            }
            (Some((name, tier, file)), None) => {
                broken.push(format!("missing row: | {name} | {tier} | {file} | … |"));
            }
            (None, Some((row_name, ..))) => {
                broken.push(format!("{row_name} is in the README but not registered"));
            }
            (None, None) => {}
        }
    }
    assert!(
        broken.is_empty(),
        "README.md's tool table (`| tool | tier | code | …`) is out of step with the registry:\n{}",
        broken.join("\n")
    );
}
