#!/usr/bin/env bash
# Installs what the end-to-end tests in tests/e2e need, idempotently (root):
#   - container managers: podman (+ conmon, containers-common), containerd (+ ctr)
#   - Debian's runc 1.1.5 (reference runtime for the runtime-tools baseline)
#   - busybox-static (the test images' rootfs is built from it)
#   - containerd 2.x and crictl at pinned versions (scripts/install-cri-tools.sh)
#   - the OCI runtime-tools validation executables, built from the Go module
#     github.com/opencontainers/runtime-tools into $RT_DIR/validation/*.t
# CRIU itself is installed by scripts/install-criu.sh.
set -euo pipefail

RT_VERSION=${RT_VERSION:-v0.9.0}
CACHE=${CACHE:-/var/cache/criu-ns-runtime}
RT_DIR=${RT_DIR:-$CACHE/runtime-tools}
PKGS=(podman containerd runc conmon golang-github-containers-common
	busybox-static uidmap iptables tar gzip util-linux procps)

log() { echo "install-e2e-deps: $*"; }

[ "$(id -u)" = 0 ] || { log "must run as root"; exit 1; }
export DEBIAN_FRONTEND=noninteractive

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	log "installing ${missing[*]}"
	apt-get update -qq
	# No recommends: they would pull buildah, fuse-overlayfs, slirp4netns,
	# dbus-user-session... none of which the tests use (root, netns=none).
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian's containerd package starts a system containerd where an init system
# runs; the tests use their own private daemon and do not need it.

# containerd 2.x and crictl for the CRI test, built from the Go module proxy.
"$(dirname "$0")/install-cri-tools.sh"

# --- runtime-tools validation executables ---------------------------------
# v0.9.0 is the only runtime-tools version the module proxy serves. It predates
# modules (Godeps), so we give it a go.mod pinned to the dependency versions
# its Godeps.json names (newer runtime-spec/selinux/go.uuid break the build).
stamp=$RT_DIR/.built-$RT_VERSION
if [ -f "$stamp" ] && [ -x "$RT_DIR/runtimetest" ] && ls "$RT_DIR"/validation/*.t >/dev/null 2>&1; then
	log "runtime-tools $RT_VERSION already built in $RT_DIR"
	exit 0
fi
command -v go >/dev/null || export PATH=$PATH:/usr/local/go/bin
command -v go >/dev/null || { log "go not found"; exit 1; }
export GOFLAGS=-mod=mod

log "downloading github.com/opencontainers/runtime-tools@$RT_VERSION"
tmpmod=$(mktemp -d)
trap 'rm -rf "$tmpmod"' EXIT
src=$(cd "$tmpmod" && go mod download -json \
	"github.com/opencontainers/runtime-tools@$RT_VERSION" |
	sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -n "$src" ] && [ -d "$src" ] || { log "go mod download gave no directory"; exit 1; }

rm -rf "$RT_DIR"
mkdir -p "$(dirname "$RT_DIR")"
cp -a "$src" "$RT_DIR"
chmod -R u+w "$RT_DIR"
cd "$RT_DIR"
# Build from the module cache, never from a (stub or partial) vendor tree.
rm -rf vendor Godeps/_workspace
[ -f go.mod ] || go mod init github.com/opencontainers/runtime-tools >/dev/null 2>&1
log "resolving dependencies"
go mod tidy >/dev/null 2>&1 || go mod tidy
go get github.com/opencontainers/runtime-spec@v1.0.2 \
	github.com/opencontainers/selinux@v1.8.0 \
	github.com/satori/go.uuid@v1.1.0 >/dev/null 2>&1
go mod tidy >/dev/null 2>&1 || go mod tidy

log "building runtimetest and validation executables"
CGO_ENABLED=0 go build -o runtimetest ./cmd/runtimetest
n=0
for f in validation/*/*.go; do
	case $f in validation/util/*) continue ;; esac
	grep -q '^package main' "$f" || continue
	name=$(basename "$(dirname "$f")")
	go build -o "validation/$name.t" "./validation/$name"
	n=$((n + 1))
done
[ "$n" -gt 0 ] || { log "no validation executables built"; exit 1; }
rm -f "$RT_DIR"/.built-*
touch "$stamp"
log "built $n validation executables in $RT_DIR/validation (run them from $RT_DIR)"
