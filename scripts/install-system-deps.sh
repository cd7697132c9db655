#!/usr/bin/env bash
# System packages for the integration tests (Debian bookworm, run as root; idempotent).
#
#   bird 1.6.8  (bird, bird6, birdc, birdc6)  installed normally, binaries in /usr/sbin
#   bird2 2.0.12                              unpacked beside it into $BIRD2_ROOT, not installed:
#                                             the two packages conflict
#   iproute2, etcd-server, etcd-client (etcdctl: tests read etcd back independently)
#   libssh-gcrypt-4, libreadline8         the libraries bird2's binaries link against (its other
#                                         Depends are install-time only); no LD_LIBRARY_PATH needed
#   gcc, libc6-dev, python3-dev, python3-venv   building the wheel and the fresh test virtualenv
#   debootstrap, podman, buildah          `make image`: a Debian root filesystem made into a base
#                                         image, the image built on it (chroot isolation)
#
# Debian's postinst scripts may start bird/bird6/etcd services; tests start their own daemons
# inside network namespaces, so any such service is stopped again at the end.
set -euo pipefail

BIRD2_ROOT=${BIRD2_ROOT:-/opt/nodestatus/bird2}
export DEBIAN_FRONTEND=noninteractive

packages=(bird iproute2 etcd-server etcd-client libssh-gcrypt-4 libreadline8
          gcc libc6-dev python3-dev python3-venv debootstrap podman buildah
          time)   # time: peak RSS of whole processes in benches/bench_fibcheck.py
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
have_bird2() { [ -x "$BIRD2_ROOT/usr/sbin/bird" ] && [ -x "$BIRD2_ROOT/usr/sbin/birdcl" ]; }

if [ "$(id -u)" -ne 0 ]; then
    if [ "${#missing[@]}" -eq 0 ] && have_bird2; then
        echo "system deps already installed (not root: nothing else checked)"
        exit 0
    fi
    echo "install-system-deps.sh: must run as root (missing: ${missing[*]:-} ${BIRD2_ROOT})" >&2
    exit 1
fi

updated=0
apt_update_once() {
    if [ "$updated" -eq 0 ]; then apt-get update -qq; updated=1; fi
}

if [ "${#missing[@]}" -gt 0 ]; then
    apt_update_once
    # policy-rc.d 101 = "do not start services" for invoke-rc.d during the install.
    had_policy=0
    [ -e /usr/sbin/policy-rc.d ] && had_policy=1
    if [ "$had_policy" -eq 0 ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
    fi
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
    if [ "$had_policy" -eq 0 ]; then rm -f /usr/sbin/policy-rc.d; fi
fi

if ! have_bird2; then
    apt_update_once
    tmp=$(mktemp -d)
    chown _apt "$tmp" 2>/dev/null || true  # else apt warns that it downloads unsandboxed
    (cd "$tmp" && apt-get download bird2)
    rm -rf "$BIRD2_ROOT"
    mkdir -p "$BIRD2_ROOT"
    dpkg -x "$tmp"/bird2_*.deb "$BIRD2_ROOT"
    rm -rf "$tmp"
fi
"$BIRD2_ROOT/usr/sbin/bird" --version 2>&1 | grep -q '^BIRD version 2\.' \
    || { echo "bird2 in $BIRD2_ROOT does not run" >&2; exit 1; }

# No system daemon may stay up in the root namespace (no systemd here, usually).
for svc in bird bird6 etcd; do
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
        systemctl disable --now "$svc" >/dev/null 2>&1 || true
    elif [ -x "/etc/init.d/$svc" ]; then
        "/etc/init.d/$svc" stop >/dev/null 2>&1 || true
    fi
done
# Only daemons that run in the root network namespace and use the system config/socket.
root_ns=$(readlink /proc/self/ns/net)  # the namespace this script runs in
for pid in $(pgrep -x 'bird|bird6|etcd' || true); do
    [ "$(readlink "/proc/$pid/ns/net" 2>/dev/null)" = "$root_ns" ] || continue
    args=$(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null || true)
    case "$args" in
        *" -s "*|*" -c "*) continue ;;  # started by hand with its own socket/config: not ours
    esac
    echo "stopping system daemon $pid: $args"
    kill "$pid" 2>/dev/null || true
done

echo "system deps ok: $(bird --version 2>&1 | head -1), bird2 $("$BIRD2_ROOT/usr/sbin/bird" --version 2>&1), $(ip -V)"
