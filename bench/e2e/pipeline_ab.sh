#!/usr/bin/env bash
# Pipelining off and on (faasd --pipeline-depth 0|1) in one build, alternated round by round,
# each round a full warm_vs_nginx.sh (nginx and the one-hop reference measured in the same round).
#   bench/e2e/pipeline_ab.sh [ROUNDS=3] [DURATION=10s] [CONNECTIONS=32]
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${1:-3}
DURATION=${2:-10s}
CONNS=${3:-32}
for i in $(seq 1 "$ROUNDS"); do
  for depth in 0 1; do
    echo "== round $i, --pipeline-depth $depth, load $(cut -d' ' -f1 /proc/loadavg)"
    FAASD_ARGS="--pipeline-depth $depth" bench/e2e/warm_vs_nginx.sh "$DURATION" "$CONNS" |
      grep -E '^(nginx|one-hop|faasd|throughput) '
  done
done
