#!/usr/bin/env bash
# Runs every SystemManager test, installing and starting whatever the tests need first.
#
#   ./scripts/test.sh
#
# On a fresh Debian machine (root, package registries reachable) it installs what is missing:
# Debian packages, a Python venv with the official MCP client (tests/contract/requirements.txt),
# and the Node clients pinned in tests/npm (the MCP Inspector CLI and the official conformance
# suite, with the Node 22 it needs), and a running Docker Engine with a test image
# (scripts/testbed/docker.sh), and a Debian 12 systemd image for the services tests
# (scripts/testbed/systemd.sh). The cheap checks come first, before Docker and npm are provisioned,
# so a lint failure shows in seconds: rustfmt, ruff on the contract tests, shellcheck on the
# scripts, then clippy. Then it builds once (the dev profile), runs the Rust tests and the
# contract tests, and ends with each runner's summary line.
#
# The deployment tests build the container image (Dockerfile, from a static build of the binary)
# and run it with compose.yaml (docker-compose), install packaging/systemmanager.service in the
# systemd container, and scrape /metrics with a real Prometheus.
#
# Under CI=true nothing is skipped: a missing component is a failure.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
LOGS=$(mktemp -d)
trap 'rm -rf "$LOGS"' EXIT

step() { printf '\n==> %s\n' "$*"; }
fail() { printf 'test.sh: %s\n' "$*" >&2; exit 1; }

# --- what the tests need -------------------------------------------------------------------------

