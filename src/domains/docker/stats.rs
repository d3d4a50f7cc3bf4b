//! `docker_container_stats`: one reading of CPU, memory, network, block I/O and pids per
//! container, with `docker stats`' own arithmetic.

use std::sync::Arc;

use bollard::models::{ContainerStatsResponse, ContainerSummaryStateEnum};
use bollard::query_parameters::{ListContainersOptions, StatsOptions};
use futures::{StreamExt, TryStreamExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::engine::Engine;
use super::names::{container_reference, short_id};
use crate::tool::{Declaration, Domain, Render, Tool, ToolContext, ToolError};

pub(crate) static DOCKER_CONTAINER_STATS: Declaration = Declaration::read(
    Domain::Docker,
    "docker_container_stats",
    "Docker container resource use",
    "One reading per container, as `docker stats --no-stream` computes it: CPU % \
     (100 = one core busy), memory used (without the page cache) and its limit, \
     network received/sent, block I/O read/written, and pids. For the containers \
     named, or every running container (at most 100), up to 32 at a time (one \
     reading takes the engine about two seconds).",
)
.paged("name fewer `containers`");

/// How many containers are read at once. Each reading waits for the daemon's collector to
/// sample twice (about two seconds) and costs the daemon little meanwhile, so readings overlap
/// widely: 8 at a time made 20 containers take 6.1 s, 32 at a time take one wait.
const CONCURRENCY: usize = 32;
const MAX_CONTAINERS: usize = 100;

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct StatsArguments {
    /// Ids or names; default every running container.
    pub containers: Option<Vec<String>>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct ContainerStatsList {
    pub containers: Vec<ContainerStats>,
    /// Asked for every running container: how many stopped or were removed between the list
    /// and their reading (left out, not an error).
    #[serde(skip_serializing_if = "crate::render::is_zero")]
    pub ended_meanwhile: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub(crate) struct ContainerStats {
    pub id: String,
    pub name: String,
    /// 100 = one core busy; at most 100 × online CPUs.
    pub cpu_percent: f64,
    /// Usage without the inactive page cache, as `docker stats`.
    pub memory_used_bytes: u64,
    pub memory_limit_bytes: u64,
    pub memory_percent: f64,
    pub network_rx_bytes: u64,
    pub network_tx_bytes: u64,
    pub block_read_bytes: u64,
    pub block_write_bytes: u64,
    pub pids: u64,
}

impl Render for ContainerStatsList {
    fn render_text(&self) -> String {
        let mut lines: Vec<String> = self
            .containers
            .iter()
            .map(|row| {
                format!(
                    "{} {}: cpu {:.2}% mem {} / {} ({:.2}%) net {} / {} block {} / {} pids {}",
                    row.id,
                    crate::render::text(&row.name),
                    row.cpu_percent,
                    crate::render::bytes(row.memory_used_bytes),
                    crate::render::bytes(row.memory_limit_bytes),
                    row.memory_percent,
                    crate::render::bytes(row.network_rx_bytes),
                    crate::render::bytes(row.network_tx_bytes),
                    crate::render::bytes(row.block_read_bytes),
                    crate::render::bytes(row.block_write_bytes),
                    row.pids
                )
            })
            .collect();
        if lines.is_empty() {
            lines.push("no running containers".into());
        }
        if self.ended_meanwhile > 0 {
            lines.push(format!(
                "({} stopped before {} could be read)",
                crate::render::count(self.ended_meanwhile, "container", "containers"),
                if self.ended_meanwhile == 1 {
                    "it"
                } else {
                    "they"
                }
            ));
        }
        lines.join("\n")
    }
}

/// `docker stats`' arithmetic (docker/cli, cli/command/container/stats_helpers.go) on one
/// response, which holds this reading and the one before it (`precpu_stats`).
pub(crate) fn figures(stats: &ContainerStatsResponse) -> ContainerStats {
    let cpu = stats.cpu_stats.clone().unwrap_or_default();
    let previous = stats.precpu_stats.clone().unwrap_or_default();
    let total = |stats: &bollard::models::ContainerCpuStats| {
        stats
            .cpu_usage
            .as_ref()
            .and_then(|usage| usage.total_usage)
            .unwrap_or(0)
    };
    let cpu_delta = total(&cpu) as f64 - total(&previous) as f64;
    let system_delta =
        cpu.system_cpu_usage.unwrap_or(0) as f64 - previous.system_cpu_usage.unwrap_or(0) as f64;
    let online = cpu.online_cpus.map(f64::from).unwrap_or_else(|| {
        cpu.cpu_usage
            .as_ref()
            .and_then(|usage| usage.percpu_usage.as_ref())
            .map_or(0.0, |per_cpu| per_cpu.len() as f64)
    });
    let cpu_percent = if system_delta > 0.0 && cpu_delta > 0.0 {
        cpu_delta / system_delta * online * 100.0
    } else {
        0.0
    };

    let memory = stats.memory_stats.clone().unwrap_or_default();
    let usage = memory.usage.unwrap_or(0);
    let detail = memory.stats.unwrap_or_default();
    // cgroup v1 reports total_inactive_file, v2 inactive_file; docker subtracts whichever is
    // there when it is smaller than the usage.
    let cache = detail
        .get("total_inactive_file")
        .or_else(|| detail.get("inactive_file"))
        .copied()
        .filter(|cache| *cache < usage)
        .unwrap_or(0);
    let used = usage - cache;
    let limit = memory.limit.unwrap_or(0);
    let memory_percent = if limit > 0 {
        used as f64 / limit as f64 * 100.0
    } else {
        0.0
    };

    let (mut rx, mut tx) = (0, 0);
    for network in stats.networks.clone().unwrap_or_default().values() {
        rx += network.rx_bytes.unwrap_or(0);
        tx += network.tx_bytes.unwrap_or(0);
    }
    let (mut read, mut write) = (0, 0);
    let blkio = stats.blkio_stats.clone().unwrap_or_default();
    for entry in blkio.io_service_bytes_recursive.unwrap_or_default() {
        match entry.op.as_deref().map(str::to_ascii_lowercase).as_deref() {
            Some("read") => read += entry.value.unwrap_or(0),
            Some("write") => write += entry.value.unwrap_or(0),
            _ => {}
        }
    }
    ContainerStats {
        id: short_id(stats.id.as_deref().unwrap_or_default()),
        name: stats
            .name
            .as_deref()
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_string(),
        cpu_percent: (cpu_percent * 100.0).round() / 100.0,
        memory_used_bytes: used,
        memory_limit_bytes: limit,
        memory_percent: (memory_percent * 100.0).round() / 100.0,
        network_rx_bytes: rx,
        network_tx_bytes: tx,
        block_read_bytes: read,
        block_write_bytes: write,
        pids: stats
            .pids_stats
            .as_ref()
            .and_then(|pids| pids.current)
            .unwrap_or(0),
    }
}

pub(crate) struct ContainerStatsTool {
    pub engine: Arc<Engine>,
}

impl Tool for ContainerStatsTool {
    type Arguments = StatsArguments;
    type Output = ContainerStatsList;

    fn declaration(&self) -> &'static Declaration {
        &DOCKER_CONTAINER_STATS
    }

    async fn run(
        &self,
        arguments: StatsArguments,
        _: ToolContext,
    ) -> Result<ContainerStatsList, ToolError> {
        // Every running container: one that stops between the list and its reading is left out,
        // not an error (on a busy host that happens).
        let every_running = arguments.containers.is_none();
        let names = match arguments.containers {
            Some(names) => {
                if names.is_empty() || names.len() > MAX_CONTAINERS {
                    return Err(ToolError::invalid_arguments(format!(
                        "containers: give 1 to {MAX_CONTAINERS} ids or names, or leave it out \
                         for every running container"
                    )));
                }
                names
                    .iter()
                    .map(|name| container_reference(name))
                    .collect::<Result<Vec<_>, _>>()?
            }
            None => {
                let running = self
                    .engine
                    .run(|docker| async move {
                        docker.list_containers(None::<ListContainersOptions>).await
                    })
                    .await?;
                running
                    .into_iter()
                    .filter(|summary| summary.state == Some(ContainerSummaryStateEnum::RUNNING))
                    .filter_map(|summary| summary.id)
                    .take(MAX_CONTAINERS)
                    .collect()
            }
        };
        let docker = self.engine.client().await?;
        let engine = &self.engine;
        let containers: Vec<Option<ContainerStats>> = futures::stream::iter(names)
            .map(|name| {
                let docker = docker.clone();
                async move {
                    let options = StatsOptions {
                        stream: false,
                        one_shot: false,
                    };
                    let reading = match docker.stats(&name, Some(options)).try_next().await {
                        Ok(reading) => reading,
                        Err(bollard::errors::Error::DockerResponseServerError {
                            status_code: 404,
                            ..
                        }) if every_running => None,
                        Err(error) => return Err(engine.explain(error)),
                    };
                    match reading {
                        Some(stats) => Ok(Some(figures(&stats))),
                        None if every_running => Ok(None),
                        None => Err(ToolError::failed(format!(
                            "Docker gave no reading for `{name}`"
                        ))),
                    }
                }
            })
            .buffered(CONCURRENCY)
            .try_collect::<Vec<Option<ContainerStats>>>()
            .await?;
        let read = containers.len();
        let mut containers: Vec<ContainerStats> = containers.into_iter().flatten().collect();
        let ended_meanwhile = (read - containers.len()) as u64;
        containers.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(ContainerStatsList {
            containers,
            ended_meanwhile,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_arithmetic_is_docker_stats_own() {
        let stats: ContainerStatsResponse = serde_json::from_value(serde_json::json!({
            "id": "0123456789abcdef", "name": "/web",
            "cpu_stats": {"cpu_usage": {"total_usage": 3_000_000_000u64},
                          "system_cpu_usage": 20_000_000_000u64, "online_cpus": 2},
            "precpu_stats": {"cpu_usage": {"total_usage": 1_000_000_000u64},
                             "system_cpu_usage": 10_000_000_000u64},
            "memory_stats": {"usage": 100_000_000u64, "limit": 1_000_000_000u64,
                             "stats": {"inactive_file": 20_000_000u64}},
            "networks": {"eth0": {"rx_bytes": 10, "tx_bytes": 20},
                         "eth1": {"rx_bytes": 1, "tx_bytes": 2}},
            "blkio_stats": {"io_service_bytes_recursive": [
                {"major": 8, "minor": 0, "op": "read", "value": 4096},
                {"major": 8, "minor": 0, "op": "Write", "value": 8192},
                {"major": 8, "minor": 0, "op": "total", "value": 12288}]},
            "pids_stats": {"current": 7}
        }))
        .expect("a stats response");
        let row = figures(&stats);
        // 2e9 of 10e9 system nanoseconds on 2 CPUs: 40% (docker: delta/system × CPUs × 100).
        assert_eq!(row.cpu_percent, 40.0);
        assert_eq!(row.memory_used_bytes, 80_000_000);
        assert_eq!(row.memory_percent, 8.0);
        assert_eq!((row.network_rx_bytes, row.network_tx_bytes), (11, 22));
        assert_eq!((row.block_read_bytes, row.block_write_bytes), (4096, 8192));
        assert_eq!(
            (row.id.as_str(), row.name.as_str(), row.pids),
            ("0123456789ab", "web", 7)
        );
    }
}
