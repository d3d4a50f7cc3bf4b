#!/usr/bin/env bash
# Measures SystemManager and prints the figures docs/benchmarks.md records.
#
#   ./scripts/bench.sh            # about six minutes
#   PEER=1 ./scripts/bench.sh     # also the closest peer, through the same stdio driver
#
# The gate: what authentication, authorization, admission and the audit record cost per call
# (benches/gate.rs). stdio: start-up to the `initialize` answer, idle RSS, system_overview and
# tools/list latency, every read tool's latency and answer size, the samplers' CPU, and
# process_list with 1,000 extra processes (benches/stdio.rs). Files: files_search over 100 MB
# beside ripgrep's own binary, files_tail on 1 GiB, a files_list page of 100,000 entries.
# Docker: docker_container_list with 100 containers, docker_container_stats of 20 at once.
# Services: service_list, service_status and journal_query on a journal of 1,000,000 entries,
# beside systemctl and journalctl (scripts/bench/services.sh). HTTP: stateless tools/call
# throughput and latency at 1, 10 and 100
# connections with wrk, plus a 2025-11-25 session (SSE answers) run; the server is pinned to
# CPU 0 and wrk to CPU 1 so they do not share a core; then the memory of 1,000 more sessions.
#
# Whatever it starts (the HTTP server, 1,000 sleeps, 100 labelled containers, a temporary
# directory) goes when it ends, however it ends; a step that fails ends it with a message on
# stderr naming the step, and a non-zero exit: the figures printed so far are not a result.
set -euo pipefail
cd "$(dirname "$0")/.."

# --- cleanup and failure, for everything below -------------------------------------------------

STATE=""           # the temporary directory: configs, token file, audit log, the files bench's tree
SERVER=""          # the HTTP server's pid
SLEEPERS=()        # the 1,000 extra processes
BENCH_LABEL=sm-bench=$$  # on every container the docker bench makes
SECTION="setup"    # the step running, for the failure message
FAILED_COMMAND=""

