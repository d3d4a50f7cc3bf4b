//! Roles and the authorization decision: may this role call this tool at this tier?
//!
//! A role grants tiers (`read`, `operate`, `admin`) and may be narrowed by `allow`/`deny` globs
//! over tool names. The `admin` tier is off unless the configuration enables it, whatever the
//! role; read-only mode keeps tools above `read` from being registered at all (see the registry).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::access::{Role, Tier};
use crate::config::{BUILT_IN_ROLES, Config};
use crate::tool::Declaration;

/// Why a call was refused. The text names the missing permission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    TierNotGranted {
        tool: String,
        tier: Tier,
        role: String,
        granted: String,
        reason: Option<String>,
    },
    AdminTierDisabled {
        tool: String,
        reason: Option<String>,
    },
    NotAllowed {
        tool: String,
        role: String,
    },
    Denied {
        tool: String,
        role: String,
        pattern: String,
    },
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let because = |reason: &Option<String>| {
            reason
                .as_ref()
                .map(|reason| format!(" ({reason})"))
                .unwrap_or_default()
        };
        match self {
            Denial::TierNotGranted {
                tool,
                tier,
                role,
                granted,
                reason,
            } => write!(
                f,
                "permission denied: {tool} needs the `{tier}` tier{}; role `{role}` grants: {granted}. \
                 Nothing was done.",
                because(reason)
            ),
            Denial::AdminTierDisabled { tool, reason } => write!(
                f,
                "permission denied: {tool} needs the `admin` tier{}, which this server's config \
                 disables (security.admin_tier = false). Nothing was done.",
                because(reason)
            ),
            Denial::NotAllowed { tool, role } => write!(
                f,
                "permission denied: role `{role}` is limited to the tools its `allow` list names, \
                 and {tool} is not one of them. Nothing was done."
            ),
            Denial::Denied {
                tool,
                role,
                pattern,
            } => write!(
                f,
                "permission denied: role `{role}` denies {tool} (deny pattern `{pattern}`). \
                 Nothing was done."
            ),
        }
    }
}

/// Every role of this configuration, and the switches that apply to all of them.
#[derive(Debug)]
pub struct Policy {
    roles: BTreeMap<String, Arc<Role>>,
    local_role: Arc<Role>,
    admin_tier: bool,
}

impl Policy {
    /// Builds the policy of a validated configuration.
    pub fn from_config(config: &Config) -> Self {
        let mut roles = BTreeMap::new();
        for (name, tiers) in BUILT_IN_ROLES {
            roles.insert(name.to_string(), Arc::new(Role::new(name, tiers, &[], &[])));
        }
        for (name, role) in &config.roles {
            let allow: Vec<_> = role.allow.iter().map(|p| p.glob.clone()).collect();
            let deny: Vec<_> = role
                .deny
                .iter()
                .map(|p| (p.text.clone(), p.glob.clone()))
                .collect();
            roles.insert(
                name.clone(),
                Arc::new(Role::new(name, &role.tiers, &allow, &deny)),
            );
        }
        // `Config::validate` guarantees the local role exists.
        let local_role = roles
            .get(&config.security.local_role)
            .cloned()
            .unwrap_or_else(|| Arc::new(Role::new("viewer", &[Tier::Read], &[], &[])));
        Self {
            roles,
            local_role,
            admin_tier: config.security.admin_tier,
        }
    }

    pub fn role(&self, name: &str) -> Option<Arc<Role>> {
        self.roles.get(name).cloned()
    }

    /// The role of local OS users (stdio, unix-socket peers).
    pub fn local_role(&self) -> Arc<Role> {
        Arc::clone(&self.local_role)
    }

    /// Whether `role` may call `tool` at `tier` (its declared tier, or the higher tier its
    /// arguments require, with `reason` saying which argument).
    pub fn authorize(
        &self,
        role: &Role,
        tool: &Declaration,
        tier: Tier,
        reason: Option<String>,
    ) -> Result<(), Denial> {
        let name = tool.name.to_string();
        if tier == Tier::Admin && !self.admin_tier {
            return Err(Denial::AdminTierDisabled { tool: name, reason });
        }
        if !role.grants(tier) {
            return Err(Denial::TierNotGranted {
                tool: name,
                tier,
                role: role.name.clone(),
                granted: role.tier_list(),
                reason,
            });
        }
        if !role.allows(tool.name) {
            return Err(Denial::NotAllowed {
                tool: name,
                role: role.name.clone(),
            });
        }
        if let Some(pattern) = role.denying_pattern(tool.name) {
            return Err(Denial::Denied {
                tool: name,
                role: role.name.clone(),
                pattern: pattern.to_string(),
            });
        }
        Ok(())
    }

