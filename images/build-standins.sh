#!/usr/bin/env bash
# Builds local stand-ins for the two registry images the production Dockerfiles
# start FROM, so they can be built on a machine with no registry:
#
#   debian:bookworm-slim       debootstrap (minbase) from Debian's mirror, then `docker import`
#   golang:<GO_VERSION>-bookworm   the Debian stand-in plus a Go toolchain (images/standin/golang.Dockerfile)
#                                  and the host's locally added CA certificates
#
# Prints the two references on stdout as DEBIAN_IMAGE=… and GOLANG_IMAGE=…
# (eval-able), for `docker build --build-arg DEBIAN_IMAGE=… --build-arg GOLANG_IMAGE=…`.
#
# Both are tagged by their content, so a rebuild with the same inputs reuses them
# (and the Docker build cache of everything built on top of them). The rootfs
# tarball is cached under STANDIN_CACHE, keyed by the debootstrap inputs, so the
# Debian stand-in is re-imported in seconds when its image is gone.
#
# Environment:
#   GO_VERSION       Go toolchain version (default: the ARG in images/base/Dockerfile);
#                    taken from the host's Go when it is that version, else fetched
#                    by the go command as the toolchain module from GOPROXY
#   DEBIAN_MIRROR    default http://deb.debian.org/debian
#   DEBIAN_SECURITY  default http://deb.debian.org/debian-security
#   STANDIN_CACHE    default ${TMPDIR:-/tmp}/trakkar-standins
# Needs root (debootstrap) the first time, and network access to the mirror.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

die() { echo "build-standins: $*" >&2; exit 1; }
say() { echo "build-standins: $*" >&2; }

# Bump when the recipe below changes, so old cached tarballs are not reused.
RECIPE=1
SUITE=bookworm
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SECURITY="${DEBIAN_SECURITY:-http://deb.debian.org/debian-security}"
CACHE="${STANDIN_CACHE:-${TMPDIR:-/tmp}/trakkar-standins}"
GO_VERSION="${GO_VERSION:-$(sed -n 's/^ARG GO_VERSION=//p' "$here/base/Dockerfile" | head -1)}"
[[ -n "$GO_VERSION" ]] || die "cannot read GO_VERSION from images/base/Dockerfile; set GO_VERSION"

command -v docker >/dev/null || die "the docker CLI is not installed"
docker version >/dev/null 2>&1 || die "docker is not reachable (DOCKER_HOST=${DOCKER_HOST:-unset})"
mkdir -p "$CACHE"

# Concurrent builds (parallel tests, two checkouts) make each stand-in once.
if command -v flock >/dev/null; then
    exec 9>"$CACHE/lock"
    flock 9
fi

sha() { sha256sum | cut -c1-"$1"; }

# --- debian:bookworm-slim -----------------------------------------------------
key="$(printf 'recipe=%s suite=%s variant=minbase mirror=%s security=%s arch=%s' \
    "$RECIPE" "$SUITE" "$MIRROR" "$SECURITY" "$(uname -m)" | sha 16)"
tarball="$CACHE/debian-$SUITE-slim-$key.tar"
if [[ ! -s "$tarball" ]]; then
    if ! command -v debootstrap >/dev/null 2>&1; then
        [[ "$(id -u)" == 0 ]] || die "debootstrap is not installed (apt-get install debootstrap)"
        say "installing debootstrap"
        apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null \
            || die "could not install debootstrap"
    fi
    [[ "$(id -u)" == 0 ]] || die "debootstrap needs root to build the debian:$SUITE-slim stand-in"
    work="$(mktemp -d "$CACHE/rootfs.XXXXXX")"
    trap 'rm -rf "$work"' EXIT
    mkdir -p "$CACHE/debs"
    say "debootstrap $SUITE (minbase) from $MIRROR; takes a few minutes, once"
    debootstrap --variant=minbase --cache-dir="$CACHE/debs" "$SUITE" "$work/root" "$MIRROR" >"$work/log" 2>&1 \
        || die "debootstrap failed: $(tail -5 "$work/log")"
    root="$work/root"
    # Like the official slim image: no docs, man pages or locales, now or later.
    mkdir -p "$root/etc/dpkg/dpkg.cfg.d"
    cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
