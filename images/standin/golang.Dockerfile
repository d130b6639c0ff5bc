# Local stand-in for golang:<GO_VERSION>-bookworm, for machines with no registry:
# the debootstrap stand-in of debian:bookworm-slim plus a Go toolchain copied in
# by images/build-standins.sh. Only what the production Dockerfiles' build
# stages use is reproduced: the toolchain on PATH, GOPATH=/go, and git and CA
# certificates for `go mod download`. ca/ holds the host's locally added CA
# certificates (/usr/local/share/ca-certificates), so builds on a host whose
# egress is TLS-intercepted by a local CA reach the Go module proxy as the host does.
ARG DEBIAN_IMAGE=debian:bookworm-slim
FROM ${DEBIAN_IMAGE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates git \
    && rm -rf /var/lib/apt/lists/*
COPY go /usr/local/go
COPY ca/ /usr/local/share/ca-certificates/
RUN update-ca-certificates >/dev/null
ARG GO_VERSION
ENV GOLANG_VERSION=${GO_VERSION} \
    GOTOOLCHAIN=local \
    GOPATH=/go \
    PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
RUN mkdir -p /go/src /go/bin && chmod -R 1777 /go && go version
WORKDIR /go
