#!/usr/bin/env bash
# What idle keep-alive connections cost faasd, and whether they slow the busy ones: opens N idle
# connections (each has made one request), reports faasd's threads and RSS before and with them
# (and the difference, at once and again once the blocking pool's idle threads have exited: the
# pool keeps a thread 10 s after its last task), then `wrk -t1 -c32` to `hello` without and with
# the idle connections held open, in one run.
#   bench/e2e/connections.sh [N=2000] [DURATION=10s]
# FAASD_BIN=dir runs another build's faasd (A/B). Needs wrk: ./infra/install-deps.sh --bench
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-2000}
DURATION=${2:-10s}
command -v wrk >/dev/null || ./infra/install-deps.sh --bench
ulimit -n $((N + 4096))
source bench/e2e/lib.sh
LOG_LEVEL=warn start_faasd --max-connections-per-ip 0 --max-connections $((N + 1000))
"${FAASD_BIN:-build/bin}/faasctl" deploy hello build/functions/libhello.so --public >/dev/null
wait_for_zygote hello
URL="http://$HTTP/function/hello"

usage() {  # threads and RSS (KiB) of faasd
  awk '/^Threads:/ {t=$2} /^VmRSS:/ {r=$2} END {printf "%s threads, %.1f MiB RSS", t, r/1024}' \
    "/proc/$FAASD/status"
}
threads() { awk '/^Threads:/ {print $2}' "/proc/$FAASD/status"; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$FAASD/status"; }
delta() {  # "+T threads, +M MiB RSS" against the idle figures
  awk -v t="$(threads)" -v r="$(rss_kib)" -v t0="$IDLE_THREADS" -v r0="$IDLE_RSS" \
    'BEGIN {printf "%+d threads, %+.1f MiB RSS", t - t0, (r - r0) / 1024}'
}
bench() {  # prints "req/s p50 p99"
  wrk -t1 -c32 -d"$DURATION" --latency "$URL" > "$WORK/wrk.txt"
  awk '/Requests\/sec/ {r=$2} $1=="50%" {p50=$2} $1=="99%" {p99=$2} END {print r, p50, p99}' \
    "$WORK/wrk.txt"
}

wrk -t1 -c32 -d2s "$URL" >/dev/null  # warm up the instances
echo "faasd idle: $(usage)"
IDLE_THREADS=$(threads)
IDLE_RSS=$(rss_kib)
ALONE=$(bench)

# The idle clients: one request each, then the connection stays open until stdin closes.
mkfifo "$WORK/hold"
python3 - "$HTTP" "$N" "$WORK/ready" < "$WORK/hold" <<'PY' &
import socket, sys
host, port = sys.argv[1].rsplit(":", 1)
n, ready = int(sys.argv[2]), sys.argv[3]
conns = []
for _ in range(n):
    s = socket.create_connection((host, int(port)))
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    conns.append(s)
for s in conns:
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(4096)
open(ready, "w").write("ok")
sys.stdin.read()  # hold the connections until the script ends
PY
HOLDER=$!
PIDS+=("$HOLDER")
exec 3>"$WORK/hold"
for _ in $(seq 1 600); do [[ -s "$WORK/ready" ]] && break; sleep 0.1; done
[[ -s "$WORK/ready" ]] || { echo "the idle clients did not connect"; exit 1; }
echo "faasd with $N idle connections: $(usage)"
echo "idle connections cost, at once: $(delta)"
# Threads that served the one request of each connection belong to the blocking pool, not to the
# connections: wait (up to 20 s) for them to exit, then the connections' own cost remains.
for _ in $(seq 1 200); do (( $(threads) <= IDLE_THREADS )) && break; sleep 0.1; done
echo "idle connections cost, once the blocking pool is idle again: $(delta)"
HELD=$(bench)
exec 3>&-

printf '%-28s %10s %8s %8s\n' "wrk -c32 to hello" req/s p50 p99
printf '%-28s %10s %8s %8s\n' "alone" $ALONE
printf '%-28s %10s %8s %8s\n' "next to $N idle connections" $HELD
