#!/usr/bin/env bash
# A faas cluster on this machine in one command (docs/cluster.md, "A local cluster"):
#
#   infra/local-cluster.sh up [--nodes N] [--gateways M] [--dir DIR]   # default 3 nodes, 2 gateways
#   . local-cluster/local-cluster.env; build/bin/faasctl node list
#   infra/local-cluster.sh status [--dir DIR]
#   infra/local-cluster.sh down [--dir DIR]
#
# `up` starts PostgreSQL 15 (initdb in DIR/pg, unix socket only), redis-server (on the bridge
# address), N nodes (`faasd --role node`) and M gateways (`faasd --role gateway`), each faasd in
# a network namespace of its own, joined by a veth pair to a bridge this script creates, with a
# free 10.78.X.0/24. It waits until every gateway answers /readyz and has admitted every node,
# then writes DIR/local-cluster.env. Everything it makes is recorded in DIR/state as it is made,
# so `down` (also run when `up` fails half-way) ends exactly those processes, by PID, and
# removes exactly those links and folders. DIR defaults to ./local-cluster.
#
# Namespaces are held by a process each (`unshare --net sleep infinity`), not by `ip netns add`
# bind mounts under /run/netns, which a mount event on a busy machine can take away; faasd enters
# only the network namespace (`nsenter --net=/proc/PID/ns/net`), not `ip netns exec`, which also
# remounts /sys and would hide /sys/fs/cgroup from the node (docs/design/0025-fault-tests.md).
#
# Environment: FAAS_BIN (folder with faasd and faasctl; default build/bin of this checkout),
# FAAS_NODE_ARGS / FAAS_GATEWAY_ARGS (extra faasd flags, split on spaces), FAAS_LC_TIMEOUT
# (seconds `up` waits for health; default 120). Needs root and Debian packages only (iproute2,
# util-linux, postgresql, redis-server, redis-tools, curl: infra/install-deps.sh).
set -euo pipefail

readonly PG_BIN=/usr/lib/postgresql/15/bin
readonly HTTP_PORT=8080
readonly GRPC_PORT=9090
readonly REDIS_PORT=6379
readonly MAX_NODES=80
readonly MAX_GATEWAYS=40
readonly NET_LOCK=/tmp/faas-local-cluster.lock
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly SCRIPT_DIR

die() {
  echo "local-cluster: $*" >&2
  exit 1
}
say() { echo "local-cluster: $*" >&2; }

# ---- recorded state -------------------------------------------------------------------------
# DIR/state holds one line per thing `up` made, appended as soon as it exists:
#   pid KIND NAME PID START   a process (START: its start time in /proc/PID/stat, so a PID the
#                             kernel reused for someone else is never signalled)
#   link NAME                 a network link on the host (the bridge, the host side of a veth)
#   var KEY VALUE             facts `status` and `down` need (subnet, prefix, postgres folders)
#   path PATH                 a folder to remove on `down`

STATE=""

record() { echo "$*" >>"$STATE"; }

# The start time (field 22 of /proc/PID/stat) of PID, or nothing when it is gone.
start_time() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
  stat=${stat##*) }  # after "PID (comm) ": comm may hold spaces and parentheses
  # shellcheck disable=SC2086
  set -- $stat
  echo "${20}"
}

# True while PID runs and is still the process that was recorded (a zombie counts as gone).
alive() {
  local pid=$1 start=$2 stat
  [[ "$(start_time "$pid")" == "$start" ]] || return 1
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ "${stat:0:1}" != "Z" ]]
}

record_pid() {  # KIND NAME PID
  local start=""
  start=$(start_time "$3")
  [[ -n "$start" ]] || die "$1 $2 (pid $3) exited at once"
  record pid "$1" "$2" "$3" "$start"
}

state_var() {  # KEY -> VALUE, from the state file
  awk -v k="$1" '$1 == "var" && $2 == k { $1 = ""; $2 = ""; sub(/^  /, ""); print; exit }' \
    "$STATE" 2>/dev/null || true
}

