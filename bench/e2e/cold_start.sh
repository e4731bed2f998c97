#!/usr/bin/env bash
# Cold starts of `hello` vs a bare fork in the same run: starts a faasd, deploys, runs
# build/bench/faas_coldstart_bench (see bench/e2e/cold_start.cc).   bench/e2e/cold_start.sh [N=200]
# Extra faasd flags: FAASD_FLAGS="--zygotes=false" bench/e2e/cold_start.sh (every instance spawned)
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-200}
source bench/e2e/lib.sh
start_faasd ${FAASD_FLAGS:-}
build/bin/faasctl deploy hello build/functions/libhello.so --public >/dev/null
# Every HTTP request to hello-fresh is a forced cold start (a new instance, discarded after).
build/bin/faasctl deploy hello-fresh build/functions/libhello.so --public --isolation fresh >/dev/null
wait_for_zygote hello hello-fresh
build/bench/faas_coldstart_bench --server "$FAAS_SERVER" --function hello -n "$N" \
  --http "$HTTP" --http-function hello-fresh
