#!/usr/bin/env bash
# Builds the tiny guest image that the `qemu` substrate boots, from Debian's packages only:
#   .lab/image/vmlinux          the kernel, uncompressed (an ELF with a PVH entry: QEMU boots it
#                               directly, skipping the bzImage's own decompression, ~2x faster
#                               under TCG)
#   .lab/image/vmlinuz          the same kernel as Debian ships it (bzImage), kept for comparison
#   .lab/image/initramfs.cpio   busybox + the virtio modules + /init (network from the kernel
#                               command line, GET /health on port 80, a durable write workload)
#   .lab/image/disk-base.qcow2  the base disk every VM's overlay sits on: no records, 16 documents
#   .lab/image/image.json       what was built, for src/substrate/qemu (paths, kernel version)
# Idempotent and cached: a second run with nothing changed does nothing. Progress on stderr;
# `--force` rebuilds. Needs root only to install the packages when they are missing.
#
# The guest's command line (all optional; see /init below):
#   tmr.vm=NAME  tmr.ip=10.77.1.10/24  tmr.gw=10.77.1.1  tmr.interval_ms=100
# The workload writes record N (N >= 1) to sector N of the raw virtio disk /dev/vda, one 512-byte
# sector per record, with O_DIRECT and fsync, so a record is durable once it is acknowledged; it
# publishes the newest durable sequence number at GET /seq ("SEQ BOOT", BOOT the first 8 characters
# of the guest's boot id: which run of the guest wrote it). A VM restarted from the same disk
# resumes after the newest record it finds. The host reads the disk without mounting it:
#   qemu-io -r -U -f qcow2 OVERLAY.qcow2 -c 'read -v OFFSET 512'
# The second half of the disk holds the guest's documents: FILE_COUNT files of 64 KiB each from
# sector FILES_SECTOR (a fixed table, no filesystem: the guest has no filesystem modules and the host
# reads them without mounting anything). Each begins "TMRFILE doc-NN v=K"; the workload rewrites
# the first 4 KiB of one of them every tmr.edit_every records. /cgi-bin/attack?variant=V starts the
# lab's encryptor (the ransomware drill's attacker), /cgi-bin/verify reads every document's header.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=.lab/image
DISK_SIZE=64M
# The virtio modules the guest needs, in load order (Debian builds virtio as modules).
MODULES=(virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_mmio virtio_blk failover net_failover virtio_net)
FORCE=0
[ "${1:-}" = "--force" ] && FORCE=1

log() { echo "== vm-image: $*" >&2; }

# ── 1. Debian packages ──────────────────────────────────────────────────────────────────────────
missing=()
for pair in qemu-system-x86_64:qemu-system-x86 qemu-img:qemu-utils nft:nftables ip:iproute2 socat:socat; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
# The guest needs a static busybox with httpd (Debian's busybox-static); a dynamic one would not run.
dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'install ok installed' || missing+=(busybox-static)
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq qemu-system-x86 qemu-utils busybox-static nftables iproute2 socat >&2
fi
BUSYBOX=/bin/busybox

# ── 2. The kernel package that linux-image-amd64 depends on ─────────────────────────────────────
KPKG="$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')"
if [ -z "$KPKG" ]; then
  apt-get update -qq >&2
  KPKG="$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')"
fi
[ -n "$KPKG" ] || { echo "vm-image: cannot find the versioned kernel package of linux-image-amd64" >&2; exit 1; }
KVER="${KPKG#linux-image-}"
SCRIPT_SUM="$(sha256sum "$0" | cut -c1-16)"
STAMP="$KPKG $SCRIPT_SUM"
if [ "$FORCE" = 0 ] && [ -f "$OUT/stamp" ] && [ "$(cat "$OUT/stamp")" = "$STAMP" ] \
  && [ -f "$OUT/vmlinux" ] && [ -f "$OUT/initramfs.cpio" ] && [ -f "$OUT/disk-base.qcow2" ] && [ -f "$OUT/image.json" ]; then
  log "up to date ($KPKG); --force rebuilds"
  exit 0
