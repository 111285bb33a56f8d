#!/usr/bin/env bash
# Installs what the directory-login tests start: OpenLDAP's server and tools (Debian's slapd and
# ldap-utils) and openssl for a throwaway CA. The tests run their own slapd on free ports in a
# temporary folder; the package's own server is not used. Idempotent; waits for another apt.
set -euo pipefail
if [ -x /usr/sbin/slapd ] && command -v ldapadd >/dev/null 2>&1 && command -v openssl >/dev/null 2>&1; then
  echo "slapd, ldap-utils and openssl already installed" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=300 update -qq >&2
apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends slapd ldap-utils openssl >&2
/usr/sbin/slapd -VV 2>&1 | head -n 1 >&2
