#!/usr/bin/env bash
# The Docker Engine the Docker tests talk to: Debian's docker.io, a running dockerd, and a
# busybox image made locally (these machines reach no public image registry).
#
#   ./scripts/testbed/docker.sh     # idempotent: installs, starts and builds only what is missing
#
# Prints the image name the tests use. Run by scripts/test.sh.
set -euo pipefail

IMAGE=sm-busybox:test
packages=()
command -v dockerd >/dev/null || packages+=(docker.io)
command -v busybox >/dev/null || packages+=(busybox-static)
if ((${#packages[@]})); then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
    # No systemd here: start the daemon by hand, detached from this shell.
    setsid dockerd >/var/log/sm-test-dockerd.log 2>&1 < /dev/null &
    for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
    docker info >/dev/null 2>&1 || { tail -n 20 /var/log/sm-test-dockerd.log >&2; echo "dockerd did not start" >&2; exit 1; }
fi

if ! docker image inspect "$IMAGE" >/dev/null 2>&1; then
    # A root filesystem of busybox and its applets, imported as an image.
    rootfs=$(mktemp -d)
    mkdir -p "$rootfs/bin" "$rootfs/tmp" "$rootfs/etc"
    cp "$(command -v busybox)" "$rootfs/bin/busybox"
    for applet in sh echo sleep cat ls ps top yes seq printf true false env id kill hostname; do
        ln -s busybox "$rootfs/bin/$applet"
    done
    echo 'root:x:0:0:root:/:/bin/sh' >"$rootfs/etc/passwd"
    tar -C "$rootfs" -c . | docker import --change 'ENV PATH=/bin' --change 'CMD ["/bin/sh"]' - "$IMAGE" >/dev/null
    rm -rf "$rootfs"
fi
echo "$IMAGE"