fi
mkdir -p "$OUT/cache"
if ! ls "$OUT/cache/${KPKG}_"*.deb >/dev/null 2>&1; then
  log "downloading $KPKG"
  # apt-get download writes into the current directory; as root it warns that _apt cannot write
  # there, which is harmless.
  (cd "$OUT/cache" && apt-get download "$KPKG" 2>&1 | grep -v 'unsandboxed' >&2 || true)
fi
DEB="$(ls "$OUT/cache/${KPKG}_"*.deb | head -n 1)"
[ -f "$DEB" ] || { echo "vm-image: download of $KPKG failed" >&2; exit 1; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/tmr-vm-image.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
log "unpacking $(basename "$DEB")"
dpkg-deb -x "$DEB" "$WORK/deb"
cp "$WORK/deb/boot/vmlinuz-$KVER" "$OUT/vmlinuz"
MODDIR="$WORK/deb/lib/modules/$KVER/kernel"

# ── 3. vmlinux: the ELF inside the bzImage (the approach of the kernel's scripts/extract-vmlinux) ─
is_elf() { [ "$(head -c 4 "$1" 2>/dev/null | od -An -c | tr -d ' ')" = "177ELF" ]; }
try_decompress() { # magic-bytes(printf octal) marker command...
  local magic="$1" marker="$2"
  shift 2
  local pos
  # Turn every occurrence of the magic into "\n<marker>", then let grep report byte offsets of lines
  # starting with the marker: the candidates for the start of the compressed payload.
  for pos in $(tr "$magic\n$marker" "\n$marker=" <"$OUT/vmlinuz" | grep -abo "^$marker" | cut -d: -f1); do
    tail -c+"$pos" "$OUT/vmlinuz" | "$@" >"$WORK/vmlinux" 2>/dev/null || true
    if is_elf "$WORK/vmlinux"; then return 0; fi
  done
  return 1
}
XZ=(xz -dc); command -v xz >/dev/null || XZ=("$BUSYBOX" unxz -c)
ZSTD=(zstd -dc); command -v zstd >/dev/null || ZSTD=(false)
if try_decompress '\3757zXZ\000' abcde "${XZ[@]}" \
  || try_decompress '\037\213\010' xy gzip -dc \
  || try_decompress '\050\265\057\375' xxx "${ZSTD[@]}"; then
  mv "$WORK/vmlinux" "$OUT/vmlinux"
else
  echo "vm-image: no ELF found inside $OUT/vmlinuz" >&2
  exit 1
fi
# The PVH entry note is what lets QEMU's -kernel take the ELF directly.
if command -v readelf >/dev/null && ! readelf -n "$OUT/vmlinux" 2>/dev/null | grep -q 'note type: (0x00000012)'; then
  log "warning: vmlinux has no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY); QEMU may refuse it"
fi
log "vmlinux: $(du -h "$OUT/vmlinux" | cut -f1) (vmlinuz $(du -h "$OUT/vmlinuz" | cut -f1))"

# ── 4. initramfs ────────────────────────────────────────────────────────────────────────────────
ROOT="$WORK/initramfs"
mkdir -p "$ROOT"/{bin,sbin,dev,proc,sys,tmp,run,www,www/cgi-bin,lib/modules}
cp "$BUSYBOX" "$ROOT/bin/busybox"
for applet in $("$BUSYBOX" --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$ROOT/bin/$applet"
done
for module in "${MODULES[@]}"; do
  file="$(find "$MODDIR" -name "$module.ko" | head -n 1)"
  [ -n "$file" ] || { echo "vm-image: module $module.ko not in $KPKG" >&2; exit 1; }
  cp "$file" "$ROOT/lib/modules/"
done
# Every dependency of a module must be in the list before it (insmod has no resolver).
loaded=" "
for module in "${MODULES[@]}"; do
  for dependency in $(tr '\0' '\n' <"$ROOT/lib/modules/$module.ko" | grep -a '^depends=' | cut -d= -f2 | tr ',' ' '); do
    case "$loaded" in *" $dependency "*) ;; *) echo "vm-image: $module needs $dependency first" >&2; exit 1 ;; esac
  done
  loaded="$loaded$module "
