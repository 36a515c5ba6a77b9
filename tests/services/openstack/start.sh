#!/usr/bin/env bash
# Start a small but real OpenStack on 127.0.0.1 for the integration tests:
# MariaDB + RabbitMQ (Debian packages), keystone, glance (file store),
# placement, neutron (ML2 without agents), nova (api, conductor, scheduler,
# compute with a fake virt driver whose snapshots upload bytes) and cinder
# (api, scheduler, volume with a fake volume driver).
#
# Idempotent: on a fresh Debian 12 machine (root, no systemd) it installs
# everything (~2 min); on a stopped stack it restarts the services with the
# state kept; on a running stack it (re)starts only what is missing and
# checks readiness.  Exits non-zero, with the failing service's log tail, on
# any failure.
#
# Environment:
#   OS_STACK_DIR        state: venv, configs, databases, images, log/, run/
#                       (default: <repo root>/.cache/openstack)
#   OS_STACK_VENV       venv of the services (default: $OS_STACK_DIR/venv)
#   OS_STACK_PYTHON     interpreter the venv is made from (default: python3)
#   OS_STACK_PASSWORD   every password (default: secret; [A-Za-z0-9._-]+)
#   OS_STACK_DB_PORT    MariaDB TCP port on 127.0.0.1 (default: 3306)
#   OS_STACK_SKIP_APT=1 never apt-get install (fail if packages are missing)
#
# Afterwards: export OS_CLIENT_CONFIG_FILE=$OS_STACK_DIR/clouds.yaml
# (clouds: stack-admin = keystone admin, stack-demo = member of project demo).
set -Eeuo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/../../.." && pwd)"
STATE="${OS_STACK_DIR:-$REPO_ROOT/.cache/openstack}"
VENV="${OS_STACK_VENV:-$STATE/venv}"
PY="${OS_STACK_PYTHON:-python3}"
PASS="${OS_STACK_PASSWORD:-secret}"
DBPORT="${OS_STACK_DB_PORT:-3306}"
STACK_HOST=osstack   # nova/cinder/neutron 'host': fixed, not the machine's name
ETC="$STATE/etc" LOG="$STATE/log" RUN="$STATE/run"
DBURL="mysql+pymysql://os:$PASS@127.0.0.1:$DBPORT"
RABBIT="rabbit://guest:guest@127.0.0.1:5672/"
export OS_CLIENT_CONFIG_FILE="$STATE/clouds.yaml" OS_STACK_PASSWORD="$PASS"
T0=$SECONDS