# ---- arguments ------------------------------------------------------------------------------

CMD=${1:-}
[[ $# -gt 0 ]] && shift
NODES=3
GATEWAYS=2
DIR=./local-cluster
while [[ $# -gt 0 ]]; do
  case "$1" in
    --nodes) NODES=${2:?--nodes needs a number}; shift 2 ;;
    --gateways) GATEWAYS=${2:?--gateways needs a number}; shift 2 ;;
    --dir) DIR=${2:?--dir needs a folder}; shift 2 ;;
    -h | --help) CMD=help; shift ;;
    *) die "unknown argument '$1' (try --help)" ;;
  esac
done
case "$CMD" in
  up | down | status) ;;
  help | -h | --help | "")
    sed -n '2,7p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
  *) die "unknown command '$CMD': up, down or status" ;;
esac
if [[ "$CMD" == up ]]; then
  mkdir -p "$DIR" || die "cannot create $DIR"
fi
DIR=$(realpath -m "$DIR")
STATE=$DIR/state
ENV_FILE=$DIR/local-cluster.env
FAAS_BIN=${FAAS_BIN:-$(cd "$SCRIPT_DIR/.." && pwd)/build/bin}
FAASD=$FAAS_BIN/faasd
FAASCTL=$FAAS_BIN/faasctl

# ---- down -----------------------------------------------------------------------------------

# Signals every recorded process of KIND with SIG, then waits until they are gone (deadline in
# seconds); those still there at the deadline get SIGKILL.
stop_kind() {
  local kind=$1 sig=$2 deadline=$(( SECONDS + $3 )) k pid start left
  local -a pids=() starts=()
  while read -r _ k _ pid start; do
    [[ "$k" == "$kind" ]] || continue
    if alive "$pid" "$start"; then
      kill "-$sig" "$pid" 2>/dev/null || true
      pids+=("$pid") starts+=("$start")
    fi
  done < <(grep '^pid ' "$STATE" 2>/dev/null || true)
  while :; do
    left=0
    for i in "${!pids[@]}"; do
      alive "${pids[$i]}" "${starts[$i]}" && left=$(( left + 1 ))
    done
    [[ $left -eq 0 ]] && return 0
    if (( SECONDS >= deadline )); then
      for i in "${!pids[@]}"; do
        if alive "${pids[$i]}" "${starts[$i]}"; then
          say "$kind pid ${pids[$i]} did not stop within $3 s: SIGKILL"
          kill -KILL "${pids[$i]}" 2>/dev/null || true
        fi
      done
      return 0
    fi
    sleep 0.1  # poll interval
  done
}

cmd_down() {
  if [[ ! -f "$STATE" ]]; then
    say "nothing recorded in $DIR: nothing to stop"
    return 0
  fi
  # faasd first (SIGTERM: nodes drain and finish in-flight work, gateways stop accepting), then
  # the services they use.
  stop_kind faasd TERM 40
  stop_kind redis TERM 10
  local pg_data
  pg_data=$(state_var pg_data)
  if [[ -n "$pg_data" && -f "$pg_data/postmaster.pid" ]]; then
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$pg_data" -m fast -w -t 30 stop >/dev/null 2>&1 ||
      say "pg_ctl stop failed; ending the recorded postmaster"
  fi
  stop_kind postgres INT 10  # fast shutdown, if pg_ctl could not
  stop_kind netns KILL 10  # a namespace ends with its last process, and takes its veth end
  local name
  while read -r _ name; do
    ip link del "$name" 2>/dev/null || true  # already gone with its namespace, or never made
  done < <(grep '^link ' "$STATE" | tac)
  while read -r _ name; do
    rm -rf -- "$name"
  done < <(grep '^path ' "$STATE")
  rm -f -- "$STATE" "$ENV_FILE" "$DIR/admin-token"
  rmdir -- "$DIR" 2>/dev/null || true  # only when nothing else is in it
  say "down: stopped and removed everything recorded in $DIR"
}