CFG
    find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
    rm -rf "$root/usr/share/man/"* "$root/usr/share/info/"* "$root/usr/share/lintian" "$root/usr/share/linda"
    find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} + 2>/dev/null || true
    # The official image's deb822 sources, with the same suites.
    rm -f "$root/etc/apt/sources.list"
    cat >"$root/etc/apt/sources.list.d/debian.sources" <<SRC
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $SECURITY
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    rm -rf "$root/var/cache/apt/archives/"*.deb "$root/var/cache/apt/"*.bin "$root/var/lib/apt/lists/"*
    # Sorted with numeric owners: the same rootfs gives the same tarball.
    tar -C "$root" --sort=name --numeric-owner -cf "$work/rootfs.tar" . || die "cannot pack the rootfs"
    mv "$work/rootfs.tar" "$tarball"
    rm -rf "$work"
    trap - EXIT
fi
tarsum="$(sha 16 <"$tarball")"
DEBIAN_IMAGE="trakkar-agent/standin-debian:$SUITE-slim-$tarsum"
if ! docker image inspect "$DEBIAN_IMAGE" >/dev/null 2>&1; then
    say "importing $DEBIAN_IMAGE"
    docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["bash"]' \
        "$tarball" "$DEBIAN_IMAGE" >/dev/null || die "docker import failed"
fi

# --- golang:<GO_VERSION>-bookworm ---------------------------------------------
command -v go >/dev/null || die "go is not installed; it provides the toolchain of the golang stand-in"
# GOTOOLCHAIN=go<version> is the host's own Go when it is that version, else
# the go command downloads that toolchain from GOPROXY into the module cache.
goroot="$(GOTOOLCHAIN="go$GO_VERSION" go env GOROOT)" || die "cannot get the Go $GO_VERSION toolchain"
have="$("$goroot/bin/go" env GOVERSION)"
[[ "$have" == "go$GO_VERSION" ]] || die "the toolchain at $goroot is $have, not go$GO_VERSION"
# The host's locally added CAs (a TLS-intercepting egress proxy's, say) go in too.
cas=(/usr/local/share/ca-certificates/*.crt)
[[ -e "${cas[0]}" ]] || cas=()
casum=""
((${#cas[@]} == 0)) || casum="$(cat "${cas[@]}" | sha256sum)"
gokey="$(printf '%s %s %s %s' "$DEBIAN_IMAGE" "$have" "$(sha256sum <"$here/standin/golang.Dockerfile")" "$casum" | sha 16)"
GOLANG_IMAGE="trakkar-agent/standin-golang:$GO_VERSION-bookworm-$gokey"
if ! docker image inspect "$GOLANG_IMAGE" >/dev/null 2>&1; then
    ctx="$(mktemp -d "$CACHE/golang.XXXXXX")"
    trap 'rm -rf "$ctx"' EXIT
    say "building $GOLANG_IMAGE from $goroot"
    cp -a "$goroot" "$ctx/go"
    chmod -R u+w "$ctx/go" # module-cache toolchains are read-only
    cp "$here/standin/golang.Dockerfile" "$ctx/Dockerfile"
    mkdir "$ctx/ca"
    echo "locally added CA certificates of the build host" >"$ctx/ca/README"
    ((${#cas[@]} == 0)) || cp "${cas[@]}" "$ctx/ca/"
    docker build -q --build-arg DEBIAN_IMAGE="$DEBIAN_IMAGE" --build-arg GO_VERSION="$GO_VERSION" \
        -t "$GOLANG_IMAGE" "$ctx" >/dev/null || die "docker build of the golang stand-in failed"
    rm -rf "$ctx"
    trap - EXIT
fi

echo "DEBIAN_IMAGE=$DEBIAN_IMAGE"
echo "GOLANG_IMAGE=$GOLANG_IMAGE"
