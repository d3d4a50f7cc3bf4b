//! The create policy: what a container created or started through this server may ask of the
//! host.
//!
//! Every decision is made on the value as the engine will read it, never on the text a caller
//! wrote: a capability in the engine's spelling (`net_admin`, `CAP_NET_ADMIN` and `Net_Admin`
//! are one capability to it, and `all` is every one), a bind source as the kernel resolves it
//! (every symlink and `..` followed: the engine's mount follows them too), a network after the
//! engine resolved its name or id prefix (`admission.rs`), a volume by what backs it rather than
//! by its name. The canonical values are what the create body carries, so the engine is given
//! exactly what was decided on. A refusal changes nothing and names the setting that would
//! allow it. What the create arguments cannot express (devices, security options, the host's
//! IPC, UTS or user namespace) cannot be asked for at all; `admission.rs` refuses to start a
//! container that has them.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use crate::config::DockerPolicy;
use crate::tool::ToolError;

/// What a container asks of the host, in the policy's terms, as the engine will read it.
#[derive(Debug, Default)]
pub(crate) struct Request<'a> {
    pub privileged: bool,
    /// Shares the host's PID namespace.
    pub host_pid: bool,
    /// Joins the host's network: the `host` mode, or a network whose driver is `host`.
    pub host_network: bool,
    /// Added capabilities in any spelling the engine accepts.
    pub capabilities: &'a [String],
    /// Bind mounts: host paths as given (create) or as the engine stored them (start).
    pub binds: Vec<Bind<'a>>,
    /// Named volumes, each with what backs it.
    pub volumes: Vec<(&'a str, VolumeBacking)>,
    /// The host paths behind every writable mount (bind or volume) of every container on the
    /// engine, running or not: a container's root can rename what is inside them.
    pub writable_mounts: Vec<String>,
}

/// A bind mount's host path, and whether the container may write to it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bind<'a> {
    pub source: &'a str,
    pub writable: bool,
}

/// A request's values in the canonical form the engine is given, in the request's order.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Admitted {
    /// `CAP_NET_ADMIN`, or `ALL` for every capability.
    pub capabilities: Vec<String>,
    /// Real paths: absolute, without symlinks, `.` or `..` (as far as they exist).
    pub bind_sources: Vec<String>,
}

/// What holds a volume's data, from its driver and the options it was created with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum VolumeBacking {
    /// A directory of the engine's own (the `local` driver without options).
    Engine,
    /// Memory: a `local` volume of type `tmpfs` that binds nothing.
    Memory,
    /// A host path: a `local` volume whose mount options include `bind` or `rbind` (the kernel
    /// then ignores the type, so `type=tmpfs,o=bind` binds too). The path is its `device`.
    /// Its options say nothing sure about what it shows: the local driver mounts the volume
    /// once, resolving `device` then, and keeps that mount while any container uses it, so a
    /// `device` that was a symlink out at that moment stays mounted there whatever it resolves
    /// to now. Such a volume is therefore trusted or refused (allow_external_volumes), never
    /// checked by its path.
    HostPath(String),
    /// Data the engine mounts from elsewhere: a device, a network or other filesystem (nfs,
    /// cifs, ext4 on /dev/..., overlay with host lower directories), or a plugin driver whose
    /// backing this server cannot see. The text says which.
    External(String),
}

impl VolumeBacking {
    /// What backs a volume with this driver and these options (`docker volume inspect`'s
    /// `Driver` and `Options`). The local driver takes only `type`, `o` and `device`; anything
    /// else is taken as external rather than guessed at.
    pub(crate) fn of(driver: &str, options: &HashMap<String, String>) -> Self {
        if driver != "local" {
            return Self::External(format!("the volume driver `{driver}`"));
        }
        if options.values().all(|value| value.is_empty()) {
            return Self::Engine;
        }
        if let Some(key) = options
            .keys()
            .find(|key| !matches!(key.as_str(), "type" | "o" | "device"))
        {
            return Self::External(format!("the local driver's option `{key}`"));
        }
        let option = |key: &str| options.get(key).map(String::as_str).unwrap_or_default();
        // The mount flags, as moby's mount package reads `o`: comma-separated, case-sensitive.
        if option("o")
            .split(',')
            .any(|flag| flag == "bind" || flag == "rbind")
        {
            return Self::HostPath(option("device").to_string());
        }
        match option("type") {
            "tmpfs" => Self::Memory,
            kind => Self::External(format!("a `{kind}` mount of `{}`", option("device"))),
        }
    }
}

