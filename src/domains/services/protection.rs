//! Protected units (`services.protected_units`): no role may stop, restart, reload, mask or
//! disable them, whatever its tier; the refusal names the pattern. Reading them always works.

use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::render;
use crate::tool::ToolError;

pub(crate) struct Protection {
    patterns: Vec<String>,
    set: GlobSet,
}

impl Protection {
    /// The configuration's patterns; `Config::validate` has compiled each once already.
    pub(crate) fn new(patterns: &[String]) -> Self {
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
        }
    }

    /// Refuses `action` on a protected unit.
    pub(crate) fn check(&self, unit: &str, action: &str) -> Result<(), ToolError> {
        match self.set.matches(unit).first() {
            Some(index) => Err(ToolError::invalid_arguments(format!(
                "{} is protected (services.protected_units pattern `{}`): no role may {action} \
                 it. Nothing was done.",
                render::text(unit),
                self.patterns[*index]
            ))),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protected_units_are_refused_with_their_pattern() {
        let protection = Protection::new(&["systemd-*".into(), "ssh.service".into()]);
        let refused = protection
            .check("systemd-journald.service", "stop")
            .expect_err("protected");
        assert!(
            refused.message.contains("pattern `systemd-*`"),
            "{}",
            refused.message
        );
        assert!(protection.check("ssh.service", "restart").is_err());
        assert!(protection.check("nginx.service", "stop").is_ok());
    }
}
