#!/usr/bin/env bash
# Installs a CRIU this kernel can use (>= 4.0), idempotently.
#
# Debian 12's criu 3.17 fails on newer kernels ("Unexpected rt vDSO area
# bounds"), so when no working CRIU >= 4.0 is on PATH we build 4.1.1 from
# Debian's source package. Only a deb-src entry for trixie is added: a binary
# entry for another release would let apt upgrade libc and half the system.
set -euo pipefail

CRIU_VERSION=4.1.1
CRIU_DEB_VERSION=4.1.1-1
CRIU_SHA256=f80a66cb3726bb2116266d4759ce3bcbfab7abdb6b6d430bf20dd41911717afe
PREFIX=${PREFIX:-/usr/local/sbin}
BUILD_DIR=${BUILD_DIR:-/var/cache/criu-ns-runtime/criu-build}
SRC_LIST=/etc/apt/sources.list.d/criu-ns-runtime-trixie-src.sources
BUILD_DEPS=(build-essential libprotobuf-dev libprotobuf-c-dev protobuf-c-compiler
	protobuf-compiler python3-protobuf libnl-3-dev libcap-dev libnet1-dev pkg-config
	libbsd-dev libgnutls28-dev libnftables-dev libaio-dev uuid-dev libdrm-dev
	iproute2 xz-utils dpkg-dev)

log() { echo "install-criu: $*"; }

# usable_criu PATH: true when PATH is CRIU >= 4.0 and `criu check` passes.
usable_criu() {
	local bin=$1 ver
	[ -x "$bin" ] || return 1
	ver=$("$bin" --version 2>/dev/null | sed -n 's/^Version: *//p')
	[ -n "$ver" ] || return 1
	[ "${ver%%.*}" -ge 4 ] 2>/dev/null || return 1
	"$bin" check >/dev/null 2>&1
}

# criu_source keeps CRIU's source tree in $BUILD_DIR/criu-$CRIU_VERSION,
# from the tarball checked by sha256: the build uses it, and so do the
# tests (CRIU's own criu-ns test suite, criu/config.c's option table), even
# when a usable CRIU is installed already. Re-extracted when incomplete.
criu_source() {
	local src=$BUILD_DIR/criu-$CRIU_VERSION tarball=criu_${CRIU_VERSION}.orig.tar.xz
	mkdir -p "$BUILD_DIR"
	cd "$BUILD_DIR"
	if [ -f "$tarball" ] && echo "$CRIU_SHA256  $tarball" | sha256sum -c --status &&
		[ -f "$src/criu/config.c" ] && [ -f "$src/test/others/criu-ns/run.py" ]; then
		return 0
	fi
	[ "$(id -u)" = 0 ] || { log "must run as root to fetch CRIU's source"; exit 1; }
	if [ ! -f "$tarball" ] || ! echo "$CRIU_SHA256  $tarball" | sha256sum -c --status; then
		rm -f "$tarball"
		if [ ! -f "$SRC_LIST" ]; then
			cat >"$SRC_LIST" <<SRC
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
		fi
		apt-get update -qq
		log "downloading criu $CRIU_DEB_VERSION source"
		# The .dsc is not served, so apt-get fails after fetching the
		# tarball; the sha256 check below is what decides.
		apt-get source --download-only "criu=$CRIU_DEB_VERSION" >/dev/null 2>&1 || true
	fi
	echo "$CRIU_SHA256  $tarball" | sha256sum -c --status ||
		{ log "$tarball missing or its sha256 is not $CRIU_SHA256"; exit 1; }
	command -v xz >/dev/null || apt-get install -y -qq --no-install-recommends xz-utils >/dev/null
	rm -rf "$src"
	tar -xJf "$tarball"
	log "CRIU $CRIU_VERSION source in $src"
}

export DEBIAN_FRONTEND=noninteractive
criu_source

if bin=$(command -v criu 2>/dev/null) && usable_criu "$bin"; then
	log "using $bin ($("$bin" --version | sed -n 's/^Version: *//p'))"
	exit 0
fi
if usable_criu "$PREFIX/criu"; then
	log "using $PREFIX/criu"
	exit 0
fi

[ "$(id -u)" = 0 ] || { log "must run as root to install CRIU"; exit 1; }

log "installing build dependencies"
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${BUILD_DEPS[@]}" >/dev/null

cd "$BUILD_DIR"
log "building criu $CRIU_VERSION"
make -C "criu-$CRIU_VERSION" -j"$(nproc)" criu >build.log 2>&1 ||
	{ tail -n 30 build.log; log "build failed (log: $BUILD_DIR/build.log)"; exit 1; }
install -D -m 0755 "criu-$CRIU_VERSION/criu/criu" "$PREFIX/criu"
usable_criu "$PREFIX/criu" || { "$PREFIX/criu" check || true; log "built CRIU does not pass criu check"; exit 1; }
log "installed $PREFIX/criu ($CRIU_VERSION)"
