//! Authentication: turning a request's credentials into an identity and a role.
//!
//! Transports call this; the gate only ever sees the resulting [`Caller`]. Bearer tokens are the
//! credential of HTTP clients; TLS client certificates and Tailscale identities are resolved here
//! too as they are configured.

pub(crate) mod certificates;
pub(crate) mod tailscale;
pub mod tokens;

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::access::{Identity, Role};
use crate::audit::{AuditLog, Decision, Entry, Event};
use crate::gate::Policy;

use tailscale::{TailnetIdentifier, TailnetRefusal};
use tokens::{Rejection, TokenStore};

/// Checks credentials against the token store and the roles of the policy, and audits every
/// refusal.
pub struct Authenticator {
    tokens: Arc<TokenStore>,
    policy: Arc<Policy>,
    audit: Arc<AuditLog>,
    /// Client certificate common name → role name (`tls.client_roles`).
    certificate_roles: BTreeMap<String, String>,
    /// When Tailscale identity is on.
    tailnet: Option<TailnetIdentifier>,
}

/// Why a credential was refused; the text is safe to show the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error(transparent)]
    Token(#[from] Rejection),
    #[error(
        "the token `{token}` names the role `{role}`, which this server's config does not define"
    )]
    UnknownRole { token: String, role: String },
}

impl AuthError {
    /// The token this error is about, when the server knows it.
    pub fn token_name(&self) -> Option<&str> {
        match self {
            AuthError::Token(Rejection::Expired { name, .. } | Rejection::Revoked { name, .. }) => {
                Some(name)
            }
            AuthError::UnknownRole { token, .. } => Some(token),
            AuthError::Token(_) => None,
        }
    }
}

impl Authenticator {
    pub fn new(tokens: Arc<TokenStore>, policy: Arc<Policy>, audit: Arc<AuditLog>) -> Self {
        Self {
            tokens,
            policy,
            audit,
            certificate_roles: BTreeMap::new(),
            tailnet: None,
        }
    }

    /// Identifies callers forwarded by `tailscale serve` through tailscaled.
    pub fn with_tailnet(mut self, tailnet: TailnetIdentifier) -> Self {
        self.tailnet = Some(tailnet);
        self
    }

    pub fn tailnet_enabled(&self) -> bool {
        self.tailnet.is_some()
    }

    /// The identity and role of the tailnet caller at `address` (Tailscale identity is on).
    pub async fn tailnet(
        &self,
        address: std::net::IpAddr,
    ) -> Option<Result<(Identity, Arc<Role>), TailnetRefusal>> {
        Some(self.tailnet.as_ref()?.identify(address, &self.policy).await)
    }

    /// Whether a connection owned by `uid` may forward a tailnet identity (Tailscale identity is
    /// on and `uid` is `tailscale.proxy_uid`).
    pub fn is_tailnet_proxy(&self, uid: Option<u32>) -> bool {
        self.tailnet
            .as_ref()
            .is_some_and(|tailnet| tailnet.is_proxy(uid))
    }

    /// Accepts client certificates whose common names `roles` maps to a role.
    pub fn with_certificate_roles(mut self, roles: BTreeMap<String, String>) -> Self {
        self.certificate_roles = roles;
        self
    }

    /// The identity and role of a client certificate's holder (the TLS handshake has verified
    /// the certificate against the client CA), if its name is mapped.
    pub fn certificate(&self, common_name: &str) -> Option<(Identity, Arc<Role>)> {
        let role = self.policy.role(self.certificate_roles.get(common_name)?)?;
        Some((
            Identity::Certificate {
                subject: common_name.to_string(),
            },
            role,
        ))
    }

    /// Records a refused credential. `identity` names the token when it is known (expired,
    /// revoked). Returns whether it was written one by one (false: counted as one of a flood),
    /// which is also whether it deserves a line in the server's own log.
    pub fn record_failure(
        &self,
        identity: Option<String>,
        transport: &str,
        remote: Option<String>,
        reason: &str,
    ) -> bool {
        let entry = Entry {
            event: Some(Event::Auth),
            decision: Some(Decision::AuthFailed),
            outcome: "auth_failed".into(),
            identity,
            transport: Some(transport.into()),
            remote,
            detail: Some(reason.into()),
            ..Entry::default()
        };
        // A refusal stands whether or not it could be recorded (the failure is logged).
        self.audit.record_refusal(&entry)
    }

    pub fn policy(&self) -> &Arc<Policy> {
        &self.policy
    }

    pub fn tokens(&self) -> &Arc<TokenStore> {
        &self.tokens
    }

    /// The identity and role of a bearer token's holder.
    pub fn bearer(&self, secret: &str) -> Result<(Identity, Arc<Role>), AuthError> {
        let token = self.tokens.authenticate(secret)?;
        let role = self
            .policy
            .role(&token.role)
            .ok_or_else(|| AuthError::UnknownRole {
                token: token.name.clone(),
                role: token.role.clone(),
            })?;
        Ok((Identity::Token { name: token.name }, role))
    }
}
