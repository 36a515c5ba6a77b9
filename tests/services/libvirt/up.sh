#!/usr/bin/env bash
# Install, configure and start a local libvirt daemon with the QEMU driver under
# software emulation (TCG), for the real-service tests and `make demo`.
# Works without systemd (these machines have none); idempotent.
#
#   up.sh [start]   install what is missing, configure, start, wait until qemu:///system answers
#   up.sh install   only install the packages (also what building libvirt-python needs)
#   up.sh stop      stop the daemon this script started (by PID)
#   up.sh status    exit 0 when qemu:///system answers
#
# Environment: LIBVIRT_UP_TIMEOUT (seconds, default 30), LIBVIRT_UP_PYTHON (a
# Python into whose environment libvirt-python is installed when missing).
set -euo pipefail

URI=qemu:///system
TIMEOUT=${LIBVIRT_UP_TIMEOUT:-30}
LOG=/var/log/libvirt/daemon.log
PACKAGES=(libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86 qemu-utils tini
          libvirt-dev pkg-config gcc python3-dev)

say() { echo "libvirt-up: $*" >&2; }
die() { say "ERROR: $*"; exit 1; }

# Debian 12 runs the monolithic libvirtd; where it is gone (newer Debian), the
# modular QEMU daemon serves qemu:///system by itself.
daemon_binary() {
    if [ -x /usr/sbin/libvirtd ]; then echo /usr/sbin/libvirtd; else echo /usr/sbin/virtqemud; fi
}
DAEMON=$(daemon_binary)
NAME=$(basename "$DAEMON")
PIDFILE=/run/$NAME.pid

answers() { timeout 5 virsh -q -c "$URI" uri >/dev/null 2>&1; }

running_pid() {
    local pid
    [ -r "$PIDFILE" ] || return 1
    pid=$(cat "$PIDFILE" 2>/dev/null) || return 1
    [ -n "$pid" ] && [ -d "/proc/$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$NAME" ] || return 1
    echo "$pid"
}

stop() {
    local pid
    pid=$(running_pid) || { say "$NAME is not running"; return 0; }
    say "stopping $NAME (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do
        [ -d "/proc/$pid" ] || return 0
        sleep 0.1
    done
    say "$NAME did not stop within 10 s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
}

case "${1:-start}" in
    stop) stop; exit 0 ;;
    status) answers; exit $? ;;
    start|install) ;;
    *) die "usage: $0 [start|install|stop|status]" ;;
esac

[ "$(id -u)" = 0 ] || die "run as root (installs packages, starts a system daemon)"

missing=()
for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || die "apt-get update failed"
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || die "apt-get install failed"
    DAEMON=$(daemon_binary); NAME=$(basename "$DAEMON"); PIDFILE=/run/$NAME.pid
fi
[ "${1:-start}" = install ] && exit 0

# The QEMU driver resolves its built-in account at start-up even when qemu.conf overrides it.
getent group libvirt-qemu >/dev/null || groupadd --system libvirt-qemu
getent passwd libvirt-qemu >/dev/null ||
    useradd --system -g libvirt-qemu -d /var/lib/libvirt -s /usr/sbin/nologin libvirt-qemu

mkdir -p /etc/libvirt /var/log/libvirt/qemu /var/lib/libvirt/images
# QEMU as root without sVirt (no AppArmor/SELinux set-up here); guest stdio to a
# plain file so that virtlogd is not needed (qemu-io output lands there too).
conf='# written by savepoint.virt tests/services/libvirt/up.sh
user = "root"
group = "root"
security_driver = "none"
stdio_handler = "file"'
if [ ! -f /etc/libvirt/qemu.conf ] || [ "$(cat /etc/libvirt/qemu.conf)" != "$conf" ]; then
    [ -f /etc/libvirt/qemu.conf ] && cp -p /etc/libvirt/qemu.conf /etc/libvirt/qemu.conf.before-savepoint
    printf '%s\n' "$conf" > /etc/libvirt/qemu.conf
    if running_pid >/dev/null; then say "qemu.conf changed; restarting $NAME"; stop; fi
fi

if [ -n "${LIBVIRT_UP_PYTHON:-}" ] && ! "$LIBVIRT_UP_PYTHON" -c 'import libvirt' 2>/dev/null; then
    say "installing libvirt-python for $LIBVIRT_UP_PYTHON"
    "$LIBVIRT_UP_PYTHON" -m pip install -q libvirt-python || die "pip install libvirt-python failed"
fi

if answers; then say "$NAME already answers on $URI"; exit 0; fi
if ! running_pid >/dev/null; then
    # tini -s makes the daemon's session a child subreaper: QEMU double-forks and
    # would otherwise be reaped late by PID 1, making every guest stop take seconds.
    say "starting $NAME (log $LOG)"
    setsid tini -s -- "$DAEMON" --pid-file "$PIDFILE" </dev/null >>"$LOG" 2>&1 &
fi

started=$SECONDS
until answers; do
    if [ $((SECONDS - started)) -ge 3 ] && ! running_pid >/dev/null; then
        say "$NAME exited; last log lines:"; tail -n 20 "$LOG" >&2 || true; exit 1
    fi
    if [ $((SECONDS - started)) -ge "$TIMEOUT" ]; then
        say "$NAME does not answer after ${TIMEOUT}s; last log lines:"; tail -n 20 "$LOG" >&2 || true; exit 1
    fi
    sleep 0.2
done
say "ready: $(virsh -q -c "$URI" version --daemon 2>/dev/null | tr '\n' ' ')"
