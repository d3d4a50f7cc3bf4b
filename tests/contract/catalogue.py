"""The server's tools, by tier and role, in `tools/list` order (registration order: domain by
domain), for tests that check what a caller is shown."""

from __future__ import annotations

HOST_READ_TOOLS = [
    "system_overview",
    "cpu_usage",
    "memory_usage",
    "disk_usage",
    "disk_io",
    "network_interfaces",
    "network_connections",
    "network_routes",
    "hardware_info",
    "gpu_processes",
    "process_list",
    "process_get",
    "process_tree",
]
DOCKER_READ_TOOLS = [
    "docker_info",
    "docker_container_list",
    "docker_container_inspect",
    "docker_container_logs",
    "docker_container_stats",
    "docker_container_top",
    "docker_image_list",
    "docker_image_inspect",
    "docker_network_list",
    "docker_network_inspect",
    "docker_volume_list",
    "docker_volume_inspect",
    "docker_system_df",
    "docker_events",
]
DOCKER_OPERATE_TOOLS = [
    "docker_container_start",
    "docker_container_stop",
    "docker_container_restart",
    "docker_container_pause",
    "docker_container_unpause",
    "docker_network_connect",
    "docker_network_disconnect",
]
# What a viewer sees, and all a read-only server has.
READ_TOOLS = [*HOST_READ_TOOLS, *DOCKER_READ_TOOLS]
# Registered where tailscaled is expected (tailscale.enabled, or its socket exists), last.
TAILSCALE_TOOLS = ["tailscale_status"]
# What an operator sees: the read tools and the operate tier's.
OPERATOR_TOOLS = [*HOST_READ_TOOLS, "process_signal", *DOCKER_READ_TOOLS, *DOCKER_OPERATE_TOOLS]
