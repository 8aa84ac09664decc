#!/usr/bin/env bash
# Build Alice's container images for real without a Docker engine: buildah (chroot isolation, vfs storage) on a
# Debian bookworm base made with debootstrap. Records build time and image size in reports/images.tsv.
#
# Usage: scripts/build_images.sh [TARGET ...]        (default targets: router nlu; also: cache llm)
# Env:   VERSION (image tag, default: the version in pyproject.toml)   MIRROR (Debian mirror, default: apt's)
#        REBUILD_BASE=1 (debootstrap again)   WORK (scratch directory, default: build/images)
# Needs root (debootstrap, buildah's vfs storage). Installs buildah and debootstrap with apt-get when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (debootstrap and buildah's vfs storage need it)"
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(router nlu)
for target in "${TARGETS[@]}"; do
    case "$target" in router|nlu|cache|llm) ;; *) die "unknown target $target (router, nlu, cache, llm)";; esac
done

VERSION=${VERSION:-$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -n1)}
BASE=localhost/alice-base:bookworm
WORK=${WORK:-build/images}
REPORT=reports/images.tsv
export STORAGE_DRIVER=vfs BUILDAH_ISOLATION=chroot
BUILDAH=(buildah --storage-driver vfs)

if ! command -v buildah >/dev/null || ! command -v debootstrap >/dev/null; then
    step "installing buildah and debootstrap (apt-get)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends buildah debootstrap
fi

debian_mirror() {
    # The Debian archive apt already uses (deb822 .sources or one-line sources.list), else the default mirror.
    local uri
    uri=$(grep -hs -E '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
            /etc/apt/sources.list.d/*.sources \
          | grep -oE 'https?://[^ ]+/debian/?( |$)' | grep -v security | head -n1 | tr -d ' ') || true
    echo "${uri:-http://deb.debian.org/debian}"
}

image_exists() { "${BUILDAH[@]}" inspect --type image "$1" >/dev/null 2>&1; }

image_size() {
    # Uncompressed size of the image's layers, as buildah reports it (e.g. "461 MB").
    "${BUILDAH[@]}" images --format '{{.Size}}' "$1" | head -n1
}

build_base() {
    local mirror rootfs started ctr mnt
    mirror=${MIRROR:-$(debian_mirror)}
    rootfs="$WORK/rootfs"
    step "debootstrap: Debian bookworm minbase + python3.11 from $mirror"
    started=$(date +%s)
    rm -rf "$rootfs" && mkdir -p "$rootfs"
    debootstrap --variant=minbase --include=ca-certificates bookworm "$rootfs" "$mirror"
    cat > "$rootfs/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb ${mirror%/debian*}/debian-security bookworm-security main
EOF
    # debootstrap's resolver misses python3.11-venv's dependencies; apt inside the new root gets them right.
    chroot "$rootfs" apt-get update -q
    DEBIAN_FRONTEND=noninteractive chroot "$rootfs" apt-get install -y -q --no-install-recommends \
        python3.11 python3.11-venv
    chroot "$rootfs" apt-get clean
    rm -f "$rootfs/etc/resolv.conf"
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/usr/share/doc/* \
        "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/var/log/*.log
    step "importing the root file system as $BASE"
    ctr=$("${BUILDAH[@]}" from scratch)
    mnt=$("${BUILDAH[@]}" mount "$ctr")
    tar -C "$rootfs" --numeric-owner --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' -cf - . \
        | tar -C "$mnt" --numeric-owner -xpf -
    "${BUILDAH[@]}" umount "$ctr" >/dev/null
    "${BUILDAH[@]}" config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        --env LANG=C.UTF-8 --cmd '["/bin/bash"]' --os linux --arch amd64 \
        --label org.opencontainers.image.description="Debian bookworm minbase + python3.11 (debootstrap)" "$ctr"
    "${BUILDAH[@]}" commit --rm "$ctr" "$BASE" >/dev/null
    rm -rf "$rootfs"
    printf 'base\t%s\t%s\t%s\n' "$BASE" "$(( $(date +%s) - started ))" "$(image_size "$BASE")" >> "$REPORT"
}

mkdir -p "$WORK" reports
[ -f "$REPORT" ] || printf 'target\timage\tbuild_s\tsize\n' > "$REPORT"
if [ "${REBUILD_BASE:-0}" = 1 ] || ! image_exists "$BASE"; then
    build_base
else
    step "base image $BASE present (REBUILD_BASE=1 to make it again)"
fi

# A TLS-intercepting proxy's CA reaches pip through a build secret, never through a layer.
SECRET=()
ca=${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}
[ -s "$ca" ] && SECRET=(--secret "id=pip_ca,src=$ca")

for target in "${TARGETS[@]}"; do
    image="localhost/alice-$target:$VERSION"
    step "building $image (target $target)"
    started=$(date +%s)
    "${BUILDAH[@]}" bud --isolation chroot --layers --build-arg "BASE_IMAGE=$BASE" "${SECRET[@]}" \
        --target "$target" -t "$image" -f Dockerfile .
    elapsed=$(( $(date +%s) - started ))
    size=$(image_size "$image")
    printf '%s\t%s\t%s\t%s\n' "$target" "$image" "$elapsed" "$size" >> "$REPORT"
    step "$image: built in ${elapsed} s, $size"
done
step "done; build times and sizes in $REPORT"
