"""The Docker tools against a real Docker Engine (scripts/testbed/docker.sh starts one and
imports a busybox image), through the official Python client; every answer is checked against
`docker inspect` / `docker ps` / `docker top`. A second, private dockerd is stopped and started
mid-session to show the tools fail clearly and then recover without a server restart."""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest

from policy import require
from sdk import call, connect, refusal, stdio_session
from servers import make_config, start_server
from waiting import wait_until, wait_until_async

pytestmark = pytest.mark.anyio

IMAGE = os.environ.get("SM_DOCKER_IMAGE", "sm-busybox:test")
# Prints known lines on both streams, then ticks.
# A config whose local (stdio) caller is an admin, with the admin tier on.
ADMIN = '[security]\nadmin_tier = true\nlocal_role = "admin"\n'
SCRIPT = "echo line-one; echo line-two >&2; i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done"


def docker(*args: str, host: str | None = None) -> str:
    env = dict(os.environ)
    if host:
        env["DOCKER_HOST"] = host
    return subprocess.run(["docker", *args], check=True, capture_output=True, text=True, env=env).stdout.strip()


def docker_inspect(container: str) -> dict:
    return json.loads(docker("inspect", container))[0]


@pytest.fixture(scope="module")
def engine():
    require(shutil.which("docker") is not None, "the docker CLI (scripts/testbed/docker.sh installs it)")
    ready = subprocess.run(["docker", "info"], capture_output=True).returncode == 0
    require(ready, "a running dockerd (scripts/testbed/docker.sh starts one)")
    present = subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True).returncode == 0
    require(present, f"the test image {IMAGE} (scripts/testbed/docker.sh imports it)")
    return IMAGE


@pytest.fixture
def container(engine):
    name = f"sm-test-{uuid.uuid4().hex[:8]}"
    docker("create", "--name", name, "--label", f"sm-test={name}", "-e", "PLAIN=visible", "-e", "API_TOKEN=hunter2", engine, "sh", "-c", SCRIPT)
    yield name
    subprocess.run(["docker", "rm", "-f", name], capture_output=True)


async def test_a_container_lifecycle_checked_against_docker(binary, engine):
    """create → start → stats → logs → top → pause → restart → stop → remove, all through the
    official client, each step checked against docker inspect / ps / top."""
    container = f"sm-test-{uuid.uuid4().hex[:8]}"
    admin_config = make_config(ADMIN)
    try:
        async with stdio_session(binary, "--config", str(admin_config)) as session:
            made = await call(session, "docker_container_create", {
                "image": engine, "name": container, "command": ["sh", "-c", SCRIPT],
                "labels": {"sm-test": container}, "env": {"PLAIN": "visible", "API_TOKEN": "hunter2"},
            })
            as_admin = await call(session, "docker_container_inspect", {"container": container, "fields": ["environment"]})
            await lifecycle_as_operator(binary, container)
            removed = await call(session, "docker_container_remove", {"container": container})
            listed_after = docker("ps", "-a", "--filter", f"name=^{container}$", "--format", "{{.Names}}")
    finally:
        subprocess.run(["docker", "rm", "-f", container], capture_output=True)
    assert made["state"] == "created" and made["name"] == container
    assert sorted(as_admin["environment"]) == ["API_TOKEN=[redacted]", "PATH=/bin", "PLAIN=visible"], "admins see values, never secret-looking ones"
    assert removed == {"kind": "container", "name": container} and listed_after == ""


async def lifecycle_as_operator(binary, container):
    async with stdio_session(binary) as session:
        info = await call(session, "docker_info", {})
        created = await call(session, "docker_container_list", {"all": True, "name": container})
        started = await call(session, "docker_container_start", {"container": container})
        again = await call(session, "docker_container_start", {"container": container})
        await wait_until_async(lambda: "tick 3" in docker("logs", container), timeout=10, interval=0.1)  # a few ticks
        running = await call(session, "docker_container_list", {"label": [f"sm-test={container}"], "status": ["running"]})
        inspected = await call(session, "docker_container_inspect", {"container": container})
        state_only = await call(session, "docker_container_inspect", {"container": container, "fields": ["state"]})
        truth = docker_inspect(container)
        stats = await call(session, "docker_container_stats", {"containers": [container]})
        logs = await call(session, "docker_container_logs", {"container": container, "tail": 10_000})
        stdout_only = await call(session, "docker_container_logs", {"container": container, "tail": 3, "stderr": False})
        top = await call(session, "docker_container_top", {"container": container})
        docker_top = docker("top", container)
        paused = await call(session, "docker_container_pause", {"container": container})
        paused_truth = docker_inspect(container)["State"]["Status"]
        unpaused = await call(session, "docker_container_unpause", {"container": container})
        restarted = await call(session, "docker_container_restart", {"container": container, "timeout_seconds": 1})
        restarted_truth = docker_inspect(container)
        stopped = await call(session, "docker_container_stop", {"container": container, "timeout_seconds": 1})
        stopped_truth = docker_inspect(container)["State"]

    assert info["server_version"] == docker("version", "--format", "{{.Server.Version}}")
    assert info["containers"] >= 1 and info["images"] >= 1
    assert [row["name"] for row in created["containers"]] == [container]
    assert created["containers"][0]["state"] == "created"
    assert created["containers"][0]["id"] == truth["Id"][:12]
    assert (started["state_before"], started["state_after"], started["changed"]) == ("created", "running", True)
    assert (again["state_after"], again["changed"]) == ("running", False)
    assert [row["name"] for row in running["containers"]] == [container]
    assert inspected["id"] == truth["Id"] and inspected["state"]["pid"] == truth["State"]["Pid"] > 0
    assert inspected["state"]["status"] == "running" and inspected["image"] == IMAGE
    assert inspected["config"]["command"] == ["sh", "-c", SCRIPT]
    # The stdio caller is an operator: environment values are not shown below admin.
    assert sorted(inspected["environment"]) == sorted(["API_TOKEN=[redacted]", "PLAIN=[redacted]", "PATH=[redacted]"])
    assert inspected["labels"] == {"sm-test": container}
    assert inspected["host_config"]["privileged"] is False
    assert set(state_only) == {"id", "name", "image", "image_id", "created", "state"}
    [row] = stats["containers"]
    assert row["name"] == container and row["id"] == truth["Id"][:12]
    assert row["pids"] >= 2 and row["memory_used_bytes"] > 0 and row["memory_limit_bytes"] > 0
    assert 0 <= row["cpu_percent"] <= 100 * os.cpu_count()
    lines = [(line["stream"], line["text"]) for line in logs["lines"]]
    assert ("stdout", "line-one") in lines and ("stderr", "line-two") in lines
    assert any(text.startswith("tick ") for _, text in lines)
    assert len(stdout_only["lines"]) == 3 and all(line["stream"] == "stdout" for line in stdout_only["lines"])
    # The shell is there for good; its `sleep` children come and go every 0.2 s.
    assert top["titles"] == docker_top.splitlines()[0].split()
    pid_column = top["titles"].index("PID")
    assert str(truth["State"]["Pid"]) in {process[pid_column] for process in top["processes"]}
    assert str(truth["State"]["Pid"]) in {line.split()[1] for line in docker_top.splitlines()[1:]}
    assert (paused["state_after"], paused_truth) == ("paused", "paused")
    assert unpaused["state_after"] == "running"
    assert restarted["state_after"] == "running" and restarted_truth["State"]["Running"] is True
    assert restarted_truth["State"]["StartedAt"] > truth["State"]["StartedAt"]
    assert (stopped["state_before"], stopped["state_after"]) == ("running", "exited")
    assert stopped["exit_code"] == stopped_truth["ExitCode"] and stopped_truth["Status"] == "exited"


async def test_bad_references_and_missing_containers_are_clear(binary, engine):
    async with stdio_session(binary) as session:
        missing = await refusal(session, "docker_container_inspect", {"container": "sm-no-such-container"})
        missing_start = await refusal(session, "docker_container_start", {"container": "sm-no-such-container"})
        traversal = await refusal(session, "docker_container_inspect", {"container": "../images/json"})
        empty = await refusal(session, "docker_container_logs", {"container": ""})
        bad_time = await refusal(session, "docker_container_logs", {"container": "x", "since": "yesterday"})
        timeout_on_start = await refusal(session, "docker_container_start", {"container": "x", "timeout_seconds": 5})
        too_many = await refusal(session, "docker_container_stats", {"containers": []})
    assert missing == "No such container: sm-no-such-container"
    assert missing_start == "No such container: sm-no-such-container"
    assert traversal == "`../images/json` is not a container id or name: Docker names are letters, digits, `_`, `.` and `-`, starting with a letter or digit"
    assert empty.startswith("`` is not a container id or name")
    assert bad_time.startswith("`yesterday` is not a time: give RFC 3339")
    assert timeout_on_start == "timeout_seconds applies to stop and restart, not start"
    assert too_many.startswith("containers: give 1 to 100 ids or names")


async def test_roles_over_http_viewer_reads_and_cannot_stop(binary, container):
    docker("start", container)
    server = start_server(binary, "--http", "127.0.0.1:0", role="viewer")
    try:
        async with connect("http", binary, server.url, None, server.token) as session:
            await session.initialize()
            names = {tool.name for tool in (await session.list_tools()).tools}
            listed = await call(session, "docker_container_list", {"name": container})
            denied = await refusal(session, "docker_container_stop", {"container": container})
    finally:
        assert server.stop() == 0
    assert "docker_container_list" in names and "docker_container_stop" not in names
    assert [row["name"] for row in listed["containers"]] == [container]
    assert "operate" in denied and docker_inspect(container)["State"]["Running"] is True


