#!/usr/bin/env bash
# Build vcsim (govmomi's vSphere API simulator) for the VMware tests.
#
# Source: Debian's golang-github-vmware-govmomi SOURCE package (the binary
# -dev package excludes vcsim/), compiled with Debian's Go in GOPATH mode
# against Debian's golang-*-dev packages; nothing comes from the Go module
# proxy. The patches in patches/ next to this script are applied first (see
# tests/services/vcsim/README.md).
#
# Usage: build.sh [CACHE_DIR]
#   CACHE_DIR  default: <repo root>/.cache/vcsim; the binary is CACHE_DIR/vcsim
#
# Prints the absolute path of the binary as the last (only) line on stdout;
# progress goes to stderr. Exits non-zero with a message on any failure.
#
# Fast path: when CACHE_DIR/stamp says the binary was built from the same
# patches, recipe and source version (and the binary is unchanged), nothing is
# rebuilt and apt is not touched beyond a local, read-only query.
#
# Missing apt packages and deb-src entries are installed/added (needs root).
# Environment:
#   VCSIM_SKIP_APT=1  never call apt-get update/install (everything present)
#   VCSIM_REBUILD=1   rebuild even if the stamp matches
#   VCSIM_CLEAN=1     also drop the Go build cache before building
set -euo pipefail

# Bump when the build procedure changes in a way that changes the binary.
RECIPE_VERSION=1
SRC_PKG=golang-github-vmware-govmomi
BASE_PKGS=(golang-go dpkg-dev patch xz-utils ca-certificates curl)

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../../.." && pwd)
PATCH_DIR=$SCRIPT_DIR/patches
CACHE_DIR=${1:-$REPO_ROOT/.cache/vcsim}
APT_OPTS=(-y -q -o DPkg::Lock::Timeout=600)

