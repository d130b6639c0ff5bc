#!/usr/bin/env bash
# Builds the offline test worker image (images/test/Dockerfile) on a machine with
# no registry access, and reuses it when nothing changed.
#
# Environment:
#   IMAGE       tag to build (default trakkar-agent/worker-test:dev; with
#               CONTENT_TAG=1, trakkar-agent/worker-test:<content hash>)
#   WORKER_BIN  prebuilt static trakkar-worker to use instead of building ./cmd/trakkar-worker
#   CLAUDE_BIN  prebuilt static fake claude to use instead of building ./internal/fakeagent/claude
#   CURSOR_BIN  prebuilt static fake cursor-agent to use instead of building ./internal/fakeagent/cursor-agent
#   BUSYBOX     static busybox to copy (default /bin/busybox; installed with apt-get when missing)
#
# The image carries a label with a hash of everything in its build context; when
# IMAGE already carries that hash, nothing is built. Tests use CONTENT_TAG=1, so
# checkouts with different code never share a tag on one engine.
set -euo pipefail

IMAGE="${IMAGE:-}"
HASH_LABEL="in.trakkar.agent.test-image.hash"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"

die() { echo "build-test-image: $*" >&2; exit 1; }
say() { echo "build-test-image: $*" >&2; }

# A static binary has no program interpreter, so ldd refuses it.
is_static() { ! ldd "$1" >/dev/null 2>&1; }

command -v docker >/dev/null || die "the docker CLI is not installed"
docker version >/dev/null 2>&1 || die "docker is not reachable (is the engine running? DOCKER_HOST=${DOCKER_HOST:-unset})"

if [[ -z "${WORKER_BIN:-}" && ! -d "$root/cmd/trakkar-worker" ]]; then
    die "$root/cmd/trakkar-worker does not exist yet: the worker is needed for the test image (or set WORKER_BIN)"
fi
if [[ -z "${CLAUDE_BIN:-}" && ! -d "$root/internal/fakeagent/claude" ]]; then
    die "$root/internal/fakeagent/claude does not exist yet: the fake claude is needed for the test image (or set CLAUDE_BIN)"
fi
if [[ -z "${CURSOR_BIN:-}" && ! -d "$root/internal/fakeagent/cursor-agent" ]]; then
    die "$root/internal/fakeagent/cursor-agent does not exist yet: the fake cursor-agent is needed for the test image (or set CURSOR_BIN)"
fi
if [[ -z "${WORKER_BIN:-}" || -z "${CLAUDE_BIN:-}" || -z "${CURSOR_BIN:-}" ]]; then
    command -v go >/dev/null || die "go is not installed; it is needed to build the worker and the fake agent CLIs"
fi

BUSYBOX="${BUSYBOX:-/bin/busybox}"
if [[ ! -x "$BUSYBOX" ]] || ! is_static "$BUSYBOX"; then
    [[ "$BUSYBOX" == /bin/busybox ]] || die "BUSYBOX=$BUSYBOX is not a static executable"
    [[ "$(id -u)" == 0 ]] || die "/bin/busybox is missing or not static; run as root or: apt-get install busybox-static"
    say "installing busybox-static"
    apt-get update -qq >&2 || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >&2 || die "apt-get install busybox-static failed"
    is_static "$BUSYBOX" || die "$BUSYBOX is still not static after installing busybox-static"
fi

# Concurrent test processes build one at a time; the later ones then reuse.
lock="${TMPDIR:-/tmp}/trakkar-build-test-image.lock"
if command -v flock >/dev/null; then
    exec 9>"$lock"
    flock 9
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
ctx="$tmp/ctx"
fs="$ctx/rootfs"
mkdir -p "$fs/bin" "$fs/usr/local/bin" "$fs/etc" "$fs/tmp" "$fs/workspace" "$fs/trakkar/in" "$fs/trakkar/out" "$ctx/home"
chmod 1777 "$fs/tmp"
# Dependency cache mount points (supervisor/caches.go): a new volume takes the
# mode of the image folder it is first mounted over, 1777 makes it writable by
# any task uid.
for tool in npm yarn pnpm pip go-mod go-build cargo; do
    mkdir -p "$fs/trakkar/cache/$tool"
    chmod 1777 "$fs/trakkar/cache/$tool"