@pytest.fixture
def private_engine(engine, tmp_path_factory):
    """A second dockerd on its own socket, data root and network namespace, which the test may
    stop and start."""
    directory = Path(tmp_path_factory.mktemp("dockerd"))
    socket = directory / "docker.sock"
    # In a network namespace of its own: a dockerd started with `--bridge none` deletes the
    # docker0 interface it finds, which would be the main daemon's.
    command = [
        "unshare", "--net", "dockerd", "--host", f"unix://{socket}", "--data-root", str(directory / "data"),
        "--exec-root", str(directory / "exec"), "--pidfile", str(directory / "docker.pid"),
        "--bridge", "none", "--iptables=false", "--ip6tables=false",
    ]
    processes = []

    def answers() -> bool:
        return subprocess.run(["docker", "info"], capture_output=True, env={**os.environ, "DOCKER_HOST": f"unix://{socket}"}).returncode == 0

    def start():
        log = open(directory / "dockerd.log", "a")
        processes.append(subprocess.Popen(command, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True))
        if not wait_until(answers, timeout=30, interval=0.25):
            raise AssertionError(f"the private dockerd did not start:\n{(directory / 'dockerd.log').read_text()[-2000:]}")

    def stop():
        process = processes[-1]
        process.terminate()
        process.wait(timeout=30)

    start()
    yield socket, start, stop
    if processes and processes[-1].poll() is None:
        stop()


async def test_a_stopped_daemon_is_a_clear_error_and_tools_recover(binary, private_engine):
    socket, start, stop = private_engine
    config = make_config(f'[docker]\nhost = "unix://{socket}"\n')
    async with stdio_session(binary, "--config", str(config)) as session:
        before = await call(session, "docker_info", {})
        stop()
        down = await refusal(session, "docker_info", {})
        down_list = await refusal(session, "docker_container_list", {})
        start()
        after = await call(session, "docker_info", {})
    assert before["host"] == after["host"] == f"unix://{socket}"
    assert down.startswith(f"Docker is not reachable at unix://{socket}: ")
    assert "is dockerd running?" in down and "docker.host in the config, or DOCKER_HOST" in down
    assert down_list.startswith(f"Docker is not reachable at unix://{socket}: ")
    assert after["server_version"] == before["server_version"]



async def test_networks_created_connected_disconnected_removed(binary, container):
    docker("start", container)
    network = f"sm-net-{uuid.uuid4().hex[:8]}"
    config = make_config(ADMIN)
    try:
        async with stdio_session(binary, "--config", str(config)) as session:
            created = await call(session, "docker_network_create", {"name": network, "subnet": "10.231.7.0/24", "gateway": "10.231.7.1", "labels": {"sm-test": "net"}})
            listed = await call(session, "docker_network_list", {"name": network})
            connected = await call(session, "docker_network_connect", {"network": network, "container": container, "aliases": ["web"]})
            inspected = await call(session, "docker_network_inspect", {"network": network})
            truth = json.loads(docker("network", "inspect", network))[0]
            disconnected = await call(session, "docker_network_disconnect", {"network": network, "container": container})
            after = json.loads(docker("network", "inspect", network))[0]
            removed = await call(session, "docker_network_remove", {"network": network})
            builtin = await refusal(session, "docker_network_remove", {"network": "bridge"})
            gone = await refusal(session, "docker_network_inspect", {"network": network})
    finally:
        subprocess.run(["docker", "network", "rm", network], capture_output=True)
    assert created["id"] == truth["Id"]
    assert [(row["name"], row["subnets"], row["driver"]) for row in listed["networks"]] == [(network, ["10.231.7.0/24"], "bridge")]
    assert connected["container_networks"] == sorted(["bridge", network])
    [endpoint] = truth["Containers"].values()
    assert inspected["containers"] == {container: endpoint["IPv4Address"]}
    assert endpoint["IPv4Address"].startswith("10.231.7.")
    assert inspected["gateways"] == ["10.231.7.1"] and inspected["labels"] == {"sm-test": "net"}
    assert disconnected["container_networks"] == ["bridge"] and after["Containers"] == {}
    assert removed == {"kind": "network", "name": network}
    assert builtin == "`bridge` is one of Docker's built-in networks, which cannot be removed"
    assert gone == f"network {network} not found"


async def test_volumes_listed_inspected_removed(binary, engine):
    volume = f"sm-vol-{uuid.uuid4().hex[:8]}"
    docker("volume", "create", "--label", "sm-test=vol", volume)
    operator_config = make_config()
    try:
        async with stdio_session(binary, "--config", str(operator_config)) as session:
            listed = await call(session, "docker_volume_list", {"name": volume})
            inspected = await call(session, "docker_volume_inspect", {"volume": volume})
            names = {tool.name for tool in (await session.list_tools()).tools}
        async with stdio_session(binary, "--config", str(make_config(ADMIN))) as session:
            removed = await call(session, "docker_volume_remove", {"volume": volume})
            again = await refusal(session, "docker_volume_remove", {"volume": volume})
    finally:
        subprocess.run(["docker", "volume", "rm", volume], capture_output=True)
    truth_mountpoint = f"/var/lib/docker/volumes/{volume}/_data"
    assert [(row["name"], row["driver"], row["labels"]) for row in listed["volumes"]] == [(volume, "local", {"sm-test": "vol"})]
    assert inspected["mountpoint"] == truth_mountpoint and inspected["scope"] == "local"
    assert "docker_volume_remove" not in names, "an operator does not see admin tools"
    assert removed == {"kind": "volume", "name": volume}
    assert again == f"get {volume}: no such volume"
    assert subprocess.run(["docker", "volume", "inspect", volume], capture_output=True).returncode != 0


PASSWORD_FILE = Path("/var/lib/sm-testbed/registry.password")


def registry_up(port: int) -> bool:
    return subprocess.run(["curl", "-s", "-o", "/dev/null", f"http://127.0.0.1:{port}/v2/"]).returncode == 0


@pytest.fixture
def registry_images(tmp_path):
    """An image of this test's own — a random layer no other image has — pushed to both local
    registries under names no other run uses, and absent from the engine: pulling it really
    downloads, and a second suite running beside this one cannot take it away. Its own Docker
    client config holds the registry login, so the machine's is left alone."""
    require(registry_up(5000) and registry_up(5001), "the local registries (scripts/testbed/docker.sh starts them)")
    unique = uuid.uuid4().hex[:12]
    public, private = f"127.0.0.1:5000/sm-pull-{unique}:1", f"127.0.0.1:5001/sm-private-{unique}:1"
    layer = tmp_path / "rootfs"
    layer.mkdir()
    (layer / "random").write_bytes(os.urandom(1024 * 1024))
    built = f"sm-pull-build-{unique}"
    subprocess.run(f"tar -C {layer} -c . | docker import - {built}", shell=True, check=True, capture_output=True)
    client = {**os.environ, "DOCKER_CONFIG": str(tmp_path / "docker-config")}
    try:
        for name in (public, private):
            docker("tag", built, name)
        subprocess.run(["docker", "push", "-q", public], check=True, capture_output=True, env=client)
        subprocess.run(["docker", "login", "-u", "sm-test", "--password-stdin", "127.0.0.1:5001"],
                       input=PASSWORD_FILE.read_text(), check=True, capture_output=True, text=True, env=client)
        subprocess.run(["docker", "push", "-q", private], check=True, capture_output=True, env=client)
    finally:
        subprocess.run(["docker", "rmi", "-f", built, public, private], capture_output=True)
    yield public, private
    subprocess.run(["docker", "rmi", "-f", public, private], capture_output=True)


async def test_images_pulled_with_progress_inspected_and_removed(binary, engine, registry_images):
    PUBLIC, PRIVATE = registry_images
    config = make_config(ADMIN + f'[docker.registries."127.0.0.1:5001"]\nusername = "sm-test"\npassword_file = "{PASSWORD_FILE}"\n')
    no_login = make_config(ADMIN)
    progress = []

    async def on_progress(done, total, message):
        progress.append((done, total, message))

    try:
        async with stdio_session(binary, "--config", str(config)) as session:
            pulled = await session.call_tool("docker_image_pull", {"image": PUBLIC}, progress_callback=on_progress)
            again = await call(session, "docker_image_pull", {"image": PUBLIC})
            private = await call(session, "docker_image_pull", {"image": PRIVATE})
            inspected = await call(session, "docker_image_inspect", {"image": PUBLIC})
            listed = await call(session, "docker_image_list", {"reference": PUBLIC})
            truth = json.loads(docker("image", "inspect", PUBLIC))[0]
            removed = await call(session, "docker_image_remove", {"image": PUBLIC})
            missing = await refusal(session, "docker_image_inspect", {"image": PUBLIC})
            invalid = await refusal(session, "docker_image_pull", {"image": "Not/A:Valid:Ref"})
        async with stdio_session(binary, "--config", str(no_login)) as session:
            subprocess.run(["docker", "rmi", PRIVATE], capture_output=True)
            unauthorized = await refusal(session, "docker_image_pull", {"image": PRIVATE})
    finally:
        for image in (PUBLIC, PRIVATE):
            subprocess.run(["docker", "rmi", image], capture_output=True)
    assert pulled.is_error is False, pulled.content[0].text
    answer = pulled.structured_content
    assert answer["image"] == PUBLIC and answer["status"] == f"Downloaded newer image for {PUBLIC}"
    assert answer["id"] == truth["Id"] and answer["layers"] >= 1 and answer["authenticated"] is False
    assert progress, "progress notifications arrive while layers download"
    assert all(total and 0 <= done <= total for done, total, _ in progress)
    assert progress[-1][0] == progress[-1][1], "the last notification says the download is complete"
    assert again["status"] == f"Image is up to date for {PUBLIC}"
    assert private["authenticated"] is True and private["status"] == f"Downloaded newer image for {PRIVATE}"
    # Both registries hold the same image, so both tags name one id.
    assert inspected["id"] == truth["Id"] and sorted(inspected["tags"]) == sorted(truth["RepoTags"]) == sorted([PUBLIC, PRIVATE])
    assert inspected["layers"] == len(truth["RootFS"]["Layers"]) and inspected["size_bytes"] == truth["Size"]
    assert [row["tags"] for row in listed["images"]] == [[PUBLIC]]
    # The other tag keeps the image: only this reference goes.
    assert PUBLIC in removed["untagged"] and removed["deleted"] == []
    assert missing.endswith(f"No such image: {PUBLIC}")  # the engine's own words
    assert invalid.startswith("`Not/A:Valid:Ref` is not a valid image reference")
    assert unauthorized.startswith(f'pulling {PRIVATE}: 127.0.0.1:5001 wants a login: add [docker.registries."127.0.0.1:5001"] with username and password_file to the server\'s config (')


