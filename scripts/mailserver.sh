#!/usr/bin/env bash
# Make sure a real IMAP server is there for the email tests: Debian's dovecot-imapd, installed when missing.
# The tests run their own dovecot from a temporary folder on a free loopback port, never the system
# service; the SMTP peer is aiosmtpd (a Python dev dependency), so nothing else is needed.
set -uo pipefail
command -v dovecot >/dev/null 2>&1 && exit 0
[ -x /usr/sbin/dovecot ] && exit 0
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "installing Debian's dovecot-imapd for the email tests…"
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dovecot-imapd >/dev/null \
    && exit 0
fi
echo "warning: no dovecot and no usable package manager: the IMAP tests will be skipped (a failure under CI=true)" >&2
exit 0