done

# The applet links are made by the image build (images/test/Dockerfile), not
# here: hundreds of links would cost a process each, here and in the hash below.
cp "$BUSYBOX" "$fs/bin/busybox"

# The binaries not given are built in one go command into a folder kept per
# checkout, so unchanged code is not linked again (the go command leaves an
# up-to-date binary alone); the lock above keeps two builds out of it.
bins="${TMPDIR:-/tmp}/trakkar-test-image-bin-$(printf '%s' "$root" | sha256sum | cut -c1-16)"
pkgs=()
[[ -n "${WORKER_BIN:-}" ]] || pkgs+=(./cmd/trakkar-worker)
[[ -n "${CLAUDE_BIN:-}" ]] || pkgs+=(./internal/fakeagent/claude)
[[ -n "${CURSOR_BIN:-}" ]] || pkgs+=(./internal/fakeagent/cursor-agent)
if ((${#pkgs[@]} > 0)); then
    mkdir -p "$bins"
    (cd "$root" && CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags="-s -w" -o "$bins/" "${pkgs[@]}") \
        || die "go build ${pkgs[*]} failed"
fi
cp "${WORKER_BIN:-$bins/trakkar-worker}" "$fs/usr/local/bin/trakkar-worker" || die "cannot copy the worker (WORKER_BIN=${WORKER_BIN:-})"
cp "${CLAUDE_BIN:-$bins/claude}" "$fs/usr/local/bin/claude" || die "cannot copy the fake claude (CLAUDE_BIN=${CLAUDE_BIN:-})"
cp "${CURSOR_BIN:-$bins/cursor-agent}" "$fs/usr/local/bin/cursor-agent" || die "cannot copy the fake cursor-agent (CURSOR_BIN=${CURSOR_BIN:-})"
for bin in trakkar-worker claude cursor-agent; do
    chmod 0755 "$fs/usr/local/bin/$bin"
    is_static "$fs/usr/local/bin/$bin" || die "$bin is not a static executable; a scratch image cannot run it"
done

printf 'root:x:0:0:root:/root:/bin/sh\nagent:x:1000:1000:agent:/home/agent:/bin/sh\n' >"$fs/etc/passwd"
printf 'root:x:0:\nagent:x:1000:\n' >"$fs/etc/group"
cp "$here/test/Dockerfile" "$ctx/Dockerfile"

# Hash of the whole context: paths, kinds, modes, link targets and file contents.
hash="$(cd "$ctx" && find . -mindepth 1 | LC_ALL=C sort | while IFS= read -r p; do
    if [[ -L "$p" ]]; then
        printf 'L %s %s\n' "$p" "$(readlink "$p")"
    elif [[ -d "$p" ]]; then
        printf 'D %s %s\n' "$p" "$(stat -c %a "$p")"
    else
        printf 'F %s %s %s\n' "$p" "$(stat -c %a "$p")" "$(sha256sum <"$p" | cut -d' ' -f1)"
    fi
done | sha256sum | cut -c1-32)"

if [[ -z "$IMAGE" ]]; then
    if [[ "${CONTENT_TAG:-}" == 1 ]]; then IMAGE="trakkar-agent/worker-test:$hash"; else IMAGE="trakkar-agent/worker-test:dev"; fi
fi

current="$(docker image inspect -f "{{ index .Config.Labels \"$HASH_LABEL\" }}" "$IMAGE" 2>/dev/null || true)"
if [[ "$current" == "$hash" ]]; then
    say "reusing $IMAGE (inputs unchanged, hash $hash)"
    echo "$IMAGE"
    exit 0
fi
say "building $IMAGE (hash $hash)"
docker build --label "$HASH_LABEL=$hash" -t "$IMAGE" "$ctx" >&2 || die "docker build failed"
echo "$IMAGE"