async def test_an_image_pulled_by_digest_only_is_listed_with_its_repository(binary, engine, registry_images):
    """`docker images` shows such an image as its repository with no tag; so do we, with the
    digest, and the number of containers that use it (the engine leaves it -1 on API 1.41)."""
    PUBLIC, _ = registry_images
    repository = PUBLIC.rsplit(":", 1)[0]
    docker("pull", "-q", PUBLIC)
    digest = next(d for d in json.loads(docker("image", "inspect", PUBLIC))[0]["RepoDigests"] if d.startswith(repository + "@"))
    image_id = json.loads(docker("image", "inspect", PUBLIC))[0]["Id"]
    for tag in json.loads(docker("image", "inspect", PUBLIC))[0]["RepoTags"]:
        docker("rmi", tag)
    users = []
    try:
        docker("pull", "-q", digest)
        assert json.loads(docker("image", "inspect", digest))[0]["RepoTags"] == [], "pulled by digest only"
        users = [docker("create", "--label", "sm-digest-test=1", image_id, "true").strip() for _ in range(2)]
        async with stdio_session(binary) as session:
            answer = await session.call_tool("docker_image_list", {"reference": repository})
        # The engine's own count, as `docker system df -v` asks for it.
        df = json.loads(docker("system", "df", "-v", "--format", "{{json .Images}}"))
        counted = int(next(image for image in df if image["ID"] == image_id)["Containers"])
    finally:
        for user in users:
            subprocess.run(["docker", "rm", "-f", user], capture_output=True)
        subprocess.run(["docker", "rmi", "-f", image_id], capture_output=True)
    assert answer.is_error is False, answer.content[0].text
    (row,) = [row for row in answer.structured_content["images"] if digest in row.get("digests", [])]
    assert row["tags"] == [] and row["digests"] == [digest]
    assert row["containers"] == counted == len(users) == 2
    text = answer.content[0].text
    assert f"{repository}:<none> ({digest.split('@', 1)[1]})" in text and "2 containers" in text, text


async def test_containers_removed_only_when_stopped_or_forced(binary, container):
    docker("start", container)
    async with stdio_session(binary, "--config", str(make_config(ADMIN))) as session:
        refused = await refusal(session, "docker_container_remove", {"container": container})
        still_there = docker_inspect(container)["State"]["Running"]
        removed = await call(session, "docker_container_remove", {"container": container, "force": True})
    assert refused.startswith("conflict: You cannot remove a running container")
    assert still_there is True
    assert removed == {"kind": "container", "name": container}
    assert subprocess.run(["docker", "inspect", container], capture_output=True).returncode != 0


def exists(container: str) -> bool:
    return subprocess.run(["docker", "inspect", container], capture_output=True).returncode == 0


async def test_create_and_run_under_the_create_policy(binary, engine, tmp_path):
    allowed_root = tmp_path / "data"
    (allowed_root / "app").mkdir(parents=True)
    (allowed_root / "app" / "hello.txt").write_text("from the host\n")
    (allowed_root / "escape").symlink_to("/etc")
    config = make_config(ADMIN + f'[docker.policy]\nbind_mount_roots = ["{allowed_root}"]\n')
    base = f"sm-create-{uuid.uuid4().hex[:8]}"
    names = [f"{base}-{n}" for n in range(8)]
    try:
        async with stdio_session(binary, "--config", str(config)) as session:
            created = await call(session, "docker_container_create", {
                "image": engine, "name": names[0], "command": ["sleep", "600"],
                "env": {"MODE": "test"}, "labels": {"sm-test": "create"},
                "ports": ["127.0.0.1:18080:80"], "restart": "on-failure", "memory_bytes": 64 * 1024 * 1024, "cpus": 0.5,
                "mounts": [{"type": "bind", "source": f"{allowed_root}/app", "target": "/data", "read_only": True},
                           {"type": "tmpfs", "target": "/scratch"}],
            })
            create_truth = docker_inspect(names[0])
            ran = await call(session, "docker_container_run", {
                "image": engine, "name": names[1], "command": ["sh", "-c", "cat /data/hello.txt; sleep 600"],
                "mounts": [{"type": "bind", "source": f"{allowed_root}/app", "target": "/data", "read_only": True}],
            })
            ran_truth = docker_inspect(names[1])
            await wait_until_async(lambda: "from the host" in docker("logs", names[1]), interval=0.1)
            logs = await call(session, "docker_container_logs", {"container": names[1]})
            refusals = {
                "privileged": await refusal(session, "docker_container_run", {"image": engine, "name": names[2], "privileged": True}),
                "host_pid": await refusal(session, "docker_container_run", {"image": engine, "name": names[3], "pid_mode": "host"}),
                "host_network": await refusal(session, "docker_container_run", {"image": engine, "name": names[4], "network": "host"}),
                "cap_add": await refusal(session, "docker_container_create", {"image": engine, "name": names[5], "cap_add": ["NET_ADMIN"]}),
                "bind_outside": await refusal(session, "docker_container_create", {"image": engine, "name": names[6], "mounts": [{"type": "bind", "source": "/etc", "target": "/host-etc"}]}),
                "bind_symlink": await refusal(session, "docker_container_create", {"image": engine, "name": names[6], "mounts": [{"type": "bind", "source": f"{allowed_root}/escape", "target": "/x"}]}),
                "bind_dotdot": await refusal(session, "docker_container_create", {"image": engine, "name": names[6], "mounts": [{"type": "bind", "source": f"{allowed_root}/../x", "target": "/x"}]}),
            }
            no_start = await refusal(session, "docker_container_run", {"image": engine, "name": names[7], "command": ["/no/such/binary"]})
            duplicate = await refusal(session, "docker_container_create", {"image": engine, "name": names[0]})
            bad_port = await refusal(session, "docker_container_create", {"image": engine, "ports": ["80"]})
    finally:
        subprocess.run(["docker", "rm", "-f", *names], capture_output=True)
    host = create_truth["HostConfig"]
    assert created["id"] == create_truth["Id"] and created["state"] == "created" and created["name"] == names[0]
    assert create_truth["Config"]["Cmd"] == ["sleep", "600"] and "MODE=test" in create_truth["Config"]["Env"]
    assert create_truth["Config"]["Labels"] == {"sm-test": "create"}
    assert host["PortBindings"] == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18080"}]}
    assert host["RestartPolicy"]["Name"] == "on-failure" and host["Memory"] == 64 * 1024 * 1024 and host["NanoCpus"] == 500_000_000
    assert host["Privileged"] is False
    assert [(m["Type"], m.get("Source", ""), m["Target"], m.get("ReadOnly", False)) for m in host["Mounts"]] == [
        ("bind", f"{allowed_root}/app", "/data", True), ("tmpfs", "", "/scratch", False)]
    assert ran["state"] == "running" and ran_truth["State"]["Running"] is True and ran["id"] == ran_truth["Id"]
    assert [line["text"] for line in logs["lines"]] == ["from the host"]
    rule = "(docker.policy.{} in the server's config)"
    assert refusals["privileged"] == "refused by the create policy: privileged containers are not allowed " + rule.format("allow_privileged")
    assert refusals["host_pid"] == "refused by the create policy: the host's PID namespace is not allowed " + rule.format("allow_host_pid")
    assert refusals["host_network"] == "refused by the create policy: the host's network namespace is not allowed " + rule.format("allow_host_network")
    assert refusals["cap_add"] == "refused by the create policy: adding the capability NET_ADMIN is not allowed " + rule.format("allowed_capabilities")
    assert refusals["bind_outside"] == f"refused by the create policy: bind mount of `/etc` is outside the allowed bind mount roots ({allowed_root}) " + rule.format("bind_mount_roots")
    assert refusals["bind_symlink"].startswith(f"refused by the create policy: bind mount of `{allowed_root}/escape` is outside")
    assert refusals["bind_dotdot"] == f"bind mount source `{allowed_root}/../x` must be an absolute host path without `..`"
    assert not any(exists(name) for name in names[2:]), "a refused or failed create leaves no container"
    assert no_start.startswith("the container was created but did not start: ") and no_start.endswith("the created container was removed again")
    assert duplicate.startswith("conflict: ") and names[0] in duplicate
    assert bad_port == "port `80` is not [HOST_IP:]HOST_PORT:CONTAINER_PORT[/tcp|udp]"


async def test_exec_is_off_unless_enabled_and_bounded_when_on(binary, container):
    docker("start", container)
    async with stdio_session(binary, "--config", str(make_config(ADMIN))) as session:
        off = {tool.name for tool in (await session.list_tools()).tools}
    config = make_config(ADMIN + "[docker]\nexec_enabled = true\n")
    async with stdio_session(binary, "--config", str(config)) as session:
        ran = await call(session, "docker_container_exec", {"container": container, "command": ["sh", "-c", "echo out; echo err >&2; exit 3"]})
        cut = await call(session, "docker_container_exec", {"container": container, "command": ["sh", "-c", "yes | head -c 100000"], "max_bytes": 100})
        as_user = await call(session, "docker_container_exec", {"container": container, "command": ["id", "-u"], "user": "65534", "env": ["X=1"]})
        slow = await call(session, "docker_container_exec", {"container": container, "command": ["sleep", "37"], "timeout_seconds": 1})
        await wait_until_async(lambda: "sleep 37" not in docker("top", container), interval=0.1)  # killed on the timeout
        processes = docker("top", container)
        empty = await refusal(session, "docker_container_exec", {"container": container, "command": []})
        stopped_name = container
        docker("stop", "-t", "0", stopped_name)
        not_running = await refusal(session, "docker_container_exec", {"container": stopped_name, "command": ["true"]})
    assert "docker_container_exec" not in off
    assert (ran["exit_code"], ran["stdout"], ran["stderr"], ran["timed_out"]) == (3, "out\n", "err\n", False)
    assert cut["stdout"] == "y\n" * 50 and cut["output_cut"] is True and cut["exit_code"] == 0
    assert as_user["stdout"] == "65534\n"
    assert slow["timed_out"] is True and "exit_code" not in slow and slow["duration_ms"] < 5000
    assert "sleep 37" not in processes, "the timed-out command was killed"
    assert empty == "command is empty: give the program and its arguments"
    assert "is not running" in not_running, not_running


