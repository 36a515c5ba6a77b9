#!/usr/bin/env bash
# build.sh OUTDIR -- build the tiny real Linux test guest from Debian packages only.
#
# What the guest is: Debian's cloud kernel, a busybox initramfs as the (in-RAM) root, dropbear SSH
# (key-only root, with sftp-server so Ansible can copy files), busybox httpd serving /health, the
# QEMU guest agent with an fsfreeze hook that logs to /run/fsfreeze.log, and an ext4 data disk
# (/data). Every .deb is fetched with `apt-get download` and unpacked with `dpkg-deb -x`: nothing
# is installed into the host's package set except the few host tools below (when missing).
#
# Output (cached: a second run with the same sources and variant returns at once):
#   OUTDIR/v-<version>/  vmlinuz, initrd.cpio.gz (WITH_PYTHON=1: initrd-python.cpio.gz), data.qcow2
#                        (template disk: each guest gets its own copy). <version> is a hash of this
#                        script and rootfs/, so checkouts of different versions sharing one cache
#                        never rebuild over each other. Its path is printed on stdout.
#   OUTDIR/              id_ed25519[.pub] (client key), hostkey.dropbear + hostkey.pub (guest host
#                        key), debs/ (downloaded packages), sysroot-*/ (unpacked packages)
# Environment: WITH_PYTHON=1 adds python3 (for Ansible modules other than raw),
#              DISK_SIZE (default 64M), FORCE=1 rebuilds the initramfs.
# Works on Debian 12 and 13 (package names are resolved through apt, not hard-coded library names).
set -euo pipefail

