#!/usr/bin/env bash
# The services bench: service_list with ~200 units, service_status, and journal_query for 100
# lines of one unit from a journal of 1,000,000 entries, each beside the native command
# (systemctl list-units, systemctl show, journalctl -u X -n 100 -o json) in the same container,
# and the server's memory before and after the journal queries. Prints figures; asserts nothing.
#
#   ./scripts/bench/services.sh BINARY      # run by scripts/bench.sh; about two minutes
#
# Runs in a Debian 12 systemd container (scripts/testbed/systemd.sh), removed when it ends,
# however it ends.
set -euo pipefail
cd "$(dirname "$0")/../.."

BIN=${1:?usage: services.sh BINARY}
BOX=sm-bench-systemd-$$
STAGE="setup"
cleanup() {
    local status=$?
    docker rm -f "$BOX" >/dev/null 2>&1 || true
    ((status == 0)) || echo "services.sh: FAILED (exit $status) in \"$STAGE\"; record none of these figures" >&2
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

inside() { docker exec "$BOX" "$@"; }

IMAGE=$(./scripts/testbed/systemd.sh | tail -n 1)
docker run -d --name "$BOX" --cgroupns=private --cap-add SYS_ADMIN \
    --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
    -v /sys/fs/cgroup:/sys/fs/cgroup:rw --tmpfs /run --tmpfs /run/lock "$IMAGE" /sbin/init >/dev/null
for _ in $(seq 120); do
    state=$(inside systemctl is-system-running 2>/dev/null || true)
    [ "$state" = running ] || [ "$state" = degraded ] && break
    sleep 0.5
done
docker cp "$BIN" "$BOX:/usr/local/bin/systemmanager"
inside sh -c 'printf "[security]\nlocal_role = \"viewer\"\n[limits.per_identity]\ncalls_per_minute = 1000000000\nburst = 1000000\n[audit]\npath = \"/var/tmp/sm-audit.jsonl\"\n" > /etc/sm-bench.toml'

STAGE="units: 60 more services, running"
for n in $(seq 60); do
    printf '[Unit]\nDescription=bench %s\n[Service]\nExecStart=/bin/sleep 100000\n' "$n" |
        docker exec -i "$BOX" sh -c "cat > /etc/systemd/system/sm-bench-$n.service"
done
printf '[Unit]\nDescription=bench logger\n[Service]\nType=oneshot\nExecStart=/bin/sh -c "seq 1 1000 | sed s/^/line-/"\n' |
    docker exec -i "$BOX" sh -c 'cat > /etc/systemd/system/sm-bench-log.service'
inside systemctl daemon-reload
mapfile -t BENCH_UNITS < <(seq -f "sm-bench-%g.service" 60)
inside systemctl start "${BENCH_UNITS[@]}" sm-bench-log.service

STAGE="the journal: 1,000,000 entries"
# journald's default rate limit would drop most of them.
inside sh -c 'mkdir -p /etc/systemd/journald.conf.d && printf "[Journal]\nRateLimitBurst=0\nStorage=volatile\nRuntimeMaxUse=2G\n" > /etc/systemd/journald.conf.d/bench.conf && systemctl restart systemd-journald'
inside sh -c 'seq 1 1000000 | systemd-cat -t smbulk'
for _ in $(seq 240); do
    [ "$(inside journalctl -t smbulk -n 1 -o cat 2>/dev/null)" = 1000000 ] && break
    sleep 0.5
done
echo "journal: $(inside journalctl --no-pager -q | wc -l) entries, $(inside journalctl --disk-usage | grep -o '[0-9.]*[KMG]')"
echo "units loaded: $(inside systemctl list-units --all --no-legend --plain | wc -l)"

# The median of 11 runs of a native command inside the container (after one to warm up), ms.
native_ms() {
    docker exec "$BOX" python3 -c '
import subprocess, sys, time
command = sys.argv[1:]
subprocess.run(command, capture_output=True)
times = []
for _ in range(11):
    start = time.perf_counter()
    subprocess.run(command, capture_output=True, check=True)
    times.append((time.perf_counter() - start) * 1000)
print(f"{sorted(times)[5]:.2f} ms")' "$@"
}

rss_kib() { inside sh -c 'ps -C systemmanager -o rss= | sort -n | tail -n 1'; }

COMMAND="docker exec -i $BOX /usr/local/bin/systemmanager serve --config /etc/sm-bench.toml"
STAGE="service_list"
cargo bench --locked --quiet --bench stdio -- --command "$COMMAND" --starts 0 --calls 50 \
    --tool service_list --arguments '{"all":true,"limit":1000}' | grep service_list
echo "systemctl list-units --all (median of 11): $(native_ms systemctl list-units --all --no-pager)"
STAGE="service_status"
cargo bench --locked --quiet --bench stdio -- --command "$COMMAND" --starts 0 --calls 50 \
    --tool service_status --arguments '{"unit":"sm-bench-log","lines":0}' | grep service_status
echo "systemctl show sm-bench-log (median of 11): $(native_ms systemctl show sm-bench-log.service)"
STAGE="journal_query"
cargo bench --locked --quiet --bench stdio -- --command "$COMMAND" --starts 0 --calls 50 \
    --tool journal_query --arguments '{"unit":"sm-bench-log","limit":100}' | grep journal_query
echo "journalctl -u sm-bench-log -n 100 -o json (median of 11): $(native_ms journalctl --no-pager -u sm-bench-log.service -n 100 -o json)"
cargo bench --locked --quiet --bench stdio -- --command "$COMMAND" --starts 0 --calls 20 \
    --tool journal_query --arguments '{"identifier":"smbulk","limit":100,"order":"oldest_first"}' | grep journal_query
echo "journalctl -t smbulk (oldest first, first 100 lines; median of 11): $(native_ms sh -c 'journalctl --no-pager -t smbulk -o json | head -n 100')"

STAGE="memory"
docker exec -i "$BOX" python3 - <<'PY'
import json, subprocess, sys
server = subprocess.Popen(["systemmanager", "serve", "--config", "/etc/sm-bench.toml"],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
def send(message):
    server.stdin.write(json.dumps(message) + "\n")
    server.stdin.flush()
    return json.loads(server.stdout.readline()) if "id" in message else None
def rss():
    with open(f"/proc/{server.pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))
send({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}})
send({"jsonrpc": "2.0", "method": "notifications/initialized"})
before = rss()
cursor = None
for n in range(1, 101):
    arguments = {"identifier": "smbulk", "limit": 1000, "order": "oldest_first"}
    if cursor:
        arguments["cursor"] = cursor
    answer = send({"jsonrpc": "2.0", "id": n, "method": "tools/call", "params": {"name": "journal_query", "arguments": arguments}})
    cursor = answer["result"]["structuredContent"].get("next_cursor")
print(f"server RSS: {before} KiB after initialize, {rss()} KiB after paging 100 pages of the 1,000,000-entry journal")
server.stdin.close()
server.wait()
PY
