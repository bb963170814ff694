#!/usr/bin/env bash
# Make sure a real load balancer is there for the scale-out test: Debian's haproxy, installed when missing.
# The test runs its own haproxy from a temporary folder on free loopback ports, never the system service.
set -uo pipefail
command -v haproxy >/dev/null 2>&1 && exit 0
[ -x /usr/sbin/haproxy ] && exit 0
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "installing Debian's haproxy for the scale-out test…"
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy >/dev/null \
    && { systemctl disable --now haproxy >/dev/null 2>&1 || service haproxy stop >/dev/null 2>&1 || true; exit 0; }
fi
echo "warning: no haproxy and no usable package manager: the scale-out test will be skipped (a failure under CI=true)" >&2
exit 0
