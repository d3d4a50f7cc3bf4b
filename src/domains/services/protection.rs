//! Protected units (`services.protected_units`, and this server's own unit): no role may stop,
//! restart, reload, mask or disable them, whatever its tier, under any of their names (an alias
//! such as `dbus-org.freedesktop.login1.service` is the unit it names), nor through another
//! unit whose stop spreads to them (stopping `sysinit.target` stops every unit that requires
//! it). No role may start a unit that stops or suspends the host (`poweroff.target`,
//! `rescue.target`, …) or one that conflicts with a protected unit. The refusal names the rule.
//! Reading them always works.

use std::collections::{HashSet, VecDeque};

use globset::{Glob, GlobSet, GlobSetBuilder};

use super::bus::UNIT_INTERFACE;
use super::status::Units;
use crate::render;
use crate::tool::ToolError;

/// Units whose start stops, reboots, suspends or isolates the host: what `systemctl poweroff`,
/// `reboot`, `rescue`, `suspend`… start. An operator's start is a reversible change; these are
/// not.
const HOST_STATE_UNITS: [&str; 28] = [
    "poweroff.target",
    "reboot.target",
    "halt.target",
    "kexec.target",
    "soft-reboot.target",
    "shutdown.target",
    "final.target",
    "exit.target",
    "ctrl-alt-del.target",
    "rescue.target",
    "emergency.target",
    "sleep.target",
    "suspend.target",
    "hibernate.target",
    "hybrid-sleep.target",
    "suspend-then-hibernate.target",
    "rescue.service",
    "emergency.service",
    "systemd-poweroff.service",
    "systemd-reboot.service",
    "systemd-halt.service",
    "systemd-kexec.service",
    "systemd-soft-reboot.service",
    "systemd-exit.service",
    "systemd-suspend.service",
    "systemd-hibernate.service",
    "systemd-hybrid-sleep.service",
    "systemd-suspend-then-hibernate.service",
];

/// How many dependent units a stop's spread is followed to.
const MAX_SPREAD: usize = 2000;

/// What a tool is about to do to a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    Start,
    Stop,
    Restart,
    Reload,
    Disable,
    Mask,
}

impl Action {
    fn verb(self) -> &'static str {
        match self {
            Action::Start => "start",
            Action::Stop => "stop",
            Action::Restart => "restart",
            Action::Reload => "reload",
            Action::Disable => "disable",
            Action::Mask => "mask",
        }
    }
}

pub(crate) struct Protection {
    patterns: Vec<String>,
    set: GlobSet,
    /// The unit this server runs in, found from its own cgroup.
    own_unit: Option<String>,
}

impl Protection {
    /// The configuration's patterns (`Config::validate` has compiled each once already) and
    /// the server's own unit.
    pub(crate) fn new(patterns: &[String], own_unit: Option<String>) -> Self {
        let mut builder = GlobSetBuilder::new();
        let mut kept = Vec::new();
        for pattern in patterns {
            if let Ok(glob) = Glob::new(pattern) {
                builder.add(glob);
                kept.push(pattern.clone());
            }
        }
        Self {
            patterns: kept,
            set: builder.build().unwrap_or_else(|_| GlobSet::empty()),
            own_unit,
        }
    }

    /// The rule that protects a unit of this name, if one does.
    fn rule(&self, name: &str) -> Option<String> {
        if self.own_unit.as_deref() == Some(name) {
            return Some("it is this server's own unit".into());
        }
        self.set.matches(name).first().map(|index| {
            format!(
                "services.protected_units pattern `{}`",
                self.patterns[*index]
            )
        })
    }

