#!/usr/bin/env bash
# Installs the monitoring tools the alert tests use, from Debian's packages: promtool (package
# prometheus) to check and unit-test monitoring/prometheus/*.yml, and the Net-SNMP tools (snmp,
# snmptrapd) for an SNMP trap receiver. Idempotent; waits for another apt that holds the lock.
set -euo pipefail
if command -v promtool >/dev/null 2>&1 && command -v snmptrapd >/dev/null 2>&1; then
  echo "promtool and snmptrapd already installed" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=300 update -qq >&2
# The packages' own daemons are not needed (the tests start what they use on 127.0.0.1).
apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends prometheus snmp snmptrapd >&2
command -v promtool >&2
