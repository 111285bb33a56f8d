#!/usr/bin/env bash
# Installs what power fencing, the lab's BMCs and the clock-step tests use, from Debian's packages:
# fence-agents (fence_ipmilan and the other fence_* programs Pacemaker and oVirt use), ipmitool
# (what fence_ipmilan calls), openipmi (ipmi_sim, an IPMI BMC emulator: one per lab host), faketime
# (libfaketime, to step one agent's clock) and openssl (agent certificates). Idempotent; waits for
# another apt that holds the lock.
set -euo pipefail
if [ -x /usr/sbin/fence_ipmilan ] && command -v ipmitool >/dev/null 2>&1 && command -v ipmi_sim >/dev/null 2>&1 \
  && [ -e /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 ] && command -v openssl >/dev/null 2>&1; then
  echo "fence-agents, ipmitool, openipmi, faketime and openssl already installed" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=300 update -qq >&2
# The packages' own daemons are not needed (the lab starts one ipmi_sim per host on 127.0.0.1).
apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends fence-agents ipmitool openipmi faketime openssl >&2
test -x /usr/sbin/fence_ipmilan && command -v ipmi_sim >&2
