#!/usr/bin/env bash
# Builds govmomi's vSphere API simulator (vcsim) for the vSphere tests, offline, from Debian's
# packages only: golang-go and golang-github-vmware-govmomi-dev, around the small main in
# ../shared/tools/vcsim (or ./shared/tools/vcsim). shared/ is read-only in CI, so the binary, its
# GOPATH and its build cache go to .state/vcsim in this checkout (git-ignored); scripts/vcsim/
# hospital_hosts.go is compiled beside main.go so the simulated hosts can have a hospital's hardware. Idempotent; waits
# for another apt that holds the lock. Prints the binary's path on stdout: CI exports it as
# TOMARANAI_VCSIM, and the vSphere tests run against it.
set -euo pipefail
HERE="$(cd "$(dirname "$0")/.." && pwd)"
SOURCE=""
for candidate in "${VCSIM_SOURCE:-}" "$HERE/../shared/tools/vcsim" "$HERE/shared/tools/vcsim" /work/shared/tools/vcsim; do
  if [ -n "$candidate" ] && [ -f "$candidate/main.go" ]; then SOURCE="$(cd "$candidate" && pwd)"; break; fi
done
[ -n "$SOURCE" ] || { echo "ci-vsphere.sh: no shared/tools/vcsim/main.go next to this checkout (set VCSIM_SOURCE)" >&2; exit 1; }
if ! command -v go >/dev/null 2>&1 || ! dpkg-query -W -f='${Status}' golang-github-vmware-govmomi-dev 2>/dev/null | grep -q 'install ok installed'; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=300 update -qq >&2
  apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends golang-go golang-github-vmware-govmomi-dev >&2
fi
STATE="$HERE/.state/vcsim"
# Our one addition, compiled beside main.go: host hardware from VCSIM_HOST_* (scripts/vcsim/hospital_hosts.go).
mkdir -p "$STATE/gopath/src/peer/vcsim"
cp "$HERE/scripts/vcsim/hospital_hosts.go" "$STATE/gopath/src/peer/vcsim/hospital_hosts.go"
VCSIM_STATE="$STATE" bash "$SOURCE/build.sh" >&2
test -x "$STATE/vcsim"
echo "$STATE/vcsim"
