#!/usr/bin/env bash
# Installs what `make test-vm` needs on the host, idempotently (root):
#   - qemu-system-x86: runs the guest (TCG; no KVM needed)
#   - busybox-static, cpio: the guest's initramfs
#   - kmod: depmod for the guest kernel's module tree
# The guest's kernel itself is a Debian package fetched by scripts/vm/prepare.sh.
set -euo pipefail

PKGS=(qemu-system-x86 busybox-static cpio kmod)

log() { echo "install-vm-deps: $*"; }

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
[ "$(id -u)" = 0 ] || { log "must run as root to install ${missing[*]}"; exit 1; }
export DEBIAN_FRONTEND=noninteractive
log "installing ${missing[*]}"
apt-get update -qq
# No recommends: they would pull a desktop's worth of display and audio libraries.
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