# ---- up -------------------------------------------------------------------------------------

check_tools() {
  [[ $(id -u) -eq 0 ]] || die "needs root (network namespaces, veths, a bridge)"
  local t
  for t in ip nsenter unshare setsid runuser redis-server redis-cli curl awk; do
    command -v "$t" >/dev/null || die "$t is missing (run infra/install-deps.sh)"
  done
  for t in initdb pg_ctl postgres psql; do
    [[ -x "$PG_BIN/$t" ]] || die "$PG_BIN/$t is missing: PostgreSQL 15 (infra/install-deps.sh)"
  done
  getent passwd postgres >/dev/null || die "no postgres user to run PostgreSQL as (postgresql)"
  [[ -x "$FAASD" && -x "$FAASCTL" ]] ||
    die "no faasd/faasctl in $FAAS_BIN: build first, or set FAAS_BIN"
  if ! [[ "$NODES" =~ ^[0-9]+$ ]] || (( NODES < 1 || NODES > MAX_NODES )); then
    die "--nodes must be 1..$MAX_NODES"
  fi
  if ! [[ "$GATEWAYS" =~ ^[0-9]+$ ]] || (( GATEWAYS < 1 || GATEWAYS > MAX_GATEWAYS )); then
    die "--gateways must be 1..$MAX_GATEWAYS"
  fi
}

# Picks a 10.78.X.0/24 that no interface here uses and creates the bridge on it, under a lock so
# two `up`s at once cannot pick the same X. Names carry X (flc<X>b...), unique while X is.
make_bridge() {
  exec 9>"$NET_LOCK"
  flock 9
  local addrs links x k
  addrs=$(ip -o addr show)
  links=$(ip -o link show)
  SUBNET=""
  for (( k = 0; k < 250; k++ )); do
    x=$(( 1 + ($$ + k) % 250 ))
    if [[ "$addrs" != *" 10.78.$x."* && "$links" != *": flc${x}b:"* && "$links" != *": flc${x}b@"* ]]
    then
      SUBNET=10.78.$x
      PREFIX=flc$x
      break
    fi
  done
  [[ -n "$SUBNET" ]] || die "no free /24 in 10.78.0.0/16"
  BRIDGE=${PREFIX}b
  BRIDGE_IP=$SUBNET.1
  ip link add "$BRIDGE" type bridge
  record link "$BRIDGE"
  record var subnet "$SUBNET"
  record var prefix "$PREFIX"
  ip addr add "$BRIDGE_IP/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  flock -u 9
  exec 9>&-
}

