"""network_interfaces, network_connections and network_routes through the official client,
against `ip -j addr`, `ip -j route`, `ss -tulpn`, /sys/class/net, and subjects the tests make:
a namespace with known links, addresses and routes; a listener under a distinctive name;
loopback traffic."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from groundtruth import command_output
from policy import require
from sdk import call, stdio_session

pytestmark = pytest.mark.anyio


def ip_json(*arguments: str) -> list[dict]:
    return json.loads(command_output("ip", "-j", *arguments))


def sysfs_counter(name: str, counter: str) -> int:
    return int(Path(f"/sys/class/net/{name}/statistics/{counter}").read_text())


# --- interfaces ---------------------------------------------------------------------------------


async def test_interfaces_agree_with_ip_addr_and_sysfs(binary):
    async with stdio_session(binary) as session:
        links_before = ip_json("addr")
        before = {link["ifname"]: sysfs_counter(link["ifname"], "rx_bytes") for link in links_before}
        answer = await call(session, "network_interfaces")
        links = ip_json("addr")
    # Another suite on the machine may add or remove links (veth pairs, namespaces) meanwhile:
    # compare the links `ip` showed the same before and after the call.
    steady = [link for link in links if link in links_before]
    ours = [nic for nic in answer["interfaces"] if nic["name"] in {link["ifname"] for link in steady}]
    assert [nic["name"] for nic in ours] == [link["ifname"] for link in steady], "ifindex order"
    assert len(steady) >= 1
    for nic, link in zip(ours, steady):
        assert nic["index"] == link["ifindex"]
        assert nic["mtu"] == link["mtu"]
        assert nic["state"] == link["operstate"].lower()
        assert nic["admin_up"] == ("UP" in link["flags"])
        assert nic["kind"] == link["link_type"]
        assert nic.get("mac") == link.get("address")
        assert sorted(nic["addresses"]) == sorted(f"{a['local']}/{a['prefixlen']}" for a in link["addr_info"])
        after = sysfs_counter(link["ifname"], "rx_bytes")
        assert before[link["ifname"]] - 1024**2 <= nic["rx_bytes"] <= after
    assert "window_seconds" not in answer, "a first answer has no rates"
    lo = next(nic for nic in answer["interfaces"] if nic["name"] == "lo")
    assert lo["kind"] == "loopback" and lo["virtual"] is True and "127.0.0.1/8" in lo["addresses"]


@pytest.fixture
def namespace():
    """A network namespace with a veth pair `sm-test0`/`sm-test1`, known addresses and routes."""
    require(os.geteuid() == 0, "network namespaces need root")
    name = f"sm{uuid.uuid4().hex[:8]}"
    setup = [
        "link add sm-test0 type veth peer name sm-test1",
        "addr add 198.51.100.1/24 dev sm-test0",
        "addr add 2001:db8::1/64 dev sm-test0 nodad",
        # An alias, as `ifconfig sm-test0:1` makes: getifaddrs files it under its label.
        "addr add 10.99.0.1/24 dev sm-test0 label sm-test0:1",
        "link set sm-test0 mtu 1280 up",
        "link set sm-test1 up",
        "link set lo up",
        "route add 203.0.113.0/24 via 198.51.100.254 metric 77",
        "route add default via 198.51.100.254",
        "-6 route add 2001:db8:1::/48 via 2001:db8::fe metric 99",
    ]
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        for command in setup:
            subprocess.run(["ip", "-n", name, *command.split()], check=True, capture_output=True, text=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def normalize_ip_route(route: dict, family: str) -> tuple:
    destination = route["dst"]
    if destination == "default":
        pass
    elif "/" not in destination:
        destination += "/32" if family == "ipv4" else "/128"
    return (family, destination, route.get("gateway"), route["dev"], route.get("metric", 0))


async def test_a_known_namespace_is_reported_exactly(binary, namespace):
    async with stdio_session(binary, wrapper=["ip", "netns", "exec", namespace]) as session:
        interfaces = await call(session, "network_interfaces")
        routes = await call(session, "network_routes")
        one = await call(session, "network_interfaces", {"name": "sm-test0"})
        one_text = (await session.call_tool("network_interfaces", {"name": "sm-test0"})).content[0].text
        unknown = await session.call_tool("network_interfaces", {"name": "eth9"})

    nics = {nic["name"]: nic for nic in interfaces["interfaces"]}
    assert set(nics) == {"lo", "sm-test0", "sm-test1"}
    test0 = nics["sm-test0"]
    assert test0["mtu"] == 1280 and test0["admin_up"] is True and test0["kind"] == "ether"
    assert test0["virtual"] is True
    assert {"198.51.100.1/24", "2001:db8::1/64", "10.99.0.1/24"} <= set(test0["addresses"])
    # Every address `ip addr` shows for the link, with its label where it has its own.
    (truth,) = ip_json("-n", namespace, "addr", "show", "sm-test0")
    assert sorted(test0["addresses"]) == sorted(f"{a['local']}/{a['prefixlen']}" for a in truth["addr_info"])
    labels = {f"{a['local']}/{a['prefixlen']}": a["label"] for a in truth["addr_info"] if a.get("label", "sm-test0") != "sm-test0"}
    assert labels == {"10.99.0.1/24": "sm-test0:1"} and test0["labels"] == labels
    assert [nic["name"] for nic in one["interfaces"]] == ["sm-test0"]
    assert one["interfaces"][0]["labels"] == labels
    assert "10.99.0.1/24 (sm-test0:1)" in one_text
    assert unknown.is_error is True
    assert unknown.content[0].text == "no network interface is named `eth9`; there are: " + ", ".join(
        nic["name"] for nic in interfaces["interfaces"]
    )

    ours = {(r["family"], r["destination"], r.get("gateway"), r["interface"], r["metric"]) for r in routes["routes"]}
    truth = {normalize_ip_route(r, "ipv4") for r in ip_json("-n", namespace, "route")}
    truth |= {normalize_ip_route(r, "ipv6") for r in ip_json("-n", namespace, "-6", "route")}
    assert ours == truth
    assert ("ipv4", "203.0.113.0/24", "198.51.100.254", "sm-test0", 77) in ours
    assert ("ipv6", "2001:db8:1::/48", "2001:db8::fe", "sm-test0", 99) in ours
    assert [(r["family"], r["gateway"]) for r in routes["default_routes"]] == [("ipv4", "198.51.100.254")]


async def test_loopback_traffic_shows_as_a_rate(binary):
    """Streams bytes over loopback for two seconds while the sampler measures."""
    stop = threading.Event()
    server = socket.create_server(("127.0.0.1", 0))

    def sink() -> None:
        connection, _ = server.accept()
        with connection:
            while connection.recv(1 << 20):
                pass

    def source() -> None:
        with socket.create_connection(server.getsockname()) as client:
            chunk = b"x" * (1 << 20)
            while not stop.is_set():
                client.sendall(chunk)
                time.sleep(0.01)

    threads = [threading.Thread(target=sink), threading.Thread(target=source)]
    async with stdio_session(binary) as session:
        await call(session, "network_interfaces", {"name": "lo"})
        for thread in threads:
            thread.start()
        try:
            # The sampler reads every second (sampler.interval_ms): by now its last interval lay
            # wholly within the stream.
            await asyncio.sleep(2.2)
            answer = await call(session, "network_interfaces", {"name": "lo"})
        finally:
            stop.set()
            for thread in threads:
                thread.join()
            server.close()
    [lo] = answer["interfaces"]
    assert 0.5 <= answer["window_seconds"] <= 2.5
    # ~100 chunks of 1 MiB a second are offered; even a slow machine moves a tenth of that.
    assert lo["rx_bytes_per_second"] >= 10 * 1024**2, lo
    assert lo["tx_bytes_per_second"] >= 10 * 1024**2, lo


# --- routes and DNS -----------------------------------------------------------------------------


async def test_routes_agree_with_ip_route_and_dns_with_resolv_conf(binary):
    async with stdio_session(binary) as session:
        routes = await call(session, "network_routes")
        only_v6 = await call(session, "network_routes", {"family": "ipv6"})
    ours = {(r["family"], r["destination"], r.get("gateway"), r["interface"], r["metric"]) for r in routes["routes"]}
    truth = {normalize_ip_route(r, "ipv4") for r in ip_json("route")}
    truth |= {normalize_ip_route(r, "ipv6") for r in ip_json("-6", "route")}
    assert ours == truth
    assert {r["family"] for r in only_v6["routes"]} <= {"ipv6"}
    defaults = {(r["family"], r.get("gateway"), r["interface"]) for r in routes["default_routes"]}
    assert defaults == {(f, g, d) for (f, dst, g, d, _) in truth if dst == "default"}

    nameservers = re.findall(r"^\s*nameserver\s+(\S+)", Path("/etc/resolv.conf").read_text(), re.M)
    assert routes["dns"]["nameservers"] == nameservers


# --- connections --------------------------------------------------------------------------------

LISTENER = """
import socket, sys, time
tcp = socket.create_server(("127.0.0.1", 0))
tcp6 = socket.create_server(("::1", 0), family=socket.AF_INET6)
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.bind(("127.0.0.1", 0))
print(tcp.getsockname()[1], tcp6.getsockname()[1], udp.getsockname()[1], flush=True)
peer, _ = tcp.accept()
time.sleep(600)
"""


@pytest.fixture
def listener(tmp_path):
    """A Python process named `sm-listener` (its comm) holding a TCP, a TCP6 and a UDP socket,
    with one accepted connection from this test."""
    link = tmp_path / "sm-listener"
    link.symlink_to(Path(sys.executable).resolve())
    process = subprocess.Popen([str(link), "-c", LISTENER], stdout=subprocess.PIPE, text=True)
    tcp, tcp6, udp = (int(port) for port in process.stdout.readline().split())
    client = socket.create_connection(("127.0.0.1", tcp))
    try:
        yield {"pid": process.pid, "tcp": tcp, "tcp6": tcp6, "udp": udp, "client": client}
    finally:
        client.close()
        process.kill()
        process.wait()


def ss_listening() -> set[tuple[str, str, int]]:
    """(protocol, local address, port) of every listening socket, from `ss -tulpn`."""
    found = set()
    for line in command_output("ss", "-tulpnH").splitlines():
        fields = line.split()
        address, _, port = fields[4].rpartition(":")
        address = address.strip("[]").split("%")[0]
        found.add((fields[0], "::" if address == "*" else address, int(port)))
    return found


async def test_listening_sockets_are_what_ss_lists(binary, listener):
    async with stdio_session(binary) as session:
        answer = await call(session, "network_connections", {"listening_only": True, "limit": 1000})
    ours = {(c["protocol"], c["local_address"], c["local_port"]) for c in answer["connections"]}
    assert ours == ss_listening()
    assert answer["total"] == len(answer["connections"])
    mine = [c for c in answer["connections"] if c.get("pid") == listener["pid"]]
    assert {(c["protocol"], c["local_address"], c["local_port"]) for c in mine} == {
        ("tcp", "127.0.0.1", listener["tcp"]),
        ("tcp", "::1", listener["tcp6"]),
        ("udp", "127.0.0.1", listener["udp"]),
    }
    assert {c["process"] for c in mine} == {"sm-listener"}
    assert {c["state"] for c in mine} == {"LISTEN", "UNCONN"}
    assert all(c["remote_address"] == "*" and c["remote_port"] == 0 for c in mine)


async def test_connections_filter_by_port_state_pid_and_protocol(binary, listener):
    port, pid = listener["tcp"], listener["pid"]
    client_port = listener["client"].getsockname()[1]
    async with stdio_session(binary) as session:
        by_port = await call(session, "network_connections", {"port": port})
        established = await call(session, "network_connections", {"port": port, "state": "established"})
        by_pid = await call(session, "network_connections", {"pid": pid})
        udp = await call(session, "network_connections", {"protocol": "udp", "pid": pid})
    rows = {(c["state"], c["local_port"], c["remote_port"], c.get("pid")) for c in by_port["connections"]}
    assert ("LISTEN", port, 0, pid) in rows
    assert ("ESTAB", port, client_port, pid) in rows, "the listener's end of the accepted connection"
    assert ("ESTAB", client_port, port, os.getpid()) in rows, "this test's end"
    assert {c["state"] for c in established["connections"]} == {"ESTAB"}
    assert len(established["connections"]) == 2
    assert {c["pid"] for c in by_pid["connections"]} == {pid}
    assert len(by_pid["connections"]) == 4  # three sockets and the accepted connection
    assert [(c["protocol"], c["local_port"]) for c in udp["connections"]] == [("udp", listener["udp"])]


async def test_connections_page_and_refuse_bad_filters(binary, listener):
    pid = listener["pid"]
    async with stdio_session(binary) as session:
        first = await call(session, "network_connections", {"pid": pid, "limit": 3})
        rest = await call(session, "network_connections", {"pid": pid, "limit": 3, "cursor": first["next_cursor"]})
        huge = await call(session, "network_connections", {"pid": pid, "limit": 10**9})
        negative = await session.call_tool("network_connections", {"limit": -1})
        bad_state = await session.call_tool("network_connections", {"state": "SLEEPING"})
        bad_cursor = await session.call_tool("network_connections", {"cursor": "page-2"})
    assert (len(first["connections"]), first["total"]) == (3, 4)
    assert len(rest["connections"]) == 1 and "next_cursor" not in rest
    seen = {(c["protocol"], c["local_port"], c["remote_port"]) for c in first["connections"] + rest["connections"]}
    assert len(seen) == 4
    assert len(huge["connections"]) == 4
    assert huge["notes"] == [
        "limit 1000000000 is more than one page holds: gave at most 1000; use next_cursor for the rest"
    ]
    assert negative.is_error is True
    assert negative.content[0].text == "limit -1 is out of range: give at least 1 (default 100, at most 1000)"
    assert bad_state.is_error is True
    assert bad_state.content[0].text.startswith("unknown state `SLEEPING`; valid states: LISTEN, ESTAB, ")
    assert bad_cursor.is_error is True and "cursor `page-2` is not one this tool gave" in bad_cursor.content[0].text


async def test_odd_interface_names_and_labels_cannot_forge_rows(binary):
    """An interface named with ESC and U+202E, and an address label holding a newline (both
    accepted by the kernel), printed raw: the label's newline made a fake interface row. Now
    the text has one row per interface and shows the escapes."""
    require(os.geteuid() == 0, "network namespaces need root")
    name = f"sm{uuid.uuid4().hex[:8]}"
    odd = "sm\x1b[7m\u202ex"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        for command in (
            ["link", "add", odd, "type", "veth", "peer", "name", "smq1"],
            ["addr", "add", "10.98.0.1/24", "dev", "smq1", "label", "smq1:\nlo FAKE"],
        ):
            subprocess.run(["ip", "-n", name, *command], check=True, capture_output=True)
        async with stdio_session(binary, wrapper=["ip", "netns", "exec", name]) as session:
            answer = await session.call_tool("network_interfaces", {})
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
    names = [nic["name"] for nic in answer.structured_content["interfaces"]]
    assert sorted(names) == sorted(["lo", odd, "smq1"]), names
    lines = answer.content[0].text.split("\n")
    assert len(lines) == 3, lines
    assert any(line.startswith("sm\\x1b[7m\\u{202e}x ") for line in lines), lines
    assert any("10.98.0.1/24 (smq1:\\nlo FAKE)" in line for line in lines), lines
    assert "\x1b" not in answer.content[0].text and "\u202e" not in answer.content[0].text
