//! The `tailscale` domain: this node's place on the tailnet, from tailscaled's LocalAPI (not
//! the CLI, which may not be installed beside the server, as in its container image).
//!
//! Registered where tailscaled is expected: `tailscale.enabled`, or its socket exists when
//! the server starts.

mod status;

use std::sync::Arc;

use crate::config::Config;
use crate::tool::Registry;

pub(crate) fn register(registry: &mut Registry, config: &Config) {
    let socket = &config.tailscale.socket;
    if !config.tailscale.enabled && !socket.exists() {
        return;
    }
    registry.register(status::TailscaleStatusTool {
        socket: Arc::new(socket.clone()),
    });
}
