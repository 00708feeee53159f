#!/usr/bin/env bash
# Runs a command as root in a QEMU guest with Debian 12's own kernel, and
# exits with its exit status. Its stdout and stderr (merged) are copied to
# stdout as they come.
#
#   scripts/vm/run-guest.sh [-t SECONDS] [-m MEM] [-s CPUS] [-C DIR]
#                           [-e NAME=VALUE]... [-k] -- COMMAND [ARG]...
#
#   -t  the whole guest's time limit, boot included (default 2700); QEMU is
#       killed when it expires and the script exits 124
#   -m  guest memory (default 4G)
#   -s  vCPUs (default 2, at most 2)
#   -C  the command's working directory in the guest (default /tmp)
#   -e  an environment variable for the command
#   -k  keep the run's directory (console log, share) and print its path
#
# The guest (scripts/vm/prepare.sh builds it, cached) boots the kernel under
# TCG with the host's "/" as its root, read-only through 9p, under an
# overlay whose upper layer is a tmpfs: it sees every file the host has,
# and nothing it writes reaches the host except through the run's share.
# /run and /tmp are fresh tmpfs, cgroup2 is mounted on /sys/fs/cgroup.
#
# Exit status: the command's; 124 when the time limit expired; 125 when the
# guest ended without reporting a status (it failed to boot or crashed).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
CACHE=${VM_CACHE:-/var/cache/criu-ns-runtime/vm}
timeout=2700 mem=4G smp=2 cwd=/tmp keep=
envs=()

log() { echo "run-guest: $*" >&2; }
usage() { sed -n '6,15p' "$0" >&2; exit 2; }

while getopts "t:m:s:C:e:k" o; do
	case $o in
	t) timeout=$OPTARG ;;
	m) mem=$OPTARG ;;
	s) smp=$OPTARG ;;
	C) cwd=$OPTARG ;;
	e) [[ $OPTARG == [A-Za-z_]*=* ]] || usage; envs+=("$OPTARG") ;;
	k) keep=1 ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
[ $# -gt 0 ] || usage
[ "$smp" -ge 1 ] && [ "$smp" -le 2 ] || { log "-s must be 1 or 2"; exit 2; }
command -v qemu-system-x86_64 >/dev/null ||
	{ log "qemu-system-x86_64 is missing (scripts/install-vm-deps.sh installs it)"; exit 125; }

vars=$("$here/prepare.sh") || { log "preparing the guest failed"; exit 125; }
eval "$vars"

mkdir -p "$CACHE/runs"
run=$(mktemp -d "$CACHE/runs/run.XXXXXX")
share=$run/share
mkdir "$share"
cp "$here/guest-init.sh" "$share/guest-init.sh"
printf 'KVER=%q\nMODDIR=%q\n' "$VM_KVER" "$VM_MODDIR" >"$share/env"
{
	printf 'cd %q || exit 125\n' "$cwd"
	for e in ${envs[@]+"${envs[@]}"}; do
		printf 'export %s=%q\n' "${e%%=*}" "${e#*=}"
	done
	printf 'exec'
	printf ' %q' "$@"
	printf '\n'
} >"$share/cmd"
: >"$share/out"

# prepare.sh does not remove a kernel tree while a guest runs from it.
exec 8>>"$VM_KDIR/.inuse"
flock -s 8

qpid= tpid=
cleanup() {
	[ -n "$qpid" ] && kill "$qpid" 2>/dev/null
	[ -n "$tpid" ] && kill "$tpid" 2>/dev/null
	wait 2>/dev/null
	if [ -n "$keep" ]; then
		log "kept $run"
	else
		rm -rf "$run"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start=$SECONDS
# TCG: nested KVM here hangs the kernel at "Probing EDD". panic=-1 and
# -no-reboot make a crashed guest end QEMU instead of rebooting it.
timeout -k 10 "$timeout" qemu-system-x86_64 \
	-nodefaults -no-user-config -machine pc -accel tcg -cpu max \
	-smp "$smp" -m "$mem" -display none -monitor none -no-reboot \
	-serial "file:$run/console.log" \
	-kernel "$VM_KERNEL" -initrd "$VM_INITRD" \
	-append "console=ttyS0 panic=-1 edd=off loglevel=4 rdinit=/init" \
	-virtfs local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap \
	-virtfs "local,path=$share,mount_tag=out,security_model=none" \
	</dev/null &
qpid=$!
tail -n +1 -s 0.2 --pid="$qpid" -f "$share/out" &
tpid=$!
qrc=0
wait "$qpid" || qrc=$?
qpid=
wait "$tpid" || true
tpid=

if [ -f "$share/rc" ]; then
	rc=$(cat "$share/rc")
	log "kernel $VM_KVER: $(sed -n 's/^guest-init: .* up after \(.*\) s$/booted in \1 s/p' "$share/init.log"), exit $rc, $((SECONDS - start)) s in all"
	exit "$rc"
fi
if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
	log "the guest did not finish within ${timeout} s; QEMU was killed"
	rc=124
else
	log "the guest ended (QEMU exit $qrc) without reporting the command's status"
	rc=125
fi
log "end of the console:"
tail -n 40 "$run/console.log" >&2 || true
if [ -s "$share/init.log" ]; then
	log "end of guest-init's log:"
	tail -n 20 "$share/init.log" >&2
fi
exit "$rc"