step "Checking tools"
missing_packages=()
command -v python3 >/dev/null || missing_packages+=(python3 python3-venv)
command -v npm >/dev/null || missing_packages+=(nodejs npm)
command -v nproc >/dev/null || missing_packages+=(coreutils)
command -v cc >/dev/null || missing_packages+=(gcc)
command -v ip >/dev/null || missing_packages+=(iproute2)   # ground truth (ip, ss); Tailscale netns
command -v ss >/dev/null || missing_packages+=(iproute2)
command -v ps >/dev/null || missing_packages+=(procps)     # ground truth: ps, free
command -v free >/dev/null || missing_packages+=(procps)
command -v df >/dev/null || missing_packages+=(coreutils)
command -v lspci >/dev/null || missing_packages+=(pciutils)  # ground truth, and pci.ids for names
command -v lsusb >/dev/null || missing_packages+=(usbutils)
command -v lsblk >/dev/null || missing_packages+=(util-linux)  # lsblk, lscpu, lsmem
command -v curl >/dev/null || missing_packages+=(curl)
command -v shellcheck >/dev/null || missing_packages+=(shellcheck)  # lint: scripts/*.sh
command -v prometheus >/dev/null || missing_packages+=(prometheus)  # scrapes /metrics (test_metrics.py)
command -v docker-compose >/dev/null || missing_packages+=(docker-compose)  # runs compose.yaml
if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then missing_packages+=(python3-venv); fi
if ((${#missing_packages[@]})); then
    step "Installing Debian packages: ${missing_packages[*]}"
    [ "$(id -u)" = 0 ] || fail "need root to install ${missing_packages[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing_packages[@]}" >/dev/null
fi
command -v cargo >/dev/null || fail "cargo is missing: install Rust (https://rustup.rs) first"

# The Python venv with the official MCP SDK client and ruff; rebuilt when the requirements change.
VENV=$ROOT/.venv
REQUIREMENTS=$ROOT/tests/contract/requirements.txt
if [ ! -x "$VENV/bin/python" ] || ! cmp -s "$REQUIREMENTS" "$VENV/.requirements"; then
    step "Creating the Python venv (.venv) with $(tr '\n' ' ' < "$REQUIREMENTS")"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$REQUIREMENTS"
    cp "$REQUIREMENTS" "$VENV/.requirements"
fi

# --- lint: the cheap checks, before anything slow is provisioned ---------------------------------

step "cargo fmt --check"
cargo fmt --all -- --check

step "ruff check tests/contract (tests/contract/ruff.toml)"
"$VENV/bin/ruff" check tests/contract

step "shellcheck scripts/*.sh scripts/testbed/*.sh scripts/bench/*.sh"
shellcheck scripts/*.sh scripts/testbed/*.sh scripts/bench/*.sh

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --locked --all-targets --quiet -- -D warnings

# --- what the tests need beyond the tools: the Node clients, the Docker Engine -------------------

# The Node clients, pinned by tests/npm/package-lock.json; reinstalled when the lock changes.
NPM_CLIENTS=$ROOT/tests/npm
if [ ! -x "$NPM_CLIENTS/node_modules/.bin/mcp-inspector" ] ||
    ! cmp -s "$NPM_CLIENTS/package-lock.json" "$NPM_CLIENTS/node_modules/.installed-lock.json"; then
    step "Installing the MCP Inspector CLI and the MCP conformance suite (tests/npm)"
    (cd "$NPM_CLIENTS" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    cp "$NPM_CLIENTS/package-lock.json" "$NPM_CLIENTS/node_modules/.installed-lock.json"
fi

# The Docker Engine the Docker tests talk to: docker.io, a running dockerd, a busybox image.
step "Docker Engine for the Docker tests (scripts/testbed/docker.sh)"
[ "$(id -u)" = 0 ] || fail "the Docker tests need root to install and start dockerd"
SM_DOCKER_IMAGE=$("$ROOT/scripts/testbed/docker.sh")
export SM_DOCKER_IMAGE
echo "dockerd $(docker version --format '{{.Server.Version}}' 2>/dev/null), image $SM_DOCKER_IMAGE"

# A real systemd for the services tests: a Debian 12 image run as a container per test module.
step "systemd for the services tests (scripts/testbed/systemd.sh)"
SM_SYSTEMD_IMAGE=$("$ROOT/scripts/testbed/systemd.sh")
export SM_SYSTEMD_IMAGE
echo "image $SM_SYSTEMD_IMAGE"

# --- build, test ---------------------------------------------------------------------------------

step "cargo build"
cargo build --locked --all-targets

# The container image's binary (Dockerfile, `prebuilt` stage): the same dev profile, linked
# statically (glibc's crt-static), without debug info; its own target directory, so the build
# above is untouched.
HOST_TARGET=$(rustc -vV | sed -n 's/^host: //p')
step "cargo build --target $HOST_TARGET, static (the container image's binary)"
target_flags_var="CARGO_TARGET_$(echo "$HOST_TARGET" | tr 'a-z-' 'A-Z_')_RUSTFLAGS"
env "$target_flags_var=-C target-feature=+crt-static" CARGO_PROFILE_DEV_DEBUG=0 CARGO_PROFILE_DEV_STRIP=symbols \
    cargo build --locked --bin systemmanager --target "$HOST_TARGET"
SM_STATIC_BIN=$ROOT/target/$HOST_TARGET/debug/systemmanager
export SM_STATIC_BIN

step "Rust tests"
if cargo nextest --version >/dev/null 2>&1; then
    # (nextest skips doctests; the crate has none: its examples are tests.)
    if cargo nextest run --locked --no-fail-fast --no-tests=fail 2>&1 | tee "$LOGS/rust.log"; then rust_status=0; else rust_status=1; fi
    rust_summary=$(grep -E '^\s+Summary \[' "$LOGS/rust.log" | tail -n 1 | sed 's/^ *//')
else
    if cargo test --locked --no-fail-fast 2>&1 | tee "$LOGS/rust.log"; then rust_status=0; else rust_status=1; fi
    rust_summary=$(grep -E '^test result' "$LOGS/rust.log" |
        awk '{p+=$4; f+=$6} END {printf "%d passed, %d failed (cargo test)", p, f}')
fi

step "Contract tests (official MCP Python SDK client, MCP Inspector, MCP conformance suite, raw JSON-RPC)"
if SYSTEMMANAGER_BIN=$ROOT/target/debug/systemmanager \
    "$VENV/bin/python" -m pytest -c tests/contract/pytest.ini tests/contract 2>&1 | tee "$LOGS/contract.log"; then
    contract_status=0
else
    contract_status=1
fi
contract_summary=$(grep -E '^=+ .*(passed|failed|error).* =+$' "$LOGS/contract.log" | tail -n 1 | tr -d '=' | sed 's/^ *//;s/ *$//')

# --- summary -------------------------------------------------------------------------------------

if ((rust_status != 0 || contract_status != 0)); then verdict="FAILED"; else verdict="all tests passed"; fi
step "Summary: $verdict"
echo "rust:     $rust_summary"
echo "contract: $contract_summary"
[ "$verdict" = "all tests passed" ]
