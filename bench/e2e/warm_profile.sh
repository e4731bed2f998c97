#!/usr/bin/env bash
# Where a warm request's time goes: perf stat on each server-side process during `wrk -tT -cC` to
# faasd's `hello` and to the one-hop reference (nginx → nginx over a unix socket, the config of
# warm_vs_nginx.sh), divided by the requests wrk completed in the same window. Prints wrk's req/s
# and p99 and, per request and per side: syscalls (total and by kind), context switches (each one
# a sleep, so a wake-up someone paid for) and CPU time; and faasd's CPU by thread.
# docs/design/0015-warm-path-batching.md reads it.
#   bench/e2e/warm_profile.sh [DURATION_S=6] [CONNECTIONS=32]
#   FAASD_BIN=/other/build/bin bench/e2e/warm_profile.sh   (another build's faasd)
#   FAASD_ARGS="--pipeline-depth 1" bench/e2e/warm_profile.sh   (extra faasd flags)
#   DEPLOY_ARGS="--max-instances 4" bench/e2e/warm_profile.sh   (extra flags for deploying hello)
#   PERF_RECORD=/tmp/faasd.data bench/e2e/warm_profile.sh   (also `perf record -g` on faasd over a
#     further DURATION of wrk, after the counts; read it with `perf report -i /tmp/faasd.data`;
#     PERF_RECORD_ARGS replaces "-g -F 4000", e.g. "-e probe_libc:malloc --call-graph dwarf")
# Needs root (perf on other processes), a release build, perf, wrk and nginx.
set -euo pipefail
cd "$(dirname "$0")/../.."
DUR=${1:-6}
CONNS=${2:-32}
WORK=$(mktemp -d /tmp/faas-profile.XXXXXX)
cleanup() {
  [[ -n "${FAASD:-}" ]] && kill -TERM "$FAASD" 2>/dev/null && wait "$FAASD" 2>/dev/null
  for n in front backend; do
    [[ -f "$WORK/$n.pid" ]] && kill -QUIT "$(cat "$WORK/$n.pid")" 2>/dev/null
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
chmod 755 "$WORK"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
HOP_PORT=$(free_port)
start_nginx() {  # NAME SERVERS
  mkdir -p "$WORK/$1"
  cat > "$WORK/$1.conf" <<CONF
worker_processes 1;
pid $WORK/$1.pid;
error_log $WORK/$1/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $WORK/$1; proxy_temp_path $WORK/$1; fastcgi_temp_path $WORK/$1;
  uwsgi_temp_path $WORK/$1; scgi_temp_path $WORK/$1;
  $2
}
CONF
  nginx -c "$WORK/$1.conf"
}
start_nginx backend "server { listen unix:$WORK/backend.sock; location / { return 200 \"Hello from faas!\n\"; } }"
start_nginx front "upstream backend { server unix:$WORK/backend.sock; keepalive 64; }
  server { listen 127.0.0.1:$HOP_PORT;
    location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection \"\"; } }"

"${FAASD_BIN:-build/bin}/faasd" --http 127.0.0.1:0 --grpc 127.0.0.1:0 --data-dir "$WORK/data" \
  --ready-file "$WORK/ready.json" --log-level warn ${FAASD_ARGS:-} &
FAASD=$!
for _ in $(seq 1 300); do [[ -s "$WORK/ready.json" ]] && break; sleep 0.1; done
HTTP=$(python3 -c "import json;print(json.load(open('$WORK/ready.json'))['http'])")
GRPC=$(python3 -c "import json;print(json.load(open('$WORK/ready.json'))['grpc'])")
FAAS_TOKEN=$(cat "$WORK/data/admin-token")
export FAAS_TOKEN
build/bin/faasctl --server "$GRPC" deploy hello build/functions/libhello.so --public ${DEPLOY_ARGS:-} >/dev/null
wrk -t1 -c"$CONNS" -d2s "http://$HTTP/function/hello" >/dev/null  # start the instances
wrk -t1 -c"$CONNS" -d1s "http://127.0.0.1:$HOP_PORT/" >/dev/null

# Instances are the leaves of faasd's process tree (zygotes have children).
descendants() { local p; for p in $(pgrep -P "$1"); do echo "$p"; descendants "$p"; done; }
leaves() { local p; for p in $(descendants "$1"); do [[ -z "$(pgrep -P "$p")" ]] && echo "$p"; done; }
nginx_workers() { pgrep -P "$(cat "$WORK/$1.pid")" | paste -sd,; }
KINDS="recvfrom recvmsg sendto sendmsg writev write read pread64 epoll_wait epoll_pwait epoll_ctl"
KINDS+=" poll ppoll futex clock_gettime ftruncate newfstat newfstatat pwrite64 lseek getrandom close"
EVENTS="raw_syscalls:sys_enter,context-switches,task-clock"
for k in $KINDS; do EVENTS+=",syscalls:sys_enter_$k"; done
# More events counted per request, e.g. allocations (after `perf probe -x LIBC malloc`):
#   PERF_EXTRA_EVENTS=probe_libc:malloc bench/e2e/warm_profile.sh
[[ -n "${PERF_EXTRA_EVENTS:-}" ]] && EVENTS+=",$PERF_EXTRA_EVENTS"

# thread_cpu PID: "tid comm utime+stime" of each of its threads (clock ticks).
thread_cpu() {
  local t
  for t in /proc/"$1"/task/*; do
    echo "${t##*/} $(cat "$t/comm") $(awk '{print $14 + $15}' "$t/stat")"
  done
}
# profile NAME URL SIDE=PIDS... : wrk for DUR s with perf stat on each side over the same window.
profile() {
  local name=$1 url=$2
  shift 2
  local pids=()
  for side in "$@"; do
    perf stat -x, -e "$EVENTS" -p "${side#*=}" -o "$WORK/$name.${side%%=*}.csv" &
    pids+=($!)
  done
  sleep 0.3  # perf attached
  [[ $name == faasd ]] && thread_cpu "$FAASD" > "$WORK/threads.before"
  wrk -t1 -c"$CONNS" -d"${DUR}s" --latency "$url" > "$WORK/$name.wrk"
  [[ $name == faasd ]] && thread_cpu "$FAASD" > "$WORK/threads.after"
  kill -INT "${pids[@]}"
  wait "${pids[@]}" 2>/dev/null || true
  local reqs
  reqs=$(awk '/requests in/ {print $1}' "$WORK/$name.wrk")
  echo "== $name: $(awk '/Requests\/sec/ {print $2}' "$WORK/$name.wrk") req/s," \
    "p99 $(awk '$1 == "99%" {print $2}' "$WORK/$name.wrk"); per request:"
  for side in "$@"; do
    python3 - "${side%%=*}" "$reqs" "$WORK/$name.${side%%=*}.csv" <<'PY'
import sys
side, reqs, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
vals = {}
for line in open(path):
    f = line.strip().split(",")
    if len(f) > 3 and f[0] and f[0][0].isdigit():
        vals[f[2]] = float(f[0])
    elif len(f) > 3 and f[0].startswith("<not"):
        vals[f[2]] = 0.0
total = vals.get("raw_syscalls:sys_enter", 0) / reqs
cs = vals.get("context-switches", 0) / reqs
cpu_us = vals.get("task-clock", 0) * 1000 / reqs  # task-clock is in ms
kinds = sorted(((v / reqs, k.split("sys_enter_")[1]) for k, v in vals.items()
                if "sys_enter_" in k and v > 0), reverse=True)
detail = " ".join(f"{k} {v:.2f}" for v, k in kinds if v >= 0.01)
extra = "".join(f"  {k} {v / reqs:.2f}" for k, v in vals.items()
                if k not in ("raw_syscalls:sys_enter", "context-switches", "task-clock")
                and "sys_enter_" not in k)
print(f"  {side:9s} syscalls {total:5.2f}  context switches {cs:4.2f}  CPU {cpu_us:5.1f} us{extra}"
      f"   [{detail}]")
PY
  done
  [[ $name == faasd ]] || return 0
  # faasd's CPU by thread name (faas-http-N, faas-ledger, ...), from /proc in clock ticks.
  python3 - "$reqs" "$WORK/threads.before" "$WORK/threads.after" <<'PY'
import os, sys
reqs = int(sys.argv[1])
read = lambda p: {f[0]: (f[1], int(f[2])) for f in (l.split() for l in open(p))}
before, after = read(sys.argv[2]), read(sys.argv[3])
by = {}
for tid, (comm, ticks) in after.items():
    by[comm] = by.get(comm, 0) + ticks - before.get(tid, (comm, 0))[1]
us = 1e6 / os.sysconf("SC_CLK_TCK") / reqs
print("  faasd by thread: " + ", ".join(f"{k} {v * us:.1f} us" for k, v in
                                        sorted(by.items(), key=lambda kv: -kv[1]) if v > 0))
PY
}
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
profile faasd "http://$HTTP/function/hello" faasd="$FAASD" instances="$(leaves "$FAASD" | paste -sd,)"
profile one-hop "http://127.0.0.1:$HOP_PORT/" front="$(nginx_workers front)" backend="$(nginx_workers backend)"
if [[ -n "${PERF_RECORD:-}" ]]; then
  perf record -q ${PERF_RECORD_ARGS:--g -F 4000} -p "$FAASD" -o "$PERF_RECORD" 2>/dev/null &
  REC=$!
  sleep 0.3  # perf attached
  wrk -t1 -c"$CONNS" -d"${DUR}s" "http://$HTTP/function/hello" >/dev/null
  kill -INT "$REC"
  wait "$REC" 2>/dev/null || true
  echo "perf record of faasd: $PERF_RECORD"
fi
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
