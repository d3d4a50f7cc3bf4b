//! The patterns `http.allowed_hosts` and `http.allowed_origins` are written in, parsed when the
//! configuration is read; the HTTP transport's guard matches requests against them.

use std::fmt;
use std::str::FromStr;

use axum::http::{Uri, uri::Authority};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One entry of `http.allowed_hosts`: a host name or address, optionally with a port.
/// Without a port it matches any port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    host: String,
    port: Option<u16>,
}

/// One entry of `http.allowed_origins`: `scheme://host[:port]`, where the port may be `*`.
/// Without a port only the scheme's default port matches (RFC 6454).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginPattern {
    scheme: String,
    host: String,
    port: PortRule,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PortRule {
    Any,
    Exact(u16),
}

/// A host as patterns compare it: without IPv6 brackets, lower case.
pub fn normalize_host(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase()
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

impl FromStr for HostPattern {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        // A bare IPv6 address (`::1`) is not an authority until bracketed.
        if let Ok(address) = text.trim().parse::<std::net::Ipv6Addr>() {
            return Ok(Self {
                host: address.to_string(),
                port: None,
            });
        }
        let authority = Authority::from_str(text.trim())
            .map_err(|_| format!("`{text}` is not a host name, address or host:port"))?;
        Ok(Self {
            host: normalize_host(authority.host()),
            port: authority.port_u16(),
        })
    }
}

impl HostPattern {
    pub fn matches(&self, host: &str, port: Option<u16>) -> bool {
        self.host == host && self.port.is_none_or(|allowed| Some(allowed) == port)
    }
}

/// A host as it is written in an authority: IPv6 addresses in brackets.
fn bracketed(host: &str) -> std::borrow::Cow<'_, str> {
    if host.contains(':') {
        format!("[{host}]").into()
    } else {
        host.into()
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = bracketed(&self.host);
        match self.port {
            Some(port) => write!(f, "{host}:{port}"),
            None => f.write_str(&host),
        }
    }
}

impl FromStr for OriginPattern {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let invalid = || format!("`{text}` is not an origin like `https://app.example.com:8443`");
        let (base, any_port) = match text.strip_suffix(":*") {
            Some(base) => (base, true),
            None => (text, false),
        };
        let uri = Uri::from_str(base).map_err(|_| invalid())?;
        let scheme = uri.scheme_str().ok_or_else(invalid)?.to_ascii_lowercase();
        let authority = uri.authority().ok_or_else(invalid)?;
        if uri.path() != "/" && !uri.path().is_empty() {
            return Err(format!(
                "`{text}` has a path; an origin is only scheme://host[:port]"
            ));
        }
        let port = match (any_port, authority.port_u16()) {
            (true, None) => PortRule::Any,
            (true, Some(_)) => return Err(invalid()),
            (false, Some(port)) => PortRule::Exact(port),
            (false, None) => PortRule::Exact(default_port(&scheme).ok_or_else(|| {
                format!("`{text}` needs an explicit port (or `:*`) for scheme `{scheme}`")
            })?),
        };
        Ok(Self {
            scheme,
            host: normalize_host(authority.host()),
            port,
        })
    }
}

impl OriginPattern {
    pub fn matches(&self, origin: &Uri) -> bool {
        let (Some(scheme), Some(authority)) = (origin.scheme_str(), origin.authority()) else {
            return false;
        };
        let scheme = scheme.to_ascii_lowercase();
        let port = authority.port_u16().or_else(|| default_port(&scheme));
        scheme == self.scheme
            && normalize_host(authority.host()) == self.host
            && match self.port {
                PortRule::Any => true,
                PortRule::Exact(allowed) => port == Some(allowed),
            }
    }
}

impl fmt::Display for OriginPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = bracketed(&self.host);
        match self.port {
            PortRule::Any => write!(f, "{}://{host}:*", self.scheme),
            PortRule::Exact(port) => write!(f, "{}://{host}:{port}", self.scheme),
        }
    }
}

macro_rules! serde_via_str {
    ($type:ty) => {
        impl Serialize for $type {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $type {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
serde_via_str!(HostPattern);
serde_via_str!(OriginPattern);
