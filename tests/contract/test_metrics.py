"""GET /metrics, scraped by a real Prometheus (Debian's `prometheus`, started here) and queried
back through its HTTP API: the host's figures under node_exporter's names checked against
/proc, the server's own counters against the calls this test made. One server serves /metrics
on its own listener without credentials, another behind the same bearer token as /mcp."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import httpx2
import pytest

from policy import require
from sdk import call, connect
from servers import free_port, start_server
from waiting import wait_until

pytestmark = pytest.mark.anyio


def meminfo_bytes(field: str) -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        name, value = line.split(":", 1)
        if name == field:
            return int(value.split()[0]) * 1024
    raise KeyError(field)


@pytest.fixture
def prometheus(tmp_path):
    """Starts Prometheus on loopback with the given scrape jobs; yields a query function."""
    binary = shutil.which("prometheus")
    require(binary is not None, "Prometheus (Debian package `prometheus`; scripts/test.sh installs it)")
    processes = []

    def start(jobs: list[str]):
        port = free_port()
        config = tmp_path / "prometheus.yml"
        config.write_text("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n" + "".join(jobs))
        process = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        processes.append(process)
        api = f"http://127.0.0.1:{port}/api/v1/query"

        def query(expression: str) -> list[dict]:
            answer = httpx2.get(api, params={"query": expression}, timeout=5).json()
            assert answer["status"] == "success", answer
            return answer["data"]["result"]

        def ready():
            try:
                return httpx2.get(f"http://127.0.0.1:{port}/-/ready", timeout=1).status_code == 200
            except httpx2.HTTPError:
                return False

        wait_until(ready, timeout=60, interval=0.3)
        return query

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=20)


def scrape_job(name: str, target: str, token: str | None = None) -> str:
    job = f"  - job_name: {name}\n    static_configs:\n      - targets: ['{target}']\n"
    if token:
        job += f"    authorization:\n      type: Bearer\n      credentials: {token}\n"
    return job


def value(results: list[dict]) -> float:
    assert len(results) == 1, results
    return float(results[0]["value"][1])


async def test_prometheus_scrapes_host_and_server_figures(binary, prometheus, tmp_path):
    metrics_port = free_port()
    own = start_server(binary, "--http", "127.0.0.1:0",
                       config=f'[metrics]\nenabled = true\nlisten = "127.0.0.1:{metrics_port}"\n', role="viewer")
    shared = start_server(binary, "--http", "127.0.0.1:0", config="[metrics]\nenabled = true\n", role="viewer")
    # Calls to count: two answered, one refused (a viewer may not restart services), one unknown.
    async with connect("http", binary, shared.url, None, shared.token) as session:
        await session.initialize()
        await call(session, "system_overview")
        await call(session, "system_overview")
        denied = await session.call_tool("process_signal", {"pid": 1, "signal": "SIGCONT"})
        assert denied.is_error
    query = prometheus([
        scrape_job("own", f"127.0.0.1:{metrics_port}"),
        scrape_job("shared", shared.url.removeprefix("http://").removesuffix("/mcp"), shared.token),
    ])
    wait_until(lambda: len(query('up == 1')) == 2, timeout=30, interval=0.5)

    # node_exporter's names and units, against /proc.
    total = value(query('node_memory_MemTotal_bytes{job="own"}'))
    assert total == meminfo_bytes("MemTotal")
    available = value(query('node_memory_MemAvailable_bytes{job="shared"}'))
    assert 0 < available <= total
    cpus = query('count by (cpu) (node_cpu_seconds_total{job="own",mode="idle"})')
    assert len(cpus) == len([line for line in Path("/proc/stat").read_text().splitlines()
                             if line.startswith("cpu") and line[3].isdigit()])
    btime = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime"))
    assert value(query('node_boot_time_seconds{job="own"}')) == btime
    load = value(query('node_load1{job="own"}'))
    assert abs(load - float(Path("/proc/loadavg").read_text().split()[0])) < 5
    root = query('node_filesystem_size_bytes{job="own",mountpoint="/"}')
    df = subprocess.run(["df", "--output=size", "-B1", "/"], capture_output=True, text=True, check=True)
    assert float(root[0]["value"][1]) == float(df.stdout.split()[1]), (root, df.stdout)
    if Path("/proc/pressure/cpu").exists():
        assert value(query('node_pressure_cpu_waiting_seconds_total{job="own"}')) >= 0

    # The server's own counters: what this test did, by tool and outcome.
    assert value(query('systemmanager_calls_total{job="shared",tool="system_overview",outcome="ok"}')) == 2
    assert value(query('systemmanager_calls_total{job="shared",tool="process_signal",outcome="denied"}')) == 1
    assert value(query('systemmanager_call_duration_seconds_count{job="shared",tool="system_overview"}')) == 2
    assert value(query('systemmanager_audit_failures_total{job="shared"}')) == 0
    assert value(query('systemmanager_build_info{job="own"}')) == 1
    assert not query('systemmanager_calls_total{job="own"}')
    own.stop()
    shared.stop()


async def test_metrics_behind_the_credential_and_off_by_default(binary):
    shared = start_server(binary, "--http", "127.0.0.1:0", config="[metrics]\nenabled = true\n", role="viewer")
    url = shared.url.removesuffix("/mcp") + "/metrics"
    assert httpx2.get(url, timeout=5).status_code == 401
    assert httpx2.get(url, headers={"Authorization": "Bearer sm_wrong"}, timeout=5).status_code == 401
    answer = httpx2.get(url, headers={"Authorization": f"Bearer {shared.token}"}, timeout=5)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/openmetrics-text")
    assert "# TYPE node_cpu_seconds counter" in answer.text and answer.text.rstrip().endswith("# EOF")
    # A foreign Host is refused before credentials are looked at, as for /mcp.
    assert httpx2.get(url, headers={"Host": "evil.example", "Authorization": f"Bearer {shared.token}"},
                      timeout=5).status_code in (403, 421)
    plain = start_server(binary, "--http", "127.0.0.1:0", role="viewer")
    off = httpx2.get(plain.url.removesuffix("/mcp") + "/metrics", headers={"Authorization": f"Bearer {plain.token}"}, timeout=5)
    assert off.status_code == 404
