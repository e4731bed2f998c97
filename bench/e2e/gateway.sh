#!/usr/bin/env bash
# Gateway edge cost, measured (issue #6), all against one faasd in one run:
#  1. /function/hello with auth + rate limiting off (a public function, no limits) vs on (a
#     private function with a per-function rate limit, called with an API key that has its own
#     rate limit; both limits far above the load so every request is served);
#  2. the cost of refusing: the 401 path (no key) and the 429 path (a key whose bucket is empty)
#     in requests/s next to the served request.
# wrk -t1 -c32 for DURATION each, alternating on/off twice.   bench/e2e/gateway.sh [DURATION=10s]
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${1:-10s}
command -v wrk >/dev/null || ./infra/install-deps.sh --bench
source bench/e2e/lib.sh
start_faasd
key() { build/bin/faasctl key create -o json "$@" | python3 -c "import json,sys;print(json.load(sys.stdin)['key'])"; }
build/bin/faasctl deploy open build/functions/libhello.so --public --max-instances 32 >/dev/null
build/bin/faasctl deploy guarded build/functions/libhello.so --max-instances 32 \
  --rate 1000000/s --burst 1000000 >/dev/null
KEY=$(key --tenant bench --rate 1000000/s --burst 1000000)
EMPTY=$(key --tenant bench --rate 1/h --burst 1)
curl -s -o /dev/null -H "Authorization: Bearer $EMPTY" "http://$HTTP/function/guarded"  # spend it

run() {  # url [header] -> "req/s p50 p99"
  local url=$1; shift
  local args=(-t1 -c32 -d"$DURATION" --latency)
  [[ $# -gt 0 ]] && args+=(-H "$1")
  wrk "${args[@]}" "$url" | awk '/Requests\/sec/ {r=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2} END {print r, p50, p99}'
}
wrk -t1 -c32 -d2s "http://$HTTP/function/open" >/dev/null
wrk -t1 -c32 -d2s -H "Authorization: Bearer $KEY" "http://$HTTP/function/guarded" >/dev/null
OFF1=$(run "http://$HTTP/function/open")
ON1=$(run "http://$HTTP/function/guarded" "Authorization: Bearer $KEY")
OFF2=$(run "http://$HTTP/function/open")
ON2=$(run "http://$HTTP/function/guarded" "Authorization: Bearer $KEY")
R401=$(run "http://$HTTP/function/guarded")
R429=$(run "http://$HTTP/function/guarded" "Authorization: Bearer $EMPTY")
echo "served, auth+limits off (req/s p50 p99): $OFF1 | $OFF2"
echo "served, auth+limits on  (req/s p50 p99): $ON1 | $ON2"
echo "refused 401, no key     (req/s p50 p99): $R401"
echo "refused 429, empty key  (req/s p50 p99): $R429"
python3 - "$OFF1" "$OFF2" "$ON1" "$ON2" "$R401" "$R429" <<'PY'
import sys
v = [float(a.split()[0]) for a in sys.argv[1:]]
off, on = (v[0] + v[1]) / 2, (v[2] + v[3]) / 2
print(f"auth + rate limiting: {on / off:.3f}x the throughput without (overhead {100 * (1 - on / off):.1f}%)")
print(f"401 path: {v[4] / on:.2f}x the rate of a served request; 429 path: {v[5] / on:.2f}x")
PY
curl -s "http://$HTTP/metrics" | grep -E '^faas_http_rejections_total' || true
