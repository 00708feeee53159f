#!/usr/bin/env bash
# Installs the CRIU RPC clients the integration tests drive criu-ns swrk
# mode with, idempotently (root):
#   - pycriu and libcriu, built by CRIU's own `make lib` in the CRIU source
#     tree scripts/install-criu.sh keeps (even when it found a working CRIU
#     and built none): protoc
#     generates pycriu's rpc_pb2.py, and lib/c/libcriu.a is built;
#   - Debian's protoc, protobuf-c, python3-protobuf (for /usr/bin/python3,
#     Debian's python) and gcc.
# The tests find the tree through the symlink $CACHE/criu-src.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# The version and build dependencies are install-criu.sh's.
eval "$(grep -E '^CRIU_VERSION=' "$here/install-criu.sh")"
eval "$(sed -n '/^BUILD_DEPS=(/,/)/p' "$here/install-criu.sh")"
CACHE=${CACHE:-/var/cache/criu-ns-runtime}
BUILD_DIR=${BUILD_DIR:-$CACHE/criu-build}
SRC=$BUILD_DIR/criu-$CRIU_VERSION
LINK=$CACHE/criu-src

log() { echo "install-rpc-clients: $*"; }

[ "$(id -u)" = 0 ] || { log "must run as root"; exit 1; }
export DEBIAN_FRONTEND=noninteractive

"$here/install-criu.sh" >/dev/null

if [ -f "$SRC/lib/c/libcriu.a" ] && [ -f "$SRC/lib/pycriu/rpc_pb2.py" ] &&
	/usr/bin/python3 -c 'import google.protobuf' 2>/dev/null && command -v gcc >/dev/null; then
	ln -sfn "$SRC" "$LINK"
	log "pycriu and libcriu already built in $SRC"
	exit 0
fi

log "installing build dependencies"
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${BUILD_DEPS[@]}" python3 >/dev/null

# install-criu.sh keeps CRIU's source tree, a system CRIU or not.
[ -f "$SRC/Makefile" ] || { log "CRIU's source tree $SRC is missing (scripts/install-criu.sh keeps it)"; exit 1; }

log "building pycriu and libcriu (make lib) in $SRC"
make -C "$SRC" -j"$(nproc)" lib >"$BUILD_DIR/lib-build.log" 2>&1 ||
	{ tail -n 30 "$BUILD_DIR/lib-build.log"; log "build failed (log: $BUILD_DIR/lib-build.log)"; exit 1; }
[ -f "$SRC/lib/c/libcriu.a" ] && [ -f "$SRC/lib/pycriu/rpc_pb2.py" ] ||
	{ log "make lib built no libcriu.a or rpc_pb2.py"; exit 1; }
/usr/bin/python3 -c 'import google.protobuf' || { log "/usr/bin/python3 has no protobuf module"; exit 1; }
ln -sfn "$SRC" "$LINK"
log "pycriu and libcriu ready in $SRC ($LINK)"
