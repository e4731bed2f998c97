# Sourced by the bench/e2e scripts: starts one faasd on free loopback ports in a temp dir.
#   cd "$(dirname "$0")/../.." && source bench/e2e/lib.sh
#   [LOG_LEVEL=warn] [FAASD_BIN=dir] start_faasd [faasd flags...]
#       sets WORK, FAASD (pid), HTTP, FAAS_SERVER, FAAS_TOKEN; FAASD_BIN: another build's bin/
# The EXIT trap stops faasd (SIGTERM, by its pid) and removes WORK; scripts that start more
# processes add their pids to PIDS.
WORK=$(mktemp -d /tmp/faas-bench.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
  rm -rf "$WORK"
}
trap cleanup EXIT

start_faasd() {
  "${FAASD_BIN:-build/bin}/faasd" --http 127.0.0.1:0 --grpc 127.0.0.1:0 --data-dir "$WORK/data" \
    --ready-file "$WORK/ready.json" --log-level "${LOG_LEVEL:-warn}" "$@" &
  FAASD=$!
  PIDS+=("$FAASD")
  for _ in $(seq 1 300); do [[ -s "$WORK/ready.json" ]] && break; sleep 0.1; done
  HTTP=$(python3 -c "import json;print(json.load(open('$WORK/ready.json'))['http'])")
  FAAS_SERVER=$(python3 -c "import json;print(json.load(open('$WORK/ready.json'))['grpc'])")
  FAAS_TOKEN=$(cat "$WORK/data/admin-token")
  export FAAS_SERVER FAAS_TOKEN
}

# Waits (up to 10 s each) until each named function has a zygote: after a deploy it starts in the
# background, and until then cold starts spawn a worker instead of forking.
wait_for_zygote() {
  local fn
  for fn in "$@"; do
    for _ in $(seq 100); do
      curl -s "http://$HTTP/metrics" | grep -q "faas_instances{function=\"$fn\",state=\"zygote\"} 1" && break
      sleep 0.1
    done
  done
}
