//! Who is calling and what they may do: the vocabulary every layer shares, importing none.
//!
//! Transports resolve a [`Caller`] (with the help of [`crate::auth`]) and hand it to the gate;
//! the gate never looks at headers, sockets or credentials itself. A caller's [`Role`] grants
//! [`Tier`]s; the gate's authorization decides with them.

mod role;
mod tier;

use std::fmt;
use std::sync::Arc;

pub use role::Role;
pub use tier::Tier;

/// The transport a call arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    Stdio,
    Http,
    UnixSocket,
}

impl TransportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TransportKind::Stdio => "stdio",
            TransportKind::Http => "http",
            TransportKind::UnixSocket => "unix",
        }
    }
}

/// The authenticated principal behind a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// A local OS user: whoever started a stdio server, or the peer of a unix-socket connection
    /// (from `SO_PEERCRED`, which the kernel vouches for).
    LocalUser { uid: u32, name: String },
    /// The holder of a bearer token, by the token's name.
    Token { name: String },
    /// The holder of a client certificate the client CA signed, by its subject's common name.
    Certificate { subject: String },
    /// A tailnet user on one of their devices, as tailscaled identified them.
    Tailnet { login: String, node: String },
}

impl Identity {
    /// The local user with this uid, named from the user database when it has an entry.
    pub fn local_user(uid: u32) -> Self {
        let name = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
            .ok()
            .flatten()
            .map_or_else(|| format!("uid{uid}"), |user| user.name);
        Identity::LocalUser { uid, name }
    }

    /// The user running this process.
    pub fn current_user() -> Self {
        Self::local_user(rustix::process::getuid().as_raw())
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identity::LocalUser { name, .. } => write!(f, "user:{name}"),
            Identity::Token { name } => write!(f, "token:{name}"),
            Identity::Certificate { subject } => write!(f, "cert:{subject}"),
            Identity::Tailnet { login, node } => write!(f, "tailscale:{login}/{node}"),
        }
    }
}

/// Everything the gate knows about who made a call and how.
#[derive(Debug, Clone)]
pub struct Caller {
    pub identity: Identity,
    /// What the identity may do.
    pub role: Arc<Role>,
    pub transport: TransportKind,
    /// The peer: a socket address, or `pid N` for a unix-socket peer; none for stdio.
    pub remote: Option<String>,
}

impl Caller {
    /// The caller of a stdio server: the user who started it, with the local role.
    pub fn stdio(role: Arc<Role>) -> Self {
        Self {
            identity: Identity::current_user(),
            role,
            transport: TransportKind::Stdio,
            remote: None,
        }
    }
}