async def test_prune_dry_run_lists_what_the_real_prune_removes(binary, engine, tmp_path):
    tag = uuid.uuid4().hex[:8]
    stopped = f"sm-prune-{tag}"
    network = f"sm-prune-net-{tag}"
    volume = f"sm-prune-vol-{tag}"
    # Everything carries this label and the prunes are limited to it: the machine's other
    # unused objects are left alone (they are counted below to show the label held).
    label = f"sm-prune={tag}"
    stopped_id = docker("create", "--label", label, "--name", stopped, engine, "true")
    docker("network", "create", "--label", label, network)
    docker("volume", "create", "--label", label, volume)
    bystander = docker("volume", "create")
    # A dangling image: an import without a name.
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    (rootfs / "marker").write_text(tag)
    dangling = subprocess.run(f"tar -C {rootfs} -c . | docker import --change 'LABEL {label}' -", shell=True, check=True, capture_output=True, text=True).stdout.strip()
    config = make_config(ADMIN)
    try:
        async with stdio_session(binary, "--config", str(config)) as session:
            dry = await call(session, "docker_prune", {"what": ["containers", "images", "networks", "volumes", "build_cache"], "label": label})
            still_there = all(subprocess.run(["docker", *kind, "inspect", name], capture_output=True).returncode == 0 for kind, name in [((), stopped), (("network",), network), (("volume",), volume), (("image",), dangling)])
            real = await call(session, "docker_prune", {"what": ["containers", "images", "networks", "volumes"], "dry_run": False, "label": label})
            bystander_kept = subprocess.run(["docker", "volume", "inspect", bystander], capture_output=True).returncode == 0
            nothing = await refusal(session, "docker_prune", {"what": []})
    finally:
        subprocess.run(["docker", "rm", "-f", stopped], capture_output=True)
        subprocess.run(["docker", "network", "rm", network], capture_output=True)
        subprocess.run(["docker", "volume", "rm", volume], capture_output=True)
        subprocess.run(["docker", "rmi", dangling], capture_output=True)
        subprocess.run(["docker", "volume", "rm", bystander], capture_output=True)
    planned = {kind["kind"]: kind["items"] for kind in dry["kinds"]}
    done = {kind["kind"]: kind["items"] for kind in real["kinds"]}
    assert dry["dry_run"] is True and still_there, "a dry run removes nothing"
    assert stopped in planned["containers"] and network in planned["networks"] and volume in planned["volumes"]
    assert short(dangling) in planned["images"]
    assert planned == {"containers": [stopped], "images": [short(dangling)], "networks": [network], "volumes": [volume], "build_cache": []}
    assert bystander_kept, "an unlabelled unused volume is not pruned"
    assert real["dry_run"] is False
    assert stopped_id[:12] in done["containers"] and network in done["networks"] and volume in done["volumes"]
    assert any(short(dangling) in item for item in done["images"])
    for kind, name in [((), stopped), (("network",), network), (("volume",), volume), (("image",), dangling)]:
        assert subprocess.run(["docker", *kind, "inspect", name], capture_output=True).returncode != 0, f"{name} is gone"
    assert nothing.startswith("what is empty")


def short(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:12]



async def test_disk_use_and_events_agree_with_docker(binary, engine):
    name = f"sm-events-{uuid.uuid4().hex[:8]}"
    assert subprocess.run(["docker", "run", "--name", name, engine, "sh", "-c", "exit 7"]).returncode == 7
    docker("rm", name)
    def counts() -> dict[str, list[int]]:
        truth = {line.split("|")[0]: [int(n) for n in line.split("|")[1:]] for line in
                 docker("system", "df", "--format", "{{.Type}}|{{.TotalCount}}|{{.Active}}").splitlines()}
        # Every volume, as `docker volume ls` lists them (the engine's df leaves out local
        # volumes with driver options, such as bind-backed ones).
        truth["volumes"] = [len(docker("volume", "ls", "-q").split())]
        return truth

    # Another suite (or anything else) may create and remove objects meanwhile: the answer must
    # lie between what the CLI saw just before and just after it.
    before = counts()
    async with stdio_session(binary) as session:
        df = await call(session, "docker_system_df", {})
        events = await call(session, "docker_events", {"since": "2m", "container": [name]})
        limited = await call(session, "docker_events", {"since": "2m", "container": [name], "limit": 2})
        backwards = await refusal(session, "docker_events", {"since": "1m", "until": "2m"})
    after = counts()
    kinds = {kind["kind"]: kind for kind in df["kinds"]}

    def between(ours: list[int], key: str) -> bool:
        return all(min(b, a) <= o <= max(b, a) for o, b, a in zip(ours, before[key], after[key]))

    assert between([kinds["images"]["total"], kinds["images"]["active"]], "Images"), (kinds, before, after)
    assert between([kinds["containers"]["total"], kinds["containers"]["active"]], "Containers"), (kinds, before, after)
    assert between([kinds["volumes"]["total"]], "volumes"), (kinds, before, after)
    actions = [event["action"] for event in events["events"]]
    # The CLI's --until is whole seconds: a second must pass for "0s" to cover the events the
    # server saw.
    await asyncio.sleep(1.1)
    truth_actions = docker("events", "--since", "2m", "--until", "0s", "--filter", f"container={name}", "--format", "{{.Action}}").split()
    assert actions == truth_actions and {"create", "start", "die", "destroy"} <= set(actions)
    die = next(event for event in events["events"] if event["action"] == "die")
    assert die["name"] == name and die["attributes"]["exitCode"] == "7" and die["attributes"]["image"] == engine
    assert [event["action"] for event in limited["events"]] == truth_actions[-2:] and limited["dropped"] == len(truth_actions) - 2
    assert backwards == "until is before since: the window is empty"


async def test_an_ambiguous_id_prefix_is_refused_and_acts_on_nothing(binary, engine):
    label = f"sm-ambiguous={uuid.uuid4().hex[:8]}"
    ids: list[str] = []
    try:
        # Sixteen hex digits: at most seventeen containers give two that share a first digit.
        while True:
            ids.append(docker("run", "-d", "--label", label, engine, "sleep", "600"))
            firsts = [container_id[0] for container_id in ids]
            shared = next((digit for digit in firsts if firsts.count(digit) > 1), None)
            if shared:
                break
        async with stdio_session(binary) as session:
            inspected = await refusal(session, "docker_container_inspect", {"container": shared})
            stopped = await refusal(session, "docker_container_stop", {"container": shared})
        running = [docker_inspect(container_id)["State"]["Running"] for container_id in ids]
    finally:
        subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)
    expected = f"Multiple IDs found with provided prefix: {shared}: the prefix is ambiguous; give more of the id, or the name"
    assert inspected == expected and stopped == expected
    assert all(running), "nothing was stopped"


async def test_operate_and_admin_tools_over_http(binary, engine):
    name = f"sm-http-{uuid.uuid4().hex[:8]}"
    server = start_server(binary, "--http", "127.0.0.1:0", config="[security]\nadmin_tier = true\n", role="admin")
    try:
        async with connect("http", binary, server.url, None, server.token) as session:
            await session.initialize()
            ran = await call(session, "docker_container_run", {"image": engine, "name": name, "command": ["sleep", "600"]})
            stopped = await call(session, "docker_container_stop", {"container": name, "timeout_seconds": 0})
            removed = await call(session, "docker_container_remove", {"container": name})
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
        assert server.stop() == 0
    assert ran["state"] == "running" and stopped["state_after"] == "exited"
    assert removed == {"kind": "container", "name": name} and not exists(name)
    records = [record for record in server.audit() if record.get("tool") == "docker_container_run"]
    assert [record["outcome"] for record in records] == ["started", "ok"], "a change is audited before and after"


