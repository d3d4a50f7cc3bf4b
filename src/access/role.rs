//! A role: the tiers it grants, narrowed by `allow`/`deny` globs over tool names.

use globset::{GlobSet, GlobSetBuilder};

use super::Tier;

/// A role, resolved from the configuration.
#[derive(Debug)]
pub struct Role {
    pub name: String,
    tiers: Vec<Tier>,
    /// When present, only tools matching it.
    allow: Option<GlobSet>,
    deny: GlobSet,
    deny_patterns: Vec<String>,
}

impl Role {
    pub fn new(
        name: &str,
        tiers: &[Tier],
        allow: &[globset::Glob],
        deny: &[(String, globset::Glob)],
    ) -> Self {
        let build = |globs: &mut dyn Iterator<Item = &globset::Glob>| {
            let mut builder = GlobSetBuilder::new();
            for glob in globs {
                builder.add(glob.clone());
            }
            // Every glob was compiled when the config was read; a set of valid globs builds.
            builder.build().unwrap_or_else(|_| GlobSet::empty())
        };
        Self {
            name: name.to_string(),
            tiers: tiers.to_vec(),
            allow: (!allow.is_empty()).then(|| build(&mut allow.iter())),
            deny: build(&mut deny.iter().map(|(_, glob)| glob)),
            deny_patterns: deny.iter().map(|(text, _)| text.clone()).collect(),
        }
    }

    /// Whether the role's `allow` list (when it has one) names `tool`.
    pub fn allows(&self, tool: &str) -> bool {
        self.allow.as_ref().is_none_or(|allow| allow.is_match(tool))
    }

    /// The first of the role's `deny` patterns that matches `tool`.
    pub fn denying_pattern(&self, tool: &str) -> Option<&str> {
        let index = *self.deny.matches(tool).first()?;
        Some(&self.deny_patterns[index])
    }

    pub fn grants(&self, tier: Tier) -> bool {
        self.tiers.contains(&tier)
    }

    /// The highest tier the role grants, to rank roles ("highest role wins").
    pub fn rank(&self) -> (Tier, usize) {
        (
            self.tiers.iter().copied().max().unwrap_or(Tier::Read),
            self.tiers.len(),
        )
    }

    pub fn tier_list(&self) -> String {
        self.tiers
            .iter()
            .map(|tier| tier.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}
