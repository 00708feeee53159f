#!/usr/bin/env bash
# Prepares the guest of `make test-vm` from Debian packages alone and prints
# where it is, as shell assignments (VM_KERNEL, VM_INITRD, VM_KVER,
# VM_MODDIR, VM_KDIR) for scripts/vm/run-guest.sh. Root; idempotent.
#
# The kernel is the package Debian's linux-image-amd64 depends on (Debian
# 12: 6.1.0-NN-amd64), downloaded with apt-get and unpacked with dpkg-deb.
# Its module tree is depmod'ed where it is unpacked; the initramfs is
# busybox-static plus the modules scripts/vm/initramfs-init loads.
# Everything lives under $VM_CACHE and is rebuilt only when an input
# changes: the kernel package's version, busybox's version, the module list
# or initramfs-init.
#
#   VM_CACHE       default /var/cache/criu-ns-runtime/vm
#   VM_KERNEL_PKG  a kernel package other than linux-image-amd64's dependency
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
CACHE=${VM_CACHE:-/var/cache/criu-ns-runtime/vm}
# Loaded by initramfs-init, in this order (each needs the ones before it).
INITRD_MODULES=(virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci
	netfs fscache 9pnet 9pnet_virtio 9p overlay)

log() { echo "vm-prepare: $*" >&2; }
die() { log "$*"; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root"
for t in apt-get apt-cache dpkg-deb depmod cpio gzip flock sha256sum; do
	command -v "$t" >/dev/null || die "$t is missing (scripts/install-vm-deps.sh installs it)"
done
[ -x /bin/busybox ] && /bin/busybox --list | grep -qx switch_root ||
	die "/bin/busybox (busybox-static) is missing (scripts/install-vm-deps.sh installs it)"

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock -x 9

# kernel_pkg prints the package linux-image-amd64 depends on.
kernel_pkg() {
	apt-cache depends linux-image-amd64 2>/dev/null |
		sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\)$/\1/p' | head -n 1
}
pkg=${VM_KERNEL_PKG:-$(kernel_pkg)}
if [ -z "$pkg" ]; then
	log "apt knows no linux-image-amd64; running apt-get update"
	apt-get update -qq
	pkg=$(kernel_pkg)
	[ -n "$pkg" ] || die "linux-image-amd64 depends on no linux-image package"
fi
ver=$(apt-cache show --no-all-versions "$pkg" 2>/dev/null | sed -n 's/^Version: //p' | head -n 1)
[ -n "$ver" ] || die "apt knows no version of $pkg"

kdir=$CACHE/${pkg}_$ver
if [ ! -f "$kdir/.done" ]; then
	tmp=$(mktemp -d "$CACHE/.tmp.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	log "downloading $pkg $ver"
	# apt's sandbox user cannot write to $tmp: apt warns and downloads as root.
	if ! (cd "$tmp" && apt-get download -qq "$pkg=$ver" 2>/dev/null); then
		log "download failed; running apt-get update and retrying"
		apt-get update -qq
		ver=$(apt-cache show --no-all-versions "$pkg" | sed -n 's/^Version: //p' | head -n 1)
		kdir=$CACHE/${pkg}_$ver
		(cd "$tmp" && apt-get download -qq "$pkg=$ver" 2>/dev/null) || die "apt-get download $pkg=$ver failed"
	fi
	dpkg-deb -x "$tmp"/*.deb "$tmp/root"
	rm -f "$tmp"/*.deb
	kver=$(ls "$tmp/root/lib/modules")
	[ -n "$kver" ] && [ -f "$tmp/root/boot/vmlinuz-$kver" ] || die "$pkg has no vmlinuz and module tree"
	depmod -b "$tmp/root" "$kver"
	echo "$kver" >"$tmp/kver"
	touch "$tmp/.done"
	rm -rf "$kdir"
	mv "$tmp" "$kdir"
	trap - EXIT
	log "unpacked $pkg $ver ($kver) into $kdir"
fi
kver=$(cat "$kdir/kver")
moddir=$kdir/root/lib/modules/$kver

# The initramfs, named after everything it is made of.
key=$({
	echo "$pkg $ver"
	dpkg-query -W -f='${Version}\n' busybox-static
	echo "${INITRD_MODULES[*]}"
	cat "$here/initramfs-init"
} | sha256sum | cut -c1-16)
initrd=$kdir/initrd-$key.cpio.gz
if [ ! -f "$initrd" ]; then
	st=$(mktemp -d "$CACHE/.initrd.XXXXXX")
	trap 'rm -rf "$st"' EXIT
	mkdir -p "$st"/{bin,dev,proc,sys,modules}
	cp /bin/busybox "$st/bin/busybox"
	install -m 0755 "$here/initramfs-init" "$st/init"
	mknod "$st/dev/console" c 5 1
	for m in "${INITRD_MODULES[@]}"; do
		f=$(find "$moddir/kernel" -name "$m.ko" | head -n 1)
		[ -n "$f" ] || die "module $m.ko is not in $pkg"
		cp "$f" "$st/modules/"
		echo "$m" >>"$st/modules.list"
	done
	(cd "$st" && find . | cpio -o -H newc --quiet | gzip -1) >"$initrd.tmp"
	mv "$initrd.tmp" "$initrd"
	rm -rf "$st"
	trap - EXIT
	find "$kdir" -maxdepth 1 -name 'initrd-*.cpio.gz' ! -name "initrd-$key.cpio.gz" -delete
	log "built $initrd"
fi

# Other kernels' trees go, unless a guest is running from them (run-guest.sh
# holds a shared lock on .inuse while it runs).
for d in "$CACHE"/linux-image-*; do
	[ "$d" != "$kdir" ] && [ -d "$d" ] || continue
	if (flock -n -x 8 || exit 1; rm -rf "$d") 8>>"$d/.inuse"; then
		log "removed the old kernel tree $d"
	fi
done

cat <<EOF
VM_KDIR=$kdir
VM_KERNEL=$kdir/root/boot/vmlinuz-$kver
VM_INITRD=$initrd
VM_KVER=$kver
VM_MODDIR=$moddir
EOF
