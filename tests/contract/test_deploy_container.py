"""The container deployment: the image from the Dockerfile (its `prebuilt` stage: the static
binary built by scripts/test.sh, since no registry is reachable to compile in a Rust image),
started by docker-compose with compose.yaml exactly as shipped. It must answer MCP over HTTP
with a token and report the host's hostname, memory, processes and disks, not the container's,
from an unprivileged, read-only container."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

import httpx2
import pytest

from policy import require
from sdk import call, connect
from servers import TOKEN_RELOAD_WAIT, free_port
from waiting import wait_until

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
STATIC_BINARY = os.environ.get("SM_STATIC_BIN", "")


def run(*command: str, env: dict | None = None, cwd: Path | None = None, timeout: int = 300) -> str:
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)
    assert done.returncode == 0, (command, done.stdout[-2000:], done.stderr[-2000:])
    return done.stdout


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    require(bool(STATIC_BINARY) and Path(STATIC_BINARY).is_file(),
            "a static binary in SM_STATIC_BIN (scripts/test.sh builds it with crt-static)")
    require(shutil.which("docker") is not None, "Docker (scripts/testbed/docker.sh)")
    context = tmp_path_factory.mktemp("image-context")
    shutil.copy(ROOT / "Dockerfile", context / "Dockerfile")
    shutil.copytree(ROOT / "packaging", context / "packaging")
    shutil.copy(STATIC_BINARY, context / "systemmanager")
    tag = f"sm-image:test-{uuid.uuid4().hex[:8]}"
    run("docker", "build", "--quiet", "--target", "prebuilt", "-t", tag, str(context))
    yield tag
    subprocess.run(["docker", "rmi", "-f", tag], capture_output=True)


@pytest.fixture(scope="module")
def deployment(image, tmp_path_factory):
    compose = shutil.which("docker-compose")
    require(compose is not None, "docker-compose (Debian package; scripts/test.sh installs it)")
    directory = tmp_path_factory.mktemp("compose")
    shutil.copy(ROOT / "compose.yaml", directory / "compose.yaml")
    port = free_port()
    project = f"smdeploy{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "SYSTEMMANAGER_IMAGE": image, "SYSTEMMANAGER_PORT": str(port),
           "DOCKER_GID": str(os.stat("/var/run/docker.sock").st_gid)}
    base = [compose, "--project-name", project, "--file", str(directory / "compose.yaml")]
    try:
        run(*base, "up", "-d", "--no-build", env=env)
        container = run(*base, "ps", "-q", "systemmanager", env=env).strip()
        # As docs/deploy.md says: a token made inside the running container, on the volume.
        token = run(*base, "exec", "-T", "systemmanager", "/usr/local/bin/systemmanager", "token", "create",
                    "--name", "deploy", "--role", "viewer", env=env).strip().splitlines()[-1]
        url = f"http://127.0.0.1:{port}/mcp"

        def healthy():
            probe = subprocess.run(["docker", "exec", container, "/usr/local/bin/systemmanager", "healthcheck",
                                    "--http", f"127.0.0.1:{port}"], capture_output=True)
            return probe.returncode == 0

        wait_until(healthy, timeout=30, interval=0.3)
        time.sleep(TOKEN_RELOAD_WAIT)  # the server rereads its token file at most once a second
        yield {"url": url, "token": token, "container": container}
    finally:
        subprocess.run([*base, "down", "--volumes", "--timeout", "5"], capture_output=True, env=env, timeout=120)


def test_the_image_is_small_labelled_and_unprivileged(image):
    inspected = json.loads(run("docker", "image", "inspect", image))[0]
    config = inspected["Config"]
    assert config["Labels"]["io.modelcontextprotocol.server.name"].endswith("/systemmanager")
    assert config["User"] == "65532:65532"
    assert config["Healthcheck"]["Test"][:3] == ["CMD", "/usr/local/bin/systemmanager", "healthcheck"]
    # One static binary on scratch, the config and a state directory: a few tens of MB at most
    # for this debug build (the release binary is a few MB).
    layers = run("docker", "history", "--format", "{{.CreatedBy}}", image)
    assert "apt" not in layers and inspected["Size"] < 200 * 1024 * 1024
    ldd = subprocess.run(["ldd", STATIC_BINARY], capture_output=True, text=True)
    assert "not a dynamic executable" in (ldd.stdout + ldd.stderr) or "statically linked" in ldd.stdout


def test_the_container_runs_as_compose_yaml_says(deployment):
    inspected = json.loads(run("docker", "inspect", deployment["container"]))[0]
    host = inspected["HostConfig"]
    assert host["ReadonlyRootfs"] is True
    assert host["PidMode"] == "host" and host["NetworkMode"] == "host"
    assert host["CapDrop"] == ["ALL"] and not host["CapAdd"]
    assert "no-new-privileges:true" in host["SecurityOpt"]
    assert inspected["Config"]["User"] == "65532:65532"
    binds = {mount["Destination"]: mount for mount in inspected["Mounts"]}
    assert binds["/host"]["Source"] == "/" and binds["/host"]["RW"] is False
    assert binds["/var/lib/systemmanager"]["Type"] == "volume"
    # The server process, seen from the host: uid 65532, no capabilities in effect.
    pid = inspected["State"]["Pid"]
    status = Path(f"/proc/{pid}/status").read_text()
    assert "\nUid:\t65532\t65532" in status and "\nCapEff:\t0000000000000000" in status


async def test_it_reports_the_host_not_the_container(deployment):
    async with connect("http", Path("/unused"), deployment["url"], None, deployment["token"]) as session:
        await session.initialize()
        overview = await call(session, "system_overview")
        memory = await call(session, "memory_usage")
        processes = await call(session, "process_list", {"sort": "pid", "order": "asc", "limit": 5})
        mine = await call(session, "process_get", {"pid": os.getpid()})
        disks = await call(session, "disk_usage")
        containers = await call(session, "docker_container_list", {"all": True})
    assert overview["hostname"] == socket.gethostname()
    meminfo = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in Path("/proc/meminfo").read_text().splitlines()}
    assert memory["total_bytes"] == meminfo["MemTotal"]
    # The host's init, and this test's own process (the container's would be its server).
    assert processes["processes"][0]["pid"] == 1
    assert "python" in mine["name"] and mine["pid"] == os.getpid()
    root = next(fs for fs in disks["filesystems"] if fs["mount_point"] == "/")
    df = subprocess.run(["df", "--output=size", "-B1", "/"], capture_output=True, text=True, check=True)
    assert root["size_bytes"] == int(df.stdout.split()[1])
    # Read-only as the host mounted it, not as this read-only container sees it.
    options = subprocess.run(["findmnt", "-no", "OPTIONS", "/"], capture_output=True, text=True, check=True)
    assert root["read_only"] == ("ro" in options.stdout.strip().split(",")), (root, options.stdout)
    # The Docker socket is reachable through the group compose.yaml adds.
    assert any(row["id"].startswith(deployment["container"][:12]) for row in containers["containers"]), containers


def test_its_state_lives_on_the_volume_and_the_healthcheck_answers(deployment):
    answer = httpx2.get(deployment["url"].removesuffix("/mcp") + "/healthz", timeout=5)
    assert answer.status_code == 200
    # The token file written by `compose exec ... token create` is there for the server, which
    # answers the token (the MCP test above), and the audit log beside it grows.
    listing = run("docker", "exec", deployment["container"], "/usr/local/bin/systemmanager", "token", "list")
    assert "deploy" in listing and "viewer" in listing