start_postgres() {
  local pg=$DIR/pg sock
  mkdir -p "$pg"
  record path "$pg"
  # The socket's path must fit in sun_path (107 bytes); a deep DIR gets one under /tmp.
  sock=$pg/sock
  if (( ${#sock} + 16 > 100 )); then
    sock=$(mktemp -d /tmp/faas-lc-pg.XXXXXX)
    record path "$sock"
  else
    mkdir -p "$sock"
  fi
  mkdir -p "$pg/data"
  chown postgres: "$pg" "$pg/data" "$sock"
  chmod 700 "$pg/data"
  runuser -u postgres -- test -x "$pg" ||
    die "the postgres user cannot enter $pg (a parent folder is not world-searchable)"
  record var pg_data "$pg/data"
  runuser -u postgres -- "$PG_BIN/initdb" -D "$pg/data" -U postgres --auth=trust \
    --encoding=UTF8 --locale=C --no-instructions >"$pg/initdb.log" 2>&1 ||
    die "initdb failed: $(tail -5 "$pg/initdb.log")"
  # Unix socket only: every namespace reaches it (path sockets are not per network namespace),
  # so a node cut off from the bridge still reaches the store, as in the fault tests.
  runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$pg/data" -l "$pg/postgres.log" -w -t 60 \
    -o "-k $sock -c listen_addresses= -c max_connections=200 -c shared_buffers=32MB" \
    start >/dev/null || die "postgres did not start: $(tail -5 "$pg/postgres.log")"
  record_pid postgres postmaster "$(head -1 "$pg/data/postmaster.pid")"
  runuser -u postgres -- "$PG_BIN/psql" -X -q -h "$sock" -U postgres -d postgres \
    -c 'CREATE DATABASE faas' >/dev/null
  PG_URL="postgresql:///faas?host=$sock&user=postgres"
}

start_redis() {
  mkdir -p "$DIR/redis"
  record path "$DIR/redis"
  setsid redis-server --bind "$BRIDGE_IP" --port "$REDIS_PORT" --protected-mode no \
    --save "" --appendonly no --dir "$DIR/redis" --logfile "$DIR/redis/redis.log" \
    </dev/null >/dev/null 2>&1 &
  record_pid redis redis-server $!
  disown $!  # ours to end by PID on `down`, not the shell's job to report
  REDIS_URL=redis://$BRIDGE_IP:$REDIS_PORT
  local deadline=$(( SECONDS + 30 ))
  until [[ "$(redis-cli -h "$BRIDGE_IP" -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]; do
    (( SECONDS < deadline )) || die "redis did not answer PING within 30 s"
    sleep 0.1  # poll interval
  done
}

# A network namespace held by a process of its own, a veth pair from it to the bridge, address
# SUBNET.OCTET inside. Sets HOLDER (its pid).
make_host() {  # NAME INDEX OCTET
  local name=$1 i=$2 ip=$SUBNET.$3 veth_host=${PREFIX}h$2 veth_ns=${PREFIX}p$2 self deadline
  setsid unshare --net -- sleep infinity </dev/null >/dev/null 2>&1 &
  HOLDER=$!
  record_pid netns "$name" "$HOLDER"
  disown "$HOLDER"
  self=$(readlink /proc/self/ns/net)
  deadline=$(( SECONDS + 10 ))
  # unshare runs before it execs sleep: wait until the holder is in its own namespace.
  while [[ "$(readlink "/proc/$HOLDER/ns/net" 2>/dev/null)" == "$self" ||
           "$(readlink "/proc/$HOLDER/exe" 2>/dev/null)" != */sleep ]]; do
    (( SECONDS < deadline )) || die "no network namespace for $name"
    sleep 0.05  # poll interval
  done
  ip link add "$veth_host" type veth peer name "$veth_ns"
  record link "$veth_host"
  ip link set "$veth_host" master "$BRIDGE"
  ip link set "$veth_host" up
  ip link set "$veth_ns" netns "$HOLDER"
  nsenter --net="/proc/$HOLDER/ns/net" ip addr add "$ip/24" dev "$veth_ns"
  nsenter --net="/proc/$HOLDER/ns/net" ip link set "$veth_ns" up
  nsenter --net="/proc/$HOLDER/ns/net" ip link set lo up
}

# The one place that builds a faasd's command line: FAASD_ARGV for ROLE (node|gateway), NAME
# and IP. Flags every member of the cluster needs (certificates for mutual TLS, say) go here.
faasd_argv() {  # ROLE NAME IP
  local role=$1 name=$2 ip=$3 data=$DIR/faasd/$2
  FAASD_ARGV=("$FAASD" --role "$role"
    --http "$ip:$HTTP_PORT" --grpc "$ip:$GRPC_PORT"
    --data-dir "$data" --ready-file "$data.ready.json"
    --store "$PG_URL" --admin-token-file "$DIR/admin-token" --log-level info
    --tls-ca "$DIR/certs/ca.pem" --tls-cert "$DIR/certs/$name.pem"
    --tls-key "$DIR/certs/$name-key.pem")
  local -a extra=()
  if [[ "$role" == node ]]; then
    FAASD_ARGV+=(--node-id "$name")
    read -r -a extra <<<"${FAAS_NODE_ARGS:-}"
  else
    FAASD_ARGV+=(--redis "$REDIS_URL")
    read -r -a extra <<<"${FAAS_GATEWAY_ARGS:-}"
  fi
  FAASD_ARGV+=("${extra[@]}")
}

start_faasd() {  # ROLE NAME IP HOLDER
  local role=$1 name=$2 ip=$3 holder=$4
  mkdir -p "$DIR/faasd/$name"
  faasd_argv "$role" "$name" "$ip"
  # nsenter execs faasd in the same process: $! is faasd's pid. setsid: it outlives this script.
  setsid nsenter --net="/proc/$holder/ns/net" -- "${FAASD_ARGV[@]}" \
    </dev/null >>"$DIR/faasd/$name.log" 2>&1 &
  record_pid faasd "$name" $!
  disown $!
}

# Waits until CHECK (a command) succeeds, at most until the deadline; WHAT names it on failure.
wait_for() {  # WHAT CHECK...
  local what=$1
  shift
  until "$@"; do
    if (( SECONDS >= UP_DEADLINE )); then
      say "timed out after ${FAAS_LC_TIMEOUT:-120} s waiting for $what"
      return 1
    fi
    sleep 0.2  # poll interval
  done
}

faasd_running() {  # NAME: fails (with its log) when that faasd has exited
  local pid start
  read -r _ _ _ pid start < <(grep "^pid faasd $1 " "$STATE")
  alive "$pid" "$start" && return 0
  say "faasd $1 exited; the end of its log:"
  tail -20 "$DIR/faasd/$1.log" >&2
  exit 1
}

ready_file_written() { faasd_running "$1" && [[ -s "$DIR/faasd/$1.ready.json" ]]; }
gateway_ready() {
  faasd_running "$1" &&
    curl -fsS -o /dev/null --max-time 2 "http://$2:$HTTP_PORT/readyz" 2>/dev/null
}
gateway_admitted() {  # GATEWAY NODE: the gateway's health checker logged the node up
  faasd_running "$1" && grep -q "node.up node=$2\b" "$DIR/faasd/$1.log"
}

cmd_up() {
  check_tools
  if [[ -f "$STATE" ]]; then
    die "$DIR already holds a cluster (or what a failed one left): run '$0 down --dir $DIR' first"
  fi
  : >"$STATE"
  # From here on, any failure or interruption removes what was made so far.
  # shellcheck disable=SC2154  # up_status is set inside the trap
  trap 'up_status=$?; trap - INT TERM EXIT; if [[ $up_status -ne 0 ]]; then
          say "up failed: removing what it made"; cmd_down; fi; exit $up_status' EXIT
  trap 'exit 130' INT TERM
  UP_DEADLINE=$(( SECONDS + ${FAAS_LC_TIMEOUT:-120} ))
  mkdir -p "$DIR/faasd"
  record path "$DIR/faasd"
  # Files every faasd shares: the admin token (gateways).
  (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$DIR/admin-token")

  make_bridge
  local i name ip
  # Mutual TLS between gateways and nodes (docs/design/0028-cluster-tls.md): a CA for this
  # cluster and a certificate per faasd naming its address (nodes .10+i, gateways .200+i).
  local -a cert_specs=()
  for (( i = 1; i <= NODES; i++ )); do cert_specs+=("n$i:$SUBNET.$(( 10 + i ))"); done
  for (( i = 1; i <= GATEWAYS; i++ )); do cert_specs+=("g$i:$SUBNET.$(( 200 + i ))"); done
  record path "$DIR/certs"
  "$SCRIPT_DIR/cluster-certs.sh" "$DIR/certs" "${cert_specs[@]}" >/dev/null
  start_postgres
  start_redis

  local -a node_ids=() node_ips=() node_pids=() gw_names=() gw_ips=() gw_pids=()
  for (( i = 1; i <= NODES; i++ )); do
    name=n$i ip=$SUBNET.$(( 10 + i ))
    make_host "$name" "$i" $(( 10 + i ))
    start_faasd node "$name" "$ip" "$HOLDER"
    node_ids+=("$name") node_ips+=("$ip") node_pids+=("$(awk '/^pid faasd/ {p=$4} END {print p}' "$STATE")")
  done
  for (( i = 1; i <= GATEWAYS; i++ )); do
    name=g$i ip=$SUBNET.$(( 200 + i ))
    make_host "$name" $(( 100 + i )) $(( 200 + i ))
    start_faasd gateway "$name" "$ip" "$HOLDER"
    gw_names+=("$name") gw_ips+=("$ip") gw_pids+=("$(awk '/^pid faasd/ {p=$4} END {print p}' "$STATE")")
  done

  for name in "${node_ids[@]}" "${gw_names[@]}"; do
    wait_for "faasd $name to start" ready_file_written "$name"
  done
  for i in "${!gw_names[@]}"; do
    wait_for "gateway ${gw_names[$i]} /readyz" gateway_ready "${gw_names[$i]}" "${gw_ips[$i]}"
    for name in "${node_ids[@]}"; do
      wait_for "gateway ${gw_names[$i]} to admit node $name" \
        gateway_admitted "${gw_names[$i]}" "$name"
    done
  done

  local gateways=""
  for ip in "${gw_ips[@]}"; do gateways+=" $ip:$HTTP_PORT"; done
  {
    echo "# written by infra/local-cluster.sh up; source it: . $ENV_FILE"
    echo "export FAAS_CLUSTER_DIR='$DIR'"
    echo "export FAAS_GATEWAYS='${gateways# }'"
    echo "export FAAS_SERVER='${gw_ips[0]}:$GRPC_PORT'"
    echo "export FAAS_TOKEN='$(cat "$DIR/admin-token")'"
    echo "export FAAS_TLS_CA='$DIR/certs/ca.pem'"
    echo "export FAAS_NODE_IDS='${node_ids[*]}'"
    echo "export FAAS_NODE_PIDS='${node_pids[*]}'"
    echo "export FAAS_NODE_ADDRS='$(printf "%s:$GRPC_PORT " "${node_ips[@]}" | sed 's/ $//')'"
    echo "export FAAS_GATEWAY_PIDS='${gw_pids[*]}'"
    echo "export FAAS_PG_URL='$PG_URL'"
    echo "export FAAS_REDIS_URL='$REDIS_URL'"
  } >"$ENV_FILE"
  trap - EXIT INT TERM

  echo "faas local cluster up in $DIR (bridge $BRIDGE, $SUBNET.0/24)"
  echo "  PostgreSQL  $PG_URL"
  echo "  Redis       $REDIS_URL"
  for i in "${!node_ids[@]}"; do
    echo "  node    ${node_ids[$i]}  grpc ${node_ips[$i]}:$GRPC_PORT  http ${node_ips[$i]}:$HTTP_PORT  pid ${node_pids[$i]}"
  done
  for i in "${!gw_names[@]}"; do
    echo "  gateway ${gw_names[$i]}  http ${gw_ips[$i]}:$HTTP_PORT  grpc ${gw_ips[$i]}:$GRPC_PORT  pid ${gw_pids[$i]}"
  done
  echo "Next: . $ENV_FILE && $FAASCTL node list"
}

# ---- status ---------------------------------------------------------------------------------

cmd_status() {
  [[ -f "$STATE" ]] || die "no cluster recorded in $DIR"
  local rc=0 kind name pid start
  if [[ -f "$ENV_FILE" ]]; then
    # shellcheck disable=SC1090
    (. "$ENV_FILE" && "$FAASCTL" node list) || rc=1
    echo
  else
    echo "no $ENV_FILE: 'up' did not finish"
    rc=1
  fi
  printf '%-9s %-13s %-8s %s\n' KIND NAME PID STATE
  while read -r _ kind name pid start; do
    if alive "$pid" "$start"; then
      printf '%-9s %-13s %-8s %s\n' "$kind" "$name" "$pid" alive
    else
      printf '%-9s %-13s %-8s %s\n' "$kind" "$name" "$pid" gone
      rc=1
    fi
  done < <(grep '^pid ' "$STATE")
  return $rc
}

case "$CMD" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
esac
