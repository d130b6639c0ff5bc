#!/usr/bin/env bash
# Installs Debian's runsc (gVisor) and registers it with the local Docker engine
# as the runtime "runsc". This runsc refuses networked containers in the root
# network namespace, so it is registered with --network=none: use it with
# `--runtime runsc --network none` or `--network allowlist`. --host-uds=open
# lets a sandbox connect to the unix sockets mounted into it, which is how an
# allowlisted task reaches its egress proxy. Needs root; reloads dockerd with
# SIGHUP, which keeps running containers.
set -euo pipefail

die() { echo "setup-gvisor: $*" >&2; exit 1; }
has_runtime() { docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q '"runsc":{[^}]*"--network=none","--host-uds=open"'; }

if has_runtime; then
  exit 0
fi
[ "$(id -u)" = 0 ] || die "registering runsc needs root (see README, gVisor)"
if ! command -v runsc >/dev/null 2>&1; then
  apt-get update -qq >/dev/null || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq runsc >/dev/null || die "apt-get install runsc failed"
fi
conf=/etc/docker/daemon.json
mkdir -p /etc/docker
[ -s "$conf" ] || echo '{}' >"$conf"
command -v python3 >/dev/null || die "python3 is needed to edit $conf"
python3 - "$conf" "$(command -v runsc)" <<'PY' || die "cannot update $conf"
import json, sys
path, runsc = sys.argv[1], sys.argv[2]
with open(path) as f:
    conf = json.load(f)
conf.setdefault("runtimes", {})["runsc"] = {"path": runsc, "runtimeArgs": ["--network=none", "--host-uds=open"]}
with open(path + ".tmp", "w") as f:
    json.dump(conf, f, indent=2)
PY
mv "$conf.tmp" "$conf"
pid="$(pidof dockerd || true)"
[ -n "$pid" ] || die "dockerd is not running; start it and run this again"
kill -HUP $pid
for _ in $(seq 1 20); do has_runtime && { echo "setup-gvisor: runsc registered" >&2; exit 0; }; sleep 0.5; done
die "dockerd did not pick up the runsc runtime from $conf"
