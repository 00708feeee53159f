#!/bin/bash
# Stage 2 of the guest, pid 1 after switch_root: the root is the host's "/"
# under a tmpfs overlay. scripts/vm/run-guest.sh copies this file into the
# run's share (/run/vm) together with:
#   env      KVER, MODDIR (the depmod'ed module tree of the guest kernel)
#   cmd      the command, a shell script run with bash
# The command's stdout and stderr go to /run/vm/out, its exit status to
# /run/vm/rc, and what this script itself says to /run/vm/init.log.
# Then the guest powers off.
export PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root
share=/run/vm
exec </dev/null >>$share/init.log 2>&1

poweroff() {
	sync
	echo o >/proc/sysrq-trigger
	sleep 30
}

step() {
	"$@" || { echo "guest-init: $* failed (exit $?)"; poweroff; }
}

. $share/env

step mount -t proc proc /proc
step mount -t sysfs sysfs /sys
step mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup
mkdir -p /dev/pts /dev/shm /dev/mqueue
step mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts /dev/pts
rm -f /dev/ptmx
ln -s pts/ptmx /dev/ptmx
step mount -t tmpfs -o mode=1777,nosuid,nodev shm /dev/shm
step mount -t mqueue mqueue /dev/mqueue
[ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd

# The guest kernel's modules, where modprobe (and the kernel's own
# request_module) look for them.
mkdir -p "/lib/modules/$KVER"
step mount --bind "$MODDIR" "/lib/modules/$KVER"
# CRIU's kerndat and dumps of sockets and network namespaces need these.
step modprobe -a unix_diag inet_diag tcp_diag udp_diag netlink_diag af_packet_diag \
	nf_tables nfnetlink veth tun
# CRIU's kerndat fails without a loopback that is up.
step ip link set lo up
hostname cnr-vm

echo "guest-init: $(uname -r) up after $(cut -d' ' -f1 /proc/uptime) s"
# bash as pid 1 reaps every child (it waits for any pid), so orphans do
# not pile up as zombies.
/bin/bash $share/cmd >>$share/out 2>&1 </dev/null
echo $? >$share/rc.tmp
mv $share/rc.tmp $share/rc
echo "guest-init: command exited $(cat $share/rc) at $(cut -d' ' -f1 /proc/uptime) s"
poweroff
