#!/usr/bin/env bash
# Folded into bench/e2e/cold_start.sh, which measures the forced cold start, the cold start after
# scale-to-zero (with the per-round cgroup-move figure this script used to print) and the one right
# after a deploy in one run. This runs only the after-idle and after-deploy parts:
#   bench/e2e/cold_after_idle.sh [ROUNDS=10]
set -euo pipefail
cd "$(dirname "$0")/../.."
exec bench/e2e/cold_start.sh 0 "${1:-10}"
