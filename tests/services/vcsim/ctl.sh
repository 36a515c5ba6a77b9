#!/usr/bin/env bash
# Start/stop a vcsim on 127.0.0.1 for the VMware tests.
#
# Usage: ctl.sh start  [options] [-- extra vcsim flags]
#        ctl.sh stop   [options]   SIGTERM (vcsim removes its datastore dir),
#                                  SIGKILL after --timeout seconds
#        ctl.sh kill   [options]   SIGKILL at once (simulate a crash)
#        ctl.sh status [options]   print the state (exit 1 if not running)
# Options:
#   --state-dir DIR  pid/url/log/env files (env VCSIM_STATE_DIR,
#                    default <repo root>/.cache/vcsim/run)
#   --vm N           VMs per resource pool; vcsim makes 2 pools, so 2N VMs:
#                    DC0_H0_VM0.. and DC0_C0_RP0_VM0.. in DC0/vm
#                    (env VCSIM_VMS, default 2)
#   --port P         port on 127.0.0.1 (default 0: a free one)
#   --bin PATH       vcsim binary (env VCSIM_BIN; default: run build.sh,
#                    which is fast when the binary is up to date)
#   --timeout SEC    readiness / stop timeout (default 180 for start,
#                    30 for stop; -vm 5000: ~8 s with the datastore on tmpfs)
#
# `start` prints shell assignments on stdout (also in STATE_DIR/env):
#   VCSIM_HOST VCSIM_PORT VCSIM_URL VCSIM_PID VCSIM_LOG GOVC_URL GOVC_INSECURE
# so `eval "$(ctl.sh start --vm 5)"` works. vcsim runs in its own session
# with TMPDIR=$VCSIM_TMPDIR|/dev/shm|STATE_DIR/vcsim-ds.XXXXXX (recorded in
# STATE_DIR/tmpdir): a SIGKILLed instance leaves its datastore files there
# and the next stop/start removes them.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../../.." && pwd)
HOST=127.0.0.1

log() { printf '[vcsim] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2; exit 2; }

[ $# -ge 1 ] || usage
cmd=$1; shift
state_dir=${VCSIM_STATE_DIR:-$REPO_ROOT/.cache/vcsim/run}
vms=${VCSIM_VMS:-2}
port=0
bin=${VCSIM_BIN:-}
timeout=
extra=()
while [ $# -gt 0 ]; do
    case $1 in
        --state-dir) state_dir=${2:?}; shift 2 ;;
        --vm) vms=${2:?}; shift 2 ;;
        --port) port=${2:?}; shift 2 ;;
        --bin) bin=${2:?}; shift 2 ;;
        --timeout) timeout=${2:?}; shift 2 ;;
        --) shift; extra=("$@"); break ;;
        -h|--help) usage ;;
        *) die "unknown argument: $1" ;;
    esac
done
case $vms in ''|*[!0-9]*) die "--vm needs a number, got '$vms'" ;; esac
case $port in ''|*[!0-9]*) die "--port needs a number, got '$port'" ;; esac

# A process that exited but was not reaped yet is a zombie: kill -0 still
# succeeds on it, so look at the state in /proc.
alive() {
    local s
    s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    s=${s##*) }
    [ "${s%% *}" != Z ]
}

# Is PID our vcsim (and not a recycled pid)?
is_vcsim() {
    alive "$1" && tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -q vcsim
}

running_pid() {
    local pid
    pid=$(cat "$state_dir/pid" 2>/dev/null) || return 1
    [ -n "$pid" ] && is_vcsim "$pid" && echo "$pid"
}

clean_state() {
    local tmp
    tmp=$(cat "$state_dir/tmpdir" 2>/dev/null) || true
    case $tmp in */vcsim-ds.*) rm -rf "$tmp" ;; esac
    rm -f "$state_dir/pid" "$state_dir/env" "$state_dir/url" "$state_dir/port" "$state_dir/tmpdir"
}

# vcsim's TMPDIR (its datastore: a few files per VM): tmpfs if possible, as
# creating 10,000 VMs on a busy disk takes minutes instead of seconds.
make_tmpdir() {
    local base=${VCSIM_TMPDIR:-}
    if [ -z "$base" ]; then
        if [ -d /dev/shm ] && [ -w /dev/shm ]; then base=/dev/shm; else base=$state_dir; fi
    fi
    mktemp -d "$base/vcsim-ds.XXXXXX"
}

# wait_gone PID SECONDS: poll until PID is gone
wait_gone() {
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        alive "$1" || return 0
        sleep 0.1
    done
    ! alive "$1"
}

