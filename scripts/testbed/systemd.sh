#!/usr/bin/env bash
# A real systemd for the services tests: a Debian 12 root filesystem (systemd 252, which still
# runs on this Docker host's cgroup v1; newer systemd refuses it) made with mmdebstrap and
# imported as an image. The tests start their own containers from it (random names), put the
# server binary and their units inside, and drive the server there over stdio and HTTP.
#
#   ./scripts/testbed/systemd.sh     # idempotent: installs and builds only what is missing
#
# Needs a running dockerd (scripts/testbed/docker.sh). Prints the image name. Run by
# scripts/test.sh.
set -euo pipefail

IMAGE=sm-systemd:test
if ! docker image inspect "$IMAGE" >/dev/null 2>&1; then
    if ! command -v mmdebstrap >/dev/null; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mmdebstrap >/dev/null
    fi
    rootfs=$(mktemp -d)
    trap 'rm -rf "$rootfs"' EXIT
    # python3 runs the tests' helper scripts inside; procps gives `ps` for ground truth.
    mmdebstrap --quiet --variant=apt --include=systemd,systemd-sysv,dbus,python3,procps \
        bookworm "$rootfs/rootfs.tar" >&2
    docker import --change 'CMD ["/sbin/init"]' "$rootfs/rootfs.tar" "$IMAGE" >/dev/null
fi
echo "$IMAGE"
