#!/usr/bin/env bash
# Builds the production images in order, with consistent tags:
#
#   base         trakkar-agent/worker-base:<version>          images/base (context: repository root),
#                trakkar-agent/worker-runtime:<version>       and its runtime target: all but the binary
#   claude-code  trakkar-agent/worker-claude-code:<version>   FROM worker-runtime, binary from worker-base
#   cursor       trakkar-agent/worker-cursor:<version>        FROM worker-runtime, binary from worker-base
#   supervisor   trakkar-agent/supervisor:<version>           images/supervisor (context: repository root)
#
# Usage: images/build.sh [options] [image…]      (default: every image; with --offline, all but cursor)
#   --version V                 tag of every image (default latest: what the runner and compose use)
#   --offline                   make local stand-ins of debian:bookworm-slim and golang:<v>-bookworm
#                               first (images/build-standins.sh: debootstrap + the Go toolchain) and
#                               build FROM them, so no registry is needed
#   --stamp S                   what the supervisor binary reports as its version (default: the
#                               tag, or `git describe` of this checkout for latest)
#   --claude-code-package P     what npm installs in claude-code: a package spec (default: the pinned
#                               @anthropic-ai/claude-code release) or the path of a package tarball
#                               (.tgz), which needs no npm registry
#
# Environment: DEBIAN_IMAGE and GOLANG_IMAGE name the two bases (default: the
# registry's, or the stand-ins with --offline); extra `docker build` flags in
# DOCKER_BUILD_FLAGS (e.g. --network host). Prints each built reference on stdout.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"

die() { echo "images/build.sh: $*" >&2; exit 2; }
say() { echo "images/build.sh: $*" >&2; }

version=latest
offline=0
claude_pkg=""
stamp=""
images=()
while (($#)); do
    case "$1" in
    --version) [[ $# -ge 2 ]] || die "--version needs a value"; version="$2"; shift 2 ;;
    --version=*) version="${1#*=}"; shift ;;
    --offline) offline=1; shift ;;
    --stamp) [[ $# -ge 2 ]] || die "--stamp needs a value"; stamp="$2"; shift 2 ;;
    --stamp=*) stamp="${1#*=}"; shift ;;
    --claude-code-package) [[ $# -ge 2 ]] || die "--claude-code-package needs a value"; claude_pkg="$2"; shift 2 ;;
    --claude-code-package=*) claude_pkg="${1#*=}"; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    base | claude-code | cursor | supervisor) images+=("$1"); shift ;;
    *) die "unknown image $1: want base, claude-code, cursor or supervisor" ;;
    esac
done
[[ "$version" =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] || die "--version $version is not a valid tag"
if ((${#images[@]} == 0)); then
    if ((offline)); then images=(base claude-code supervisor); else images=(base claude-code cursor supervisor); fi
fi
want() { local i; for i in "${images[@]}"; do [[ "$i" == "$1" ]] && return 0; done; return 1; }
if ((offline)) && want cursor; then
    die "cursor cannot be built offline: its installer downloads cursor-agent from cursor.com"
fi

if ((offline)) && want claude-code && [[ ! -f "$claude_pkg" ]]; then
    say "note: claude-code installs ${claude_pkg:-the pinned release} from the npm registry; pass --claude-code-package <tarball> if it is unreachable"
fi

command -v docker >/dev/null || die "the docker CLI is not installed"
docker version >/dev/null 2>&1 || die "docker is not reachable (DOCKER_HOST=${DOCKER_HOST:-unset})"

if ((offline)) && [[ -z "${DEBIAN_IMAGE:-}" || -z "${GOLANG_IMAGE:-}" ]]; then
    standins="$(bash "$here/build-standins.sh")" || die "building the stand-in base images failed"
    eval "$standins"
fi
base_args=()
[[ -n "${DEBIAN_IMAGE:-}" ]] && base_args+=(--build-arg "DEBIAN_IMAGE=$DEBIAN_IMAGE")
[[ -n "${GOLANG_IMAGE:-}" ]] && base_args+=(--build-arg "GOLANG_IMAGE=$GOLANG_IMAGE")
# shellcheck disable=SC2206 # word splitting of the extra flags is intended
extra=(${DOCKER_BUILD_FLAGS:-})

base_ref="trakkar-agent/worker-base:$version"
runtime_ref="trakkar-agent/worker-runtime:$version"
build() { # ref, docker build arguments…
    local ref="$1"
    shift
    say "building $ref"
    docker build "${extra[@]}" -t "$ref" "$@" >&2 || die "docker build of $ref failed"
    echo "$ref"
}
need_base() {
    local ref
    for ref in "$runtime_ref" "$base_ref"; do
        docker image inspect "$ref" >/dev/null 2>&1 || die "$ref is missing: build base first (images/build.sh base)"
    done
}

if want base; then
    # The runtime target is printed too: the agent images build FROM it.
    build "$runtime_ref" "${base_args[@]}" --target runtime -f "$root/images/base/Dockerfile" "$root"
    build "$base_ref" "${base_args[@]}" -f "$root/images/base/Dockerfile" "$root"
fi

if want claude-code; then
    need_base
    args=(--build-arg "BASE_IMAGE=$base_ref" --build-arg "RUNTIME_IMAGE=$runtime_ref")
    ctx="$root/images/claude-code"
    if [[ -n "$claude_pkg" ]]; then
        if [[ -f "$claude_pkg" ]]; then
            # A local tarball goes into a copy of the context, never into the tree.
            tmp="$(mktemp -d)"
            trap 'rm -rf "$tmp"' EXIT
            cp "$ctx/Dockerfile" "$tmp/Dockerfile"
            cp "$claude_pkg" "$tmp/claude-code.tgz"
            ctx="$tmp"
            args+=(--build-arg "CLAUDE_CODE_PACKAGE=./claude-code.tgz")
        else
            args+=(--build-arg "CLAUDE_CODE_PACKAGE=$claude_pkg")
        fi
    fi
    build "trakkar-agent/worker-claude-code:$version" "${args[@]}" -f "$ctx/Dockerfile" "$ctx"
fi

if want cursor; then
    need_base
    build "trakkar-agent/worker-cursor:$version" --build-arg "BASE_IMAGE=$base_ref" --build-arg "RUNTIME_IMAGE=$runtime_ref" \
        -f "$root/images/cursor/Dockerfile" "$root/images/cursor"
fi

if want supervisor; then
    # The version the binary reports: --stamp, the tag, or the commit for "latest".
    sv="${stamp:-$version}"
    if [[ -z "$stamp" && "$sv" == latest ]]; then
        sv="$(git -C "$root" describe --always --dirty 2>/dev/null || echo dev)"
    fi
    build "trakkar-agent/supervisor:$version" "${base_args[@]}" --build-arg "VERSION=$sv" \
        -f "$root/images/supervisor/Dockerfile" "$root"
fi
