//! DNS-rebinding and cross-origin protection: the `Host` allow-list and `Origin` validation.
//!
//! rmcp validates these too, but only inside its service, after our own layers have already read
//! the body. Checking here first means a foreign page gets its 403 before anything else happens
//! (authentication, body buffering), and the rules are the ones this file documents.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode, Uri, header, uri::Authority};
use axum::middleware::Next;
use axum::response::Response;

use super::peer::ConnectionPeer;
use super::reply;
use crate::audit::{AuditLog, Entry};
use crate::config::{HostPattern, OriginPattern, normalize_host};

/// What a request's `Host` and `Origin` must satisfy.
#[derive(Debug, Clone)]
pub(crate) struct OriginPolicy {
    pub allowed_hosts: Vec<HostPattern>,
    pub allowed_origins: Vec<OriginPattern>,
}

/// Why a request was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    MissingHost,
    HostNotAllowed(String),
    OriginNotAllowed(String),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::MissingHost => {
                f.write_str("Forbidden: the request has no valid Host header (exactly one)")
            }
            Refusal::HostNotAllowed(host) => write!(
                f,
                "Forbidden: Host `{host}` is not allowed (possible DNS rebinding); \
                 add it to http.allowed_hosts if this server is meant to answer to that name"
            ),
            Refusal::OriginNotAllowed(origin) => write!(
                f,
                "Forbidden: Origin `{origin}` is not allowed; \
                 add it to http.allowed_origins if that web application is trusted"
            ),
        }
    }
}

impl OriginPolicy {
    /// Checks the headers of one request. A request without `Origin` (every non-browser client)
    /// passes the origin rule; one with an `Origin` must match the allow-list exactly.
    pub(crate) fn check(&self, uri: &Uri, headers: &HeaderMap) -> Result<(), Refusal> {
        // One Host header (RFC 9112: two are a bad request), and a request-target in absolute
        // form names its host too: every host the request names must be allowed, so that no
        // component downstream can read another one than the one checked here.
        let mut hosts = headers.get_all(header::HOST).iter();
        let named = match (hosts.next(), hosts.next()) {
            (Some(_), Some(_)) => return Err(Refusal::MissingHost),
            (Some(value), None) => Some(
                value
                    .to_str()
                    .ok()
                    // A Host is host[:port]; `user@host` is no Host (RFC 9110 §7.2).
                    .filter(|text| !text.contains('@'))
                    .and_then(|text| Authority::from_str(text).ok())
                    .ok_or(Refusal::MissingHost)?,
            ),
            (None, _) => None,
        };
        let authorities: Vec<Authority> =
            named.into_iter().chain(uri.authority().cloned()).collect();
        if authorities.is_empty() {
            return Err(Refusal::MissingHost);
        }
        for authority in &authorities {
            let host = normalize_host(authority.host());
            let port = authority.port_u16();
            if !self.allowed_hosts.is_empty()
                && !self.allowed_hosts.iter().any(|p| p.matches(&host, port))
            {
                return Err(Refusal::HostNotAllowed(quoted(authority.as_str())));
            }
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            let text = String::from_utf8_lossy(origin.as_bytes()).into_owned();
            let allowed = Uri::from_str(&text)
                .ok()
                .is_some_and(|uri| self.allowed_origins.iter().any(|p| p.matches(&uri)));
            if !allowed {
                return Err(Refusal::OriginNotAllowed(quoted(&text)));
            }
        }
        Ok(())
    }
}

/// A header value as a refusal quotes it: escaped, and cut to 200 characters. The value is the
/// sender's, and may be 400 KB of anything; the refusal goes to the server's log, the audit log
/// and the reply.
fn quoted(value: &str) -> String {
    crate::render::cut(&crate::render::text(value), 200)
}

/// The guard's state: the policy, and the audit log its refusals go to.
pub(crate) struct Guard {
    pub policy: OriginPolicy,
    pub audit: Arc<AuditLog>,
}