    /// Whether `tools/list` shows `tool` to `role`: it may call it at its declared tier.
    pub fn lists(&self, role: &Role, tool: &Declaration) -> bool {
        self.authorize(role, tool, tool.tier, None).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tool::Domain;

    fn declaration(name: &'static str, tier: Tier) -> Declaration {
        match tier {
            Tier::Read => Declaration::read(Domain::System, name, "t", "d"),
            Tier::Operate => Declaration::operate(Domain::System, name, "t", "d"),
            Tier::Admin => Declaration::admin(Domain::System, name, "t", "d"),
        }
    }

    fn policy(text: &str) -> Policy {
        Policy::from_config(&crate::config::parse(text, "test").expect("valid config"))
    }

    #[test]
    fn built_in_roles_grant_their_tiers() {
        let policy = policy("[security]\nadmin_tier = true\n");
        let read = declaration("system_overview", Tier::Read);
        let operate = declaration("process_signal", Tier::Operate);
        let admin = declaration("docker_prune", Tier::Admin);
        let viewer = policy.role("viewer").expect("viewer");
        let operator = policy.role("operator").expect("operator");
        let administrator = policy.role("admin").expect("admin");
        assert!(policy.authorize(&viewer, &read, Tier::Read, None).is_ok());
        let denial = policy
            .authorize(&viewer, &operate, Tier::Operate, None)
            .expect_err("viewer cannot operate");
        assert_eq!(
            denial.to_string(),
            "permission denied: process_signal needs the `operate` tier; role `viewer` grants: \
             read. Nothing was done."
        );
        assert!(
            policy
                .authorize(&operator, &operate, Tier::Operate, None)
                .is_ok()
        );
        assert!(
            policy
                .authorize(&operator, &admin, Tier::Admin, None)
                .is_err()
        );
        assert!(
            policy
                .authorize(&administrator, &admin, Tier::Admin, None)
                .is_ok()
        );
    }

    #[test]
    fn the_admin_tier_is_off_unless_enabled() {
        let policy = policy("");
        let admin = declaration("docker_prune", Tier::Admin);
        let administrator = policy.role("admin").expect("admin");
        let denial = policy
            .authorize(
                &administrator,
                &admin,
                Tier::Admin,
                Some("signal KILL".into()),
            )
            .expect_err("admin tier disabled");
        assert!(matches!(denial, Denial::AdminTierDisabled { .. }));
        assert!(denial.to_string().contains("(signal KILL)"), "{denial}");
    }

    #[test]
    fn custom_roles_narrow_by_allow_and_deny() {
        let policy = policy(
            "[roles.auditor]\ntiers = [\"read\"]\nallow = [\"system_*\", \"process_*\"]\ndeny = [\"process_get\"]\n",
        );
        let auditor = policy.role("auditor").expect("auditor");
        let overview = declaration("system_overview", Tier::Read);
        let list = declaration("process_list", Tier::Read);
        let get = declaration("process_get", Tier::Read);
        let files = declaration("files_read", Tier::Read);
        assert!(policy.lists(&auditor, &overview));
        assert!(policy.lists(&auditor, &list));
        assert_eq!(
            policy.authorize(&auditor, &get, Tier::Read, None),
            Err(Denial::Denied {
                tool: "process_get".into(),
                role: "auditor".into(),
                pattern: "process_get".into()
            })
        );
        assert!(matches!(
            policy.authorize(&auditor, &files, Tier::Read, None),
            Err(Denial::NotAllowed { .. })
        ));
    }

    #[test]
    fn the_local_role_comes_from_the_config() {
        assert_eq!(policy("").local_role().name, "operator");
        assert_eq!(
            policy("[security]\nlocal_role = \"viewer\"\n")
                .local_role()
                .name,
            "viewer"
        );
    }
}
