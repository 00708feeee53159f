#!/usr/bin/env bash
# Installs what the integration tests need besides CRIU and Go, idempotently
# (root): iproute2 (`ip netns`, veth pairs: the migration tests' two hosts),
# util-linux (nsenter) and iptables (CRIU locks a dumped tree's TCP
# connections with it).
set -euo pipefail
need=()
command -v ip >/dev/null || need+=(iproute2)
command -v nsenter >/dev/null || need+=(util-linux)
command -v iptables >/dev/null || need+=(iptables)
[ ${#need[@]} -eq 0 ] && exit 0
[ "$(id -u)" = 0 ] || { echo "install-test-deps: must run as root" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
echo "install-test-deps: installed ${need[*]}"
