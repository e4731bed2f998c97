#!/usr/bin/env bash
# Cold starts of `hello` vs a bare fork in the same run: starts a faasd, deploys, runs
# build/bench/faas_coldstart_bench (see bench/e2e/cold_start.cc).   bench/e2e/cold_start.sh [N=200]
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-200}
WORK=$(mktemp -d /tmp/faas-bench.XXXXXX)
build/bin/faasd --http 127.0.0.1:0 --grpc 127.0.0.1:0 --data-dir "$WORK/data" \
  --ready-file "$WORK/ready.json" --log-level warn &
FAASD=$!
trap 'kill -TERM $FAASD 2>/dev/null; wait $FAASD 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 1 300); do [[ -s "$WORK/ready.json" ]] && break; sleep 0.1; done
GRPC=$(python3 -c "import json;print(json.load(open('$WORK/ready.json'))['grpc'])")
FAAS_TOKEN=$(cat "$WORK/data/admin-token")
export FAAS_TOKEN
build/bin/faasctl --server "$GRPC" deploy hello build/functions/libhello.so --public >/dev/null
build/bench/faas_coldstart_bench --server "$GRPC" --function hello -n "$N"
