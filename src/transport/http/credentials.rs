//! Authentication of HTTP requests: every request to `/mcp` needs a credential.
//!
//! - `Authorization: Bearer <token>` — a token created with `systemmanager token create`;
//! - over TLS, without a header: a client certificate the client CA signed, whose common name
//!   `tls.client_roles` maps to a role;
//! - from `tailscale serve` (a loopback or unix-socket peer with `X-Forwarded-For`), when
//!   Tailscale identity is on: the tailnet user tailscaled's `whois` names;
//! - on the unix socket, without a header: the local user the kernel reports, with the local
//!   role (the socket's mode 0660 decides who may connect at all).
//!
//! `/mcp` takes no query string at all: a token there would end up in logs and proxies, and no
//! check of its spelling (percent-encoding, a prefix left off, another parameter name) can be
//! complete. Failures get 401 with `WWW-Authenticate: Bearer`, and `error="invalid_token"` where
//! a token was given.
//!
//! `X-Forwarded-For` is believed only from the `tailscale serve` proxy itself: a local peer
//! whose connection is owned by `tailscale.proxy_uid` (peer credentials on the unix socket, the
//! connecting socket's owner on loopback TCP). From anyone else the header is ignored.

use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use super::occupancy::Occupant;
use super::peer::ConnectionPeer;
use super::reply;
use crate::access::Caller;
use crate::auth::Authenticator;
use crate::auth::tailscale::TailnetRefusal;

/// Authenticates the request and attaches its [`Caller`], where the MCP face finds it.
pub(super) async fn authenticate<P: ConnectionPeer>(
    State(authenticator): State<Arc<Authenticator>>,
    ConnectInfo(peer): ConnectInfo<P>,
    mut request: Request,
    next: Next,
) -> Response {
    let refuse_as = |token: Option<&str>, error: Option<&str>, message: String| {
        let written = authenticator.record_failure(
            token.map(|name| format!("token:{name}")),
            peer.transport().as_str(),
            peer.remote(),
            &message,
        );
        // One of a flood is counted in the audit log, and not logged line by line either.
        if written {
            tracing::warn!(
                target: "systemmanager::auth",
                transport = peer.transport().as_str(),
                remote = peer.remote().as_deref().unwrap_or(""),
                reason = %message,
                "authentication failed"
            );
        }
        unauthorized(error, message)
    };
    let refuse = |error: Option<&str>, message: String| refuse_as(None, error, message);
    if request.uri().query().is_some() {
        return refuse(
            Some("invalid_request"),
            "tokens are accepted only in the Authorization header, never in the URL: /mcp takes \
             no query string"
                .into(),
        );
    }
    let forwarded = authenticator.tailnet_enabled()
        && peer.is_local()
        && request.headers().contains_key(FORWARDED_FOR)
        && is_the_proxy(&authenticator, &peer).await;
    let (identity, role) = match request.headers().get(header::AUTHORIZATION) {
        Some(value) => {
            let Some(secret) = bearer_secret(value) else {
                return refuse(
                    Some("invalid_request"),
                    "use `Authorization: Bearer <token>`".into(),
                );
            };
            match authenticator.bearer(secret) {
                Ok(authenticated) => authenticated,
                Err(error) => {
                    return refuse_as(error.token_name(), Some("invalid_token"), error.to_string());
                }
            }
        }
        None if forwarded => {
            let Some(address) = forwarded_address(request.headers()) else {
                return refuse(
                    Some("invalid_request"),
                    "X-Forwarded-For does not end with an IP address".into(),
                );
            };
            match authenticator.tailnet(address).await {
                Some(Ok(identified)) => identified,
                Some(Err(refusal @ TailnetRefusal::NoRole { .. })) => {
                    let message = refusal.to_string();
                    authenticator.record_failure(
                        None,
                        peer.transport().as_str(),
                        peer.remote(),
                        &message,
                    );
                    return forbidden(message);
                }
                Some(Err(refusal)) => return refuse(None, refusal.to_string()),
                None => return refuse(None, "Tailscale identity is off".into()),
            }
        }
        None => match (
            peer.client_certificate()
                .and_then(|name| authenticator.certificate(name)),
            peer.local_user(),
        ) {
            (Some(certified), _) => certified,
            (None, Some(user)) => (user, authenticator.policy().local_role()),
            (None, None) => {
                return refuse(
                    None,
                    "this server requires a bearer token: send `Authorization: Bearer <token>` \
                     (an operator creates one with `systemmanager token create`)"
                        .into(),
                );
            }
        },
    };
    let caller = Caller {
        identity,
        role,
        transport: peer.transport(),
        remote: peer.remote(),
    };
    if let Some(occupant) = request.extensions().get::<Arc<Occupant>>() {
        occupant.identify(caller.identity.to_string());
    }
    request.extensions_mut().insert(Arc::new(caller));
    next.run(request).await
}

