#!/usr/bin/env bash
# The demo `make demo` runs: a tree is dumped while it keeps running (so its
# PIDs stay taken), bare CRIU cannot restore it, criu-ns-runtime can, and the
# restored tree is checkpointed and restored again.
set -euo pipefail
RT=${1:?usage: demo.sh PATH-TO-criu-ns-runtime}
work=$(mktemp -d /var/tmp/criu-ns-demo.XXXXXX)
root=$work/root
step() { printf '\n== %s\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }
cleanup() {
	"$RT" --root "$root" delete --force demo-1 2>/dev/null || true
	"$RT" --root "$root" delete --force demo-2 2>/dev/null || true
	[ -n "${orig:-}" ] && kill -9 -- -"$orig" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

step "start a workload: a shell loop with a child, in its own session, only stdio open"
# CRIU refuses to dump descriptors it cannot place, and shells leak some:
# the workload closes everything above stderr before it starts.
setsid bash -c '
	for fd in /proc/self/fd/*; do fd=${fd##*/}; [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done
	sleep 100000 &
	while :; do echo "$(date +%T) pid $$ in its namespace"; sleep 1; done' \
	</dev/null >"$work/counter.log" 2>&1 &
disown
sleep 0.5
orig=$(pgrep -n -f 'pid \$\$ in its namespace')
echo "workload pid $orig: $(tail -n 1 "$work/counter.log")"

step "dump it with CRIU and leave it running: its PIDs stay taken"
mkdir -p "$work/img1"
run criu dump --leave-running -t "$orig" -D "$work/img1" -o dump.log
echo "images: $(ls "$work/img1" | wc -l) files"

step "bare CRIU cannot restore it here: the PIDs are taken"
if criu restore -d -D "$work/img1" -o restore-bare.log 2>/dev/null; then
	echo "(unexpected: bare restore worked)"
else
	grep -v RLIMIT_NOFILE "$work/img1/restore-bare.log" | grep -m1 -o "Error.*" || true
fi

step "criu-ns-runtime restores it into fresh pid+mount namespaces"
run "$RT" --root "$root" restore -d --image-path "$work/img1" demo-1
run "$RT" --root "$root" state demo-1
run "$RT" --root "$root" ps demo-1

step "the original stops; the restored copy carries on writing"
kill -9 -- -"$orig"; orig=  # the whole session: the loop and its sleep
sleep 1.5
tail -n 2 "$work/counter.log"

step "checkpoint the restored tree from inside its namespaces (it ends)"
run "$RT" --root "$root" checkpoint --image-path "$work/img2" demo-1
run "$RT" --root "$root" list

step "restore that checkpoint again, into a new container"
run "$RT" --root "$root" restore -d --image-path "$work/img2" demo-2
sleep 1.5
tail -n 2 "$work/counter.log"
run "$RT" --root "$root" list

step "done: restore -> checkpoint -> restore, with the same PIDs inside each namespace"