remove_bench_containers() {
    local containers
    mapfile -t containers < <(docker ps -aq --filter "label=$BENCH_LABEL")
    ((${#containers[@]} == 0)) || docker rm -f "${containers[@]}" >/dev/null
}

stop_sleepers() {
    ((${#SLEEPERS[@]} == 0)) || { kill "${SLEEPERS[@]}" 2>/dev/null || true; wait "${SLEEPERS[@]}" 2>/dev/null || true; }
    SLEEPERS=()
}

cleanup() {
    local status=$?
    set +e
    if [ -n "$SERVER" ]; then
        kill "$SERVER" 2>/dev/null
        wait "$SERVER" 2>/dev/null
    fi
    stop_sleepers
    command -v docker >/dev/null && remove_bench_containers 2>/dev/null
    [ -z "$STATE" ] || rm -rf "$STATE"
    if ((status != 0)); then
        printf '\nbench.sh: FAILED (exit %d) in "%s"%s\n' "$status" "$SECTION" "${FAILED_COMMAND:+, at $FAILED_COMMAND}" >&2
        echo "bench.sh: the figures above are incomplete; record none of them" >&2
    fi
    exit "$status"
}

fail() { # message: a failure this script found itself
    FAILED_COMMAND=$1
    exit 1
}

trap 'FAILED_COMMAND="line $LINENO: $BASH_COMMAND"' ERR
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Prints a section's title and remembers it for the failure message.
section() {
    SECTION=$1
    echo
    echo "== $1"
}

# --- the bench ---------------------------------------------------------------------------------

DURATION=${DURATION:-10s}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }

SECTION="cargo build --release"
cargo build --release --locked --quiet
BIN=$PWD/target/release/systemmanager

# The servers under test keep their state (token file, audit log) here, not in the machine's
# state directory. One identity sends every request, so its budget is raised far above what the
# bench reaches; everything else is the default configuration, the audit log included.
STATE=$(mktemp -d)
cat >"$STATE/config.toml" <<TOML
[limits]
max_concurrent_calls = 100000
[limits.per_identity]
calls_per_minute = 1000000000
burst = 1000000
max_concurrent = 100000
[http]
max_sessions_per_identity = 5000
max_sessions = 5000
[security]
token_file = "$STATE/tokens.json"
[audit]
path = "$STATE/audit.jsonl"
TOML

SECTION="Machine"
echo "== Machine"
echo "$(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), kernel $(uname -r)"
echo "binary: $(du -h "$BIN" | cut -f1) ($BIN, release profile)"

section "The gate's security, per call (benches/gate.rs)"
cargo bench --locked --quiet --bench gate

section "stdio"
cargo bench --locked --quiet --bench stdio -- --command "$BIN serve --config $STATE/config.toml"

section "stdio, each read tool from a warm sampler; then the samplers' own CPU over 20 s"
cargo bench --locked --quiet --bench stdio -- --command "$BIN serve --config $STATE/config.toml" \
    --each-read-tool --starts 0 --sampler-seconds 20

section "stdio, process_list with 1,000 more processes on the machine"
for _ in $(seq 1000); do sleep 600 & SLEEPERS+=($!); done
cargo bench --locked --quiet --bench stdio -- --command "$BIN serve --config $STATE/config.toml" \
    --tool process_list --arguments '{}' --starts 0 --sampler-seconds 20
cargo bench --locked --quiet --bench stdio -- --command "$BIN serve --config $STATE/config.toml" \
    --tool process_list --arguments '{"limit": 500}' --starts 0
stop_sleepers

section "files: content search over 10,000 files / 100 MB beside rg, files_tail on 1 GiB, a"
echo "   files_list page of a directory of 100,000 entries (scripts/bench/make_files.py)"
command -v rg >/dev/null || { apt-get update -qq && apt-get install -y -qq ripgrep >/dev/null; }
FILES=$STATE/files
python3 scripts/bench/make_files.py "$FILES"
sed "s|^\[security\]|[files]\nroots = [\"$FILES\"]\n[security]|" "$STATE/config.toml" >"$STATE/files.toml"
NEEDLE='ERROR upstream timeout'
median_ms() { # the median wall time of five runs of a command, after one to warm the cache
    local runs=()
    for _ in 1 2 3 4 5 6; do
        local start end
        start=$(date +%s%N)
        "$@" >/dev/null
        end=$(date +%s%N)
        runs+=($(((end - start) / 1000)))
    done
    printf '%s\n' "${runs[@]:1}" | sort -n | sed -n 3p | awk '{printf "%.1f ms", $1 / 1000}'
}
echo "rg (ripgrep $(rg --version | head -n 1 | cut -d' ' -f2)), $(nproc) threads: $(median_ms rg -c "$NEEDLE" "$FILES/tree")" \
    " matching files: $(rg -l "$NEEDLE" "$FILES/tree" | wc -l)"
echo "rg -j1 (one thread, as files_search walks): $(median_ms rg -j1 -c "$NEEDLE" "$FILES/tree")"
cargo bench --locked --quiet --bench stdio -- --command "$BIN serve --config $STATE/files.toml" --starts 0 \
    --calls 20 --tool files_search --arguments "{\"path\":\"$FILES/tree\",\"content\":\"$NEEDLE\",\"max_results\":1000}" |
    grep files_search
cargo bench --locked --quiet --bench stdio -- --command "$BIN serve --config $STATE/files.toml" --starts 0 \
    --tool files_tail --arguments "{\"path\":\"$FILES/big.log\",\"lines\":50}" | grep files_tail
for sort in name none; do
    cargo bench --locked --quiet --bench stdio -- --command "$BIN serve --config $STATE/files.toml" --starts 0 \
        --calls 50 --tool files_list --arguments "{\"path\":\"$FILES/wide\",\"limit\":100,\"sort\":\"$sort\"}" |
        grep -E 'files_list|RSS after'
done
rm -rf "$FILES"

section "docker: docker_container_list with 100 containers (20 running), docker_container_stats"
echo "   of the 20 running ones in one call (scripts/testbed/docker.sh provides the engine)"
IMAGE=$(./scripts/testbed/docker.sh 2>"$STATE/testbed.log" | tail -n 1) ||
    fail "scripts/testbed/docker.sh: $(tail -n 5 "$STATE/testbed.log")"
for n in $(seq 100); do
    if ((n <= 20)); then
        docker run -d --label "$BENCH_LABEL" --name "sm-bench-$n" "$IMAGE" sleep 3600 >/dev/null
    else
        docker create --label "$BENCH_LABEL" --name "sm-bench-$n" "$IMAGE" true >/dev/null
    fi
done
echo "containers on the engine: $(docker ps -aq | wc -l) ($(docker ps -q | wc -l) running)"
cargo bench --locked --quiet --bench stdio -- --command "$BIN serve --config $STATE/config.toml" --starts 0 \
    --calls 200 --tool docker_container_list --arguments '{"all":true}' | grep docker_container_list
echo "the engine's own GET /containers/json?all=1 (curl, median of 5): $(median_ms curl -s --unix-socket /var/run/docker.sock 'http://localhost/v1.41/containers/json?all=1')"
RUNNING=$(printf '"sm-bench-%d",' $(seq 20) | sed 's/,$//')
cargo bench --locked --quiet --bench stdio -- --command "$BIN serve --config $STATE/config.toml" --starts 0 \
    --calls 5 --tool docker_container_stats --arguments "{\"containers\":[$RUNNING]}" | grep docker_container_stats
time_ms() { local start end; start=$(date +%s%N); "$@" >/dev/null; end=$(date +%s%N); echo "$(((end - start) / 1000000)) ms"; }
echo "docker stats --no-stream of the same 20: $(time_ms docker stats --no-stream $(seq -f 'sm-bench-%g' 20))"
remove_bench_containers

section "HTTP (server on CPU 0, wrk on CPU 1, $DURATION per run)"
TOKEN=$("$BIN" token create --name bench --role viewer --config "$STATE/config.toml" 2>/dev/null)
export TOKEN
LOG=$STATE/server.log
taskset -c 0 "$BIN" serve --http 127.0.0.1:0 --config "$STATE/config.toml" 2>"$LOG" &
SERVER=$!
for _ in $(seq 50); do grep -q "serving MCP over HTTP" "$LOG" && break; sleep 0.1; done
URL=$(grep -o 'http://[^ ]*/mcp' "$LOG" | head -n 1) || fail "the HTTP server did not start: $(tail -n 5 "$LOG")"
echo "idle RSS: $(awk '/VmRSS/ {printf "%.1f MiB", $2/1024}' /proc/$SERVER/status)"

run() { # label connections [env...]
    local label=$1 connections=$2; shift 2
    local threads=$((connections < 2 ? 1 : 2))
    local out
    out=$(env "$@" taskset -c 1 wrk -t "$threads" -c "$connections" -d "$DURATION" --latency \
        -s scripts/bench/tools_call.lua "$URL")
    local rps p50 p99 max errors
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
    p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
    max=$(awk '$1 == "Latency" {print $4}' <<<"$out")
    errors=$(awk '/Non-2xx/ {print $5}' <<<"$out")
    printf '%-34s %5s conns  %9s req/s  p50 %8s  p99 %8s  max %8s  non-2xx %s\n' \
        "$label" "$connections" "$rps" "$p50" "$p99" "$max" "${errors:-0}"
}

for connections in 1 10 100; do
    run "tools/call system_overview" "$connections"
done

SESSION=$(curl -s -D - -o /dev/null -H 'Content-Type: application/json' \
    -H 'Accept: application/json, text/event-stream' -H "Authorization: Bearer $TOKEN" "$URL" \
    -d '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}' |
    awk 'tolower($1) == "mcp-session-id:" {print $2}' | tr -d '\r')
curl -s -o /dev/null -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
    -H "Authorization: Bearer $TOKEN" -H "Mcp-Session-Id: $SESSION" -H 'MCP-Protocol-Version: 2025-11-25' "$URL" \
    -d '{"jsonrpc":"2.0","method":"notifications/initialized"}'
run "tools/call, 2025-11-25 session (SSE)" 10 SESSION_ID="$SESSION"

echo "RSS after the runs: $(awk '/VmRSS/ {printf "%.1f MiB", $2/1024}' /proc/$SERVER/status)" \
    "(peak $(awk '/VmHWM/ {printf "%.1f MiB", $2/1024}' /proc/$SERVER/status))"

# What one 2025-11-25 session costs: 1,000 more, opened one after another (the bench identity's
# session bound is raised above; the default is 16 per identity, 1,024 in all).
rss_kib() { awk '/VmRSS/ {print $2}' /proc/$SERVER/status; }
before=$(rss_kib)
for _ in $(seq 1000); do
    curl -s -o /dev/null -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
        -H "Authorization: Bearer $TOKEN" "$URL" \
        -d '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}'
done
after=$(rss_kib)
echo "sessions: 1,000 more open sessions: +$(( (after - before) / 1024 )) MiB RSS, $(( (after - before) / 1000 )) KiB each"

section "services: service_list, service_status and journal_query (1,000,000 entries) beside"
echo "   systemctl and journalctl in the same Debian 12 systemd container (scripts/bench/services.sh)"
./scripts/bench/services.sh "$BIN"

# The closest peer, measured by the same stdio driver, when asked: PEER=1 ./scripts/bench.sh
if [ "${PEER:-0}" = 1 ]; then
    section "Peer: Red Hat linux-mcp-server 1.7.0 (Python/FastMCP), same stdio driver"
    PEER_VENV=$PWD/target/peer-venv
    [ -x "$PEER_VENV/bin/linux-mcp-server" ] || {
        python3 -m venv "$PEER_VENV" && "$PEER_VENV/bin/pip" install -q linux-mcp-server==1.7.0
    }
    cargo bench --locked --quiet --bench stdio -- --command "$PEER_VENV/bin/linux-mcp-server" \
        --tool get_system_information --arguments '{"host":"localhost"}' --starts 5
    cargo bench --locked --quiet --bench stdio -- --command "$PEER_VENV/bin/linux-mcp-server" \
        --tool list_processes --arguments '{"host":"localhost"}' --starts 0
fi
