#!/usr/bin/env bash
# A scheduler knob of the platform's own cgroup (faas-<pid>, the parent of every function's
# group) against warm throughput: one faasd, `wrk -t1 -c32` rounds on `hello`, alternating the
# values given, each round preceded by writing FILE (design/0041 measured cpu.idle: 0 1 0 1).
#     [FILE=cpu.idle] [ROUNDS="0 1 0 1"] bench/e2e/platform_cgroup_ab.sh [DURATION=6s]
#     FILE=cpu.shares ROUNDS="1024 128 1024 8192" bench/e2e/platform_cgroup_ab.sh   (cgroup v1)
#     FILE=cpu.weight ROUNDS="100 10 100 1000" bench/e2e/platform_cgroup_ab.sh      (cgroup v2)
# (root: faasd must manage cgroups; a release build)
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${1:-6s}
FILE=${FILE:-cpu.idle}
command -v wrk >/dev/null || ./infra/install-deps.sh --bench
source bench/e2e/lib.sh
LOG_LEVEL=error start_faasd
build/bin/faasctl deploy hello build/functions/libhello.so --public >/dev/null
wrk -t1 -c32 -d2s "http://$HTTP/function/hello" >/dev/null  # start the instances
# v1: the cpu hierarchy's copy of the group; v2: the one group. `|| true`: under pipefail, find
# fails on a missing root (no /sys/fs/cgroup/cpu on v2) or on SIGPIPE once head has its line.
GROUP=$(find /sys/fs/cgroup/cpu /sys/fs/cgroup -maxdepth 6 -type d -name "faas-$FAASD" \
  2>/dev/null | head -1 || true)
[[ -n $GROUP && -f $GROUP/$FILE ]] || { echo "no $FILE in faasd's cgroup (${GROUP:-none})" >&2; exit 1; }
echo "group $GROUP"
for v in ${ROUNDS:-0 1 0 1}; do
  echo "$v" > "$GROUP/$FILE"
  out=$(wrk -t1 -c32 -d"$DURATION" --latency "http://$HTTP/function/hello")
  echo "$FILE=$v: $(awk '/Requests\/sec/ {print $2 " req/s"}' <<<"$out"), p99 $(awk '/ 99%/ {print $2}' <<<"$out")"
done