fn refused(what: String, setting: &str) -> ToolError {
    ToolError::invalid_arguments(format!(
        "refused by the create policy: {what} (docker.policy.{setting} in the server's config)"
    ))
}

/// A refusal for what no setting allows, because the create arguments cannot ask for it.
pub(crate) fn never(what: &str) -> ToolError {
    ToolError::invalid_arguments(format!(
        "refused by the create policy: {what}; no setting allows it (docker_container_create \
         cannot ask for it)"
    ))
}

/// Checks a request, and gives its capabilities and bind sources in the form the engine is to
/// be given. Errors: the first refusal, naming its setting; a capability the engine would not
/// know; a bind source that is not an absolute path without `..` or cannot be resolved.
pub(crate) fn check(policy: &DockerPolicy, request: &Request<'_>) -> Result<Admitted, ToolError> {
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
    let allowed: Vec<String> = policy
        .allowed_capabilities
        .iter()
        .filter_map(|name| canonical_capability(name))
        .collect();
    let every_one_allowed = allowed.iter().any(|name| name == "ALL");
    let mut capabilities = Vec::new();
    for given in request.capabilities {
        let Some(name) = canonical_capability(given) else {
            return Err(ToolError::invalid_arguments(format!(
                "`{given}` is not a capability Docker knows: give a name such as NET_ADMIN or \
                 CAP_NET_ADMIN"
            )));
        };
        if !every_one_allowed && !allowed.contains(&name) {
            let what = match name.strip_prefix("CAP_") {
                Some(bare) => format!("adding the capability {bare} is not allowed"),
                None => format!("adding every capability ({given}) is not allowed"),
            };
            return Err(refused(what, "allowed_capabilities"));
        }
        capabilities.push(name);
    }
    let mut bind_sources = Vec::new();
    for bind in &request.binds {
        bind_sources.push(check_bind_source(policy, bind.source)?);
    }
    for (name, backing) in &request.volumes {
        match backing {
            VolumeBacking::Engine | VolumeBacking::Memory => {}
            VolumeBacking::HostPath(device) if !policy.allow_external_volumes => {
                return Err(refused(
                    format!(
                        "volume `{name}` binds the host path `{device}`, which cannot be checked: \
                         the engine keeps it mounted where `{device}` led when it was first \
                         mounted; give a bind mount of the directory instead, which the policy \
                         checks and pins"
                    ),
                    "allow_external_volumes",
                ));
            }
            VolumeBacking::HostPath(_) => {}
            VolumeBacking::External(what) if !policy.allow_external_volumes => {
                return Err(refused(
                    format!("volume `{name}` is backed by {what}, not by the engine's own storage"),
                    "allow_external_volumes",
                ));
            }
            VolumeBacking::External(_) => {}
        }
    }
    // Pinned: no one but root can change what a bind source's path leads to. The directories
    // in the request's own writable binds count too (one writable bind of a root and another
    // of a directory in it let the container swap the second while the engine mounts it).
    let mut writable: HashMap<(u64, u64), String> = HashMap::new();
    let own = request
        .binds
        .iter()
        .zip(&bind_sources)
        .filter(|(bind, _)| bind.writable)
        .map(|(_, real)| real);
    for path in request.writable_mounts.iter().chain(own) {
        if let Ok(meta) = std::fs::metadata(path) {
            writable
                .entry((meta.dev(), meta.ino()))
                .or_insert(path.clone());
        }
    }
    for (bind, real) in request.binds.iter().zip(&bind_sources) {
        pinned(bind.source, Path::new(real), &writable)?;
        if bind.writable {
            closed_to_others(bind.source, Path::new(real))?;
        }
    }
    Ok(Admitted {
        capabilities,
        bind_sources,
    })
}

