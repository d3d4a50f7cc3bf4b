#!/usr/bin/env bash
# The Docker Engine the Docker tests talk to: Debian's docker.io, a running dockerd, a busybox
# image made locally (these machines reach no public image registry), and two local registries
# holding it: 127.0.0.1:5000 open, 127.0.0.1:5001 behind a login (user sm-test, password in
# /var/lib/sm-testbed/registry.password).
#
#   ./scripts/testbed/docker.sh     # idempotent: installs, starts and builds only what is missing
#
# Prints the image name the tests use. Run by scripts/test.sh.
set -euo pipefail

IMAGE=sm-busybox:test
packages=()
command -v dockerd >/dev/null || packages+=(docker.io)
command -v busybox >/dev/null || packages+=(busybox-static)
command -v docker-registry >/dev/null || packages+=(docker-registry)
command -v htpasswd >/dev/null || packages+=(apache2-utils)
command -v curl >/dev/null || packages+=(curl)
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
# The registries, each with its own storage and config under /var/lib/sm-testbed.
STATE=/var/lib/sm-testbed
mkdir -p "$STATE"
[ -s "$STATE/registry.password" ] || head -c 18 /dev/urandom | base64 >"$STATE/registry.password"
htpasswd -Bbn sm-test "$(cat "$STATE/registry.password")" >"$STATE/htpasswd"
start_registry() { # port [auth]
    local port=$1 auth=${2:-}
    curl -s -o /dev/null "http://127.0.0.1:$port/v2/" && return 0
    mkdir -p "$STATE/registry-$port"
    {
        echo "version: 0.1"
        echo "storage: {filesystem: {rootdirectory: $STATE/registry-$port}, delete: {enabled: true}}"
        echo "http: {addr: 127.0.0.1:$port}"
        [ -z "$auth" ] || echo "auth: {htpasswd: {realm: sm-test, path: $STATE/htpasswd}}"
    } >"$STATE/registry-$port.yml"
    setsid docker-registry serve "$STATE/registry-$port.yml" >"$STATE/registry-$port.log" 2>&1 < /dev/null &
    for _ in $(seq 40); do curl -s -o /dev/null "http://127.0.0.1:$port/v2/" && return 0; sleep 0.25; done
    tail -n 20 "$STATE/registry-$port.log" >&2
    echo "docker-registry on 127.0.0.1:$port did not start" >&2
    exit 1
}
start_registry 5000
start_registry 5001 auth
# The image the pull tests fetch: busybox plus 4 MiB of random bytes, so its layer is nowhere
# on this machine once the local copies are removed, and a pull really downloads it.
if ! curl -s -o /dev/null -f "http://127.0.0.1:5000/v2/sm-busybox/manifests/1"; then
    rootfs=$(mktemp -d)
    mkdir -p "$rootfs/bin"
    cp "$(command -v busybox)" "$rootfs/bin/busybox"
    ln -s busybox "$rootfs/bin/sh"
    head -c 4194304 /dev/urandom >"$rootfs/payload"
    tar -C "$rootfs" -c . | docker import --change 'CMD ["/bin/sh"]' - sm-pull:build >/dev/null
    rm -rf "$rootfs"
    docker tag sm-pull:build 127.0.0.1:5000/sm-busybox:1
    docker tag sm-pull:build 127.0.0.1:5001/sm-private:1
    docker push -q 127.0.0.1:5000/sm-busybox:1 >/dev/null
    docker login -u sm-test --password-stdin 127.0.0.1:5001 <"$STATE/registry.password" >/dev/null 2>&1
    docker push -q 127.0.0.1:5001/sm-private:1 >/dev/null
    docker logout 127.0.0.1:5001 >/dev/null
    docker rmi sm-pull:build 127.0.0.1:5000/sm-busybox:1 127.0.0.1:5001/sm-private:1 >/dev/null
fi

echo "$IMAGE"
