#!/usr/bin/env bash
# Opt-in image check (not part of the default test run): start the NLU service from its image's file system the
# way the pod runs it -- uid 10001, read-only root, a writable tmpfs on /tmp, the image's environment -- on a free
# loopback port, and call its health check (expects SERVING) and one Parse with grpcurl, then stop it with
# SIGTERM and expect a clean drain.
#
# Usage: scripts/image_smoke.sh          (builds localhost/alice-nlu:VERSION with scripts/build_images.sh if absent)
# Needs root (buildah's vfs storage, mount namespaces).
set -euo pipefail
cd "$(dirname "$0")/.."

die() { printf 'error: %s\n' "$*" >&2; exit 1; }
step() { printf '==> %s\n' "$*" >&2; }

[ "$(id -u)" = 0 ] || die "run as root"
VERSION=${VERSION:-$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -n1)}
IMAGE=localhost/alice-nlu:$VERSION
GRPCURL=${GRPCURL:-.venv/bin/grpcurl}
BUILDAH=(buildah --storage-driver vfs)
[ -x "$GRPCURL" ] || die "$GRPCURL not found (scripts/setup.sh --dev installs it)"

if ! "${BUILDAH[@]}" inspect --type image "$IMAGE" >/dev/null 2>&1; then
    step "$IMAGE not built yet: building it"
    scripts/build_images.sh nlu
fi

ctr=$("${BUILDAH[@]}" from --pull-never "$IMAGE")
root=$("${BUILDAH[@]}" mount "$ctr")
log=$(mktemp)
pid=""
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
    "${BUILDAH[@]}" umount "$ctr" >/dev/null 2>&1 || true
    "${BUILDAH[@]}" rm "$ctr" >/dev/null 2>&1 || true
    rm -f "$log"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mapfile -t image_env < <("${BUILDAH[@]}" inspect --type image --format '{{range .OCIv1.Config.Env}}{{println .}}{{end}}' \
                         "$IMAGE" | sed '/^$/d')
user=$("${BUILDAH[@]}" inspect --type image --format '{{.OCIv1.Config.User}}' "$IMAGE")
[ "$user" = "10001:10001" ] || die "image user is '$user', expected 10001:10001"

step "starting python -m nlu_svc from $IMAGE as uid 10001 on a read-only root, 127.0.0.1:$port"
# A private mount namespace: the image's root bind-mounted read-only, tmpfs /tmp, /proc and /dev; then chroot.
unshare --mount --propagation private sh -c 'set -e
    root=$1; shift
    mount --bind "$root" "$root" && mount -o remount,bind,ro "$root"
    mount -t tmpfs -o size=64m,mode=1777 tmpfs "$root/tmp"
    mount -t proc proc "$root/proc"
    mount --rbind /dev "$root/dev"
    cd "$root/tmp"
    exec chroot --userspec=10001:10001 "$root" /usr/bin/env -i "$@" python -m nlu_svc
' sh "$root" "${image_env[@]}" GRPC_HOST=127.0.0.1 "GRPC_PORT=$port" LOG_FORMAT=text DRAIN_DELAY_S=0.5 \
    > "$log" 2>&1 &
pid=$!

started_ns=$(date +%s%N)
status=""
for _ in $(seq 1 240); do
    kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; die "the service exited while starting"; }
    status=$("$GRPCURL" -plaintext -max-time 1 "127.0.0.1:$port" grpc.health.v1.Health/Check 2>/dev/null || true)
    case "$status" in *SERVING*) break;; esac
    sleep 0.5
done
case "$status" in *'"SERVING"'*) ;; *) cat "$log" >&2; die "health never said SERVING: $status";; esac
printf 'health: %s (%d ms after start)\n' "$(echo "$status" | tr -d ' \n')" \
    $(( ($(date +%s%N) - started_ns) / 1000000 ))

uid=$(awk '/^Uid:/ {print $2}' "/proc/$pid/status")
[ "$uid" = 10001 ] || die "the service runs as uid $uid, expected 10001"
echo "process $pid runs as uid $uid on a read-only root"

reply=$("$GRPCURL" -plaintext -max-time 5 \
    -d '{"text": "boka möte med Anna imorgon kl 14", "reference_time": "2026-03-10T09:00:00Z"}' \
    "127.0.0.1:$port" alice.nlu.v1.NluService/Parse)
echo "$reply" | grep -q '"intent"' || die "Parse returned no intent: $reply"
echo "Parse: $(echo "$reply" | tr -d ' \n' | cut -c1-160)"

kill -TERM "$pid"
wait "$pid" && code=0 || code=$?
pid=""
grep -q "stopped" "$log" || { cat "$log" >&2; die "no clean shutdown after SIGTERM (exit $code)"; }
echo "SIGTERM: drained and stopped (exit $code)"
step "image smoke check passed"
