#!/usr/bin/env bash
# Installs what building criu-ns-runtime needs besides Go: a C compiler
# (libcontainer's nsenter is cgo) and libseccomp (containers from managers
# come with seccomp profiles). Idempotent.
set -euo pipefail
if command -v gcc >/dev/null && pkg-config --exists libseccomp 2>/dev/null; then
	exit 0
fi
[ "$(id -u)" = 0 ] || { echo "install-build-deps: must run as root" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends gcc libc6-dev pkg-config libseccomp-dev >/dev/null
echo "install-build-deps: installed gcc, pkg-config, libseccomp-dev"
