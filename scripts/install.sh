#!/usr/bin/env bash
# Installs SystemManager as a hardened systemd service on this host:
#
#   sudo ./scripts/install.sh [--binary PATH] [--token-name NAME] [--token-role ROLE] [--no-start]
#
# 1. the binary to /usr/local/bin/systemmanager (default: target/release/systemmanager; build
#    it first with `cargo build --release --locked`),
# 2. a system user `systemmanager` (no login, no home),
# 3. the unit packaging/systemmanager.service to /etc/systemd/system/,
# 4. a configuration skeleton /etc/systemmanager/config.toml (kept if it exists),
# 5. the state directory /var/lib/systemmanager (tokens, audit log), the service user's,
# 6. enables and starts the unit (unless --no-start) and waits until it is active,
# 7. creates a first token (unless the token file already has one) and prints its secret once
#    on stdout.
#
# Safe to run again: it replaces the binary and the unit, keeps the config and the tokens.
set -euo pipefail

cd "$(dirname "$0")/.."
SOURCE=$(pwd)
BINARY=$SOURCE/target/release/systemmanager
TOKEN_NAME=first-client
TOKEN_ROLE=viewer
START=1

fail() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }
say() { printf '==> %s\n' "$*" >&2; }

while (($#)); do
    case $1 in
        --binary) BINARY=${2:?--binary needs a path}; shift 2 ;;
        --token-name) TOKEN_NAME=${2:?--token-name needs a name}; shift 2 ;;
        --token-role) TOKEN_ROLE=${2:?--token-role needs a role}; shift 2 ;;
        --no-start) START=0; shift ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) fail "unknown option $1 (see --help)" ;;
    esac
done

[ "$(id -u)" = 0 ] || fail "run as root (it installs a system service)"
[ -d /run/systemd/system ] || fail "systemd is not running here; see docs/deploy.md for the container or a manual start"
[ -x "$BINARY" ] || fail "no binary at $BINARY: build it (cargo build --release --locked) or pass --binary PATH"
"$BINARY" --version >/dev/null || fail "$BINARY does not run on this host"
# The token's role, checked before anything is installed: a token made in a scratch directory.
config=/etc/systemmanager/config.toml
[ -e "$config" ] || config=$SOURCE/packaging/config.toml
if ! grep -q '^[[:space:]]*token_file' "$config"; then   # (a set token_file is the real one)
    scratch=$(mktemp -d)
    trap 'rm -rf "$scratch"' EXIT
    STATE_DIRECTORY=$scratch "$BINARY" --config "$config" token create --name probe --role "$TOKEN_ROLE" \
        >/dev/null 2>"$scratch/error" || fail "--token-role $TOKEN_ROLE: $(cat "$scratch/error")"
fi

say "binary: /usr/local/bin/systemmanager ($("$BINARY" --version))"
install -m 0755 "$BINARY" /usr/local/bin/systemmanager.new
mv -f /usr/local/bin/systemmanager.new /usr/local/bin/systemmanager

if ! id -u systemmanager >/dev/null 2>&1; then
    say "user: systemmanager (system user, no login)"
    useradd --system --home-dir /var/lib/systemmanager --no-create-home --shell /usr/sbin/nologin systemmanager
fi

say "unit: /etc/systemd/system/systemmanager.service"
install -m 0644 "$SOURCE/packaging/systemmanager.service" /etc/systemd/system/systemmanager.service

if [ ! -e /etc/systemmanager/config.toml ]; then
    say "config: /etc/systemmanager/config.toml (the built-in defaults; every setting: docs/config.example.toml)"
    install -d -m 0755 /etc/systemmanager
    install -m 0644 "$SOURCE/packaging/config.toml" /etc/systemmanager/config.toml
fi
/usr/local/bin/systemmanager --config /etc/systemmanager/config.toml config check >/dev/null ||
    fail "/etc/systemmanager/config.toml does not load (systemmanager config check says why)"

say "state: /var/lib/systemmanager (tokens, audit log)"
install -d -m 0700 -o systemmanager -g systemmanager /var/lib/systemmanager

systemctl daemon-reload
if ((START)); then
    say "starting systemmanager.service"
    systemctl enable --now systemmanager.service >/dev/null 2>&1 ||
        fail "systemmanager.service did not start: journalctl -u systemmanager.service"
    systemctl is-active --quiet systemmanager.service || fail "systemmanager.service is not active"
fi

if ! /usr/local/bin/systemmanager token list 2>/dev/null | grep -q ' active'; then
    say "token: $TOKEN_NAME (role $TOKEN_ROLE); its secret is printed once, below"
    /usr/local/bin/systemmanager token create --name "$TOKEN_NAME" --role "$TOKEN_ROLE"
fi
if ((START)); then
    say "done: MCP over Streamable HTTP on unix:/run/systemmanager/mcp.sock; docs/deploy.md goes on from here"
else
    say "done: installed, not started (systemctl enable --now systemmanager); docs/deploy.md goes on from here"
fi