/// Axum middleware applying [`OriginPolicy`] before anything else sees the request.
pub(crate) async fn enforce<P: ConnectionPeer>(
    State(guard): State<Arc<Guard>>,
    ConnectInfo(peer): ConnectInfo<P>,
    request: Request,
    next: Next,
) -> Response {
    match guard.policy.check(request.uri(), request.headers()) {
        Ok(()) => next.run(request).await,
        Err(refusal) => {
            let outcome = match refusal {
                Refusal::OriginNotAllowed(_) => "origin_refused",
                Refusal::HostNotAllowed(_) | Refusal::MissingHost => "host_refused",
            };
            let entry = Entry {
                transport: Some(peer.transport().as_str().into()),
                remote: peer.remote(),
                ..Entry::refused_request(None, outcome, refusal.to_string())
            };
            // Refused either way; a failed record is logged by the audit log itself. One of a
            // flood is counted, and not logged line by line either.
            if guard.audit.record_refusal(&entry) {
                tracing::warn!(%refusal, remote = peer.remote().as_deref().unwrap_or(""), "refused HTTP request");
            }
            reply::jsonrpc_error(StatusCode::FORBIDDEN, None, -32600, refusal.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn policy(hosts: &[&str], origins: &[&str]) -> OriginPolicy {
        OriginPolicy {
            allowed_hosts: hosts.iter().map(|h| h.parse().expect("host")).collect(),
            allowed_origins: origins.iter().map(|o| o.parse().expect("origin")).collect(),
        }
    }

    fn headers(host: &str, origin: Option<&str>) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(header::HOST, HeaderValue::from_str(host).expect("host"));
        if let Some(origin) = origin {
            map.insert(
                header::ORIGIN,
                HeaderValue::from_str(origin).expect("origin"),
            );
        }
        map
    }

    #[test]
    fn loopback_hosts_pass_and_others_are_refused() {
        let policy = policy(&["localhost", "127.0.0.1", "::1"], &[]);
        let uri = Uri::from_static("/mcp");
        assert!(policy.check(&uri, &headers("127.0.0.1:8080", None)).is_ok());
        assert!(policy.check(&uri, &headers("[::1]:8080", None)).is_ok());
        assert!(policy.check(&uri, &headers("LOCALHOST", None)).is_ok());
        assert_eq!(
            policy.check(&uri, &headers("evil.example:8080", None)),
            Err(Refusal::HostNotAllowed("evil.example:8080".into()))
        );
    }

    #[test]
    fn two_host_headers_or_an_absolute_target_elsewhere_are_refused() {
        let policy = policy(&["127.0.0.1"], &[]);
        let mut two = headers("127.0.0.1", None);
        two.append(header::HOST, HeaderValue::from_static("evil.com"));
        assert_eq!(
            policy.check(&Uri::from_static("/mcp"), &two),
            Err(Refusal::MissingHost)
        );
        let absolute = Uri::from_static("http://evil.com/mcp");
        assert_eq!(
            policy.check(&absolute, &headers("127.0.0.1", None)),
            Err(Refusal::HostNotAllowed("evil.com".into()))
        );
        assert_eq!(
            policy.check(&Uri::from_static("/mcp"), &headers("evil@127.0.0.1", None)),
            Err(Refusal::MissingHost)
        );
        let same = Uri::from_static("http://127.0.0.1/mcp");
        assert!(policy.check(&same, &headers("127.0.0.1", None)).is_ok());
    }

    #[test]
    fn any_origin_is_refused_unless_listed() {
        let policy = policy(
            &["localhost"],
            &["http://localhost:6274", "https://ok.example"],
        );
        let uri = Uri::from_static("/mcp");
        assert!(policy.check(&uri, &headers("localhost", None)).is_ok());
        assert!(
            policy
                .check(&uri, &headers("localhost", Some("http://localhost:6274")))
                .is_ok()
        );
        assert!(
            policy
                .check(&uri, &headers("localhost", Some("https://ok.example")))
                .is_ok()
        );
        for foreign in [
            "https://evil.example",
            "http://localhost:9999",
            "https://ok.example:8443",
            "null",
            "not a uri",
        ] {
            assert!(
                matches!(
                    policy.check(&uri, &headers("localhost", Some(foreign))),
                    Err(Refusal::OriginNotAllowed(_))
                ),
                "{foreign} should be refused"
            );
        }
    }

    #[test]
    fn wildcard_port_origin() {
        let policy = policy(&[], &["http://localhost:*"]);
        let uri = Uri::from_static("/mcp");
        assert!(
            policy
                .check(&uri, &headers("x", Some("http://localhost:1234")))
                .is_ok()
        );
        assert!(
            policy
                .check(&uri, &headers("x", Some("https://localhost:1234")))
                .is_err()
        );
    }

    #[test]
    fn patterns_reject_nonsense_and_round_trip() {
        assert!("https://a.example/path".parse::<OriginPattern>().is_err());
        assert!("a.example".parse::<OriginPattern>().is_err());
        assert!("ftp://a.example".parse::<OriginPattern>().is_err());
        assert!("bad host".parse::<HostPattern>().is_err());
        let origin: OriginPattern = "HTTPS://A.example".parse().expect("origin");
        assert_eq!(origin.to_string(), "https://a.example:443");
        let host: HostPattern = "[::1]:80".parse().expect("host");
        assert_eq!(host.to_string(), "[::1]:80");
        let host: HostPattern = "::1".parse().expect("bare IPv6");
        assert_eq!(host.to_string(), "[::1]");
    }
}