log() { printf '[%s +%3ds] %s\n' "$(date +%T)" $((SECONDS - T0)) "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
trap 'die "command failed (line $LINENO): $BASH_COMMAND"' ERR

[[ $(id -u) == 0 ]] || die "must run as root"
[[ $PASS =~ ^[A-Za-z0-9._-]+$ ]] || die "OS_STACK_PASSWORD may only contain [A-Za-z0-9._-]"
mkdir -p "$STATE" "$ETC" "$LOG" "$RUN"
STATE="$(cd "$STATE" && pwd)" ETC="$STATE/etc" LOG="$STATE/log" RUN="$STATE/run"

# One start.sh/stop.sh at a time per state dir (e.g. several pytest workers).
# fd 9 must not leak into the daemons, or they would hold the lock forever.
exec 9>"$STATE/.lock"
flock -w 900 9 || die "another start.sh/stop.sh holds $STATE/.lock"

# ---------------------------------------------------------------- packages
missing_pkgs() { # Debian packages still to install, if any
    [[ -x /usr/sbin/mariadbd && -x /usr/bin/mariadb-install-db ]] || echo mariadb-server
    [[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ]] && command -v epmd >/dev/null || echo rabbitmq-server
    command -v curl >/dev/null || echo curl
    "$PY" -c 'import venv, ensurepip' 2>/dev/null || echo python3-venv
}
mapfile -t pkgs < <(missing_pkgs)
if ((${#pkgs[@]})) && [[ ${OS_STACK_SKIP_APT:-0} != 1 ]]; then
    log "apt: installing ${pkgs[*]}"
    # The packages' init scripts must not start system-wide daemons.
    policy_created=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        policy_created=1
    fi
    apt_rc=0
    {
        apt-get -o DPkg::Lock::Timeout=600 update -q &&
            DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 \
                install -y -q --no-install-recommends "${pkgs[@]}"
    } >"$LOG/apt.log" 2>&1 || apt_rc=$?
    if ((policy_created)); then rm -f /usr/sbin/policy-rc.d; fi
    ((apt_rc == 0)) || die "apt-get failed (rc $apt_rc); last lines of $LOG/apt.log:
$(tail -20 "$LOG/apt.log")"
    mapfile -t pkgs < <(missing_pkgs)
fi
((${#pkgs[@]} == 0)) || die "missing Debian packages: ${pkgs[*]} (python: $PY)"

# ---------------------------------------------------------------- venv
# (Re)install only when requirements.txt, constraints.txt or the Python
# version change; the stamp lives in the venv.
pyver="$("$PY" -c 'import sys; print(sys.version.split()[0])')"
want="python $pyver
$(cat "$HERE/requirements.txt" "$HERE/constraints.txt")"
if [[ $want != "$(cat "$VENV/.stack-requirements" 2>/dev/null)" ]]; then
    log "pip: installing the OpenStack services into $VENV (~1 min)"
    rm -f "$VENV/.stack-requirements"
    if [[ ! -x $VENV/bin/python ]] ||
        [[ $("$VENV/bin/python" -c 'import sys; print(sys.version.split()[0])') != "$pyver" ]]; then
        "$PY" -m venv --clear "$VENV"
    fi
    {
        "$VENV/bin/pip" install -q --upgrade pip &&
            "$VENV/bin/pip" install -q -r "$HERE/requirements.txt" -c "$HERE/constraints.txt"
    } >"$LOG/pip.log" 2>&1 || die "pip install failed; last lines of $LOG/pip.log:
$(tail -20 "$LOG/pip.log")"
    printf '%s' "$want" >"$VENV/.stack-requirements"
fi
B="$VENV/bin"
export PYTHONPATH="$HERE/py${PYTHONPATH:+:$PYTHONPATH}"

# ---------------------------------------------------------------- configs
render() { # template destination
    mkdir -p "$(dirname "$2")"
    sed -e "s|@STATE@|$STATE|g" -e "s|@ETC@|$ETC|g" -e "s|@PASS@|$PASS|g" \
        -e "s|@DBURL@|$DBURL|g" -e "s|@RABBIT@|$RABBIT|g" \
        -e "s|@HOST@|$STACK_HOST|g" -e "s|@DBPORT@|$DBPORT|g" \
        "$HERE/templates/$1" >"$2.tmp"
    mv "$2.tmp" "$2"
}
render mariadb.cnf "$ETC/mariadb.cnf"
render keystone.conf "$ETC/keystone/keystone.conf"
render placement.conf "$ETC/placement/placement.conf"
render glance-api.conf "$ETC/glance/glance-api.conf"
render nova.conf "$ETC/nova/nova.conf"
render nova-db.conf "$ETC/nova/nova-db.conf"
render cinder.conf "$ETC/cinder/cinder.conf"
render neutron.conf "$ETC/neutron/neutron.conf"
render ml2_conf.ini "$ETC/neutron/ml2_conf.ini"
# paste pipelines and data files shipped in the venv's etc/
cp "$VENV/etc/glance/glance-api-paste.ini" "$ETC/glance/"
cp "$VENV/etc/nova/api-paste.ini" "$ETC/nova/"
cp "$VENV/etc/cinder/api-paste.ini" "$VENV/etc/cinder/resource_filters.json" "$ETC/cinder/"
cp "$VENV/etc/neutron/api-paste.ini" "$ETC/neutron/"
mkdir -p "$STATE"/glance/{images,staging,tasks,locks} "$STATE"/nova/{instances,locks} \
    "$STATE"/cinder/{locks,coordination} "$STATE"/neutron/locks "$STATE"/keystone
cat >"$STATE/clouds.yaml.tmp" <<YAML
clouds:
  stack-admin:
    auth: {auth_url: "http://127.0.0.1:5000/v3", username: admin, password: "$PASS",
           project_name: admin, user_domain_name: Default, project_domain_name: Default}
    region_name: RegionOne
    identity_api_version: 3
  stack-demo:
    auth: {auth_url: "http://127.0.0.1:5000/v3", username: demo, password: "$PASS",
           project_name: demo, user_domain_name: Default, project_domain_name: Default}
    region_name: RegionOne
    identity_api_version: 3
YAML
mv "$STATE/clouds.yaml.tmp" "$STATE/clouds.yaml"

# ---------------------------------------------------------------- processes
# Each service runs in its own session (setsid), so its pid is also its
# process group id; run/NAME.pid holds "PID STARTTIME" (field 22 of
# /proc/PID/stat), so that a pid reused after a reboot is never mistaken for
# ours (stop.sh signals whole process groups).
proc_start() { # pid -> start time, fails for missing and zombie processes
    local stat f
    stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
    read -ra f <<<"${stat##*) }"
    [[ ${f[0]} != Z ]] || return 1
    echo "${f[19]}"
}
pid_alive() {
    local pid st now
    [[ -f $RUN/$1.pid ]] || return 1
    read -r pid st <"$RUN/$1.pid" || true
    [[ ${pid:-} =~ ^[0-9]+$ ]] || return 1
    now="$(proc_start "$pid")" || return 1
    [[ $now == "${st:-}" ]]
}
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
declare -A PORT=([mariadb]=$DBPORT [epmd]=4369 [rabbitmq]=5672 [keystone]=5000
    [placement]=8778 [glance]=9292 [neutron]=9696 [cinder-api]=8776 [nova-api]=8774)
WATCH=()       # services whose death aborts the start
NEW=0          # services started by this run
start_bg() {   # name command...
    local name=$1 pid
    shift
    WATCH+=("$name")
    pid_alive "$name" && return 0
    # A foreign listener would make the service exit (after retries) while
    # the readiness probe talks to the foreign one.
    if [[ -n ${PORT[$name]:-} ]] && port_busy "${PORT[$name]}"; then
        die "cannot start $name: 127.0.0.1:${PORT[$name]} is in use by another process
$(ss -ltnp "sport = :${PORT[$name]}" 2>/dev/null || true)"
    fi
    [[ $name =~ ^(keystone|mariadb|rabbitmq|epmd)$ ]] || log "starting $name"
    setsid "$@" >>"$LOG/$name.log" 2>&1 </dev/null 9>&- &
    pid=$!
    echo "$pid $(proc_start "$pid" || echo dead)" >"$RUN/$name.pid"
    NEW=$((NEW + 1))
}
check_alive() {
    local n
    for n in "${WATCH[@]}"; do
        pid_alive "$n" || die "$n is not running; last lines of $LOG/$n.log:
$(tail -25 "$LOG/$n.log" 2>/dev/null)"
    done
}
wait_for() { # description timeout-seconds command...
    local what=$1 end=$((SECONDS + $2))
    shift 2
    until check_alive && "$@" >/dev/null 2>&1; do
        ((SECONDS < end)) || die "timeout ($((SECONDS - end + $2))s) waiting for $what; logs in $LOG/"
        sleep 1
    done
}
http_up() { curl -s -o /dev/null -m 5 "$1"; } # any HTTP answer counts
gunicorn_start() { # name port wsgi-module [VAR=value...] [-- app-argv...]
    local name=$1 port=$2 module=$3 envs=() args="" a
    shift 3
    while (($#)); do
        [[ $1 == -- ]] && { shift; break; }
        envs+=("$1")
        shift
    done
    for a in "$@"; do args+=", \"$a\""; done
    # keep-alive 75 s outlives keystoneauth's pooled connections (the
    # default 2 s gives sporadic "connection reset" errors in clients).
    start_bg "$name" env "${envs[@]}" "$B/gunicorn" --bind "127.0.0.1:$port" \
        --workers 1 --worker-class gthread --threads 4 --keep-alive 75 \
        --timeout 300 --graceful-timeout 10 --name "$name" \
        "stack_wsgi:app(\"$module\"$args)"
}
synced() { [[ -f $STATE/.synced-$1 ]]; }
mark() { touch "$STATE/.synced-$1"; }

# ---------------------------------------------------------------- MariaDB
if [[ ! -d $STATE/mysql/mysql ]]; then
    log "mariadb: initialising $STATE/mysql"
    rm -rf "$STATE/mysql"
    mariadb-install-db --defaults-file="$ETC/mariadb.cnf" --skip-test-db \
        --auth-root-authentication-method=socket >"$LOG/mariadb-install.log" 2>&1 ||
        die "mariadb-install-db failed:
$(tail -20 "$LOG/mariadb-install.log")"
fi
pid_alive mariadb || log "mariadb: starting on 127.0.0.1:$DBPORT"
start_bg mariadb mariadbd --defaults-file="$ETC/mariadb.cnf"
# shellcheck disable=SC2120  # arguments are passed through wait_for
SQL() { mariadb --defaults-file="$ETC/mariadb.cnf" -uroot "$@"; }
wait_for "mariadb" 60 SQL -e 'SELECT 1'
DBS=(keystone glance placement nova_api nova nova_cell0 cinder neutron)
{
    printf 'CREATE DATABASE IF NOT EXISTS %s;\n' "${DBS[@]}"
    echo "CREATE USER IF NOT EXISTS 'os'@'127.0.0.1' IDENTIFIED BY '$PASS';"
    echo "GRANT ALL PRIVILEGES ON *.* TO 'os'@'127.0.0.1';"
} | SQL --batch

# ---------------------------------------------------------------- RabbitMQ
# As root, all state under $STATE, epmd and distribution bound to loopback.
RABBIT_ENV=(RABBITMQ_NODENAME=rabbit@localhost RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
    RABBITMQ_NODE_PORT=5672 RABBITMQ_DIST_PORT=25672
    "RABBITMQ_MNESIA_BASE=$STATE/rabbitmq/mnesia" "RABBITMQ_LOG_BASE=$LOG/rabbitmq"
    "RABBITMQ_PID_FILE=$STATE/rabbitmq/beam.pid"
    "RABBITMQ_ENABLED_PLUGINS_FILE=$STATE/rabbitmq/enabled_plugins"
    "RABBITMQ_CONFIG_FILE=$STATE/rabbitmq/rabbitmq"
    "RABBITMQ_ADVANCED_CONFIG_FILE=$STATE/rabbitmq/advanced.config"
    "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}"
    ERL_EPMD_ADDRESS=127.0.0.1 "HOME=$STATE/rabbitmq")
mkdir -p "$STATE/rabbitmq" "$LOG/rabbitmq"
[[ -f $STATE/rabbitmq/enabled_plugins ]] || echo '[].' >"$STATE/rabbitmq/enabled_plugins"
if [[ ! -f $STATE/rabbitmq/.erlang.cookie ]]; then
    (umask 077 && head -c 20 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$STATE/rabbitmq/.erlang.cookie")
    chmod 400 "$STATE/rabbitmq/.erlang.cookie"
fi
pid_alive rabbitmq || log "rabbitmq: starting on 127.0.0.1:5672"
start_bg epmd env "${RABBIT_ENV[@]}" epmd -address 127.0.0.1
start_bg rabbitmq env "${RABBIT_ENV[@]}" /usr/lib/rabbitmq/bin/rabbitmq-server
amqp_up() { # kombu knows amqp://, not oslo's rabbit://
    "$B/python" -c 'import kombu, sys
c = kombu.Connection(sys.argv[1], connect_timeout=3); c.connect(); c.release()' \
        "amqp://guest:guest@127.0.0.1:5672//"
}

# ---------------------------------------------------------------- schemas
# First start only (markers $STATE/.synced-*); real migrations on MariaDB.
if ! synced keystone; then
    log "keystone: db_sync, fernet/credential keys, bootstrap"
    K=("$B/keystone-manage" --config-file "$ETC/keystone/keystone.conf")
    {
        "${K[@]}" db_sync &&
            "${K[@]}" fernet_setup --keystone-user root --keystone-group root &&
            "${K[@]}" credential_setup --keystone-user root --keystone-group root &&
            "${K[@]}" bootstrap --bootstrap-password "$PASS" --bootstrap-region-id RegionOne \
                --bootstrap-admin-url http://127.0.0.1:5000/v3 \
                --bootstrap-internal-url http://127.0.0.1:5000/v3 \
                --bootstrap-public-url http://127.0.0.1:5000/v3
    } >>"$LOG/keystone-manage.log" 2>&1 || die "keystone-manage failed:
$(tail -20 "$LOG/keystone-manage.log")"
    mark keystone
fi
pid_alive keystone || log "keystone: starting on 127.0.0.1:5000"
gunicorn_start keystone 5000 keystone.wsgi.api OS_KEYSTONE_CONFIG_FILES="$ETC/keystone/keystone.conf"

# The other schemas in parallel with keystone's start-up.
SYNCS=()
sync_bg() { # name command...
    local n=$1
    shift
    synced "$n" && return 0
    ("$@" >>"$LOG/$n-dbsync.log" 2>&1 && mark "$n") 9>&- &
    SYNCS+=("$!:$n")
}
NOVA_DB=(--config-file "$ETC/nova/nova.conf" --config-file "$ETC/nova/nova-db.conf")
nova_schemas() {
    local nm=("$B/nova-manage" "${NOVA_DB[@]}")
    "${nm[@]}" api_db sync &&
        "${nm[@]}" cell_v2 map_cell0 --database_connection "$DBURL/nova_cell0" &&
        { "${nm[@]}" cell_v2 list_cells | grep -q ' cell1 ' ||
            "${nm[@]}" cell_v2 create_cell --name cell1 --verbose; } &&
        "${nm[@]}" db sync
}
sync_bg glance "$B/glance-manage" --config-file "$ETC/glance/glance-api.conf" db_sync
sync_bg placement "$B/placement-manage" --config-file "$ETC/placement/placement.conf" db sync
sync_bg cinder "$B/cinder-manage" --config-file "$ETC/cinder/cinder.conf" db sync
sync_bg neutron "$B/neutron-db-manage" --config-file "$ETC/neutron/neutron.conf" \
    --config-file "$ETC/neutron/ml2_conf.ini" upgrade heads
sync_bg nova nova_schemas
if ((${#SYNCS[@]})); then
    log "db schemas: ${SYNCS[*]#*:}"
    for s in "${SYNCS[@]}"; do
        wait "${s%%:*}" || true
        synced "${s#*:}" || die "db sync of ${s#*:} failed:
$(tail -30 "$LOG/${s#*:}-dbsync.log")"
    done
    log "db schemas ready"
fi

wait_for "keystone on :5000" 120 http_up http://127.0.0.1:5000/v3
wait_for "rabbitmq on :5672" 120 amqp_up
if ! synced identity; then
    log "keystone: projects, users, services, endpoints"
    "$B/python" "$HERE/py/bootstrap.py" identity >>"$LOG/bootstrap.log" 2>&1 ||
        die "identity bootstrap failed:
$(tail -20 "$LOG/bootstrap.log")"
    mark identity
fi

# ---------------------------------------------------------------- services
gunicorn_start placement 8778 placement.wsgi.api OS_PLACEMENT_CONFIG_DIR="$ETC/placement"
gunicorn_start glance 9292 glance.wsgi.api OS_GLANCE_CONFIG_DIR="$ETC/glance"
gunicorn_start neutron 9696 neutron.wsgi.api OS_NEUTRON_CONFIG_DIR="$ETC/neutron" \
    "OS_NEUTRON_CONFIG_FILES=neutron.conf;ml2_conf.ini"
gunicorn_start cinder-api 8776 cinder.wsgi.api -- --config-file "$ETC/cinder/cinder.conf"
gunicorn_start nova-api 8774 nova.wsgi.osapi_compute OS_NOVA_CONFIG_DIR="$ETC/nova" \
    "OS_NOVA_CONFIG_FILES=api-paste.ini;nova.conf;nova-db.conf"
start_bg nova-conductor "$B/nova-conductor" "${NOVA_DB[@]}"
start_bg nova-scheduler "$B/nova-scheduler" "${NOVA_DB[@]}"
start_bg cinder-scheduler "$B/cinder-scheduler" --config-file "$ETC/cinder/cinder.conf"
start_bg cinder-volume "$B/cinder-volume" --config-file "$ETC/cinder/cinder.conf"
for port in 8778 9292 9696 8776 8774; do
    wait_for "API on :$port" 180 http_up "http://127.0.0.1:$port/"
done
# nova-compute last: started together with nova-conductor, its first RPC call
# is lost (the conductor's queue does not exist yet) and retried after 10 s.
# nova.conf only (no database sections): nova-compute must not touch the DB.
start_bg nova-compute "$B/python" "$HERE/py/nova_compute.py" --config-file "$ETC/nova/nova.conf"
# Ready = each worker has sent a heartbeat since its process started (pid
# file mtime) and the compute node is in placement.
wait_for "nova-compute and cinder-volume to report" 240 "$B/python" "$HERE/py/bootstrap.py" \
    ready "$(stat -c %Y "$RUN/nova-compute.pid")" "$(stat -c %Y "$RUN/cinder-volume.pid")"
if ! synced hosts; then
    "$B/nova-manage" "${NOVA_DB[@]}" cell_v2 discover_hosts >>"$LOG/nova-manage.log" 2>&1 ||
        die "nova-manage cell_v2 discover_hosts failed:
$(tail -20 "$LOG/nova-manage.log")"
    mark hosts
fi
# Shared read-only fixtures (flavor, images, volume type): every time, in
# case a test deleted one.
"$B/python" "$HERE/py/bootstrap.py" resources >>"$LOG/bootstrap.log" 2>&1 ||
    die "resource bootstrap failed:
$(tail -20 "$LOG/bootstrap.log")"
if ((NEW)); then
    sleep 2
    check_alive # a service that died right after reporting in
fi
log "stack ready ($NEW processes started): export OS_CLIENT_CONFIG_FILE=$STATE/clouds.yaml" \
    "(clouds: stack-admin, stack-demo)"
