//! Tiers: how much a tool can change. Roles grant them; each tool declares one.

use std::fmt;

use serde::{Deserialize, Serialize};

/// How much a tool can change. Roles grant tiers; read-only mode registers only `read`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// Looks, changes nothing.
    Read,
    /// A reversible change: start, stop, restart, SIGTERM.
    Operate,
    /// Destructive or powerful: remove, prune, SIGKILL, exec, pull, create.
    Admin,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Read => "read",
            Tier::Operate => "operate",
            Tier::Admin => "admin",
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
