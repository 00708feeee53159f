#!/usr/bin/env bash
# Installs what the integration tests need besides CRIU and its source
# tree (scripts/install-criu.sh) and Go, idempotently (root):
#   - python3: CRIU's own criu-ns test suite (test/others/criu-ns/run.py)
#     runs with it; it needs only the standard library (fcntl, pathlib,
#     pty, shutil, subprocess, termios), which Debian's python3 has
#   - tmux: the shell-job test drives a real terminal with it
#   - bash, util-linux (unshare, nsenter): the shells and namespaces the
#     tests start
#   - iproute2 (`ip netns`, veth pairs: the migration tests' two hosts)
#   - iptables: CRIU locks a dumped tree's TCP connections with it
set -euo pipefail
PKGS=(python3 tmux bash util-linux iproute2 iptables)

log() { echo "install-test-deps: $*"; }

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	[ "$(id -u)" = 0 ] || { log "must run as root to install ${missing[*]}"; exit 1; }
	log "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
/usr/bin/python3 -c 'import fcntl, pathlib, pty, shutil, subprocess, termios' ||
	{ log "/usr/bin/python3 lacks modules CRIU's criu-ns tests need"; exit 1; }
