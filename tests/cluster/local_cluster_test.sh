#!/usr/bin/env bash
# ctest local_cluster_test (label cluster): infra/local-cluster.sh end to end.
#   local_cluster_test.sh SCRIPT BIN_DIR FUNCTIONS_DIR
# 1. `up` that fails half-way (a node refuses its flags) removes all it made.
# 2. `up --nodes 2 --gateways 2`; the env file; deploy through gateway 1, invoke through gateway 2
#    (X-Faas-Node is one of FAAS_NODE_IDS); `status`; `down` leaves no process, link or state;
#    a second `down` is a no-op.
# Exit 77 (ctest SKIP_RETURN_CODE) with the reason when the machine cannot run it.
set -uo pipefail

SCRIPT=$1
BIN=$2
FUNCTIONS=$3
skip() {
  echo "SKIP: $*"
  exit 77
}
fail() {
  echo "FAIL: $*"
  exit 1
}

[[ $(id -u) -eq 0 ]] || skip "needs root (network namespaces, veths, a bridge)"
for t in ip nsenter unshare setsid runuser redis-server redis-cli curl; do
  command -v "$t" >/dev/null || skip "$t is missing (infra/install-deps.sh)"
done
[[ -x /usr/lib/postgresql/15/bin/initdb ]] || skip "PostgreSQL 15 is not installed"
getent passwd postgres >/dev/null || skip "no postgres user (postgresql package)"
unshare --net true 2>/dev/null || skip "unshare --net fails here: no network namespaces"
[[ -x "$BIN/faasd" && -x "$BIN/faasctl" && -f "$FUNCTIONS/libhello.so" ]] ||
  fail "faasd, faasctl or libhello.so not built in $BIN / $FUNCTIONS"

TMP=$(mktemp -d)
chmod 755 "$TMP"  # PostgreSQL runs as the postgres user, under this folder
DIR=$TMP/lc
export FAAS_BIN=$BIN FAAS_LC_TIMEOUT=90
cleanup() {
  "$SCRIPT" down --dir "$DIR" >/dev/null 2>&1
  "$SCRIPT" down --dir "$TMP/bad" >/dev/null 2>&1
  rm -rf "$TMP"
}
trap cleanup EXIT