/// Whether the path to a bind source is pinned: each directory from `/` to the source's
/// parent is a directory that only root can change, so no one else can rename the source or
/// any directory above it (a swap for a symlink between this check and the engine's mount is
/// a race a re-check cannot win; a path no one but root can change leaves no race to win).
/// A directory is refused when it
///
/// - belongs to someone other than root (its owner can chmod it and rename in it);
/// - has the group or other write bit (POSIX ACLs show in the group bits as their mask), unless
///   it is sticky and the entry the path takes in it exists and is root's: in a sticky
///   directory only the entry's owner, the directory's owner and root may rename or remove the
///   entry, while a missing one anyone may create (as a symlink);
/// - is, or is inside, a writable mount of any container (`writable`, by device and inode, so
///   another path to the same directory is the same): the container's root can rename in it
///   whatever the host's permissions say.
///
/// `real` is resolved, so every component is a directory; one that is not now changed since.
/// A missing tail is created by the engine as root; its first component's parent is checked.
fn pinned(
    written: &str,
    real: &Path,
    writable: &HashMap<(u64, u64), String>,
) -> Result<(), ToolError> {
    let refuse = |why: String| {
        refused(
            format!(
                "bind mount of `{written}` could be swapped for a symlink while the engine mounts \
                 it: {why}"
            ),
            "bind_mount_roots",
        )
    };
    let mut dir = PathBuf::from("/");
    for component in real.components() {
        let Component::Normal(name) = component else {
            continue;
        };
        let shown = dir.display().to_string();
        let meta = std::fs::symlink_metadata(&dir).map_err(|error| {
            ToolError::invalid_arguments(format!(
                "bind mount of `{written}`: `{shown}` cannot be read: {error}"
            ))
        })?;
        if !meta.is_dir() {
            return Err(refuse(format!("`{shown}` is no longer a directory")));
        }
        if let Some(mount) = writable.get(&(meta.dev(), meta.ino())) {
            return Err(refuse(format!(
                "`{shown}` is in the writable mount `{mount}` of a container, whose root can \
                 rename what is there"
            )));
        }
        if meta.uid() != 0 {
            return Err(refuse(format!(
                "`{shown}` belongs to uid {}, not root",
                meta.uid()
            )));
        }
        let next = dir.join(name);
        let entry = std::fs::symlink_metadata(&next);
        let mode = meta.mode() & 0o7777;
        if mode & 0o022 != 0 {
            let sticky = mode & 0o1000 != 0;
            if !sticky || !entry.as_ref().is_ok_and(|entry| entry.uid() == 0) {
                return Err(refuse(format!(
                    "`{shown}` (mode {mode:04o}) can be written by users other than root{}",
                    if sticky {
                        format!(", and `{}` in it is not root's", name.to_string_lossy())
                    } else {
                        String::new()
                    }
                )));
            }
        }
        if entry.is_err() {
            break;
        }
        dir = next;
    }
    Ok(())
}

/// A writable bind lets the container's root leave a setuid-root file on the host (a bind has
/// no `nosuid`, and the Engine API offers none), which any host user who can reach it runs as
/// root. So some directory above the source (not the source itself: the container can chmod
/// that) must be root's and closed to everyone else (no group or other search bit), so that
/// no one but root reaches what the container writes.
fn closed_to_others(written: &str, real: &Path) -> Result<(), ToolError> {
    let closed = real.ancestors().skip(1).any(|dir| {
        std::fs::symlink_metadata(dir)
            .is_ok_and(|meta| meta.is_dir() && meta.uid() == 0 && meta.mode() & 0o011 == 0)
    });
    if closed {
        return Ok(());
    }
    Err(refused(
        format!(
            "writable bind mount of `{written}`: the container's root can leave setuid-root files \
             there, and no directory above it is closed to users other than root (owned by \
             root, mode 0700), so they could run them; mount it read_only, or keep bind mount \
             roots below such a directory"
        ),
        "bind_mount_roots",
    ))
}