class ReadOnlyProxy:
    """A stand-in for a filtering socket proxy (docker-socket-proxy with POST=0): passes GET and
    HEAD to the Docker socket, answers 403 to everything else, on a loopback TCP port."""

    def __init__(self):
        import http.client
        import http.server
        import socket
        import threading

        class UnixConnection(http.client.HTTPConnection):
            def connect(self):
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect("/var/run/docker.sock")

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def forward(self):
                if self.command not in ("GET", "HEAD"):
                    body = b"Forbidden"
                    self.send_response(403)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                upstream = UnixConnection("localhost")
                upstream.request(self.command, self.path)
                answer = upstream.getresponse()
                body = answer.read()
                self.send_response(answer.status)
                for name, value in answer.getheaders():
                    if name.lower() not in ("transfer-encoding", "content-length", "connection"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_HEAD = do_POST = do_DELETE = do_PUT = forward

            def log_message(self, *_):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"tcp://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


async def test_behind_a_read_only_socket_proxy_reads_work_and_changes_are_refused_clearly(binary, container):
    proxy = ReadOnlyProxy()
    try:
        config = make_config(f'[docker]\nhost = "{proxy.url}"\n')
        async with stdio_session(binary, "--config", str(config)) as session:
            listed = await call(session, "docker_container_list", {"all": True, "name": container})
            started = await refusal(session, "docker_container_start", {"container": container})
    finally:
        proxy.close()
    assert [row["name"] for row in listed["containers"]] == [container]
    assert started == f"{proxy.url} refused this request (403: Forbidden); a socket proxy in front of Docker forbids it"
    assert docker_inspect(container)["State"]["Status"] == "created", "nothing was started"


# --- the create policy against what the engine really does ----------------------------------------
# Each test marks what it creates with its own `sm-policy=TAG` label and removes it at the end.

HOST_NETWORK_REFUSED = "refused by the create policy: the host's network namespace is not allowed (docker.policy.allow_host_network in the server's config)"
NEVER = "; no setting allows it (docker_container_create cannot ask for it)"


@pytest.fixture
def policy_tag(engine):
    tag = uuid.uuid4().hex[:8]
    yield tag
    labelled = docker("ps", "-a", "-q", "--filter", f"label=sm-policy={tag}").split()
    if labelled:
        subprocess.run(["docker", "rm", "-f", *labelled], capture_output=True)
    volumes = docker("volume", "ls", "-q", "--filter", f"label=sm-policy={tag}").split()
    if volumes:
        subprocess.run(["docker", "volume", "rm", "-f", *volumes], capture_output=True)


def labelled(tag: str) -> list[str]:
    """The names of the containers carrying this test's label."""
    return sorted(docker("ps", "-a", "--filter", f"label=sm-policy={tag}", "--format", "{{.Names}}").split())


def never_started(container: str) -> bool:
    state = docker_inspect(container)["State"]
    return state["Status"] == "created" and state["StartedAt"].startswith("0001-01-01")


async def test_the_host_network_is_refused_however_it_is_named(binary, engine, policy_tag):
    """`/host`, the host network's id and id prefixes all reach the host network in the engine:
    the policy decides on the network the engine resolves, and hands the engine that network."""
    host_id = docker("network", "inspect", "host", "--format", "{{.Id}}")
    bridge_id = docker("network", "inspect", "bridge", "--format", "{{.Id}}")
    other = f"sm-policy-{policy_tag}-other"
    docker("create", "--name", other, "--label", f"sm-policy={policy_tag}", engine, "sleep", "600")
    spellings = ["host", "/host", host_id, host_id[:12], host_id[:5]]
    base = {"image": engine, "command": ["sleep", "600"], "labels": {"sm-policy": policy_tag}}
    async with stdio_session(binary, "--config", str(make_config(ADMIN))) as session:
        networks = {spelling: await refusal(session, "docker_container_run", {**base, "network": spelling}) for spelling in spellings}
        shared_network = await refusal(session, "docker_container_run", {**base, "network": f"container:{other}"})
        shared_pid = await refusal(session, "docker_container_run", {**base, "pid_mode": f"container:{other}"})
        pid_modes = {mode: await refusal(session, "docker_container_run", {**base, "pid_mode": mode}) for mode in ["HOST", "/host", " host", "host:"]}
        left = labelled(policy_tag)
        by_prefix = await call(session, "docker_container_create", {**base, "network": bridge_id[:12]})
        by_default = await call(session, "docker_container_create", {**base, "network": "default"})
    allowing = make_config(ADMIN + "[docker.policy]\nallow_host_network = true\n")
    async with stdio_session(binary, "--config", str(allowing)) as session:
        slash_host = await call(session, "docker_container_create", {**base, "network": "/host"})
    assert networks == {spelling: HOST_NETWORK_REFUSED for spelling in spellings}
    assert shared_network == f"refused by the create policy: network `container:{other}` shares another container's network namespace, which may be the host's" + NEVER
    assert shared_pid == f"refused by the create policy: pid_mode `container:{other}` shares another container's PID namespace, which may be the host's" + NEVER
    assert pid_modes == {mode: f"pid_mode `{mode}` is not supported: give `host` or leave it out" for mode in pid_modes}
    assert left == [other], "a refused run leaves no container"
    assert docker_inspect(by_prefix["id"])["HostConfig"]["NetworkMode"] == "bridge", "the engine is given the network the policy resolved"
    assert docker_inspect(slash_host["id"])["HostConfig"]["NetworkMode"] == "host"
    assert docker_inspect(by_default["id"])["HostConfig"]["NetworkMode"] == "default", "the engine's word for bridge"


async def test_capabilities_are_decided_as_the_engine_reads_them(binary, engine, policy_tag):
    """The engine reads capabilities case-insensitively, with or without `CAP_`, and `all` as
    every one: each spelling is refused as the capability it names, and an allowed one reaches
    the engine in its canonical spelling."""
    base = {"image": engine, "command": ["sleep", "600"], "labels": {"sm-policy": policy_tag}}
    rule = " is not allowed (docker.policy.allowed_capabilities in the server's config)"
    async with stdio_session(binary, "--config", str(make_config(ADMIN))) as session:
        named = {cap: await refusal(session, "docker_container_run", {**base, "cap_add": [cap]}) for cap in ["net_admin", "CAP_NET_ADMIN", "Cap_Net_Admin", "sys_admin"]}
        every = {cap: await refusal(session, "docker_container_run", {**base, "cap_add": [cap]}) for cap in ["ALL", "all", "All"]}
        unknown = {cap: await refusal(session, "docker_container_run", {**base, "cap_add": [cap]}) for cap in ["CAP_ALL", " NET_ADMIN", "CAP_CAP_NET_ADMIN"]}
    allowing = make_config(ADMIN + '[docker.policy]\nallowed_capabilities = ["net_admin"]\n')
    async with stdio_session(binary, "--config", str(allowing)) as session:
        allowed = await call(session, "docker_container_create", {**base, "cap_add": ["cap_Net_Admin"]})
        not_all = await refusal(session, "docker_container_create", {**base, "cap_add": ["NET_ADMIN", "all"]})
        not_other = await refusal(session, "docker_container_create", {**base, "cap_add": ["CAP_SYS_ADMIN"]})
    assert named == {
        "net_admin": "refused by the create policy: adding the capability NET_ADMIN" + rule,
        "CAP_NET_ADMIN": "refused by the create policy: adding the capability NET_ADMIN" + rule,
        "Cap_Net_Admin": "refused by the create policy: adding the capability NET_ADMIN" + rule,
        "sys_admin": "refused by the create policy: adding the capability SYS_ADMIN" + rule,
    }
    assert every == {cap: f"refused by the create policy: adding every capability ({cap})" + rule for cap in every}
    assert unknown == {cap: f"`{cap}` is not a capability Docker knows: give a name such as NET_ADMIN or CAP_NET_ADMIN" for cap in unknown}
    assert docker_inspect(allowed["id"])["HostConfig"]["CapAdd"] == ["CAP_NET_ADMIN"]
    assert not_all == "refused by the create policy: adding every capability (all)" + rule
    assert not_other == "refused by the create policy: adding the capability SYS_ADMIN" + rule
    assert labelled(policy_tag) == [allowed["name"]], "refusals leave no container"


async def test_namespaces_devices_and_mount_types_outside_the_arguments_cannot_be_asked_for(binary, engine, policy_tag):
    base = {"image": engine, "labels": {"sm-policy": policy_tag}}
    extra = {"ipc_mode": "host", "userns_mode": "host", "uts_mode": "host", "cgroupns_mode": "host",
             "devices": ["/dev/sda"], "security_opt": ["seccomp=unconfined"], "volumes_from": ["x"]}
    async with stdio_session(binary, "--config", str(make_config(ADMIN))) as session:
        unknown = {key: await refusal(session, "docker_container_run", {**base, key: value}) for key, value in extra.items()}
        kinds = {kind: await refusal(session, "docker_container_run", {**base, "mounts": [{"type": kind, "source": "/etc", "target": "/x"}]}) for kind in ["Bind", "BIND", "npipe", "image"]}
    for key, message in unknown.items():
        assert message.startswith(f"invalid argument `{key}`: unknown field `{key}`"), message
    for kind, message in kinds.items():
        assert message.startswith(f"invalid argument `mounts[0].type`: unknown variant `{kind}`"), message
    assert labelled(policy_tag) == []


async def test_bind_sources_are_decided_and_given_as_they_resolve(binary, engine, policy_tag, tmp_path):
    tmp = Path(os.path.realpath(tmp_path))
    root, outside = tmp / "data", tmp / "outside"
    (root / "app").mkdir(parents=True)
    outside.mkdir()
    (root / "inward").symlink_to(root / "app")
    (root / "escape").symlink_to(outside)
    (root / "dangling").symlink_to(tmp / "not-yet")
    config = make_config(ADMIN + f'[docker.policy]\nbind_mount_roots = ["{root}"]\n')
    base = {"image": engine, "command": ["sleep", "600"], "labels": {"sm-policy": policy_tag}}

    def bind(source):
        return {**base, "mounts": [{"type": "bind", "source": source, "target": "/m"}]}

    accepted = [f"/{root}/app", f"{root}/./app/", f"{root}/app/", f"{root}//app", f"{root}/inward"]
    async with stdio_session(binary, "--config", str(config)) as session:
        created = {source: await call(session, "docker_container_create", bind(source)) for source in accepted}
        escape = await refusal(session, "docker_container_create", bind(f"{root}/escape"))
        escape_below = await refusal(session, "docker_container_create", bind(f"{root}/escape/new"))
        slashes = await refusal(session, "docker_container_create", bind(f"//{outside}/"))
        dangling = await refusal(session, "docker_container_create", bind(f"{root}/dangling"))
        dotdot = await refusal(session, "docker_container_create", bind(f"{root}/app/../../outside"))
        relative = await refusal(session, "docker_container_create", bind("data/app"))
    sources = {source: [(m["Type"], m["Source"]) for m in docker_inspect(made["id"])["Mounts"]] for source, made in created.items()}
    rule = "(docker.policy.bind_mount_roots in the server's config)"
    assert sources == {source: [("bind", f"{root}/app")] for source in accepted}, "the engine is given the resolved path"
    assert escape == f"refused by the create policy: bind mount of `{root}/escape` is outside the allowed bind mount roots ({root}): it resolves to `{outside}` {rule}"
    assert escape_below == f"refused by the create policy: bind mount of `{root}/escape/new` is outside the allowed bind mount roots ({root}): it resolves to `{outside}/new` {rule}"
    assert slashes == f"refused by the create policy: bind mount of `//{outside}/` is outside the allowed bind mount roots ({root}) {rule}"
    assert dangling.startswith(f"bind mount of `{root}/dangling` cannot be resolved on the host: ")
    assert dotdot == f"bind mount source `{root}/app/../../outside` must be an absolute host path without `..`"
    assert relative == "bind mount source `data/app` must be an absolute host path without `..`"
    assert labelled(policy_tag) == sorted(made["name"] for made in created.values())


async def test_a_bind_swapped_for_a_symlink_after_create_is_refused_at_start(binary, engine, policy_tag, tmp_path):
    """Bind sources are resolved when a container starts: a directory replaced by a symlink out
    of the roots after the create, by the host or by another container with a writable bind, is
    caught by the check before start and restart, and the container is left as it was."""
    tmp = Path(os.path.realpath(tmp_path))
    root, outside = tmp / "data", tmp / "outside"
    for directory in ("swap", "swap-running", "shared"):
        (root / directory).mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.txt").write_text("outside the roots\n")
    config = make_config(ADMIN + f'[docker.policy]\nbind_mount_roots = ["{root}"]\n')
    label = {"sm-policy": policy_tag}

    def bind(name, source, command, read_only=True):
        return {"image": engine, "name": f"sm-policy-{policy_tag}-{name}", "labels": label, "command": command,
                "mounts": [{"type": "bind", "source": str(source), "target": "/m", "read_only": read_only}]}

    def swap(path):
        path.rmdir()
        path.symlink_to(outside)

    reader = ["sh", "-c", "cat /m/secret.txt; sleep 600"]
    rule = "(docker.policy.bind_mount_roots in the server's config)"
    async with stdio_session(binary, "--config", str(config)) as session:
        created = await call(session, "docker_container_create", bind("created", root / "swap", reader))
        swap(root / "swap")
        started = await refusal(session, "docker_container_start", {"container": created["name"]})

        running = await call(session, "docker_container_run", bind("running", root / "swap-running", ["sleep", "600"]))
        before = docker_inspect(running["name"])["State"]["StartedAt"]
        swap(root / "swap-running")
        restarted = await refusal(session, "docker_container_restart", {"container": running["name"], "timeout_seconds": 0})
        after = docker_inspect(running["name"])["State"]

        # A container with a writable bind of the root builds the symlink for another one. The
        # victim comes first: once the builder exists, no bind below its writable one is made.
        victim = await call(session, "docker_container_create", bind("victim", root / "shared", reader))
        builder = await call(session, "docker_container_run", bind("builder", root, ["sleep", "600"], read_only=False))
        docker("exec", builder["name"], "sh", "-c", f"rmdir /m/shared && ln -s {outside} /m/shared")
        built = os.readlink(root / "shared")
        victim_started = await refusal(session, "docker_container_start", {"container": victim["name"]})
    assert started == f"{created['name']} was not started: refused by the create policy: bind mount of `{root}/swap` is outside the allowed bind mount roots ({root}): it resolves to `{outside}` {rule}"
    assert never_started(created["name"]), "the container was not started"
    assert restarted == f"{running['name']} was not restarted: refused by the create policy: bind mount of `{root}/swap-running` is outside the allowed bind mount roots ({root}): it resolves to `{outside}` {rule}"
    assert after["Running"] is True and after["StartedAt"] == before, "a refused restart leaves the container as it was"
    assert built == str(outside)
    assert victim_started == f"{victim['name']} was not started: refused by the create policy: bind mount of `{root}/shared` is outside the allowed bind mount roots ({root}): it resolves to `{outside}` {rule}"
    assert never_started(victim["name"])


async def test_a_volume_bound_to_a_host_directory_is_refused_whatever_its_device_is_now(binary, engine, policy_tag, tmp_path):
    """A local volume made with `o=bind` (or `rbind`, whatever its `type`) mounts its `device`
    once and keeps that mount while any container uses it: a volume first mounted while its
    device was a symlink out stays mounted there after the symlink is replaced by a directory
    inside the roots. Judging the device as it resolves now let docker_container_run read the
    outside file; now every such volume is refused, at create and at start, naming
    allow_external_volumes and suggesting a bind mount. Volumes backed by other filesystems or
    drivers need the same setting; the engine's own and tmpfs ones are fine."""
    tmp = Path(os.path.realpath(tmp_path))
    root, outside = tmp / "data", tmp / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_text("OUTSIDE_SECRET\n")

    def volume(*options):
        name = f"sm-policy-{policy_tag}-{len(made)}"
        docker("volume", "create", "--label", f"sm-policy={policy_tag}", *[arg for option in options for arg in ("--opt", option)], name)
        made.append(name)
        return name

    made: list[str] = []
    # The attack: the device is a symlink out when a container first mounts the volume, and a
    # directory inside the roots (with a file of the same name) when the server looks.
    (root / "volume").symlink_to(outside)
    held = volume("type=none", "o=bind", f"device={root}/volume")
    holder = f"sm-policy-{policy_tag}-holder"
    docker("run", "-d", "--name", holder, "--label", f"sm-policy={policy_tag}", "-v", f"{held}:/m", engine, "sleep", "600")
    (root / "volume").unlink()
    (root / "volume").mkdir()
    (root / "volume" / "secret.txt").write_text("inside\n")
    bound_out = volume("type=none", "o=bind", f"device={outside}")
    tmpfs_bound = volume("type=tmpfs", "o=bind", f"device={outside}")
    rbind_ro = volume("type=none", "o=ro,rbind", f"device={outside}")
    nfs = volume("type=nfs", "o=addr=127.0.0.1,ro", "device=:/srv")
    memory = volume("type=tmpfs", "device=tmpfs", "o=size=1m")
    plain = volume()
    # Made outside this server: the check before start is all that stands in its way.
    by_hand = f"sm-policy-{policy_tag}-by-hand"
    docker("create", "--name", by_hand, "--label", f"sm-policy={policy_tag}", "-v", f"{held}:/m", engine, "cat", "/m/secret.txt")
    config = make_config(ADMIN + f'[docker.policy]\nbind_mount_roots = ["{root}"]\n')
    base = {"image": engine, "command": ["cat", "/m/secret.txt"], "labels": {"sm-policy": policy_tag}}

    def mount(name):
        return {**base, "mounts": [{"type": "volume", "source": name, "target": "/m", "read_only": True}]}

    async with stdio_session(binary, "--config", str(config)) as session:
        attack = await refusal(session, "docker_container_run", mount(held))
        refused = {name: await refusal(session, "docker_container_run", mount(name)) for name in (bound_out, tmpfs_bound, rbind_ro)}
        external = await refusal(session, "docker_container_create", mount(nfs))
        fine = [await call(session, "docker_container_run", {**mount(name), "command": ["sleep", "600"]}) for name in (memory, plain)]
        hand_started = await refusal(session, "docker_container_start", {"container": by_hand})
    held_shows = docker("exec", holder, "cat", "/m/secret.txt")

    def why(name, device):
        return (f"refused by the create policy: volume `{name}` binds the host path `{device}`, which cannot be checked: the engine keeps it "
                f"mounted where `{device}` led when it was first mounted; give a bind mount of the directory instead, which the policy checks "
                "and pins (docker.policy.allow_external_volumes in the server's config)")

    assert held_shows == "OUTSIDE_SECRET", "the engine keeps the volume mounted where its device led first"
    assert attack == why(held, f"{root}/volume")
    assert refused == {name: why(name, outside) for name in refused}
    assert external == f"refused by the create policy: volume `{nfs}` is backed by a `nfs` mount of `:/srv`, not by the engine's own storage (docker.policy.allow_external_volumes in the server's config)"
    assert [docker_inspect(made["id"])["State"]["Running"] for made in fine] == [True, True]
    assert hand_started == f"{by_hand} was not started: " + why(held, f"{root}/volume")
    assert never_started(by_hand)
    assert labelled(policy_tag) == sorted([by_hand, holder, *(made["name"] for made in fine)]), "refusals leave no container"


async def test_start_refuses_a_container_that_create_would_refuse(binary, engine, policy_tag):
    """Whoever created it: a container with settings the create policy refuses, or that the
    create arguments cannot express, is not started (nor restarted) through this server."""
    other = f"sm-policy-{policy_tag}-other"
    # The CLI hands the engine `container:ID` for a name.
    other_id = docker("create", "--name", other, "--label", f"sm-policy={policy_tag}", engine, "sleep", "600")
    rule = " (docker.policy.{} in the server's config)"
    cases = {
        "privileged": (["--privileged"], "privileged containers are not allowed" + rule.format("allow_privileged")),
        "pid": (["--pid", "host"], "the host's PID namespace is not allowed" + rule.format("allow_host_pid")),
        "network": (["--network", "host"], "the host's network namespace is not allowed" + rule.format("allow_host_network")),
        "caps": (["--cap-add", "all"], "adding every capability (ALL) is not allowed" + rule.format("allowed_capabilities")),
        "bind": (["-v", "/etc:/host-etc:ro"], "bind mount of `/etc` is outside the allowed bind mount roots (none are configured)" + rule.format("bind_mount_roots")),
        "ipc": (["--ipc", "host"], "the host's IPC namespace" + NEVER),
        "uts": (["--uts", "host"], "the host's UTS namespace" + NEVER),
        "userns": (["--userns", "host"], "the host's user namespace (userns_mode `host`, leaving the engine's remapping)" + NEVER),
        "pid-container": (["--pid", f"container:{other}"], f"the PID mode `container:{other_id}` shares another container's namespace, which may be the host's" + NEVER),
        "network-container": (["--network", f"container:{other}"], f"network `container:{other_id}` shares another container's network namespace, which may be the host's" + NEVER),
        "device": (["--device", "/dev/null"], "the host device `/dev/null`" + NEVER),
        "seccomp": (["--security-opt", "seccomp=unconfined"], "the security option `seccomp=unconfined`" + NEVER),
    }
    names = {case: f"sm-policy-{policy_tag}-{case}" for case in cases}
    for case, (flags, _) in cases.items():
        docker("create", "--name", names[case], "--label", f"sm-policy={policy_tag}", *flags, engine, "sleep", "600")
    running = f"sm-policy-{policy_tag}-running"
    docker("run", "-d", "--name", running, "--label", f"sm-policy={policy_tag}", "--ipc", "host", engine, "sleep", "600")
    before = docker_inspect(running)["State"]["StartedAt"]
    async with stdio_session(binary, "--config", str(make_config(ADMIN))) as session:
        refused = {case: await refusal(session, "docker_container_start", {"container": names[case]}) for case in cases}
        restarted = await refusal(session, "docker_container_restart", {"container": running, "timeout_seconds": 0})
        plain = await call(session, "docker_container_start", {"container": other})
    for case, (_, why) in cases.items():
        assert refused[case] == f"{names[case]} was not started: refused by the create policy: {why}", case
        assert never_started(names[case]), case
    assert restarted == f"{running} was not restarted: refused by the create policy: the host's IPC namespace" + NEVER
    assert docker_inspect(running)["State"]["StartedAt"] == before
    assert plain["state_after"] == "running", "a container within the policy starts as before"


async def test_container_strings_cannot_forge_rows_in_the_text(binary, engine):
    """A container whose command argument, label and log lines hold newlines, ESC and U+202E:
    inspect's `command` line, its log lines and its `top` rows printed them raw (a fake row
    each). Now each is one escaped row."""
    name = f"sm-test-{uuid.uuid4().hex[:8]}"
    forged = "x\nFAKE 0 root Up 1 second\x1b[2K\u202e"
    script = "printf 'red \\033[31mtext\\n'; printf 'spoof\\rline\\n'; sleep 300"
    docker("run", "-d", "--name", name, "--label", f"sm-test=forge\n{forged}", engine, "sh", "-c", script, forged)
    try:
        async with stdio_session(binary) as session:
            for _ in range(50):
                logs = await session.call_tool("docker_container_logs", {"container": name})
                if len(logs.structured_content["lines"]) >= 2:
                    break
                await asyncio.sleep(0.1)
            inspect = await session.call_tool("docker_container_inspect", {"container": name})
            top = await session.call_tool("docker_container_top", {"container": name})
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
    escaped = "x\\nFAKE 0 root Up 1 second\\x1b[2K\\u{202e}"
    assert inspect.structured_content["labels"]["sm-test"] == f"forge\n{forged}"
    command = [line for line in inspect.content[0].text.split("\n") if line.startswith("command ")]
    assert command == [f"command sh -c {script.replace(chr(92), chr(92) * 2)} {escaped}"], inspect.content[0].text
    assert not [line for line in inspect.content[0].text.split("\n") if line.startswith("FAKE")]
    assert logs.content[0].text.split("\n") == ["red \\x1b[31mtext", "spoof\\rline"]
    rows = top.content[0].text.split("\n")
    assert len(rows) == 1 + len(top.structured_content["processes"]), rows
    for result in (logs, inspect, top):
        assert "\x1b" not in result.content[0].text and "\u202e" not in result.content[0].text


def engine_create(name: str, tag: str, host_config: dict) -> str:
    """A container created through the Engine API itself, for host settings the CLI cannot
    spell (a shortened MaskedPaths list)."""
    socket = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock").removeprefix("unix://")
    body = {"Image": IMAGE, "Cmd": ["sleep", "600"], "Labels": {"sm-policy": tag}, "HostConfig": host_config}
    answer = subprocess.run(["curl", "-sS", "--fail-with-body", "--unix-socket", socket, "-H", "Content-Type: application/json",
                             "-d", json.dumps(body), f"http://localhost/containers/create?name={name}"],
                            check=True, capture_output=True, text=True).stdout
    return json.loads(answer)["Id"]


async def test_start_refuses_a_container_whose_confinement_was_loosened(binary, engine, policy_tag, tmp_path):
    """`--security-opt systempaths=unconfined` stores empty MaskedPaths and ReadonlyPaths (no
    security option is left to see), and in such a container /proc/sys is writable host-wide:
    docker_container_start (operate tier) started it. Now each host setting that loosens the
    confinement is refused at start, field by field; the ones a create leaves to the engine's
    default, or that loosen nothing, still start."""
    other = f"sm-policy-{policy_tag}-other"
    docker("create", "--name", other, "--label", f"sm-policy={policy_tag}", engine, "sleep", "600")
    shared = Path(os.path.realpath(tmp_path))
    cgroup_v1 = docker("info", "--format", "{{.CgroupVersion}}") == "1"
    default_masked = docker_inspect(other)["HostConfig"]["MaskedPaths"]
    cases = {
        "systempaths": (["--security-opt", "systempaths=unconfined"], "`/proc/asound` is not masked in it (`--security-opt systempaths=unconfined` or its own MaskedPaths list)"),
        "sysctl": (["--sysctl", "kernel.shmmax=65536"], "the sysctl `kernel.shmmax`"),
        "cgroup-parent": (["--cgroup-parent", f"sm-policy-{policy_tag}"], f"the cgroup parent `sm-policy-{policy_tag}`"),
        "oom-score": (["--oom-score-adj", "-500"], "the OOM score adjustment -500 (below 0: the host's processes are killed first)"),
        "volumes-from": (["--volumes-from", other], f"the volumes of container `{other}`"),
        "rshared": (["-v", f"{shared}:/m:rshared"], f"the bind mount of `{shared}` with `rshared` propagation"),
    }
    if not cgroup_v1:
        cases["cgroupns"] = (["--cgroupns", "host"], "the host's cgroup namespace (the engine's default on cgroup v2 is a private one)")
    names = {case: f"sm-policy-{policy_tag}-{case}" for case in cases}
    for case, (flags, _) in cases.items():
        docker("create", "--name", names[case], "--label", f"sm-policy={policy_tag}", *flags, engine, "sleep", "600")
    by_api = {
        "no-kcore": ({"MaskedPaths": [path for path in default_masked if path != "/proc/kcore"]},
                     "`/proc/kcore` is not masked in it (`--security-opt systempaths=unconfined` or its own MaskedPaths list)"),
        "proc-sys": ({"ReadonlyPaths": ["/proc/bus"]}, "`/proc/fs` is not read-only in it (`--security-opt systempaths=unconfined` or its own ReadonlyPaths list)"),
        "no-masks": ({"MaskedPaths": []}, "`/proc/asound` is not masked in it (`--security-opt systempaths=unconfined` or its own MaskedPaths list)"),
    }
    for case, (host_config, why) in by_api.items():
        names[case] = f"sm-policy-{policy_tag}-{case}"
        engine_create(names[case], policy_tag, host_config)
        cases[case] = ([], why)
    fine = {"init": ["--init"], "new-privileges": ["--security-opt", "no-new-privileges=false"], "oom-up": ["--oom-score-adj", "500"]}
    if cgroup_v1:
        fine["cgroupns"] = ["--cgroupns", "host"]
    for case, flags in fine.items():
        docker("create", "--name", f"sm-policy-{policy_tag}-{case}", "--label", f"sm-policy={policy_tag}", *flags, engine, "sleep", "600")
    stored = docker_inspect(names["systempaths"])["HostConfig"]
    async with stdio_session(binary) as session:
        refused = {case: await refusal(session, "docker_container_start", {"container": names[case]}) for case in cases}
        restarted = await refusal(session, "docker_container_restart", {"container": names["systempaths"], "timeout_seconds": 0})
        started = {case: await call(session, "docker_container_start", {"container": f"sm-policy-{policy_tag}-{case}"}) for case in fine}
    assert (stored["MaskedPaths"], stored["ReadonlyPaths"], stored["SecurityOpt"] or []) == ([], [], []), "what the attack stores"
    for case, (_, why) in cases.items():
        assert refused[case] == f"{names[case]} was not started: refused by the create policy: {why}" + NEVER, case
        assert never_started(names[case]), case
    assert restarted == f"{names['systempaths']} was not restarted: refused by the create policy: {cases['systempaths'][1]}" + NEVER
    assert {case: answer["state_after"] for case, answer in started.items()} == {case: "running" for case in fine}


PINNED = "(docker.policy.bind_mount_roots in the server's config)"
REFUSED = "refused by the create policy: "


def exchange_loop(first: Path, second: Path, stop: threading.Event) -> None:
    """Swaps a directory and a symlink with renameat2(RENAME_EXCHANGE) every 5 ms: the path is
    never missing, only sometimes a symlink out."""
    libc = ctypes.CDLL(None, use_errno=True)
    at_fdcwd, rename_exchange = -100, 2
    while not stop.is_set():
        libc.renameat2(at_fdcwd, bytes(first), at_fdcwd, bytes(second), rename_exchange)
        time.sleep(0.005)


def ran_output(container: str) -> str:
    docker("wait", container)
    return docker("logs", container)


async def test_a_bind_whose_path_a_user_can_swap_is_refused_every_time(binary, engine, policy_tag, tmp_path):
    """The start check lost the race to a RENAME_EXCHANGE loop (14 of 21 starts read the outside
    file): no re-check can win it. A bind source whose path someone other than root can change
    is refused at create and at start, every time, whatever the loop shows at that moment; one
    whose path only root can change starts and reads the inside file."""
    tmp = Path(os.path.realpath(tmp_path))
    root, outside = tmp / "data", tmp / "outside"
    public = root / "public"
    (public / "d").mkdir(parents=True)
    outside.mkdir()
    (public / "d" / "file.txt").write_text("inside\n")
    (outside / "file.txt").write_text("OUTSIDE_SECRET\n")
    (public / "s").symlink_to(outside)
    for path in (public, public / "d", public / "d" / "file.txt", public / "s"):
        os.lchown(path, 65534, 65534)  # the attacker, nobody, owns the directory it swaps in
    victim = f"sm-policy-{policy_tag}-victim"
    docker("create", "--name", victim, "--label", f"sm-policy={policy_tag}", "-v", f"{public}/d:/m:ro", engine, "cat", "/m/file.txt")
    config = make_config(ADMIN + f'[docker.policy]\nbind_mount_roots = ["{root}"]\n')
    run = {"image": engine, "command": ["cat", "/m/file.txt"], "labels": {"sm-policy": policy_tag},
           "mounts": [{"type": "bind", "source": f"{public}/d", "target": "/m", "read_only": True}]}
    stop = threading.Event()
    swapper = threading.Thread(target=exchange_loop, args=(public / "d", public / "s", stop), daemon=True)
    async with stdio_session(binary, "--config", str(config)) as session:
        swapper.start()
        try:
            raced = [await session.call_tool("docker_container_start", {"container": victim}) for _ in range(20)]
            raced += [await session.call_tool("docker_container_run", run) for _ in range(20)]
        finally:
            stop.set()
            swapper.join()
        untouched = never_started(victim)
        if (public / "d").is_symlink():  # the loop stopped with the symlink at `d`: swap back
            os.rename(public / "d", public / "t")
            os.rename(public / "s", public / "d")
            os.rename(public / "t", public / "s")
        owned = await refusal(session, "docker_container_start", {"container": victim})
        os.chown(public, 0, 0)
        modes = {}
        for mode in (0o777, 0o775, 0o1777):
            os.chmod(public, mode)
            modes[mode] = await refusal(session, "docker_container_run", run)
        os.chown(public / "d", 0, 0)
        sticky_roots = await call(session, "docker_container_run", run)  # 1777, and `d` is root's
        os.chmod(public, 0o755)
        started = await call(session, "docker_container_start", {"container": victim})
    assert all(answer.is_error for answer in raced), [answer.content[0].text for answer in raced if not answer.is_error]
    texts = [answer.content[0].text for answer in raced]
    assert all(text.startswith(f"{victim} was not started: {REFUSED}") for text in texts[:20]), texts[:20]
    assert all(text.startswith(REFUSED) and text.endswith(PINNED) for text in texts[20:]), texts[20:]
    assert untouched and started["state_before"] == "created", "no raced start ran it"
    swap = f"bind mount of `{public}/d` could be swapped for a symlink while the engine mounts it: "
    assert owned == f"{victim} was not started: {REFUSED}{swap}`{public}` belongs to uid 65534, not root {PINNED}"
    assert modes == {
        0o777: f"{REFUSED}{swap}`{public}` (mode 0777) can be written by users other than root {PINNED}",
        0o775: f"{REFUSED}{swap}`{public}` (mode 0775) can be written by users other than root {PINNED}",
        0o1777: f"{REFUSED}{swap}`{public}` (mode 1777) can be written by users other than root, and `d` in it is not root's {PINNED}",
    }
    assert ran_output(sticky_roots["id"]) == "inside"
    assert ran_output(victim) == "inside"
    assert labelled(policy_tag) == sorted([victim, sticky_roots["name"]]), "refusals leave no container"


def restore(root: Path) -> None:
    """After a mv loop stopped anywhere: the directory back at `d`, the symlink at `s`."""
    entries = [root / name for name in ("d", "s", "t") if (root / name).is_symlink() or (root / name).exists()]
    [directory] = [path for path in entries if not path.is_symlink()]
    [link] = [path for path in entries if path.is_symlink()]
    directory.rename(root / "tmp-d")
    link.rename(root / "s")
    (root / "tmp-d").rename(root / "d")


async def test_a_bind_below_a_containers_writable_bind_is_refused_every_time(binary, engine, policy_tag, tmp_path):
    """A container with a writable bind of the allowed root ran a busybox mv loop swapping a
    directory and a symlink out: 3 of 30 docker_container_run calls read the outside file. Its
    root can rename anything in that bind whatever the host's permissions, so a bind source
    below a writable mount of any container (the same request's included) is refused at create
    and at start, every time."""
    tmp = Path(os.path.realpath(tmp_path))
    root, outside = tmp / "data", tmp / "outside"
    (root / "d").mkdir(parents=True)
    outside.mkdir()
    (root / "d" / "file.txt").write_text("inside\n")
    (outside / "file.txt").write_text("OUTSIDE_SECRET\n")
    (root / "s").symlink_to(outside)
    victim = f"sm-policy-{policy_tag}-victim"
    docker("create", "--name", victim, "--label", f"sm-policy={policy_tag}", "-v", f"{root}/d:/m:ro", engine, "cat", "/m/file.txt")
    config = make_config(ADMIN + f'[docker.policy]\nbind_mount_roots = ["{root}"]\n')
    base = {"image": engine, "labels": {"sm-policy": policy_tag}}
    reader = {"type": "bind", "source": f"{root}/d", "target": "/m", "read_only": True}
    writer = {"type": "bind", "source": str(root), "target": "/w"}
    run = {**base, "command": ["cat", "/m/file.txt"], "mounts": [reader]}
    loop = "while true; do mv /w/d /w/t; mv /w/s /w/d; sleep 0.005; mv /w/d /w/s; mv /w/t /w/d; done"
    async with stdio_session(binary, "--config", str(config)) as session:
        attacker = await call(session, "docker_container_run", {**base, "command": ["sh", "-c", loop], "mounts": [writer]})
        await wait_until_async(lambda: (root / "d").is_symlink(), interval=0.001)  # the loop is swapping
        raced = [await session.call_tool("docker_container_run", run) for _ in range(20)]
        raced += [await session.call_tool("docker_container_start", {"container": victim}) for _ in range(20)]
        await call(session, "docker_container_stop", {"container": attacker["name"], "timeout_seconds": 0})
        restore(root)
        stopped_writer = await refusal(session, "docker_container_run", run)
        victim_refused = await refusal(session, "docker_container_start", {"container": victim})
        await call(session, "docker_container_remove", {"container": attacker["name"]})
        same_request = await refusal(session, "docker_container_run", {**run, "mounts": [writer, reader]})
        read_only_pair = await call(session, "docker_container_run", {**run, "mounts": [{**writer, "read_only": True}, reader]})
        alone = await call(session, "docker_container_run", run)
    texts = [answer.content[0].text for answer in raced]
    assert all(answer.is_error for answer in raced), [text for answer, text in zip(raced, texts) if not answer.is_error]
    assert all(text.startswith(REFUSED) for text in texts[:20]), texts[:20]
    assert all(text.startswith(f"{victim} was not started: {REFUSED}") for text in texts[20:]), texts[20:]
    why = (f"bind mount of `{root}/d` could be swapped for a symlink while the engine mounts it: `{root}` is in the writable mount "
           f"`{root}` of a container, whose root can rename what is there {PINNED}")
    assert stopped_writer == REFUSED + why, "a stopped container can be started again"
    assert victim_refused == f"{victim} was not started: {REFUSED}{why}"
    assert same_request == REFUSED + why
    assert [ran_output(made["id"]) for made in (read_only_pair, alone)] == ["inside", "inside"]
    assert never_started(victim)
    assert labelled(policy_tag) == sorted([victim, read_only_pair["name"], alone["name"]]), "refusals leave no container"


async def test_a_writable_bind_needs_a_directory_above_it_closed_to_others(binary, engine, policy_tag):
    """Binds have no nosuid: a container with a writable bind planted a setuid-root copy of a
    binary, and uid 65534 ran it on the host with euid 0. A writable bind is now refused unless
    a root-owned directory above it is closed to everyone else (mode 0700), so no other host
    user reaches what the container writes; read-only binds are not affected."""
    # Straight in /tmp, not under pytest's tmp_path: every directory above a tmp_path is closed to
    # others (/tmp/pytest-of-root is mode 0700), which is the very thing this test varies.
    top = Path(tempfile.mkdtemp(prefix=f"sm-policy-{policy_tag}-", dir="/tmp"))
    try:
        root = top / "data"
        root.mkdir()
        (root / "file.txt").write_text("inside\n")
        os.chmod(top, 0o755)
        config = make_config(ADMIN + f'[docker.policy]\nbind_mount_roots = ["{root}"]\n')
        base = {"image": engine, "labels": {"sm-policy": policy_tag}}
        plant = {**base, "command": ["sh", "-c", "cat /bin/busybox > /m/payload && chmod 4755 /m/payload"],
                 "mounts": [{"type": "bind", "source": str(root), "target": "/m"}]}
        async with stdio_session(binary, "--config", str(config)) as session:
            open_top = await refusal(session, "docker_container_run", plant)
            read_only = await call(session, "docker_container_run", {**base, "command": ["cat", "/m/file.txt"],
                                                                      "mounts": [{"type": "bind", "source": str(root), "target": "/m", "read_only": True}]})
            os.chmod(top, 0o700)
            planted = await call(session, "docker_container_run", plant)
            ran_output(planted["id"])
            payload = root / "payload"
            mode = payload.stat().st_mode
            try:
                subprocess.run([str(payload), "id", "-u"], user=65534, group=65534, extra_groups=[], capture_output=True)
                reached = True
            except PermissionError:
                reached = False
            os.chmod(top, 0o755)
            restarted = await refusal(session, "docker_container_start", {"container": planted["name"]})
    finally:
        shutil.rmtree(top)
    why = (f"writable bind mount of `{root}`: the container's root can leave setuid-root files there, and no directory above it is "
           f"closed to users other than root (owned by root, mode 0700), so they could run them; mount it read_only, or keep bind mount "
           f"roots below such a directory {PINNED}")
    assert open_top == REFUSED + why
    assert ran_output(read_only["id"]) == "inside"
    assert mode & 0o4000 and payload.parent == root, "the container did plant a setuid file"
    assert reached is False, "but no one else on the host can reach it"
    assert restarted == f"{planted['name']} was not started: {REFUSED}{why}"