log() { printf '[vcsim-build] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

mkdir -p "$CACHE_DIR" || die "cannot create $CACHE_DIR"
CACHE_DIR=$(cd "$CACHE_DIR" && pwd)
BIN=$CACHE_DIR/vcsim
STAMP=$CACHE_DIR/stamp

# One build at a time per cache dir (parallel pytest workers, make -j).
if command -v flock >/dev/null; then
    exec 9>"$CACHE_DIR/.lock"
    flock -w 1800 9 || die "timed out waiting for the build lock $CACHE_DIR/.lock"
fi

shopt -s nullglob
patches=("$PATCH_DIR"/*.patch)
[ ${#patches[@]} -gt 0 ] || die "no patches in $PATCH_DIR"

# Hash of everything that defines the binary apart from the source version.
patches_key() {
    {
        echo "recipe $RECIPE_VERSION"
        for p in "${patches[@]}"; do
            echo "patch $(basename "$p")"
            cat "$p"
        done
    } | sha256sum | cut -d' ' -f1
}

# Version `apt-get source` would fetch, from the local source index (no
# network); empty if no source index is available.
source_version() {
    local dsc
    dsc=$(apt-get -qq source --print-uris "$SRC_PKG" 2>/dev/null \
          | awk -v p="$SRC_PKG" '$2 ~ "^" p "_.*\\.dsc$" { print $2; exit }') || true
    dsc=${dsc#"${SRC_PKG}_"}
    printf '%s' "${dsc%.dsc}"
}

stamp_get() { sed -n "s/^$1=//p" "$STAMP" 2>/dev/null | head -n1; }

PKEY=$(patches_key)

# 0. fast path -----------------------------------------------------------------
if [ "${VCSIM_REBUILD:-0}" != 1 ] && [ -x "$BIN" ] && [ -f "$STAMP" ]; then
    if [ "$(stamp_get patches)" = "$PKEY" ]; then
        want_src=$(source_version)
        have_src=$(stamp_get source)
        if [ -z "$want_src" ] || [ "$want_src" = "$have_src" ]; then
            if [ "$(sha256sum "$BIN" | cut -d' ' -f1)" = "$(stamp_get binary)" ]; then
                log "up to date ($SRC_PKG $have_src, patches ${PKEY:0:12})"
                echo "$BIN"
                exit 0
            fi
            log "binary changed since the stamp was written: rebuilding"
        else
            log "source version changed ($have_src -> $want_src): rebuilding"
        fi
    else
        log "patches or recipe changed: rebuilding"
    fi
fi

# 1. apt: deb-src entries and packages (only what is missing) ------------------
export DEBIAN_FRONTEND=noninteractive
updated=0

apt_update() {
    [ "$updated" = 1 ] && return 0
    log "apt-get update"
    local i
    for i in 1 2 3 4 5; do
        # the lists lock is not covered by DPkg::Lock::Timeout: retry
        if apt-get "${APT_OPTS[@]}" update >"$CACHE_DIR/apt-update.log" 2>&1; then
            updated=1
            return 0
        fi
        log "apt-get update failed (attempt $i), retrying"
        sleep $((i * 5))
    done
    tail -n 20 "$CACHE_DIR/apt-update.log" >&2
    die "apt-get update failed"
}

have_src_index() {
    local out
    out=$(apt-cache showsrc --only-source "$SRC_PKG" 2>/dev/null) || return 1
    [[ $out == *"Package: $SRC_PKG"* ]]
}

deb_src_configured() {
    grep -Eqs '^[[:space:]]*deb-src[[:space:]]|^Types:.*[[:space:]]deb-src([[:space:]]|$)' \
        /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources
}

# Copy every deb entry as deb-src (same URIs, suites, components, keys).
write_deb_src() {
    local deb822=/etc/apt/sources.list.d/debian.sources
    if [ -f "$deb822" ]; then
        awk '
            function flush() {
                if (buf != "" && isdeb) { printf "%s%s", sep, buf; sep = "\n" }
                buf = ""; isdeb = 0
            }
            /^[[:space:]]*$/ { flush(); next }
            /^[[:space:]]*#/ { next }
            /^Types:/ {
                n = split($0, t, /[[:space:]]+/)
                for (i = 2; i <= n; i++) if (t[i] == "deb") isdeb = 1
                buf = buf "Types: deb-src\n"; next
            }
            { buf = buf $0 "\n" }
            END { flush() }
        ' "$deb822" >/etc/apt/sources.list.d/debian-src.sources
        grep -q '^Types: deb-src' /etc/apt/sources.list.d/debian-src.sources \
            || { rm -f /etc/apt/sources.list.d/debian-src.sources; die "no deb stanza in $deb822"; }
        log "added /etc/apt/sources.list.d/debian-src.sources"
    elif grep -qs '^deb ' /etc/apt/sources.list; then
        sed -n 's/^deb /deb-src /p' /etc/apt/sources.list >/etc/apt/sources.list.d/debian-src.list
        log "added /etc/apt/sources.list.d/debian-src.list"
    else
        die "no apt source found to derive a deb-src entry from"
    fi
}

missing_pkgs() {
    local p
    for p in "$@"; do
        dpkg-query -W -f='${db:Status-Status}\n' "$p" 2>/dev/null | grep -qx installed || echo "$p"
    done
}

need_root() {
    [ "$(id -u)" -eq 0 ] || die "$1 (run as root, or install by hand and set VCSIM_SKIP_APT=1)"
}

if [ "${VCSIM_SKIP_APT:-0}" != 1 ]; then
    if ! have_src_index; then
        need_root "no source index for $SRC_PKG"
        deb_src_configured || write_deb_src
        apt_update
        have_src_index || die "$SRC_PKG not found in the source indexes after apt-get update"
    fi
    # The golang-* build dependencies of the source package (0.24.2:
    # google-uuid, kr-pretty); vcsim itself needs only google-uuid.
    mapfile -t go_deps < <(apt-cache showsrc --only-source "$SRC_PKG" \
        | sed -n 's/^Build-Depends: //p' | head -n1 | tr ',' '\n' \
        | sed -E 's/\(.*\)//; s/\[.*\]//; s/<.*>//; s/\|.*//; s/[[:space:]]//g' \
        | grep -E '^golang-' | grep -vx 'golang-any' | sort -u)
    mapfile -t missing < <(missing_pkgs "${BASE_PKGS[@]}" "${go_deps[@]}")
    if [ ${#missing[@]} -gt 0 ]; then
        need_root "missing packages: ${missing[*]}"
        apt_update
        log "apt-get install ${missing[*]}"
        apt-get "${APT_OPTS[@]}" install --no-install-recommends "${missing[@]}" \
            >"$CACHE_DIR/apt-install.log" 2>&1 \
            || { tail -n 20 "$CACHE_DIR/apt-install.log" >&2; die "apt-get install failed"; }
    fi
fi
command -v go >/dev/null || die "go not found (package golang-go)"
command -v dpkg-source >/dev/null || die "dpkg-source not found (package dpkg-dev)"
command -v patch >/dev/null || die "patch not found"

# 2. source package: download once into CACHE_DIR/src, extract fresh ---------
SRC_VERSION=$(source_version)
[ -n "$SRC_VERSION" ] || die "cannot determine the version of source package $SRC_PKG"
DSC=${SRC_PKG}_$SRC_VERSION.dsc
mkdir -p "$CACHE_DIR/src"
log "apt-get source $SRC_PKG=$SRC_VERSION"
(cd "$CACHE_DIR/src" && apt-get -q source --download-only "$SRC_PKG=$SRC_VERSION") \
    >"$CACHE_DIR/apt-source.log" 2>&1 \
    || { tail -n 20 "$CACHE_DIR/apt-source.log" >&2; die "apt-get source failed"; }
[ -f "$CACHE_DIR/src/$DSC" ] || die "$DSC not downloaded"

# The source must live at GOPATH/src/github.com/vmware/govmomi.
GOPATH_DIR=$CACHE_DIR/gopath
SRC_DIR=$GOPATH_DIR/src/github.com/vmware/govmomi
rm -rf "$SRC_DIR"
mkdir -p "$(dirname "$SRC_DIR")"
dpkg-source -x "$CACHE_DIR/src/$DSC" "$SRC_DIR" >"$CACHE_DIR/dpkg-source.log" 2>&1 \
    || { tail -n 20 "$CACHE_DIR/dpkg-source.log" >&2; die "dpkg-source -x $DSC failed"; }
[ -f "$SRC_DIR/vcsim/main.go" ] || die "vcsim/ not found in $SRC_PKG $SRC_VERSION"

# 3. project patches (skip one that a newer source already contains) --------
for p in "${patches[@]}"; do
    name=$(basename "$p")
    if patch -d "$SRC_DIR" -p1 --forward --dry-run -s <"$p" >/dev/null 2>&1; then
        patch -d "$SRC_DIR" -p1 --forward -s <"$p" || die "applying $name failed"
        log "applied $name"
    elif patch -d "$SRC_DIR" -p1 -R --dry-run -s <"$p" >/dev/null 2>&1; then
        log "already in the source: $name"
    else
        die "patch does not apply to $SRC_PKG $SRC_VERSION: $name"
    fi
done

# 4. GOPATH-mode build, offline ---------------------------------------------
[ "${VCSIM_CLEAN:-0}" = 1 ] && rm -rf "$CACHE_DIR/gocache"
export GO111MODULE=off GOPATH="$GOPATH_DIR:/usr/share/gocode" GOFLAGS='' \
       GOPROXY=off GOTOOLCHAIN=local GOCACHE="$CACHE_DIR/gocache" CGO_ENABLED=0
log "go build ($(go version))"
t0=$(date +%s)
rm -f "$BIN.new"
(cd "$SRC_DIR" && go build -o "$BIN.new" github.com/vmware/govmomi/vcsim) \
    || die "go build failed"
log "built in $(($(date +%s) - t0)) s"

# 5. smoke test with the new binary before it replaces the old one -----------
smoke=$(mktemp -d)
trap 'rm -rf "$smoke"' EXIT
if ! "$SCRIPT_DIR/ctl.sh" start --bin "$BIN.new" --state-dir "$smoke" --vm 1 --timeout 60 >/dev/null; then
    die "smoke test failed: the new vcsim did not start (binary left at $BIN.new)"
fi
"$SCRIPT_DIR/ctl.sh" stop --state-dir "$smoke" >/dev/null || die "smoke test: stopping vcsim failed"
log "smoke test ok"

mv -f "$BIN.new" "$BIN"
{
    echo "patches=$PKEY"
    echo "source=$SRC_VERSION"
    echo "binary=$(sha256sum "$BIN" | cut -d' ' -f1)"
    echo "go=$(go env GOVERSION)"
} >"$STAMP.new"
mv -f "$STAMP.new" "$STAMP"
echo "$BIN"
