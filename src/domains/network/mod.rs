//! The `network` domain: interfaces, sockets and routes.
//!
//! These tools describe the server's own network namespace: `/proc/net/*` as the server sees
//! it, rtnetlink and sock_diag, and `/sys/class/net`. On a host that is the host's; a container deployment
//! shares the host's namespace (`network_mode: host`) to describe the host.

pub(crate) mod addresses;
pub(crate) mod connections;
pub(crate) mod interfaces;
pub(crate) mod routes;
pub(crate) mod socket_table;

use std::sync::Arc;

use crate::config::Config;
use crate::domains::shared::users::UserNames;
use crate::tool::Registry;

pub(crate) fn register(registry: &mut Registry, config: &Config, users: &Arc<UserNames>) {
    registry.register_collector(interfaces::InterfaceMonitor::new(
        &config.host,
        &config.sampler,
    ));
    registry.register_collector(connections::ConnectionCollector::new(
        &config.host,
        Arc::clone(users),
    ));
    registry.register_collector(routes::RouteCollector::new(&config.host));
}
