#!/usr/bin/env bash
# Build the nodestatus container image from a wheel (as root; Debian's debootstrap, podman and
# buildah: scripts/install-system-deps.sh installs them).
#
#   image/build.sh --wheel dist/nodestatus-0.1.0-cp311-cp311-linux_x86_64.whl \
#                  --tag localhost/nodestatus:0.1.0
#
# 1. Base: no registry image can be pulled here, so the base is Debian itself:
#    `debootstrap --variant=minbase --include=python3 bookworm`, trimmed (apt caches and lists,
#    docs except copyright files, man pages, locales), kept as a tarball in $CACHE and imported
#    with `podman import` as $BASE_IMAGE. A second build reuses the image, or the tarball.
# 2. Wheelhouse: the wheel, its [agent] dependencies and pip, as wheels made on the host
#    (`pip wheel`, with the host's python, which must be bookworm's 3.11 for the wheel to fit).
# 3. `buildah bud --isolation chroot -f image/Containerfile` (podman run cannot start containers
#    here: crun fails to set rlimits; chroot isolation needs no runtime).
#
# Environment: PYTHON (for `pip wheel`, default python3), NODESTATUS_IMAGE_CACHE (default
# /var/cache/nodestatus), DEBIAN_MIRROR (default http://deb.debian.org/debian).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
PYTHON=${PYTHON:-python3}
CACHE=${NODESTATUS_IMAGE_CACHE:-/var/cache/nodestatus}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
PY_TAG=cp311                      # bookworm's python3 is 3.11
# Bump BASE_REV when the base recipe below changes: the cached tarball and image are keyed on it.
BASE_REV=1
BASE_IMAGE=localhost/nodestatus-base:$SUITE-$BASE_REV
BASE_TAR=$CACHE/$SUITE-minbase-python3-$BASE_REV.tar

die() { echo "image/build.sh: $*" >&2; exit 2; }

wheel= tag=
while [ $# -gt 0 ]; do
    case "$1" in
        --wheel) wheel=${2:?}; shift 2 ;;
        --tag) tag=${2:?}; shift 2 ;;
        *) die "unknown argument $1 (usage: --wheel FILE --tag NAME:TAG)" ;;
    esac
done
[ -n "$wheel" ] && [ -n "$tag" ] || die "usage: --wheel FILE --tag NAME:TAG"
[ -f "$wheel" ] || die "no wheel at $wheel (make dist builds it)"
case "$(basename "$wheel")" in
    nodestatus-*-$PY_TAG-$PY_TAG-*linux*_x86_64.whl) ;;
    *) die "$wheel does not fit the image's python ($SUITE: $PY_TAG, x86_64): build it with a 3.11 python" ;;
esac
[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap, podman import, buildah)"
for tool in debootstrap podman buildah; do
    command -v "$tool" >/dev/null || die "$tool is missing (bash scripts/install-system-deps.sh)"
done
version=$(basename "$wheel" | cut -d- -f2)

make_base_tar() {                 # runs under the lock: one fixed scratch path
    local root=$CACHE/rootfs.tmp
    rm -rf "$root" "$root.log"      # what a build that died half-way left
    echo "image/build.sh: debootstrap $SUITE (minbase + python3) from $MIRROR"
    debootstrap --variant=minbase --include=python3 "$SUITE" "$root" "$MIRROR" >"$root.log" 2>&1 \
        || { tail -20 "$root.log" >&2; rm -rf "$root" "$root.log"; die "debootstrap failed"; }
    rm -f "$root.log"
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin \
           "$root"/var/lib/apt/lists/* "$root"/var/log/* "$root"/usr/share/man/* \
           "$root"/usr/share/info/* "$root"/usr/share/locale/* "$root"/tmp/* "$root"/dev/*
    find "$root"/usr/share/doc -type f ! -name copyright -delete
    find "$root"/usr/share/doc -type l -delete
    find "$root"/usr/share/doc -mindepth 1 -type d -empty -delete
    tar -C "$root" --numeric-owner -cf "$BASE_TAR.tmp" .
    mv "$BASE_TAR.tmp" "$BASE_TAR"
    rm -rf "$root"
}

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9                           # one base build at a time (a test and `make image`)
if ! podman image exists "$BASE_IMAGE"; then
    [ -f "$BASE_TAR" ] || make_base_tar
    podman import --quiet "$BASE_TAR" "$BASE_IMAGE" >/dev/null
fi
flock -u 9

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
cp "$here/Containerfile" "$ctx/"
mkdir "$ctx/wheelhouse"
"$PYTHON" -m pip wheel --quiet --disable-pip-version-check --wheel-dir "$ctx/wheelhouse" \
    "$(cd "$(dirname "$wheel")" && pwd)/$(basename "$wheel")[agent]" pip
previous=$(podman image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)
buildah bud --quiet --isolation chroot --layers=false --build-arg BASE="$BASE_IMAGE" \
    --build-arg VERSION="$version" -f "$ctx/Containerfile" -t "$tag" "$ctx" >/dev/null
if [ -n "$previous" ] && [ "$previous" != "$(podman image inspect --format '{{.Id}}' "$tag")" ]; then
    podman rmi "$previous" >/dev/null 2>&1 || true   # the image this tag named before (unless in use)
fi
echo "image/build.sh: $tag ($(podman image inspect --format '{{.Size}}' "$tag" | numfmt --to=si)B)"
