#!/usr/bin/env bash
# Builds the Kubernetes-side tools the CRI end-to-end test needs, at pinned
# versions, with `go install` from the Go module proxy, into a cache
# (idempotent; the first build takes about two minutes):
#   - containerd, containerd-shim-runc-v2 and ctr  $CONTAINERD_VERSION
#   - crictl (cri-tools)                           $CRICTL_VERSION
# into $CRI_BIN_DIR (default /var/cache/criu-ns-runtime/cri-<versions>/bin).
# Debian's containerd 1.6 stays where it is; the CRI test uses only these.
set -euo pipefail

CONTAINERD_VERSION=${CONTAINERD_VERSION:-v2.3.7}
CRICTL_VERSION=${CRICTL_VERSION:-v1.34.0}
CACHE=${CACHE:-/var/cache/criu-ns-runtime}
CRI_BIN_DIR=${CRI_BIN_DIR:-$CACHE/cri-containerd-$CONTAINERD_VERSION-crictl-$CRICTL_VERSION/bin}

log() { echo "install-cri-tools: $*"; }

stamp=$CRI_BIN_DIR/.built
if [ -f "$stamp" ]; then
	ok=1
	for b in containerd containerd-shim-runc-v2 ctr crictl; do
		[ -x "$CRI_BIN_DIR/$b" ] || ok=0
	done
	if [ $ok = 1 ]; then
		log "containerd $CONTAINERD_VERSION and crictl $CRICTL_VERSION already built in $CRI_BIN_DIR"
		exit 0
	fi
fi

command -v go >/dev/null || export PATH=$PATH:/usr/local/go/bin
command -v go >/dev/null || { log "go not found"; exit 1; }
[ "$(id -u)" = 0 ] || [ -w "$(dirname "$CRI_BIN_DIR")" ] || { log "must run as root (writes $CRI_BIN_DIR)"; exit 1; }

# Build into a temporary directory next to the final one, then rename, so
# an interrupted build never leaves a half-filled cache behind.
mkdir -p "$(dirname "$CRI_BIN_DIR")"
tmp=$(mktemp -d "$(dirname "$CRI_BIN_DIR")/.bin-XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# The module proxy only: no VCS, no vendor trees, no replace directives.
export GOFLAGS=-mod=mod GOPROXY=${GOPROXY:-https://proxy.golang.org} GONOSUMDB= GOTOOLCHAIN=local
# containerd's btrfs snapshotter needs libbtrfs headers; the test uses
# overlayfs. Static builds without cgo work for all four binaries.
export CGO_ENABLED=0

log "building containerd $CONTAINERD_VERSION (containerd, containerd-shim-runc-v2, ctr)"
GOBIN=$tmp go install -tags no_btrfs \
	-ldflags "-X github.com/containerd/containerd/v2/version.Version=${CONTAINERD_VERSION#v}" \
	"github.com/containerd/containerd/v2/cmd/containerd@$CONTAINERD_VERSION" \
	"github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2@$CONTAINERD_VERSION" \
	"github.com/containerd/containerd/v2/cmd/ctr@$CONTAINERD_VERSION"
log "building crictl $CRICTL_VERSION"
GOBIN=$tmp go install \
	-ldflags "-X sigs.k8s.io/cri-tools/pkg/version.Version=$CRICTL_VERSION" \
	"sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION"

"$tmp/containerd" --version | grep -q " ${CONTAINERD_VERSION#v} " ||
	{ log "built containerd reports $("$tmp/containerd" --version)"; exit 1; }
"$tmp/crictl" --version | grep -q "$CRICTL_VERSION" ||
	{ log "built crictl reports $("$tmp/crictl" --version)"; exit 1; }

touch "$tmp/.built"
rm -rf "$CRI_BIN_DIR"
mv "$tmp" "$CRI_BIN_DIR"
chmod 0755 "$CRI_BIN_DIR"
trap - EXIT
log "built containerd $CONTAINERD_VERSION and crictl $CRICTL_VERSION in $CRI_BIN_DIR"
