#!/usr/bin/env bash
# Isolation under load (issue #4 item 6d): the p99 of a well-behaved function (`hello`) alone, and
# while a hostile function is invoked at full rate next to it (wrk -t1 -c4) in each of its
# modes: fork bomb, memory balloon, CPU-spinning threads, and timeouts (churn). hello gets an
# open-loop load at a fixed RATE (faas_paced_load: latency from each request's scheduled time),
# not a closed loop at saturation: with wrk -c16 hello alone already takes both cores, and then
# any neighbour that uses any CPU raises its p99 (measured: a harmless neighbour, 3.7x), which
# is CPU contention, not a failure of isolation. Baselines alternate with the hostile runs so
# drift shows; each hostile run is compared with the mean of the baselines around it.
#     [RATE=1000] bench/e2e/isolation.sh [DURATION=10s]
# (root; needs the test build for build/tests/testdata/libhostile.so)
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${1:-10s}
RATE=${RATE:-1000}
HOSTILE=build/tests/testdata/libhostile.so
[[ -f $HOSTILE ]] || { echo "build the tests first (ninja -C build testdata_hostile)" >&2; exit 1; }
[[ -x build/bench/faas_paced_load ]] || { echo "build the benchmarks first (ninja -C build)" >&2; exit 1; }
command -v wrk >/dev/null || ./infra/install-deps.sh --bench
source bench/e2e/lib.sh
LOG_LEVEL=error start_faasd ${FAASD_FLAGS:-}
build/bin/faasctl deploy hello build/functions/libhello.so --public --max-instances 16 >/dev/null
build/bin/faasctl deploy hostile "$HOSTILE" --public --timeout 1s --memory 64 \
  --max-instances 4 --queue-timeout 100ms >/dev/null
build/bin/faasctl deploy sleeper build/functions/libsleep.so --public --timeout 1s \
  --max-instances 4 --queue-timeout 100ms >/dev/null

p99() {  # paced load on hello -> "req/s p99ms"
  build/bench/faas_paced_load --addr "$HTTP" --path /function/hello --rate "$RATE" -c 8 \
    -d "${DURATION%s}" | tr ' ' '\n' | awk -F= '$1=="rate" {r=$2} $1=="p99" {p=$2} END {print r, p "ms"}'
}
with_hostile() {  # mode -> hello's "req/s p99" while the hostile mode runs at full rate
  local url="http://$HTTP/function/hostile?do=$1"
  [[ $1 == timeout ]] && url="http://$HTTP/function/sleeper?ms=5000"
  wrk -t1 -c4 -d"$DURATION" "$url" >/dev/null 2>&1 &
  local h=$!
  sleep 0.5
  p99
  wait $h || true
}
wrk -t1 -c8 -d2s "http://$HTTP/function/hello" >/dev/null
# timeout: `sleep` outlives its 1 s timeout and is killed, using no CPU: instance churn alone.
MODES=(fork-bomb balloon busy-threads timeout)
RESULTS=("$(p99)")
for m in "${MODES[@]}"; do
  RESULTS+=("$(with_hostile "$m")" "$(p99)")
done
echo "hello alone (req/s p99): ${RESULTS[0]} | ${RESULTS[2]} | ${RESULTS[4]} | ${RESULTS[6]} | ${RESULTS[8]}"
for i in "${!MODES[@]}"; do
  echo "hello next to ${MODES[$i]}: ${RESULTS[$((2 * i + 1))]}"
done
python3 - "${MODES[*]}" "${RESULTS[@]}" <<'PY'
import sys
def ms(v):
    for unit, f in (("us", 1e-3), ("ms", 1.0), ("s", 1e3)):
        if v.endswith(unit):
            return float(v[: -len(unit)]) * f
modes, r = sys.argv[1].split(), sys.argv[2:]
for i, name in enumerate(modes):
    base = (ms(r[2 * i].split()[1]) + ms(r[2 * i + 2].split()[1])) / 2
    p = ms(r[2 * i + 1].split()[1])
    print(f"{name:13s} p99 {p:7.2f} ms vs {base:6.2f} ms alone (mean of the runs around it): "
          f"{p / base:5.2f}x ({100 * (p / base - 1):+.0f} %, target <= +20 %)")
PY
curl -s "http://$HTTP/metrics" | grep -E '^faas_invocations_total\{function="hostile"' || true
