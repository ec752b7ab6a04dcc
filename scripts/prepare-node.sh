#!/usr/bin/env bash
# Prepares what the real test node (test/node) needs from Debian: containerd, runc, the CNI plugins, iptables and
# PostgreSQL 15's server (whose binaries back the local postgres image). Installs them when it can (root, apt
# reachable); otherwise says so loudly and exits non-zero, and the node suites report themselves skipped.
set -uo pipefail

need=()
for c in containerd runc ctr iptables ip; do command -v "$c" >/dev/null 2>&1 || need+=("$c"); done
[ -x /usr/lib/cni/bridge ] || need+=(cni)
[ -x /usr/lib/postgresql/15/bin/postgres ] || need+=(postgresql-15)
if [ ${#need[@]} -eq 0 ]; then
  echo "prepare-node: containerd $(containerd --version | awk '{print $3}'), runc, CNI plugins, iptables present"
  exit 0
fi

loud() {
  echo "################################################################################" >&2
  echo "## REAL-NODE TESTS WILL BE SKIPPED: $1" >&2
  echo "################################################################################" >&2
  exit 3
}
[ "$(id -u)" = 0 ] || loud "missing ${need[*]} and not root (cannot install Debian packages)"
command -v apt-get >/dev/null 2>&1 || loud "missing ${need[*]} and no apt-get"
pkgs=(containerd runc containernetworking-plugins iptables iproute2 postgresql-15)
echo "prepare-node: installing ${pkgs[*]} from Debian (missing: ${need[*]})"
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y --no-install-recommends "${pkgs[@]}" >/tmp/kflex-prepare-node-apt.log 2>&1; then
  apt-get update >>/tmp/kflex-prepare-node-apt.log 2>&1 || true
  apt-get install -y --no-install-recommends "${pkgs[@]}" >>/tmp/kflex-prepare-node-apt.log 2>&1 ||
    loud "apt-get install ${pkgs[*]} failed (log: /tmp/kflex-prepare-node-apt.log)"
fi
echo "prepare-node: installed"
