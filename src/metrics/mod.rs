//! `GET /metrics` for fleets: the host's figures under node_exporter's names and units, and the
//! server's own (calls by tool and outcome, call durations, audit failures), in the OpenMetrics
//! text format Prometheus scrapes (prometheus-client's encoder).
//!
//! Off by default (`[metrics] enabled`). Served behind the same credential as `/mcp` on the
//! server's listeners, or without one on its own listener (`metrics.listen`) for a Prometheus
//! on the same host or network. Host figures are read at each scrape, never cached.

mod calls;
mod host;

pub(crate) use calls::CallMetrics;

use std::sync::Arc;

use prometheus_client::registry::Registry;

use crate::config::HostConfig;

/// The `Content-Type` of an answer.
pub(crate) const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Everything `/metrics` answers: the server's counters and the host collector.
pub(crate) struct Exporter {
    registry: Registry,
}

impl Exporter {
    /// The exposition of `calls` (the gate's counters) and of the host under `host`'s paths.
    pub(crate) fn new(calls: &Arc<CallMetrics>, host: &HostConfig) -> Self {
        let mut registry = Registry::default();
        calls.register(&mut registry);
        registry.register_collector(Box::new(host::HostCollector::new(host.clone())));
        Self { registry }
    }

    /// One scrape, as OpenMetrics text (ends with `# EOF`).
    pub(crate) fn render(&self) -> String {
        let mut text = String::with_capacity(16 * 1024);
        if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::warn!(%error, "cannot encode the metrics");
        }
        text
    }
}
