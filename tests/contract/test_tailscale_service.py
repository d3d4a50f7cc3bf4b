"""Publishing the server as a Tailscale Service: `systemmanager tailscale service-config` prints
a file that tailscaled's own rules accept (serveconf.py, written from ipn/conffile/serveconf.go)
and that never serves a TLS port as plain HTTP; `tailscale_status` reads this node, its services
and their approval, and the peers online from the LocalAPI (a stand-in serving tailscaled's
documented shapes)."""

from __future__ import annotations

import shlex
import subprocess

import pytest

import serveconf
from sdk import call, stdio_session
from servers import make_config, server_env
from tailscaled import FakeTailscaled, peer_status, status

pytestmark = pytest.mark.anyio


def service_config(binary, *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(binary), "tailscale", "service-config", *arguments],
                          capture_output=True, text=True, timeout=10, env=server_env())


@pytest.mark.parametrize(
    ("arguments", "endpoint", "target"),
    [
        (("--listen", "127.0.0.1:8443", "--backend-tls"), "tcp:443", "https+insecure://127.0.0.1:8443"),
        (("--listen", "[::1]:8443", "--backend-tls", "--port", "8443"), "tcp:8443", "https+insecure://[::1]:8443"),
        (("--port", "80"), "tcp:80", "http://127.0.0.1:8080"),
        (("--port", "80", "--listen", "9000"), "tcp:80", "http://127.0.0.1:9000"),
        (("--port", "80", "--unix", "/run/systemmanager/mcp.sock"), "tcp:80", "http://unix:/run/systemmanager/mcp.sock"),
    ],
)
def test_the_file_passes_tailscaleds_rules(binary, arguments, endpoint, target):
    done = service_config(binary, "--service", "svc:systemmanager", *arguments)
    assert done.returncode == 0, done.stderr
    document = serveconf.check(done.stdout)
    assert document["services"] == {"svc:systemmanager": {"endpoints": {endpoint: target}}}
    # The CLI form is in the comments.
    assert "//   tailscale serve --service=svc:systemmanager --http" in done.stdout


@pytest.mark.parametrize("arguments", [(), ("--listen", "9000"), ("--unix", "/run/systemmanager/mcp.sock")])
def test_tls_in_front_of_plain_http_is_the_cli_forms_job(binary, arguments):
    """No file form puts TLS in front of a plain-HTTP server safely: http:// would be plain HTTP
    on 443, and a raw forward (tls-terminated-tcp://) would let callers forge X-Forwarded-For."""
    done = service_config(binary, "--service", "svc:systemmanager", *arguments)
    assert done.returncode == 1 and done.stdout == ""
    assert "tailscale serve --service=svc:systemmanager --https=443 http://" in done.stderr
    assert "19724" in done.stderr and "X-Forwarded-For" in done.stderr


def test_the_cli_line_is_safe_to_paste(binary, tmp_path):
    odd = "/run/my sock/it's $(touch pwned).sock"
    done = service_config(binary, "--service", "svc:mcp", "--unix", odd, "--format", "cli")
    assert done.returncode == 0, done.stderr
    words = shlex.split(done.stdout)
    assert words == ["tailscale", "serve", "--service=svc:mcp", "--https=443", f"http://unix:{odd}"]


@pytest.mark.parametrize(
    "arguments",
    [
        ("--unix", "relative.sock", "--port", "80"),
        ("--unix", "/run/a\n\"x\": 1", "--port", "80"),
        ("--listen", "127.0.0.1:0", "--port", "80"),
        ("--listen", "0.0.0.0:8080", "--port", "80"),
        ("--listen", "10.1.2.3:8080", "--port", "80"),
        ("--port", "0"),
    ],
)
def test_backends_tailscale_cannot_reach_safely_are_refused(binary, arguments):
    done = service_config(binary, "--service", "svc:systemmanager", *arguments)
    assert done.returncode != 0 and done.stdout == "", done


def test_the_cli_form(binary):
    done = service_config(binary, "--service", "svc:mcp", "--unix", "/run/systemmanager/mcp.sock", "--format", "cli")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "tailscale serve --service=svc:mcp --https=443 http://unix:/run/systemmanager/mcp.sock\n"


@pytest.mark.parametrize("name", ["systemmanager", "svc:", "svc:-mcp", "svc:mcp_1", "svc:a.b", "svc:" + "a" * 64])
def test_bad_service_names_are_refused(binary, name):
    done = service_config(binary, "--service", name, "--port", "80")
    assert done.returncode != 0 and done.stdout == ""
    assert "svc:NAME" in done.stderr or "DNS label" in done.stderr


