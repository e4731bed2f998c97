#!/usr/bin/env bash
# Cold starts of `hello` vs a bare fork in the same run: starts a faasd, deploys, runs
# build/bench/faas_coldstart_bench (see bench/e2e/cold_start.cc).   bench/e2e/cold_start.sh [N=200]
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-200}
source bench/e2e/lib.sh
start_faasd
build/bin/faasctl deploy hello build/functions/libhello.so --public >/dev/null
build/bench/faas_coldstart_bench --server "$FAAS_SERVER" --function hello -n "$N"
