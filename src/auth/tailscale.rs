//! Tailscale identity: callers who reach the server through `tailscale serve` are identified by
//! tailscaled itself.
//!
//! `tailscale serve` proxies to the server's loopback port or unix socket and puts the caller's
//! tailnet address in `X-Forwarded-For`. For requests from exactly those peers, the address is
//! looked up with the LocalAPI (`GET /localapi/v0/whois?addr=IP` over tailscaled's socket), and
//! the answer's app-capability grants (`{"role": "operator"}` values under the configured
//! capability) and the login allow-list give the role — the highest wins. The `Tailscale-User-*`
//! headers are never read, and a failed `whois` denies.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value;

use crate::access::{Identity, Role};
use crate::config::TailscaleConfig;
use crate::gate::Policy;

/// How long a `whois` may take.
const WHOIS_TIMEOUT: Duration = Duration::from_secs(3);
/// The largest `whois` answer read.
const MAX_ANSWER: usize = 1024 * 1024;

/// The parts of tailscaled's `WhoIsResponse` that identify a caller.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WhoIs {
    node: Node,
    user_profile: UserProfile,
    #[serde(default)]
    cap_map: HashMap<String, Vec<Value>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Node {
    #[serde(default)]
    name: String,
    #[serde(default)]
    computed_name: String,
    /// ACL tags: a tagged node (a CI runner, another server) has no user of its own.
    #[serde(default)]
    tags: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UserProfile {
    login_name: String,
}

/// Why a tailnet caller was not let in. The text is safe to show the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TailnetRefusal {
    #[error("cannot verify the tailnet caller {address}: {reason}")]
    WhoisFailed { address: String, reason: String },
    #[error(
        "the tailnet caller {login} has no SystemManager role: grant it the `{capability}` \
         capability with a role, or list the login in tailscale.logins (a tagged node: its \
         tag in tailscale.tags)"
    )]
    NoRole { login: String, capability: String },
}

/// Identifies tailnet callers through tailscaled.
pub struct TailnetIdentifier {
    socket: PathBuf,
    service: Option<String>,
    capability: Option<String>,
    logins: BTreeMap<String, String>,
    tags: BTreeMap<String, String>,
    cache_for: Duration,
    cache: Mutex<HashMap<IpAddr, (Instant, WhoIs)>>,
    proxy_uid: u32,
}

impl TailnetIdentifier {
    pub fn new(config: &TailscaleConfig) -> Self {
        Self {
            socket: config.socket.clone(),
            service: config.service.clone(),
            capability: config.capability.clone(),
            logins: config.logins.clone(),
            tags: config.tags.clone(),
            cache_for: Duration::from_secs(config.cache_seconds.get()),
            cache: Mutex::new(HashMap::new()),
            proxy_uid: config.proxy_uid,
        }
    }

    /// Whether a connection owned by `uid` is the proxy whose `X-Forwarded-For` is believed
    /// (`tailscale.proxy_uid`). An unknown owner is not.
    pub fn is_proxy(&self, uid: Option<u32>) -> bool {
        uid == Some(self.proxy_uid)
    }

    /// The identity and role of the tailnet caller at `address`.
    pub async fn identify(
        &self,
        address: IpAddr,
        policy: &Policy,
    ) -> Result<(Identity, Arc<Role>), TailnetRefusal> {
        let whois = self
            .whois(address)
            .await
            .map_err(|reason| TailnetRefusal::WhoisFailed {
                address: address.to_string(),
                reason,
            })?;
        let login = whois.user_profile.login_name.clone();
        let granted = self
            .capability
            .as_ref()
            .and_then(|capability| whois.cap_map.get(capability))
            .into_iter()
            .flatten()
            .filter_map(|grant| grant.get("role").and_then(Value::as_str));
        let listed = self.logins.get(&login).map(String::as_str);
        // A tagged node's requests carry no user: its tags name its role.
        let tagged = whois
            .node
            .tags
            .iter()
            .flatten()
            .filter_map(|tag| self.tags.get(tag).map(String::as_str));
        let role = granted
            .chain(listed)
            .chain(tagged)
            .filter_map(|name| {
                let role = policy.role(name);
                if role.is_none() {
                    tracing::warn!(
                        role = name,
                        login,
                        "a Tailscale grant names an unknown role"
                    );
                }
                role
            })
            .max_by_key(|role| role.rank())
            .ok_or_else(|| TailnetRefusal::NoRole {
                login: login.clone(),
                capability: self.capability.clone().unwrap_or_else(|| "(none)".into()),
            })?;
        let node = if whois.node.computed_name.is_empty() {
            whois.node.name.trim_end_matches('.').to_string()
        } else {
            whois.node.computed_name.clone()
        };
        Ok((Identity::Tailnet { login, node }, role))
    }

    async fn whois(&self, address: IpAddr) -> Result<WhoIs, String> {
        if let Some(answer) = self.cached(address) {
            return Ok(answer);
        }
        let answer = tokio::time::timeout(WHOIS_TIMEOUT, self.ask(address))
            .await
            .map_err(|_| {
                format!(
                    "tailscaled did not answer within {} s",
                    WHOIS_TIMEOUT.as_secs()
                )
            })??;
        if !self.cache_for.is_zero()
            && let Ok(mut cache) = self.cache.lock()
        {
            cache.insert(address, (Instant::now(), answer.clone()));
        }
        Ok(answer)
    }

    fn cached(&self, address: IpAddr) -> Option<WhoIs> {
        let cache = self.cache.lock().ok()?;
        let (at, answer) = cache.get(&address)?;
        (at.elapsed() < self.cache_for).then(|| answer.clone())
    }

    /// One `GET /localapi/v0/whois` over tailscaled's socket.
    async fn ask(&self, address: IpAddr) -> Result<WhoIs, String> {
        let mut path = format!("/localapi/v0/whois?addr={address}");
        if let Some(service) = &self.service {
            path.push_str("&svc_name=");
            path.push_str(service);
        }
        let body = crate::localapi::get(&self.socket, &path, MAX_ANSWER).await?;
        serde_json::from_slice(&body)
            .map_err(|error| format!("tailscaled's answer is not a whois response: {error}"))
    }
}