done
mkdir -p "$ROOT/etc"
# The disk's layout, shared by /init, the encryptor and the verifier (and src/substrate/qemu/guest-files.ts).
cat >"$ROOT/etc/tmr-layout" <<'LAYOUT'
FILES_SECTOR=65536
FILE_COUNT=16
FILE_SECTORS=128
LAYOUT
# The lab's encryptor: the ransomware drill's attacker inside the guest. It stands in for real
# ransomware with busybox tools: lateral probing first (SMB on the other VMs: the segmentation denies it), then
# each document overwritten in place, its first sector stamped TMRCRYPT (the ransomware's marker);
# /dev/urandom's bytes stand in for ciphertext (the same entropy).
#   whole         every document, whole, one after another (a pause of pace_ms between two)
#   partial       the first 2.5 KiB of each 64 KiB document (4 %)
#   intermittent  whole documents in bursts: burst documents, then off_ms without a write
#   low-entropy   whole documents, the ciphertext base64-encoded (6 bits per byte, not 8)
cat >"$ROOT/bin/tmr-encrypt" <<'ENCRYPT'
#!/bin/sh
. /etc/tmr-layout
variant="$1" pace_ms="${2:-400}" burst="${3:-3}" off_ms="${4:-5000}" disk=/dev/vda
echo "tmr-attack: $variant starts at $(cut -d' ' -f1 /proc/uptime) s" >/dev/console
echo "running $variant 0" >/www/attack
# Addresses that exist (the lab's VMs), so the frames leave the guest (an address nobody answers ARP
# for is never sent to) and the segmentation drops them: SMB is no flow of the blueprint's.
(for last in 10 11 12 13 14 15; do wget -q -T 1 -O /dev/null "http://10.77.1.$last:445/" 2>/dev/null; done) &
i=0
while [ $i -lt $FILE_COUNT ]; do
  sector=$((FILES_SECTOR + i * FILE_SECTORS))
  case "$variant" in
    partial) head -c 2560 /dev/urandom >/run/crypt; sectors=5 ;;
    low-entropy) head -c 49152 /dev/urandom | base64 | head -c 65536 >/run/crypt; sectors=$FILE_SECTORS ;;
    *) head -c 65536 /dev/urandom >/run/crypt; sectors=$FILE_SECTORS ;;
  esac
  printf 'TMRCRYPT doc-%02d\n' $i | dd of=/run/crypt conv=notrunc 2>/dev/null
  dd if=/run/crypt of=$disk bs=512 seek=$sector count=$sectors conv=notrunc,fsync oflag=direct 2>/dev/null
  i=$((i + 1))
  echo "running $variant $i" >/www/attack
  usleep $((pace_ms * 1000))
  if [ "$variant" = intermittent ] && [ $((i % burst)) -eq 0 ]; then usleep $((off_ms * 1000)); fi
done
echo "done $variant $i" >/www/attack
echo "tmr-attack: $variant done, $i documents, at $(cut -d' ' -f1 /proc/uptime) s" >/dev/console
ENCRYPT
cat >"$ROOT/www/cgi-bin/attack" <<'ATTACK'
#!/bin/sh
printf 'Content-Type: text/plain\r\n\r\n'
variant="${QUERY_STRING#variant=}"
case "$variant" in whole|partial|intermittent|low-entropy) ;; *) echo "unknown variant"; exit 0 ;; esac
if [ -e /www/attack ]; then cat /www/attack; exit 0; fi
setsid /bin/tmr-encrypt "$variant" </dev/null >/dev/null 2>&1 &
echo "started $variant"
ATTACK
# Every document's first sector, read from the disk: readable and TMRFILE (clean), or not.
cat >"$ROOT/www/cgi-bin/verify" <<'VERIFY'
#!/bin/sh
printf 'Content-Type: text/plain\r\n\r\n'
. /etc/tmr-layout
clean=0 encrypted=0 unreadable=0 i=0
while [ $i -lt $FILE_COUNT ]; do
  head=$(dd if=/dev/vda bs=512 skip=$((FILES_SECTOR + i * FILE_SECTORS)) count=1 iflag=direct 2>/dev/null | head -c 8)
  case "$head" in TMRFILE*) clean=$((clean + 1)) ;; TMRCRYPT) encrypted=$((encrypted + 1)) ;; *) unreadable=$((unreadable + 1)) ;; esac
  i=$((i + 1))
