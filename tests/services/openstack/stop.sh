#!/usr/bin/env bash
# Stop the stack started by start.sh (same OS_STACK_DIR): SIGTERM to each
# service's process group (pid files in $OS_STACK_DIR/run), SIGKILL to what
# is left after 15 s (60 s for MariaDB and RabbitMQ).  APIs and workers stop
# in parallel, then RabbitMQ, epmd and MariaDB.
#   stop.sh           stop, keep all state (next start.sh: ~30 s)
#   stop.sh --purge   stop and delete all state except the venv
#                     (next start.sh: fresh databases, ~1 min)
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
STATE="${OS_STACK_DIR:-$(cd "$HERE/../../.." && pwd)/.cache/openstack}"
RUN="$STATE/run"
T0=$SECONDS
case ${1:-} in
"" | --purge) ;;
*) echo "usage: $0 [--purge]" >&2; exit 2 ;;
esac
[[ -d $STATE ]] || { echo "stop: nothing to stop ($STATE does not exist)"; exit 0; }

exec 9>"$STATE/.lock"
flock -w 900 9 || { echo "stop: another start.sh/stop.sh holds $STATE/.lock" >&2; exit 1; }

proc_start() { # pid -> start time (field 22 of /proc/PID/stat)
    local stat f
    stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
    read -ra f <<<"${stat##*) }"
    echo "${f[19]}"
}
# A process group is alive while it has a member that is not a zombie (on
# machines whose pid 1 does not reap orphans, exited leaders stay zombies).
group_alive() { ps -e -o pgid=,stat= | awk -v g="$1" '$1 == g && $2 !~ /^Z/ { f = 1 } END { exit !f }'; }
stop_one() { # name grace-seconds
    local name=$1 pf="$RUN/$1.pid" pid st now i
    [[ -f $pf ]] || return 0
    read -r pid st <"$pf" || true
    if [[ ${pid:-} =~ ^[0-9]+$ ]]; then
        # A pid file whose process is gone: if /proc/PID exists now, it is
        # another process (our group, had it members left, would keep the pid
        # from being reused), so leave it alone.
        if now="$(proc_start "$pid")" && [[ $now != "${st:-}" ]]; then
            echo "stop: $name: pid $pid belongs to another process now, ignored" >&2
        elif group_alive "$pid"; then
            kill -TERM -- "-$pid" 2>/dev/null
            for ((i = 0; i < $2 * 4; i++)); do
                group_alive "$pid" || break
                sleep 0.25
            done
            if group_alive "$pid"; then
                echo "stop: $name did not exit within $2 s: SIGKILL" >&2
                kill -KILL -- "-$pid" 2>/dev/null
                for ((i = 0; i < 20; i++)); do group_alive "$pid" || break; sleep 0.25; done
            fi
        fi
    fi
    rm -f "$pf"
}

for name in nova-compute nova-api nova-scheduler nova-conductor cinder-volume \
    cinder-scheduler cinder-api neutron glance placement keystone; do
    stop_one "$name" 15 &
done
wait
stop_one rabbitmq 60
stop_one epmd 15
stop_one mariadb 60

if [[ ${1:-} == --purge ]]; then
    venv="$(realpath -m "${OS_STACK_VENV:-$STATE/venv}")"
    for p in "$STATE"/* "$STATE"/.synced-*; do
        [[ -e $p && $(realpath -m "$p") != "$venv" ]] || continue
        rm -rf "$p"
    done
fi
left="$(ls "$RUN"/*.pid 2>/dev/null || true)"
[[ -z $left ]] || { echo "stop: pid files left: $left" >&2; exit 1; }
echo "stopped in $((SECONDS - T0))s${1:+ (state purged, venv kept)}"