# vcsim prints the reason of a flag error first, then its usage
log_tail() {
    [ -s "$1" ] || return 0
    log "vcsim output ($1):"
    if [ "$(wc -l <"$1")" -gt 23 ]; then
        { head -n 3 "$1"; echo ...; tail -n 20 "$1"; } | sed 's/^/    /' >&2
    else
        sed 's/^/    /' "$1" >&2
    fi
}

do_start() {
    local pid
    if pid=$(running_pid); then
        die "already running (pid $pid, $(cat "$state_dir/url" 2>/dev/null)); run '$0 stop' first"
    fi
    if [ -z "$bin" ]; then
        bin=$("$SCRIPT_DIR/build.sh" ${VCSIM_CACHE_DIR:+"$VCSIM_CACHE_DIR"} | tail -n1) \
            || die "building vcsim failed"
    fi
    [ -x "$bin" ] || die "vcsim binary not found or not executable: $bin"
    command -v curl >/dev/null || die "curl not found"
    timeout=${timeout:-180}

    mkdir -p "$state_dir"
    state_dir=$(cd "$state_dir" && pwd)
    clean_state
    local tmp
    tmp=$(make_tmpdir) || die "cannot create a temporary directory"
    echo "$tmp" >"$state_dir/tmpdir"
    local logf=$state_dir/vcsim.log
    : >"$logf"

    local t0 t1
    t0=$(date +%s.%N)
    # own session: a Ctrl-C in the calling terminal does not reach it
    TMPDIR=$tmp setsid "$bin" -l "$HOST:$port" -vm "$vms" "${extra[@]}" \
        </dev/null >"$logf" 2>&1 &
    pid=$!
    echo "$pid" >"$state_dir/pid"

    # Ready when it prints "export GOVC_URL=https://user:pass@HOST:PORT/sdk
    # GOVC_SIM_PID=PID": the inventory is built and the listener is up.
    local i govc_url=
    for ((i = 0; i < timeout * 10; i++)); do
        govc_url=$(sed -n 's/.*GOVC_URL=\([^ ]*\).*/\1/p' "$logf" | head -n1)
        [ -n "$govc_url" ] && break
        if ! alive "$pid"; then
            log_tail "$logf"
            clean_state
            die "vcsim exited during startup (vcsim -l $HOST:$port -vm $vms ${extra[*]})"
        fi
        sleep 0.1
    done
    if [ -z "$govc_url" ]; then
        kill -KILL "$pid" 2>/dev/null || true
        log_tail "$logf"
        clean_state
        die "vcsim not ready after ${timeout}s"
    fi
    local hostport=${govc_url#*@}
    hostport=${hostport%%/*}
    local rport=${hostport##*:}
    local url=https://$HOST:$rport/sdk

    local ok=0
    for ((i = 0; i < 50; i++)); do
        if curl -skf --max-time 5 -o /dev/null "https://$HOST:$rport/about"; then
            ok=1
            break
        fi
        alive "$pid" || break
        sleep 0.1
    done
    if [ "$ok" != 1 ]; then
        kill -KILL "$pid" 2>/dev/null || true
        log_tail "$logf"
        clean_state
        die "vcsim printed GOVC_URL but GET https://$HOST:$rport/about failed"
    fi
    t1=$(date +%s.%N)

    echo "$rport" >"$state_dir/port"
    echo "$url" >"$state_dir/url"
    cat >"$state_dir/env.new" <<EOF
VCSIM_HOST=$HOST
VCSIM_PORT=$rport
VCSIM_URL=$url
VCSIM_PID=$pid
VCSIM_LOG=$logf
GOVC_URL=$govc_url
GOVC_INSECURE=1
EOF
    mv -f "$state_dir/env.new" "$state_dir/env"
    log "ready in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s: $url (pid $pid, -vm $vms = $((2 * vms)) VMs)"
    cat "$state_dir/env"
}

do_stop() {
    local sig=$1 pid
    if ! pid=$(running_pid); then
        log "not running (state dir $state_dir)"
        clean_state
        return 0
    fi
    if [ "$sig" = TERM ]; then
        kill -TERM "$pid" 2>/dev/null || true
        if ! wait_gone "$pid" "${timeout:-30}"; then
            log "pid $pid did not exit after SIGTERM within ${timeout:-30}s: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    else
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait_gone "$pid" 10 || die "pid $pid still alive after SIGKILL"
    clean_state
    log "stopped pid $pid (SIG$sig)"
}

case $cmd in
    start) do_start ;;
    stop) do_stop TERM ;;
    kill) do_stop KILL ;;
    status)
        if pid=$(running_pid) && [ -f "$state_dir/env" ]; then
            cat "$state_dir/env"
        else
            log "not running (state dir $state_dir)"
            exit 1
        fi
        ;;
    *) usage ;;
esac
