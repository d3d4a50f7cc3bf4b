//! The `process` domain: the processes of the host — listed, inspected, as a tree — and
//! signalling them.

pub(crate) mod cpu_percent;
pub(crate) mod fingerprint;
pub(crate) mod get;
pub(crate) mod list;
pub(crate) mod signal;
pub(crate) mod table;
pub(crate) mod tree;

use std::sync::Arc;

use crate::config::Config;
use crate::domains::shared::nvidia::Nvidia;
use crate::domains::shared::users::UserNames;
use crate::tool::Registry;

pub(crate) fn register(
    registry: &mut Registry,
    config: &Config,
    users: &Arc<UserNames>,
    nvidia: &Arc<Nvidia>,
) {
    let usage = cpu_percent::ProcessUsage::new(config.host.proc.clone(), &config.sampler);
    // The start times list and get give out, and what each was given out for: signal holds a
    // caller's start time to them.
    let fingerprints = Arc::new(fingerprint::Fingerprints::new());
    registry.register_collector(list::ProcessLister::new(
        Arc::clone(&usage),
        Arc::clone(users),
        Arc::clone(nvidia),
        Arc::clone(&fingerprints),
    ));
    registry.register_collector(get::ProcessInspector::new(
        Arc::clone(&usage),
        Arc::clone(users),
        Arc::clone(nvidia),
        Arc::clone(&fingerprints),
    ));
    registry.register_collector(tree::ProcessTreeBuilder::new(usage, Arc::clone(users)));
    registry.register(signal::ProcessSignalTool::new(Arc::new(
        signal::Signaller::new(
            config.host.proc.clone(),
            config.process.protected_names.clone(),
            fingerprints,
            Arc::clone(users),
        ),
    )));
}
