#!/usr/bin/env bash
# Builds trakkar-agent/worker-test-git:dev (or IMAGE): a Debian userland with git
# (debootstrap from Debian's mirror, then `docker import`, so no registry is
# needed) plus the binaries of the scratch test image. The Debian base is built
# once and reused while it exists; the final image is rebuilt only when the
# scratch test image changed.
set -euo pipefail
cd "$(dirname "$0")/.."

BASE="${BASE_IMAGE:-trakkar-agent/debian-base:bookworm}"
BINARIES="${BINARIES_IMAGE:-trakkar-agent/worker-test:dev}"
IMAGE="${IMAGE:-trakkar-agent/worker-test-git:dev}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

die() { echo "build-test-git-image: $*" >&2; exit 1; }

docker image inspect "$BINARIES" >/dev/null 2>&1 || die "$BINARIES is missing: run images/build-test-image.sh first"

# Concurrent test processes build the shared Debian base one at a time.
if command -v flock >/dev/null; then
  exec 9>"${TMPDIR:-/tmp}/trakkar-build-test-git-image.lock"
  flock 9
fi

if ! docker image inspect "$BASE" >/dev/null 2>&1; then
  if ! command -v debootstrap >/dev/null 2>&1; then
    [ "$(id -u)" = 0 ] || die "debootstrap is not installed (apt-get install debootstrap)"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null \
      || die "could not install debootstrap"
  fi
  [ "$(id -u)" = 0 ] || die "debootstrap needs root to build $BASE"
  root="$(mktemp -d)"
  trap 'rm -rf "$root"' EXIT
  echo "build-test-git-image: debootstrap bookworm (minbase + git) into $root" >&2
  debootstrap --variant=minbase --include=git,ca-certificates bookworm "$root" "$MIRROR" >/dev/null \
    || die "debootstrap failed"
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -c . | docker import - "$BASE" >/dev/null || die "docker import failed"
fi

want="$(docker image inspect -f '{{.Id}}' "$BINARIES")"
have="$(docker image inspect -f '{{index .Config.Labels "in.trakkar.agent.binaries"}}' "$IMAGE" 2>/dev/null || true)"
if [ "$want" = "$have" ]; then
  echo "build-test-git-image: reusing $IMAGE" >&2
  exit 0
fi
docker build -q --build-arg BASE="$BASE" --build-arg BINARIES="$BINARIES" \
  --label "in.trakkar.agent.binaries=$want" -t "$IMAGE" -f images/test-git/Dockerfile images/test-git >/dev/null \
  || die "docker build failed"
echo "build-test-git-image: built $IMAGE" >&2
