#!/usr/bin/env bash
# Installs the Debian packages the local platform runs (Redis, PostgreSQL, Prometheus/promtool,
# openssl, wrk, nginx for the cluster's LoadBalancer edge, chromium for the sale page's browser test;
# mmdebstrap, Debian's python3 and gcc (static) to build the images; runc, the CNI plugins, iptables
# and conntrack for the real kubelet nodes and the test that runs an image)
# without letting any package start a system daemon: we start our own instances on our own ports.
# Idempotent: a present package is not reinstalled.
set -euo pipefail
packages=(redis-server postgresql prometheus openssl wrk nginx chromium mmdebstrap python3 gcc libc6-dev
          runc containernetworking-plugins iptables conntrack)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "setup-system: missing Debian packages: ${missing[*]}; install them (as root) and re-run" >&2
  exit 1
fi
echo "[setup-system] installing ${missing[*]}" >&2
# policy-rc.d exit 101 = "do not start services" for every maintainer script.
policy=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && own_policy=1
fi
trap '[ $own_policy -eq 1 ] && rm -f "$policy"' EXIT
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Packages that start a daemon anyway (no init system honours policy-rc.d): stop them.
for svc in redis-server postgresql prometheus nginx; do
  service "$svc" stop >/dev/null 2>&1 || true
done
