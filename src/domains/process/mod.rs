//! The `process` domain: the processes of the host — listed, inspected, as a tree — and
//! signalling them.

pub mod get;
pub mod list;
pub mod signal;
pub mod table;
pub mod tree;
pub mod usage;

use std::sync::Arc;

use crate::config::Config;
use crate::domains::users::UserNames;
use crate::tool::Registry;

pub fn register(registry: &mut Registry, config: &Config, users: &Arc<UserNames>) {
    let usage = usage::ProcessUsage::new(config.host.proc.clone(), &config.sampler);
    registry.register(list::ProcessListTool {
        lister: Arc::new(list::ProcessLister::new(
            Arc::clone(&usage),
            Arc::clone(users),
        )),
    });
    registry.register(get::ProcessGetTool {
        inspector: Arc::new(get::ProcessInspector::new(
            Arc::clone(&usage),
            Arc::clone(users),
        )),
    });
    registry.register(tree::ProcessTreeTool {
        builder: Arc::new(tree::ProcessTreeBuilder::new(usage, Arc::clone(users))),
    });
    registry.register(signal::ProcessSignalTool::new(Arc::new(
        signal::Signaller::new(
            config.host.proc.clone(),
            config.process.protected_names.clone(),
        ),
    )));
}