done
echo "files $FILE_COUNT clean $clean encrypted $encrypted unreadable $unreadable"
VERIFY
chmod 755 "$ROOT/bin/tmr-encrypt" "$ROOT/www/cgi-bin/attack" "$ROOT/www/cgi-bin/verify"
printf 'ok\n' >"$ROOT/www/health"
printf '0\n' >"$ROOT/www/seq"
cat >"$ROOT/init" <<'INIT'
#!/bin/sh
# Tomaranai's test guest. PID 1: never exits.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
# The first sign of life, which the host's accelerator probe waits for.
echo "tmr-guest: init at $(cut -d' ' -f1 /proc/uptime) s" >/dev/console
for module in MODULE_LIST; do insmod /lib/modules/$module.ko 2>/dev/null; done

vm=guest ip= gw= interval_ms=100 edit_every=30
. /etc/tmr-layout
for word in $(cat /proc/cmdline); do
  case "$word" in
    tmr.vm=*) vm="${word#tmr.vm=}" ;;
    tmr.ip=*) ip="${word#tmr.ip=}" ;;
    tmr.gw=*) gw="${word#tmr.gw=}" ;;
    tmr.interval_ms=*) interval_ms="${word#tmr.interval_ms=}" ;;
    tmr.edit_every=*) edit_every="${word#tmr.edit_every=}" ;;
  esac
done
hostname "$vm"
echo "$vm" >/www/vm
ip link set lo up
# The virtio NIC may appear a moment after its module loads.
for _ in $(seq 1 50); do [ -e /sys/class/net/eth0 ] && break; usleep 20000; done
if [ -n "$ip" ] && [ -e /sys/class/net/eth0 ]; then
  ip addr add "$ip" dev eth0
  ip link set eth0 up
  [ -n "$gw" ] && ip route add default via "$gw"
fi
httpd -p 80 -h /www
echo "tmr-guest: $vm up at $(cut -d' ' -f1 /proc/uptime) s, ip ${ip:-none}" >/dev/console