# The PIDs, links and start times recorded in DIR/state, for the checks after `down`.
recorded_pids() { awk '$1 == "pid" { print $4 " " $5 }' "$1/state"; }
gone() {  # PID START: gone, a zombie, or another process now
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
  stat=${stat##*) }
  # shellcheck disable=SC2086
  set -- "$2" $stat
  [[ "$2" == Z || "${21}" != "$1" ]]
}
# The pids of processes whose command line holds TEXT (builtins only: no helper matches itself).
with_in_cmdline() {
  local f args
  for f in /proc/[0-9]*/cmdline; do
    { mapfile -d '' args <"$f"; } 2>/dev/null || continue
    [[ "${args[*]}" == *"$1"* ]] && echo -n "${f//[^0-9]/} "
  done
  return 0
}
# Polls (deadline 10 s: init reaps the orphans) until every recorded process is gone.
assert_nothing_left() {  # WHAT PIDS_FILE PREFIX DIR
  local what=$1 pids=$2 prefix=$3 dir=$4 deadline=$(( SECONDS + 10 )) left pid start
  while :; do
    left=""
    while read -r pid start; do
      gone "$pid" "$start" || left+=" $pid"
    done <"$pids"
    [[ -z "$left" ]] && break
    (( SECONDS < deadline )) || fail "$what: processes still alive:$left"
    sleep 0.1  # poll interval
  done
  [[ "$(wc -l <"$pids")" -gt 0 ]] || fail "$what: no processes were recorded"
  # Also any process started with a path in DIR (faasd, redis-server, postgres), recorded or not.
  deadline=$(( SECONDS + 10 ))
  while left=$(with_in_cmdline "$dir/") && [[ -n "$left" ]]; do
    (( SECONDS < deadline )) || fail "$what: processes with $dir in their command line: $left"
    sleep 0.1  # poll interval
  done
  if ip -o link show | grep -q ": ${prefix}[bhp]"; then
    fail "$what: links left: $(ip -o link show | grep ": $prefix")"
  fi
  [[ ! -e "$dir/state" && ! -e "$dir/local-cluster.env" && ! -e "$dir/pg" ]] ||
    fail "$what: state left in $dir: $(ls -la "$dir")"
}

# ---- 1. a failed `up` cleans up after itself ----
echo "== up that fails (a node with an unknown flag)"
FAAS_NODE_ARGS=--no-such-flag "$SCRIPT" up --nodes 1 --gateways 1 --dir "$TMP/bad" \
  >"$TMP/bad.out" 2>&1 &
bad_up=$!
# Its state file is removed by the failure's cleanup: copy it while it grows.
while kill -0 "$bad_up" 2>/dev/null; do
  [[ -f "$TMP/bad/state" ]] && cp "$TMP/bad/state" "$TMP/bad.state" 2>/dev/null
  sleep 0.05  # poll interval: catches the processes recorded before the failure
done
wait "$bad_up" && fail "up with a bad node flag succeeded: $(cat "$TMP/bad.out")"
cat "$TMP/bad.out"
grep -q "faasd n1 exited" "$TMP/bad.out" || fail "the failure does not name the node"
mkdir -p "$TMP/badcopy" && cp "$TMP/bad.state" "$TMP/badcopy/state"
recorded_pids "$TMP/badcopy" >"$TMP/bad.pids"
grep -q '^pid postgres' "$TMP/bad.state" || fail "the failed up never got as far as PostgreSQL"
bad_prefix=$(awk '$1 == "var" && $2 == "prefix" { print $3 }' "$TMP/bad.state")
assert_nothing_left "failed up" "$TMP/bad.pids" "$bad_prefix" "$TMP/bad"

# ---- 2. a cluster of 2 nodes and 2 gateways ----
echo "== up --nodes 2 --gateways 2"
"$SCRIPT" up --nodes 2 --gateways 2 --dir "$DIR" || fail "up failed"
[[ -f "$DIR/local-cluster.env" ]] || fail "no local-cluster.env"
# shellcheck disable=SC1091
. "$DIR/local-cluster.env"
read -r -a gateways <<<"$FAAS_GATEWAYS"
read -r -a node_ids <<<"$FAAS_NODE_IDS"
read -r -a node_pids <<<"$FAAS_NODE_PIDS"
[[ ${#gateways[@]} -eq 2 && ${#node_ids[@]} -eq 2 && ${#node_pids[@]} -eq 2 ]] ||
  fail "env: FAAS_GATEWAYS='$FAAS_GATEWAYS' FAAS_NODE_IDS='$FAAS_NODE_IDS' FAAS_NODE_PIDS='$FAAS_NODE_PIDS'"
for pid in "${node_pids[@]}"; do
  [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == faasd ]] || fail "FAAS_NODE_PIDS: $pid is no faasd"
done
recorded_pids "$DIR" >"$TMP/up.pids"
prefix=$(awk '$1 == "var" && $2 == "prefix" { print $3 }' "$DIR/state")

echo "== node list through gateway 1"
"$BIN/faasctl" node list | tee "$TMP/nodes.txt"
for id in "${node_ids[@]}"; do
  grep -Eq "^$id +up " "$TMP/nodes.txt" || fail "node $id is not up in node list"
done

echo "== deploy through gateway 1 ($FAAS_SERVER), invoke through gateway 2 (${gateways[1]})"
"$BIN/faasctl" deploy hello "$FUNCTIONS/libhello.so" --public || fail "deploy failed"
# Gateway 2 learns of the deploy by notification or its periodic resync: poll.
deadline=$(( SECONDS + 30 ))
until code=$(curl -sS -o "$TMP/body" -D "$TMP/headers" -w '%{http_code}' --max-time 10 \
               "http://${gateways[1]}/function/hello") && [[ "$code" == 200 ]]; do
  (( SECONDS < deadline )) ||
    fail "gateway 2 never served hello: $code $(cat "$TMP/body" 2>/dev/null)"
  sleep 0.2  # poll interval
done
node=$(awk -F': *' 'tolower($1) == "x-faas-node" { sub(/\r$/, "", $2); print $2 }' "$TMP/headers")
[[ " ${node_ids[*]} " == *" $node "* ]] ||
  fail "X-Faas-Node '$node' is not one of '${node_ids[*]}'"
echo "gateway 2 answered 200 from node $node: $(head -c 200 "$TMP/body")"

echo "== status"
"$SCRIPT" status --dir "$DIR" | tee "$TMP/status.txt" || fail "status exit code $?"
for id in "${node_ids[@]}"; do
  grep -Eq "^$id +up " "$TMP/status.txt" || fail "status: node $id not up"
done
[[ $(grep -c ' alive$' "$TMP/status.txt") -eq $(wc -l <"$TMP/up.pids") ]] ||
  fail "status: not every recorded process is alive"

echo "== down"
"$SCRIPT" down --dir "$DIR" || fail "down failed"
assert_nothing_left "down" "$TMP/up.pids" "$prefix" "$DIR"
"$SCRIPT" down --dir "$DIR" || fail "a second down failed"
echo "PASS"
