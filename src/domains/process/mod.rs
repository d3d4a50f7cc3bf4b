//! The `process` domain: the processes of the host, and signalling them.

pub mod signal;

use std::sync::Arc;

use crate::config::Config;
use crate::tool::Registry;

pub fn register(registry: &mut Registry, config: &Config) {
    registry.register(signal::ProcessSignalTool::new(Arc::new(
        signal::Signaller::new(
            config.host.proc.clone(),
            config.process.protected_names.clone(),
        ),
    )));
}