OUT=${1:?usage: build.sh OUTDIR}
WITH_PYTHON=${WITH_PYTHON:-0}
DISK_SIZE=${DISK_SIZE:-64M}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
log() { echo "[linux-guest build] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

VARIANT=base; INITRD=initrd.cpio.gz
if [ "$WITH_PYTHON" = 1 ]; then VARIANT=python; INITRD=initrd-python.cpio.gz; fi
VERSION=$( (cd "$HERE" && cat build.sh && find rootfs -printf '%p %m %l\n' | LC_ALL=C sort &&
            find rootfs -type f -print0 | LC_ALL=C sort -z | xargs -0 cat) | md5sum | cut -c1-12)
ART=$OUT/v-$VERSION
STAMP_WANT=$VARIANT-$DISK_SIZE
STAMP_FILE=$ART/.stamp-$VARIANT
built() {  # the stamp is written last, after every artifact is in place
  [ "$(cat "$STAMP_FILE" 2>/dev/null)" = "$STAMP_WANT" ] && [ -s "$ART/vmlinuz" ] && [ -s "$ART/$INITRD" ] &&
    [ -s "$ART/data.qcow2" ] && [ -s "$OUT/id_ed25519" ] && [ -s "$OUT/hostkey.pub" ]
}
if [ "${FORCE:-0}" != 1 ] && built; then touch "$ART"; echo "$ART"; exit 0; fi

# One build at a time per OUTDIR (tests, the demo and other checkouts share the cache).
exec 9>"$OUT/.build.lock"
flock 9
if [ "${FORCE:-0}" != 1 ] && built; then echo "$ART"; exit 0; fi   # built while we waited
mkdir -p "$ART"
t0=$(date +%s%N)

# ---------------------------------------------------------------- 0. host tools
declare -A TOOL_PKG=([apt-get]=apt [dpkg-deb]=dpkg [gzip]=gzip [qemu-img]=qemu-utils [mkfs.ext4]=e2fsprogs
                     [ssh-keygen]=openssh-client [ssh]=openssh-client [flock]=util-linux [md5sum]=coreutils
                     [xz]=xz-utils)
missing=()
for tool in "${!TOOL_PKG[@]}"; do command -v "$tool" >/dev/null || missing+=("${TOOL_PKG[$tool]}"); done
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || die "missing host tools (packages: ${missing[*]}); run as root or install them"
  log "installing host tools: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  ( flock 8
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 ||
      { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
  ) 8>/tmp/savepoint-apt.lock || die "apt-get install ${missing[*]} failed"
fi

# ---------------------------------------------------------------- 1. resolve package names
# No pipe ever ends in a reader that stops early (grep -q, head, awk exit): under pipefail the
# writer's SIGPIPE (rc 141) would fail the build, depending on timing.
has_candidate() {
  local out; out=$(apt-cache policy "$1" 2>/dev/null) || return 1
  [[ $out == *"Candidate: "[!\(]* ]]
}
if ! has_candidate linux-image-cloud-amd64; then
  log "apt knows no packages yet: running apt-get update once"
  ( flock 8; apt-get update -qq ) 8>/tmp/savepoint-apt.lock || die "apt-get update failed"
  LG_APT_UPDATED=1
  has_candidate linux-image-cloud-amd64 || die "apt has no linux-image-cloud-amd64 (is this Debian 12/13 amd64?)"
fi
first_dep() {  # first_dep PKG REGEX: the first Depends of PKG whose name matches REGEX
  local out; out=$(apt-cache depends "$1" 2>/dev/null) || return 0
  awk -v re="$2" '$1 ~ /Depends:/ && $2 ~ re {print $2; exit}' <<<"$out"
}
KPKG=$(first_dep linux-image-cloud-amd64 '^linux-image-[0-9]')
[ -n "$KPKG" ] || die "cannot resolve the kernel package behind linux-image-cloud-amd64"
KVER=${KPKG#linux-image-}
KVER=${KVER%-unsigned}
TOP=("$KPKG" busybox-static dropbear-bin qemu-guest-agent openssh-sftp-server libgmp10)
if [ "$WITH_PYTHON" = 1 ]; then
  PYPKG=$(first_dep python3-minimal '^python3[.][0-9]+-minimal$')
  [ -n "$PYPKG" ] || die "cannot resolve python3-minimal's interpreter package"
  PYV=${PYPKG#python}; PYV=${PYV%-minimal}
  TOP+=("$PYPKG" "libpython$PYV-minimal" "libpython$PYV-stdlib")
fi
# Library closure: follow Depends only into library packages (lib*, zlib1g), so neither perl nor
# debconf come along, and the t64 renames of Debian 13 resolve by themselves. apt-cache shows
# virtual names as <name> (their real provider is listed as an alternative): those are skipped.
declare -A WANT=()
queue=("${TOP[@]}")
for p in "${TOP[@]}"; do WANT[$p]=1; done
while [ ${#queue[@]} -gt 0 ]; do
  next=()
  while read -r dep; do
    if [ -z "$dep" ] || [ -n "${WANT[$dep]:-}" ]; then continue; fi
    WANT[$dep]=1; next+=("$dep")
  done < <(apt-cache depends --no-recommends --no-suggests --no-conflicts --no-breaks --no-replaces \
             --no-enhances "${queue[@]}" 2>/dev/null |
           awk '$1 ~ /Depends:/ && $2 !~ /^</ && $2 ~ /^(lib|zlib1g)/ && $2 !~ /-(dev|doc|common|data)$/ {print $2}' |
           sort -u)
  queue=("${next[@]}")
done
PKGS=$(printf '%s\n' "${!WANT[@]}" | sort)

# ---------------------------------------------------------------- 2. download and unpack
DEBS=$OUT/debs
mkdir -p "$DEBS"
need=()
for p in $PKGS; do compgen -G "$DEBS/${p}_*.deb" >/dev/null || need+=("$p"); done
if [ ${#need[@]} -gt 0 ]; then
  log "apt-get download ${#need[@]} packages"
  # as root apt warns that its _apt sandbox user cannot write here; harmless
  (cd "$DEBS" && apt-get download "${need[@]}" 2>&1 | grep -v -e unsandboxed -e '^Get:' >&2) || true
  for p in "${need[@]}"; do
    compgen -G "$DEBS/${p}_*.deb" >/dev/null && continue
    if [ -z "${LG_APT_UPDATED:-}" ]; then
      # stale package lists (the mirror moved on to newer versions): refresh once and start over
      log "apt-get download $p failed: running apt-get update once and resolving again"
      ( flock 8; apt-get update -qq ) 8>/tmp/savepoint-apt.lock || die "apt-get update failed"
      exec 9>&-
      LG_APT_UPDATED=1 exec bash "${BASH_SOURCE[0]}" "$OUT"
    fi
    die "apt-get download $p failed"
  done
fi
SYS=$OUT/sysroot-$VARIANT
SYS_STAMP=$({ echo "$PKGS"; ls "$DEBS"; } | md5sum | cut -c1-16)
if [ ! -e "$SYS/.unpacked-$SYS_STAMP" ]; then
  rm -rf "$SYS"; mkdir -p "$SYS"
  for p in $PKGS; do
    debs=("$DEBS/${p}_"*.deb)   # the newest version when the cache holds several
    dpkg-deb -x "${debs[-1]}" "$SYS"
  done
  touch "$SYS/.unpacked-$SYS_STAMP"
fi
sysfile() {  # sysfile PATH: PATH inside the sysroot, with or without the /usr prefix (merged /usr on 13)
  local p
  for p in "$SYS$1" "$SYS/usr$1" "$SYS${1#/usr}"; do [ -e "$p" ] && { echo "$p"; return 0; }; done
  die "not in the unpacked packages: $1"
}
LDSO=$(sysfile /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2)
LIBPATH=$SYS/lib/x86_64-linux-gnu:$SYS/usr/lib/x86_64-linux-gnu
inroot() { "$LDSO" --library-path "$LIBPATH" "$@"; }   # run a sysroot binary with the sysroot's libs
BUSYBOX=$(sysfile /bin/busybox)
cp -f "$(sysfile "/boot/vmlinuz-$KVER")" "$ART/vmlinuz.tmp" && mv "$ART/vmlinuz.tmp" "$ART/vmlinuz"
KCONF=$(sysfile "/boot/config-$KVER")
MODDIR=$(sysfile "/lib/modules/$KVER")
grep -q '^CONFIG_EXT4_FS=y' "$KCONF" || die "this kernel has ext4 as a module; add it to the module list"

# ---------------------------------------------------------------- 3. the root filesystem
R=$OUT/rootfs-$VARIANT
rm -rf "$R"
mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,usr/lib/openssh,etc/dropbear,etc/qemu,root/.ssh,proc,sys,dev,run,tmp} \
         "$R"/{data,www,lib/modules,lib/x86_64-linux-gnu,lib64,var/log}
chmod 700 "$R/root" "$R/root/.ssh"; chmod 1777 "$R/tmp"
ln -s /run "$R/var/run"
install -m755 "$BUSYBOX" "$R/bin/busybox"
for a in $(inroot "$BUSYBOX" --list-full 2>/dev/null || "$BUSYBOX" --list-full); do
  [ -e "$R/$a" ] || ln -s /bin/busybox "$R/$a"
done
for f in /usr/sbin/dropbear /usr/bin/dropbearkey /usr/sbin/qemu-ga /usr/lib/openssh/sftp-server; do
  install -D -m755 "$(sysfile "$f")" "$R$f"
done
ln -s /usr/lib/openssh/sftp-server "$R/usr/lib/sftp-server"   # where Debian's dropbear looks for it

copy_libs() {  # copy_libs BINARY...: every shared library they need, resolved in the sysroot only
  local b line lib
  for b in "$@"; do
    while read -r line; do
      case $line in
        *"=> not found"*) echo "MISSING ${line%% *}"; return 1 ;;
        *"=> /"*) lib=${line#*=> }; lib=${lib%% (*}
          case $lib in "$SYS"/*) ;; *) echo "OUTSIDE $lib"; return 1 ;; esac
          cp -L -n "$lib" "$R/lib/x86_64-linux-gnu/" ;;
      esac
    done < <(inroot --list "$b" 2>&1)
  done
}
for b in /usr/sbin/dropbear /usr/bin/dropbearkey /usr/sbin/qemu-ga /usr/lib/openssh/sftp-server; do
  err=$(copy_libs "$R$b") || die "$b: shared library $err (a package missing from the closure?)"
done
cp -L "$LDSO" "$R/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
ln -sf /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$R/lib64/ld-linux-x86-64.so.2"

if [ "$WITH_PYTHON" = 1 ]; then
  PYLIB=$(sysfile "/usr/lib/python$PYV")
  install -m755 "$(sysfile "/usr/bin/python$PYV")" "$R/usr/bin/python$PYV"
  ln -s "python$PYV" "$R/usr/bin/python3"
  mkdir -p "$R/usr/lib"; cp -a "$PYLIB" "$R/usr/lib/"
  P=$R/usr/lib/python$PYV
  # parts no Ansible module needs, and size matters: the whole initramfs lives in guest RAM
  rm -rf "$P"/{test,idlelib,tkinter,turtledemo,ensurepip,lib2to3,pydoc_data} "$P"/config-*
  find "$P" -name __pycache__ -prune -exec rm -rf {} +
  err=$(copy_libs "$R/usr/bin/python$PYV") || die "python$PYV: shared library $err"
  # an extension module whose library is not in the closure (dbm, curses, ...) is dropped, not fatal
  for so in "$P"/lib-dynload/*.so; do
    copy_libs "$so" >/dev/null || { log "python: dropping $(basename "$so") (library not shipped)"; rm -f "$so"; }
  done
  # precompile with the guest's own interpreter: Python under TCG is slow enough already
  PYTHONHOME=$R/usr inroot "$(sysfile "/usr/bin/python$PYV")" -m compileall -q -j0 -s "$R" -p / "$P" >/dev/null ||
    log "python: compileall reported errors (only affects start-up speed)"
fi

# kernel modules: the cloud kernel has the virtio drivers as modules; modules.dep is not shipped,
# so the order comes from each module's depends= field. Compressed modules (Debian 13) are
# unpacked here because busybox insmod hands the raw bytes to the kernel.
declare -A SEEN=()
MODS=()
add_mod() {
  local m=$1 f dep deps
  [ -n "${SEEN[$m]:-}" ] && return 0
  SEEN[$m]=1
  # -print -quit, not "| head -1": with pipefail, find's SIGPIPE would abort the build at random
  f=$(find "$MODDIR" \( -name "$m.ko*" -o -name "${m//_/-}.ko*" -o -name "${m//-/_}.ko*" \) -print -quit)
  if [ -z "$f" ]; then
    grep -q "/${m//-/[-_]}\.ko" "$MODDIR/modules.builtin" 2>/dev/null && return 0
    die "kernel module $m not found in $MODDIR"
  fi
  local base; base=$(basename "$f"); base=${base%%.ko*}
  case $f in
    *.ko) cp "$f" "$R/lib/modules/$base.ko" ;;
    *.ko.xz) xz -dc "$f" > "$R/lib/modules/$base.ko" ;;
    *.ko.gz) gzip -dc "$f" > "$R/lib/modules/$base.ko" ;;
    *.ko.zst) command -v zstd >/dev/null || die "kernel modules are zstd-compressed: install zstd"
              zstd -qdc "$f" > "$R/lib/modules/$base.ko" ;;
    *) die "unknown module format: $f" ;;
  esac
  deps=$(tr '\0' '\n' < "$R/lib/modules/$base.ko" | sed -n 's/^depends=//p')
  deps=${deps%%$'\n'*}
  for dep in ${deps//,/ }; do add_mod "$dep"; done
  MODS+=("$base")
}
for m in virtio_pci virtio_net virtio_blk virtio_console virtio_rng; do add_mod "$m"; done
printf '%s\n' "${MODS[@]}" > "$R/lib/modules/load-order"

# keys: one client key pair and one guest host key for every guest built here (test-only keys)
[ -s "$OUT/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C savepoint-linux-guest -f "$OUT/id_ed25519"
if [ ! -s "$OUT/hostkey.dropbear" ]; then
  inroot "$(sysfile /usr/bin/dropbearkey)" -t ed25519 -f "$OUT/hostkey.dropbear.tmp" >/dev/null
  mv "$OUT/hostkey.dropbear.tmp" "$OUT/hostkey.dropbear"
fi
inroot "$(sysfile /usr/bin/dropbearkey)" -y -f "$OUT/hostkey.dropbear" | awk '/^ssh-/{print $1, $2}' > "$OUT/hostkey.pub"
[ -s "$OUT/hostkey.pub" ] || die "could not read the guest host key"
install -m600 "$OUT/hostkey.dropbear" "$R/etc/dropbear/dropbear_ed25519_host_key"
install -m600 "$OUT/id_ed25519.pub" "$R/root/.ssh/authorized_keys"

# ---------------------------------------------------------------- 4. configuration and init
cp -a "$HERE/rootfs/." "$R/"
chmod 600 "$R/etc/shadow"
ln -sf /sbin/init "$R/init"   # busybox init as PID 1 reads /etc/inittab
if [ "$WITH_PYTHON" = 1 ]; then echo 'python=1' > "$R/etc/linux-guest-variant"; else echo 'python=0' > "$R/etc/linux-guest-variant"; fi

# ---------------------------------------------------------------- 5. pack (busybox cpio: no host cpio needed)
(cd "$R" && find . -mindepth 1 | LC_ALL=C sort | "$BUSYBOX" cpio -o -H newc -R 0:0 2>/dev/null) |
  gzip -6 > "$ART/$INITRD.tmp"
mv "$ART/$INITRD.tmp" "$ART/$INITRD"
rm -rf "$R"

# ---------------------------------------------------------------- 6. the template data disk
if [ ! -s "$ART/data.qcow2" ] || [ "$(cat "$ART/.disk-size" 2>/dev/null)" != "$DISK_SIZE" ]; then
  rm -f "$ART/data.raw"
  truncate -s "$DISK_SIZE" "$ART/data.raw"
  mkfs.ext4 -q -F -L guestdata -E root_owner=0:0 "$ART/data.raw"
  qemu-img convert -q -f raw -O qcow2 "$ART/data.raw" "$ART/data.qcow2.tmp"
  mv "$ART/data.qcow2.tmp" "$ART/data.qcow2"; rm -f "$ART/data.raw"
  echo "$DISK_SIZE" > "$ART/.disk-size"
fi

echo "$STAMP_WANT" > "$STAMP_FILE"
# versions built by other checkouts and unused for a week go (one that is wanted again is rebuilt)
find "$OUT" -mindepth 1 -maxdepth 1 -name 'v-*' ! -name "v-$VERSION" -mtime +7 -exec rm -rf {} +
echo "$ART"
t1=$(date +%s%N)
log "built $VARIANT guest: kernel $KVER, modules ${MODS[*]}, initrd $(du -h "$ART/$INITRD" | cut -f1), $(( (t1 - t0) / 1000000 )) ms"