    /// Refuses `action` on `unit` when it would touch a protected unit, by any of its names or
    /// through units its stop spreads to; and a start that would stop or suspend the host.
    pub(crate) async fn check(
        &self,
        units: &Units,
        unit: &str,
        action: Action,
    ) -> Result<(), ToolError> {
        let refuse =
            |what: String| ToolError::invalid_arguments(format!("{what}. Nothing was done."));
        if action != Action::Start
            && let Some(rule) = self.rule(unit)
        {
            return Err(refuse(format!(
                "{} is protected ({rule}): no role may {} it",
                render::text(unit),
                action.verb()
            )));
        }
        let systemd = &units.systemd;
        let path = match units.path(unit).await {
            Ok(path) => path,
            // A unit file that does not exist can still be masked (or is already disabled):
            // its name alone was checked above.
            Err(error)
                if error.kind == crate::tool::ToolErrorKind::NotFound
                    && matches!(action, Action::Disable | Action::Mask) =>
            {
                return Ok(());
            }
            Err(error) => return Err(error),
        };
        let properties = systemd.properties(&path, UNIT_INTERFACE).await?;
        let id = properties
            .some_text("Id")
            .unwrap_or_else(|| unit.to_string());
        let mut names = properties.list("Names");
        names.push(id.clone());
        names.push(unit.to_string());
        if action == Action::Start || action == Action::Restart {
            if let Some(name) = names
                .iter()
                .find(|name| HOST_STATE_UNITS.contains(&name.as_str()))
            {
                return Err(refuse(format!(
                    "no role may {} {}: it stops, reboots, suspends or isolates the host",
                    action.verb(),
                    render::text(name)
                )));
            }
            for conflict in properties.list("Conflicts") {
                if let Some(rule) = self.rule(&conflict) {
                    return Err(refuse(format!(
                        "no role may {} {}: it conflicts with {}, which is protected ({rule}), \
                         and starting it would stop that",
                        action.verb(),
                        render::text(&id),
                        render::text(&conflict)
                    )));
                }
            }
        }
        if action == Action::Start {
            return Ok(());
        }
        for name in &names {
            if let Some(rule) = self.rule(name) {
                let named = if *name == id {
                    render::text(&id).into_owned()
                } else {
                    format!("{} (the unit {})", render::text(name), render::text(&id))
                };
                return Err(refuse(format!(
                    "{named} is protected ({rule}): no role may {} it",
                    action.verb()
                )));
            }
        }
        if matches!(action, Action::Stop | Action::Restart) {
            // A stop (or restart) spreads to the units that require, bind to or are part of
            // this one, and on to theirs.
            // One manager for the walk: each fetch of it checks the bus is still there.
            let manager = systemd.manager().await?;
            let mut seen: HashSet<String> = HashSet::from([id.clone()]);
            let mut queue = VecDeque::from([path]);
            while let Some(path) = queue.pop_front() {
                let Ok(dependent) = systemd.properties(&path, UNIT_INTERFACE).await else {
                    continue;
                };
                for relation in ["RequiredBy", "BoundBy", "ConsistsOf"] {
                    for name in dependent.list(relation) {
                        if !seen.insert(name.clone()) || seen.len() > MAX_SPREAD {
                            continue;
                        }
                        if let Some(rule) = self.rule(&name) {
                            return Err(refuse(format!(
                                "no role may {} {}: that also stops {}, which is protected \
                                 ({rule})",
                                action.verb(),
                                render::text(&id),
                                render::text(&name)
                            )));
                        }
                        if let Ok(next) = manager.get_unit(name).await {
                            queue.push_back(next);
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// The unit this process runs in, from `/proc/self/cgroup` (`0::/system.slice/NAME.service`,
/// or the `name=systemd` line on cgroup v1); none outside a service.
pub(crate) fn own_unit() -> Option<String> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    text.lines()
        .filter(|line| line.starts_with("0::") || line.contains(":name=systemd:"))
        .find_map(|line| {
            line.rsplit('/')
                .next()
                .filter(|name| name.ends_with(".service"))
                .map(str::to_string)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protected_units_are_named_with_their_rule() {
        let protection = Protection::new(
            &["systemd-*".into(), "ssh.service".into()],
            Some("sm-mcp.service".into()),
        );
        assert_eq!(
            protection.rule("systemd-journald.service").as_deref(),
            Some("services.protected_units pattern `systemd-*`")
        );
        assert!(protection.rule("ssh.service").is_some());
        assert_eq!(
            protection.rule("sm-mcp.service").as_deref(),
            Some("it is this server's own unit")
        );
        assert!(protection.rule("nginx.service").is_none());
    }
}
