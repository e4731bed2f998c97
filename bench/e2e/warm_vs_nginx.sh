#!/usr/bin/env bash
# Warm invocation throughput and latency of faasd's `hello` vs nginx returning a static 200 and vs
# the one-process-hop reference (nginx proxying over a unix socket with keep-alive to a second
# nginx that answers 200), all on loopback, with the same wrk settings in the same run (docs/benchmarks.md).
#   bench/e2e/warm_vs_nginx.sh [DURATION=10s] [CONNECTIONS=32]
#   FAASD_BIN=/other/build/bin bench/e2e/warm_vs_nginx.sh   (another build's faasd, e.g. a baseline)
#   FAASD_ARGS="--pipeline-depth 1" bench/e2e/warm_vs_nginx.sh   (extra faasd flags)
#   DEPLOY_ARGS="--max-instances 4" bench/e2e/warm_vs_nginx.sh   (extra flags for deploying hello)
# Needs a release build (cmake --build build) and: ./infra/install-deps.sh --bench
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${1:-10s}
CONNS=${2:-32}
command -v wrk >/dev/null && command -v nginx >/dev/null || ./infra/install-deps.sh --bench
WORK=$(mktemp -d /tmp/faas-bench.XXXXXX)
cleanup() {
  [[ -n "${FAASD:-}" ]] && kill -TERM "$FAASD" 2>/dev/null && wait "$FAASD" 2>/dev/null
  [[ -f "$WORK/nginx.pid" ]] && kill -QUIT "$(cat "$WORK/nginx.pid")" 2>/dev/null
  [[ -f "$WORK/backend.pid" ]] && kill -QUIT "$(cat "$WORK/backend.pid")" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
chmod 755 "$WORK"  # nginx workers run as nobody and must reach the unix socket in it

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
NGINX_PORT=$(free_port)
HOP_PORT=$(free_port)
# start_nginx NAME SERVERS: one nginx, one worker process, its pid and temp files under $WORK/NAME.
start_nginx() {
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
HELLO='location / { return 200 "Hello from faas!\n"; }'
start_nginx backend "server { listen unix:$WORK/backend.sock; $HELLO }"
start_nginx nginx "server { listen 127.0.0.1:$NGINX_PORT; $HELLO }
  upstream backend { server unix:$WORK/backend.sock; keepalive 64; }
  server {
    listen 127.0.0.1:$HOP_PORT;
    location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection \"\"; }
  }"

"${FAASD_BIN:-build/bin}/faasd" --http 127.0.0.1:0 --grpc 127.0.0.1:0 --data-dir "$WORK/data" \
  --ready-file "$WORK/ready.json" --log-level warn ${FAASD_ARGS:-} &
FAASD=$!
for _ in $(seq 1 300); do [[ -s "$WORK/ready.json" ]] && break; sleep 0.1; done
HTTP=$(python3 -c "import json;print(json.load(open('$WORK/ready.json'))['http'])")
GRPC=$(python3 -c "import json;print(json.load(open('$WORK/ready.json'))['grpc'])")
FAAS_TOKEN=$(cat "$WORK/data/admin-token")
export FAAS_TOKEN
build/bin/faasctl --server "$GRPC" deploy hello build/functions/libhello.so --public ${DEPLOY_ARGS:-} >/dev/null
FIRST=$(curl -s -D - -o /dev/null "http://$HTTP/function/hello" | tr -d '\r' | grep -i '^server-timing')
echo "first invocation after deploy (cold start): $FIRST"

run() {  # name url -> prints "name rps p50 p99"
  wrk -t1 -c"$CONNS" -d"$DURATION" --latency "$2" > "$WORK/$1.txt"
  local rps p50 p99
  rps=$(awk '/Requests\/sec/ {print $2}' "$WORK/$1.txt")
  p50=$(awk '$1=="50%" {print $2}' "$WORK/$1.txt")
  p99=$(awk '$1=="99%" {print $2}' "$WORK/$1.txt")
  echo "$1 $rps $p50 $p99"
}
wrk -t1 -c"$CONNS" -d2s "http://$HTTP/function/hello" >/dev/null  # warm up instances
N=$(run nginx "http://127.0.0.1:$NGINX_PORT/")
H=$(run one-hop "http://127.0.0.1:$HOP_PORT/")
F=$(run faasd "http://$HTTP/function/hello")
printf '%-8s %12s %10s %10s\n' target req/s p50 p99
printf '%-8s %12s %10s %10s\n' $N
printf '%-8s %12s %10s %10s\n' $H
printf '%-8s %12s %10s %10s\n' $F
python3 - "$N" "$H" "$F" <<'PY'
import sys
def ms(v):
    return float(v[:-2]) if v.endswith("ms") else float(v[:-2]) / 1000 if v.endswith("us") else float(v[:-1]) * 1000
n, h, f = (a.split() for a in sys.argv[1:4])
print(f"throughput faasd/nginx = {float(f[1]) / float(n[1]):.2f}x   p99 faasd/nginx = {ms(f[3]) / ms(n[3]):.1f}x")
print(f"throughput faasd/one-hop = {float(f[1]) / float(h[1]):.2f}x   p99 faasd/one-hop = {ms(f[3]) / ms(h[3]):.1f}x")
PY