@pytest.mark.parametrize(
    "trap",
    [
        # Each is a way a hand-written file goes wrong; the checker (and tailscaled) refuse it.
        '{"version": "0.0.1", "services": {"svc:a": {"endpoints": {"tcp:443": "http://127.0.0.1:8080"}}}}',
        '{"version": "0.0.1", "services": {"svc:a": {"endpoints": {"udp:53": "tcp://127.0.0.1:53"}}}}',
        '{"version": "0.0.1", "services": {"svc:a": {"endpoints": {"443": "tcp://127.0.0.1:8080"}}}}',
        '{"version": "0.0.1", "services": {"svc:a": {"endpoints": {"tcp:443": "tun:x"}}}}',
        '{"version": "0.0.1", "services": {"svc:a": {"endpoints": {"tcp:443": "https://localhost:3000/foo"}}}}',
        '{"version": "0.0.1", "services": {"svc:a": {"endpoints": {}, "funnel": true}}}',
        '{"version": "0.0.1", "services": {"svc:a": {"version": "0.0.1", "endpoints": {}}}}',
        '{"version": "0.0.1", "services": {"svc:a": {}}}',
        '{"version": "0.0.2", "services": {}}',
        '{"services": {}}',
        '{"version": "0.0.1", "services": {"a": {"endpoints": {}}}}',
    ],
)
def test_the_checker_refuses_each_trap(trap):
    with pytest.raises(ValueError):
        serveconf.check(trap)


@pytest.fixture
def tailnet(tmp_path):
    this_node = peer_status(
        "web1", ["100.64.0.10", "fd7a:115c:a1e0::a"], True, tags=["tag:server"],
        cap_map={"service-host": [{"svc:systemmanager": ["100.100.0.5", "fd7a:115c:a1e0::5"]}]},
    )
    peers = [
        peer_status("laptop", ["100.64.0.1"], True, os="macOS"),
        peer_status("ci-runner", ["100.64.0.7"], True, tags=["tag:ci"]),
        peer_status("old-phone", ["100.64.0.9"], False, os="iOS"),
    ]
    daemon = FakeTailscaled(
        tmp_path / "tailscaled.sock", {},
        {
            "/localapi/v0/status": status(this_node, peers),
            # Advertised: systemmanager (approved above) and grafana (not yet approved).
            "/localapi/v0/prefs": {"ControlURL": "https://controlplane.tailscale.com", "RouteAll": False,
                                   "WantRunning": True, "AdvertiseServices": ["svc:grafana", "svc:systemmanager"]},
        },
    )
    yield daemon
    daemon.close()


async def test_tailscale_status_reads_the_node_services_and_peers(binary, tailnet):
    config = make_config(f'[tailscale]\nsocket = "{tailnet.path}"\n')
    async with stdio_session(binary, "--config", str(config)) as session:
        answer = await call(session, "tailscale_status")
    assert answer["backend_state"] == "Running" and answer["tailnet"] == "admin@example.com"
    assert answer["magic_dns_suffix"] == "example.ts.net"
    assert answer["self"] == {"host_name": "web1", "dns_name": "web1.example.ts.net", "os": "linux",
                              "ips": ["100.64.0.10", "fd7a:115c:a1e0::a"], "tags": ["tag:server"], "online": True}
    assert answer["services"] == [
        {"name": "svc:grafana", "advertised": True, "approved": False},
        {"name": "svc:systemmanager", "advertised": True, "approved": True,
         "addresses": ["100.100.0.5", "fd7a:115c:a1e0::5"]},
    ]
    assert (answer["peers_total"], answer["peers_online"]) == (3, 2)
    assert [peer["dns_name"] for peer in answer["online"]] == ["ci-runner.example.ts.net", "laptop.example.ts.net"]
    assert answer["online"][0]["tags"] == ["tag:ci"]
    assert [request["path"] for request in tailnet.requests].count("/localapi/v0/status") == 1


async def test_tailscale_status_without_tailscaled_says_so(binary, tmp_path):
    config = make_config(f'[tailscale]\nenabled = true\nsocket = "{tmp_path}/missing.sock"\n'
                         '[tailscale.logins]\n"alice@example.com" = "viewer"\n')
    async with stdio_session(binary, "--config", str(config)) as session:
        answer = await session.call_tool("tailscale_status", {})
    assert answer.is_error
    assert "cannot reach tailscaled" in answer.content[0].text and "tailscale.socket" in answer.content[0].text