# The durable write workload on the raw disk (see scripts/vm-image.sh).
# The application's own edits: the first 4 KiB of one document, rewritten (low entropy, like the text it was).
edit_document() {
  doc=$(( ($1 / edit_every) % FILE_COUNT ))
  # The application cannot open a document that is no longer its own format (encrypted): it leaves it.
  [ "$(dd if=$disk bs=512 skip=$((FILES_SECTOR + doc * FILE_SECTORS)) count=1 iflag=direct 2>/dev/null | head -c 7)" = TMRFILE ] || return 0
  { printf 'TMRFILE doc-%02d v=%d\n' $doc "$1"; yes "ward note $doc: edited after record $1, plan unchanged"; } | head -c 4096 >/run/edit
  dd if=/run/edit of=$disk bs=512 seek=$((FILES_SECTOR + doc * FILE_SECTORS)) count=8 conv=notrunc,fsync oflag=direct 2>/dev/null
}
workload() {
  disk=/dev/vda
  sectors=$(( $(blockdev --getsize64 $disk) / 512 ))
  # Records stop where the documents begin (on the base disk: no guest writes them at boot).
  [ "$sectors" -gt "$FILES_SECTOR" ] && sectors=$FILES_SECTOR
  record_at() { dd if=$disk bs=512 skip="$1" count=1 iflag=direct 2>/dev/null | head -c 4; }
  # Records are contiguous from sector 1: binary search for the newest.
  low=0 high=$sectors
  while [ $((high - low)) -gt 1 ]; do
    middle=$(( (low + high) / 2 ))
    if [ "$(record_at $middle)" = "seq=" ]; then low=$middle; else high=$middle; fi
  done
  seq=$low
  boot=$(cut -c1-8 /proc/sys/kernel/random/boot_id)
  # /seq answers "SEQ BOOT": the newest durable record and which boot of the guest wrote it, so the
  # drill can tell a copy that kept running from one that restarted and resumed from the disk.
  echo "$seq $boot" >/www/seq
  echo "tmr-guest: workload resumes after seq $seq (boot $boot)" >/dev/console
  pause_us=$((interval_ms * 1000))
  # Three processes per record (dd, mv, usleep), no more: under TCG every fork and exec costs a
  # guest several milliseconds of the host's CPU, and seven guests share two cores. The record is
  # formatted by builtins into tmpfs, then written with O_DIRECT and fsync.
  while [ $((seq + 1)) -lt "$sectors" ]; do
    next=$((seq + 1))
    read -r up _ </proc/uptime
    printf 'seq=%d vm=%s boot=%s uptime=%s\n' "$next" "$vm" "$boot" "$up" >/run/record
    if dd if=/run/record of=$disk bs=512 seek=$next count=1 conv=sync,notrunc,fsync oflag=direct 2>/dev/null; then
      seq=$next
      echo "$seq $boot" >/www/seq.new && mv /www/seq.new /www/seq
    fi
    [ "$edit_every" -gt 0 ] && [ $((seq % edit_every)) -eq 0 ] && edit_document "$seq"
    usleep "$pause_us"
  done
  echo "tmr-guest: disk full at seq $seq" >/dev/console
}
# A hot standby boots without its disk; the workload starts when the disk is hot-plugged on
# promotion (QMP blockdev-add + device_add once the old primary is fenced). The device node can
# appear a moment before the disk answers (opening it fails with ENXIO): wait until its size reads.
disk_ready() { size=$(blockdev --getsize64 /dev/vda 2>/dev/null) && [ "${size:-0}" -gt 0 ]; }
(until disk_ready; do usleep 100000; done; workload) &
while :; do sleep 3600; done
INIT
sed -i "s/MODULE_LIST/${MODULES[*]}/" "$ROOT/init"
chmod 755 "$ROOT/init"
# Uncompressed: it is small (~3 MB), and unpacking it costs less under TCG than decompressing it.
(cd "$ROOT" && find . | LC_ALL=C sort | "$BUSYBOX" cpio -o -H newc 2>/dev/null) >"$OUT/initramfs.cpio.new"
mv "$OUT/initramfs.cpio.new" "$OUT/initramfs.cpio"
log "initramfs: $(du -h "$OUT/initramfs.cpio" | cut -f1)"

# ── 5. Base disk and manifest ───────────────────────────────────────────────────────────────────
# The documents are on the base disk, so a guest's first boot writes nothing but its records (a
# burst of writes at boot would be what the ransomware detector's baselines learn first). Every
# build writes the base disk afresh; no lab may be up while the image is rebuilt.
. "$ROOT/etc/tmr-layout"
RAW="$WORK/disk-base.raw"
truncate -s "$DISK_SIZE" "$RAW"
for i in $(seq 0 $((FILE_COUNT - 1))); do
  { printf 'TMRFILE doc-%02d v=0\n' "$i"; yes "ward note $i: vitals stable, medication given as ordered, next review at the morning round" || true; } | head -c 65536 \
    | dd of="$RAW" bs=512 seek=$((FILES_SECTOR + i * FILE_SECTORS)) conv=notrunc status=none
done
qemu-img convert -q -f raw -O qcow2 "$RAW" "$OUT/disk-base.qcow2.new"
mv "$OUT/disk-base.qcow2.new" "$OUT/disk-base.qcow2"
ABS="$(cd "$OUT" && pwd)"
cat >"$OUT/image.json" <<JSON
{
  "kernelPackage": "$KPKG",
  "kernelVersion": "$KVER",
  "vmlinux": "$ABS/vmlinux",
  "vmlinuz": "$ABS/vmlinuz",
  "initramfs": "$ABS/initramfs.cpio",
  "baseDisk": "$ABS/disk-base.qcow2",
  "diskSize": "$DISK_SIZE",
  "scriptSum": "$SCRIPT_SUM"
}
JSON
echo "$STAMP" >"$OUT/stamp"
log "done: $ABS"
