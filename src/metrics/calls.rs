//! The server's own figures, recorded by the gate as each call ends:
//! `systemmanager_calls_total{tool,outcome}` (outcome as in the audit log: `ok`, `denied`,
//! `rate_limited`, `timed_out`, a tool error's kind…), `systemmanager_call_duration_seconds`
//! (a histogram per tool), `systemmanager_audit_failures_total` (records that could not be
//! written), and `systemmanager_build_info{version}`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Label of calls to a tool the server does not have: a caller's made-up names must not grow
/// the series without bound.
const UNKNOWN_TOOL: &str = "(unknown)";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    tool: String,
    outcome: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ToolLabel {
    tool: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabel {
    version: String,
}

/// Counters the gate updates; cheap to clone (each metric is an `Arc` inside).
#[derive(Debug)]
pub(crate) struct CallMetrics {
    calls: Family<CallLabels, Counter>,
    durations: Family<ToolLabel, Histogram>,
    audit_failures: Counter,
}

impl Default for CallMetrics {
    fn default() -> Self {
        Self {
            calls: Family::default(),
            // 100 µs to ~26 s in ×4 steps: cached reads, /proc walks, Docker, systemd jobs.
            durations: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.0001, 4.0, 10))
            }),
            audit_failures: Counter::default(),
        }
    }
}

impl CallMetrics {
    /// Counts one call that ended with `outcome` after `seconds`. `known`: the tool exists
    /// (an unknown name is counted under `(unknown)`).
    pub(crate) fn observe(&self, tool: &str, known: bool, outcome: &str, seconds: f64) {
        let tool = if known { tool } else { UNKNOWN_TOOL };
        self.calls
            .get_or_create(&CallLabels {
                tool: tool.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
        self.durations
            .get_or_create(&ToolLabel {
                tool: tool.to_string(),
            })
            .observe(seconds);
    }

    /// Counts one audit record that could not be written.
    pub(crate) fn audit_failed(&self) {
        self.audit_failures.inc();
    }

    pub(super) fn register(&self, registry: &mut Registry) {
        registry.register(
            "systemmanager_calls",
            "Tool calls that ended, by tool and outcome (as in the audit log)",
            self.calls.clone(),
        );
        registry.register(
            "systemmanager_call_duration_seconds",
            "Time from a call reaching the gate to its answer, in seconds",
            self.durations.clone(),
        );
        registry.register(
            "systemmanager_audit_failures",
            "Audit records that could not be written",
            self.audit_failures.clone(),
        );
        let build = Family::<VersionLabel, Gauge>::default();
        build
            .get_or_create(&VersionLabel {
                version: env!("CARGO_PKG_VERSION").to_string(),
            })
            .set(1);
        registry.register(
            "systemmanager_build_info",
            "The server's version, as a label; the value is always 1",
            build,
        );
    }
}