const FORWARDED_FOR: &str = "x-forwarded-for";

/// Whether the peer is the `tailscale serve` proxy (its connection is owned by
/// `tailscale.proxy_uid`). Finding a TCP socket's owner asks the kernel (a blocking netlink round
/// trip), so it runs on the blocking pool.
async fn is_the_proxy<P: ConnectionPeer>(authenticator: &Authenticator, peer: &P) -> bool {
    let peer = peer.clone();
    let owner = tokio::task::spawn_blocking(move || peer.owner_uid())
        .await
        .ok()
        .flatten();
    let believed = authenticator.is_tailnet_proxy(owner);
    if !believed {
        // Debug only: the request goes on as one without the header, and its refusal (if any)
        // is what the log and the audit record show, counted under a flood.
        tracing::debug!(
            target: "systemmanager::auth",
            owner = owner.map(|uid| uid.to_string()).as_deref().unwrap_or("unknown"),
            "X-Forwarded-For ignored: the connection is not the tailscale serve proxy's \
             (tailscale.proxy_uid)"
        );
    }
    believed
}

/// The address the nearest proxy added: the last entry of `X-Forwarded-For`.
fn forwarded_address(headers: &axum::http::HeaderMap) -> Option<std::net::IpAddr> {
    let last = headers
        .get_all(FORWARDED_FOR)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .next_back()?;
    last.trim().parse().ok()
}

/// 403 for a caller who is who they say but may do nothing here.
fn forbidden(message: String) -> Response {
    reply::jsonrpc_error(
        StatusCode::FORBIDDEN,
        None,
        reply::FORBIDDEN,
        format!("Forbidden: {message}"),
    )
}

fn bearer_secret(value: &HeaderValue) -> Option<&str> {
    let text = value.to_str().ok()?;
    let (scheme, secret) = text.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| secret.trim())
        .filter(|secret| !secret.is_empty())
}

fn unauthorized(error: Option<&str>, message: String) -> Response {
    let challenge = match error {
        Some(error) => format!(
            "Bearer realm=\"systemmanager\", error=\"{error}\", error_description=\"{}\"",
            message.replace('"', "'")
        ),
        None => "Bearer realm=\"systemmanager\"".to_string(),
    };
    let mut response = reply::jsonrpc_error(
        StatusCode::UNAUTHORIZED,
        None,
        reply::UNAUTHORIZED,
        format!("Unauthorized: {message}"),
    );
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_bearer_scheme_is_read() {
        let value = HeaderValue::from_static("Bearer smgr_x");
        assert_eq!(bearer_secret(&value), Some("smgr_x"));
        let value = HeaderValue::from_static("bearer  smgr_y ");
        assert_eq!(bearer_secret(&value), Some("smgr_y"));
        assert_eq!(bearer_secret(&HeaderValue::from_static("Basic abc")), None);
        assert_eq!(bearer_secret(&HeaderValue::from_static("Bearer ")), None);
    }
}
