//! Domains: the parts of the host SystemManager sees and manages.
//!
//! Each domain is a library of plain collection (and later action) functions with typed results,
//! plus a thin tool layer declaring its tools. Domains know nothing of transports, identities or
//! each other; the gate does the rest.

pub(crate) mod docker;
pub(crate) mod files;
pub(crate) mod hardware;
pub(crate) mod network;
pub(crate) mod process;
pub(crate) mod services;
pub(crate) mod shared;
pub(crate) mod storage;
pub(crate) mod system;
pub(crate) mod tailscale;

use std::sync::Arc;

use crate::config::Config;
use crate::tool::Registry;

/// Every tool this configuration enables, in `tools/list` order.
pub fn registry(config: &Config) -> Registry {
    let mut registry = Registry::new(config.security.max_tier());
    system::register(&mut registry, config);
    storage::register(&mut registry, config);
    let users = Arc::new(shared::users::UserNames::new(&config.host.rootfs));
    network::register(&mut registry, config, &users);
    // NVML, loaded once for the GPU facts and the GPU memory of processes.
    let nvidia = Arc::new(shared::nvidia::Nvidia::default());
    hardware::register(&mut registry, config, &nvidia, &users);
    process::register(&mut registry, config, &users, &nvidia);
    files::register(&mut registry, config, &users);
    docker::register(&mut registry, config);
    services::register(&mut registry, config);
    tailscale::register(&mut registry, config);
    registry
}