/// The Linux capabilities, without `CAP_` (capability.h, 0 to 40). An engine older than the
/// newest ones refuses those itself.
const CAPABILITIES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// A capability as the engine reads it: case-insensitive, `CAP_` optional, `all` meaning every
/// one (moby's `NormalizeLegacyCapabilities`). Gives `CAP_NET_ADMIN` or `ALL`; `None` for a
/// name the engine would not know (`CAP_ALL`, a space, `CAP_CAP_...`).
pub(crate) fn canonical_capability(name: &str) -> Option<String> {
    let lower = name.to_ascii_lowercase();
    if lower == "all" {
        return Some("ALL".into());
    }
    let bare = lower
        .strip_prefix("cap_")
        .unwrap_or(&lower)
        .to_ascii_uppercase();
    CAPABILITIES
        .contains(&bare.as_str())
        .then(|| format!("CAP_{bare}"))
}

/// Where a bind source really is: it must lie inside a bind mount root once both are resolved
/// as the kernel resolves them now. Gives the resolved path, which is what the engine is to be
/// given. Errors: not absolute or with `..` (refused as written, whatever it resolves to); not
/// resolvable (a dangling symlink, a loop, no permission); outside every root.
fn check_bind_source(policy: &DockerPolicy, written: &str) -> Result<String, ToolError> {
    let described = format!("bind mount of `{written}`");
    let path = Path::new(written);
    if !path.is_absolute() || path.components().any(|part| part == Component::ParentDir) {
        return Err(ToolError::invalid_arguments(format!(
            "bind mount source `{written}` must be an absolute host path without `..`"
        )));
    }
    let real = resolve(path).map_err(|error| {
        ToolError::invalid_arguments(format!(
            "{described} cannot be resolved on the host: {error}"
        ))
    })?;
    let inside = policy
        .bind_mount_roots
        .iter()
        .filter_map(|root| resolve(&root.0).ok())
        .any(|root| real.starts_with(root));
    if inside {
        return real.into_os_string().into_string().map_err(|real| {
            ToolError::invalid_arguments(format!(
                "{described} resolves to `{}`, which is not UTF-8",
                real.to_string_lossy()
            ))
        });
    }
    let listed = if policy.bind_mount_roots.is_empty() {
        "none are configured".to_string()
    } else {
        policy
            .bind_mount_roots
            .iter()
            .map(|root| root.0.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    // `//a/./b/` and `/a/b` are one path; only a real difference is worth saying.
    let lexical: PathBuf = path.components().collect();
    let resolves = if lexical == real {
        String::new()
    } else {
        format!(": it resolves to `{}`", real.display())
    };
    Err(refused(
        format!("{described} is outside the allowed bind mount roots ({listed}){resolves}"),
        "bind_mount_roots",
    ))
}

/// `path` as the kernel resolves it now: the real path of its longest existing ancestor (every
/// symlink followed), then the components that do not exist yet, which hold no symlink. A
/// component that exists but does not resolve (a dangling symlink, a loop, no permission, a
/// file in the middle) is an error: the engine could not mount it either, and a dangling
/// symlink is a path that can later be made to lead anywhere.
pub(crate) fn resolve(path: &Path) -> io::Result<PathBuf> {
    // A name renamed away between the look and the resolution (another process swapping
    // directories) is looked at again, a few times, rather than reported as unresolvable.
    let mut attempts = 0;
    loop {
        match resolve_once(path) {
            Err(error) if error.kind() == io::ErrorKind::NotFound && attempts < 8 => attempts += 1,
            resolved => return resolved,
        }
    }
}

/// One attempt of [`resolve`]: the longest existing prefix, canonicalized, and the rest.
fn resolve_once(path: &Path) -> io::Result<PathBuf> {
    let mut missing: Vec<&OsStr> = Vec::new();
    let mut existing = path;
    loop {
        match std::fs::symlink_metadata(existing) {
            Ok(_) => {
                let mut real = std::fs::canonicalize(existing)?;
                real.extend(missing.iter().rev());
                return Ok(real);
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                let (Some(parent), Some(name)) = (existing.parent(), existing.file_name()) else {
                    return Err(error);
                };
                missing.push(name);
                existing = parent;
            }
            Err(error) => return Err(error),
        }
    }
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
        assert_eq!(
            check(&allowing, &cap).expect("allowed").capabilities,
            ["CAP_NET_ADMIN"]
        );
        assert!(check(&policy, &Request::default()).is_ok());
    }

    #[test]
    fn capabilities_are_decided_in_the_engines_spelling() {
        for spelling in ["net_admin", "NET_ADMIN", "CAP_NET_ADMIN", "cap_Net_Admin"] {
            assert_eq!(
                canonical_capability(spelling).as_deref(),
                Some("CAP_NET_ADMIN")
            );
        }
        for every in ["ALL", "all", "All"] {
            assert_eq!(canonical_capability(every).as_deref(), Some("ALL"));
        }
        for unknown in [
            "CAP_ALL",
            " NET_ADMIN",
            "NET_ADMIN ",
            "CAP_CAP_NET_ADMIN",
            "",
            "x",
        ] {
            assert_eq!(canonical_capability(unknown), None, "{unknown:?}");
        }
        let net_admin_only = DockerPolicy {
            allowed_capabilities: vec!["NET_ADMIN".into()],
            ..Default::default()
        };
        let ask = |names: &[&str], policy: &DockerPolicy| {
            let names: Vec<String> = names.iter().map(|name| name.to_string()).collect();
            check(
                policy,
                &Request {
                    capabilities: &names,
                    ..Default::default()
                },
            )
        };
        let refused = ask(&["all"], &net_admin_only).expect_err("ALL is not NET_ADMIN");
        assert!(refused.message.contains("adding every capability (all)"));
        assert!(
            refused
                .message
                .contains("docker.policy.allowed_capabilities")
        );
        assert!(ask(&["SYS_ADMIN"], &net_admin_only).is_err());
        assert!(ask(&["CAP_CAP_NET_ADMIN"], &net_admin_only).is_err());
        let everything = DockerPolicy {
            allowed_capabilities: vec!["all".into()],
            ..Default::default()
        };
        assert_eq!(
            ask(&["sys_admin", "All"], &everything)
                .expect("allowed")
                .capabilities,
            ["CAP_SYS_ADMIN", "ALL"]
        );
    }

    #[test]
    fn bind_sources_are_decided_and_given_as_they_resolve() {
        let directory = tempfile::tempdir().expect("tempdir");
        let root = directory.path().join("data");
        std::fs::create_dir_all(root.join("app")).expect("root");
        std::os::unix::fs::symlink("/etc", root.join("escape")).expect("symlink");
        std::os::unix::fs::symlink(root.join("app"), root.join("inward")).expect("symlink");
        std::os::unix::fs::symlink("/no/such/place", root.join("dangling")).expect("symlink");
        let policy = DockerPolicy {
            bind_mount_roots: vec![AbsolutePath(root.clone())],
            ..Default::default()
        };
        let real_root = std::fs::canonicalize(&root).expect("real root");
        let app = real_root.join("app").display().to_string();
        // Where each source leads; pinning needs root-owned directories (the test below).
        let check_one = |source: &str| check_bind_source(&policy, source).map(|real| vec![real]);
        let root_text = root.display().to_string();
        for spelling in [
            format!("{root_text}/app"),
            format!("/{root_text}/app"),
            format!("{root_text}/./app/"),
            format!("{root_text}/inward"),
        ] {
            assert_eq!(check_one(&spelling).expect(&spelling), vec![app.clone()]);
        }
        assert_eq!(
            check_one(&format!("{root_text}/new/dir")).expect("not there yet"),
            [real_root.join("new/dir").display().to_string()]
        );
        let escape = check_one(&format!("{root_text}/escape")).expect_err("a symlink out");
        assert_eq!(
            escape.message,
            format!(
                "refused by the create policy: bind mount of `{root_text}/escape` is outside \
                 the allowed bind mount roots ({root_text}): it resolves to `/etc` \
                 (docker.policy.bind_mount_roots in the server's config)"
            )
        );
        assert!(check_one(&format!("{root_text}/escape/passwd")).is_err());
        assert!(check_one(&format!("{root_text}/dangling")).is_err());
        assert!(check_one(&format!("{root_text}/../x")).is_err());
        assert!(check_one(&format!("{root_text}/app/../../x")).is_err());
        assert!(check_one("/etc").is_err());
        assert!(check_one("relative/path").is_err());
        assert!(check_one(&format!("{root_text}-sibling")).is_err());
    }

    #[test]
    fn volumes_are_judged_by_what_backs_them() {
        let options = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(key, value)| (key.to_string(), value.to_string()))
                .collect()
        };
        assert_eq!(
            VolumeBacking::of("local", &options(&[])),
            VolumeBacking::Engine
        );
        let bind = VolumeBacking::HostPath("/outside".into());
        for flags in ["bind", "rbind", "ro,bind", "rbind,ro"] {
            for kind in ["none", "tmpfs", ""] {
                let given = options(&[("type", kind), ("o", flags), ("device", "/outside")]);
                assert_eq!(VolumeBacking::of("local", &given), bind, "{kind} {flags}");
            }
        }
        let memory = options(&[("type", "tmpfs"), ("device", "tmpfs"), ("o", "size=1m")]);
        assert_eq!(VolumeBacking::of("local", &memory), VolumeBacking::Memory);
        for external in [
            options(&[
                ("type", "nfs"),
                ("o", "addr=127.0.0.1"),
                ("device", ":/srv"),
            ]),
            options(&[("type", "ext4"), ("device", "/dev/sda1")]),
            options(&[("type", "none"), ("o", "BIND"), ("device", "/outside")]),
            options(&[("type", "tmpfs"), ("size", "1m")]),
        ] {
            assert!(matches!(
                VolumeBacking::of("local", &external),
                VolumeBacking::External(_)
            ));
        }
        assert!(matches!(
            VolumeBacking::of("rexray", &options(&[])),
            VolumeBacking::External(_)
        ));

        let directory = tempfile::tempdir().expect("tempdir");
        let policy = DockerPolicy {
            bind_mount_roots: vec![AbsolutePath(directory.path().to_path_buf())],
            ..Default::default()
        };
        let ask = |backing: VolumeBacking, policy: &DockerPolicy| {
            check(
                policy,
                &Request {
                    volumes: vec![("v", backing)],
                    ..Default::default()
                },
            )
        };
        // A volume that binds a host path is refused wherever the path leads now: the engine
        // may keep it mounted where it led before.
        let inside = directory.path().display().to_string();
        for device in ["/etc".to_string(), inside, String::new()] {
            let refusal = ask(VolumeBacking::HostPath(device.clone()), &policy).expect_err("bound");
            assert!(
                refusal.message.contains(&format!(
                    "volume `v` binds the host path `{device}`, which cannot be checked"
                )),
                "{}",
                refusal.message
            );
            assert!(
                refusal
                    .message
                    .contains("give a bind mount of the directory instead")
            );
            assert!(
                refusal
                    .message
                    .ends_with("(docker.policy.allow_external_volumes in the server's config)")
            );
        }
        let nfs = VolumeBacking::External("a `nfs` mount of `:/srv`".into());
        let external = ask(nfs.clone(), &policy).expect_err("external");
        assert!(
            external
                .message
                .contains("docker.policy.allow_external_volumes")
        );
        let trusting = DockerPolicy {
            allow_external_volumes: true,
            ..policy.clone()
        };
        assert!(ask(nfs, &trusting).is_ok());
        assert!(ask(VolumeBacking::Memory, &policy).is_ok());
    }

    #[test]
    fn a_bind_source_is_pinned_only_if_no_one_but_root_can_change_its_path() {
        let nothing = HashMap::new();
        assert!(pinned("/etc/hostname", Path::new("/etc/hostname"), &nothing).is_ok());
        let directory = tempfile::tempdir().expect("tempdir");
        let base = std::fs::canonicalize(directory.path()).expect("real");
        let me = std::fs::metadata(&base).expect("mine").uid();
        let source = base.join("d/source");
        std::fs::create_dir_all(&source).expect("source");
        let shown = source.display().to_string();
        let ask = |writable: &HashMap<(u64, u64), String>| pinned(&shown, &source, writable);
        if me != 0 {
            let refusal = ask(&nothing).expect_err("not root's");
            assert!(
                refusal
                    .message
                    .contains(&format!("belongs to uid {me}, not root"))
            );
            return;
        }
        assert!(ask(&nothing).is_ok());
        let parent = base.join("d");
        let meta = std::fs::metadata(&parent).expect("parent");
        let inside_mount = HashMap::from([((meta.dev(), meta.ino()), "/elsewhere".to_string())]);
        let refusal = ask(&inside_mount).expect_err("in a writable mount");
        assert!(refusal.message.contains(&format!(
            "`{}` is in the writable mount `/elsewhere` of a container",
            parent.display()
        )));
        assert!(
            refusal
                .message
                .ends_with("(docker.policy.bind_mount_roots in the server's config)")
        );
        let mode = |bits| {
            std::fs::set_permissions(&parent, std::fs::Permissions::from_mode(bits)).expect("mode")
        };
        use std::os::unix::fs::PermissionsExt;
        mode(0o777);
        assert!(
            ask(&nothing)
                .expect_err("open")
                .message
                .contains("(mode 0777) can be written")
        );
        mode(0o775);
        assert!(ask(&nothing).is_err(), "group-writable");
        mode(0o1777);
        assert!(ask(&nothing).is_ok(), "sticky, and the source is root's");
        let missing = base.join("d/not-yet");
        let refusal = pinned("x", &missing, &nothing).expect_err("anyone may create it");
        assert!(
            refusal
                .message
                .contains("and `not-yet` in it is not root's")
        );
        mode(0o755);
        assert!(
            pinned("x", &missing, &nothing).is_ok(),
            "only root can create it"
        );
    }

    #[test]
    fn a_writable_bind_needs_a_directory_above_it_closed_to_others() {
        let refusal = closed_to_others("/usr/share", Path::new("/usr/share")).expect_err("open");
        assert!(refusal.message.contains("setuid-root files"));
        assert!(
            refusal
                .message
                .ends_with("(docker.policy.bind_mount_roots in the server's config)")
        );
        let directory = tempfile::tempdir().expect("tempdir");
        let base = std::fs::canonicalize(directory.path()).expect("real");
        let source = base.join("data/app");
        std::fs::create_dir_all(&source).expect("source");
        use std::os::unix::fs::PermissionsExt;
        let mode = |bits| {
            std::fs::set_permissions(&base, std::fs::Permissions::from_mode(bits)).expect("mode")
        };
        mode(0o755);
        assert!(closed_to_others("x", &source).is_err());
        mode(0o700);
        let closed = std::fs::metadata(&base).expect("base").uid() == 0;
        assert_eq!(
            closed_to_others("x", &source).is_ok(),
            closed,
            "root's and 0700"
        );
        assert!(
            closed_to_others("x", &base).is_err(),
            "the source itself does not count"
        );
    }
}
