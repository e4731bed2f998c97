#!/usr/bin/env bash
# Metering, measured (issue #5):
#  1. warm-path overhead of the ledger: wrk -t1 -c32 on `hello` against a faasd with the ledger
#     and one started with --unsafe-no-ledger, same run, alternating twice;
#  2. billing error over N `burn ?ms=20` invocations: billed CPU (from the instance's cgroup)
#     minus the 20 ms the function measured itself spinning, as a distribution.
#   bench/e2e/metering.sh [DURATION=10s] [N=1000]      (root; release build)
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${1:-10s}
N=${2:-1000}
command -v wrk >/dev/null || ./infra/install-deps.sh --bench
WORK=$(mktemp -d /tmp/faas-bench.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null && wait "$p" 2>/dev/null; done; rm -rf "$WORK"; }
trap cleanup EXIT

start() {  # name extra-flags... -> sets HTTP_<name>, GRPC_<name>
  local name=$1; shift
  build/bin/faasd --http 127.0.0.1:0 --grpc 127.0.0.1:0 --data-dir "$WORK/$name" \
    --ready-file "$WORK/$name.json" --log-level warn "$@" &
  PIDS+=($!)
  for _ in $(seq 1 300); do [[ -s "$WORK/$name.json" ]] && break; sleep 0.1; done
  eval "HTTP_$name=$(python3 -c "import json;print(json.load(open('$WORK/$name.json'))['http'])")"
  eval "GRPC_$name=$(python3 -c "import json;print(json.load(open('$WORK/$name.json'))['grpc'])")"
}
start with
start without --unsafe-no-ledger
for n in with without; do
  g=GRPC_$n
  build/bin/faasctl --server "${!g}" --token "$(cat "$WORK/$n/admin-token")" deploy hello \
    build/functions/libhello.so --max-instances 32 --public >/dev/null
done
rps() { wrk -t1 -c32 -d"$DURATION" --latency "http://$1/function/hello" | awk '/Requests\/sec/ {print $2}'; }
wrk -t1 -c32 -d2s "http://$HTTP_with/function/hello" >/dev/null
wrk -t1 -c32 -d2s "http://$HTTP_without/function/hello" >/dev/null
W1=$(rps "$HTTP_with"); O1=$(rps "$HTTP_without"); W2=$(rps "$HTTP_with"); O2=$(rps "$HTTP_without")
echo "warm hello req/s with ledger:    $W1 $W2"
echo "warm hello req/s without ledger: $O1 $O2"
python3 -c "w=($W1+$W2)/2; o=($O1+$O2)/2; print(f'ledger throughput = {w/o:.3f}x of no ledger (overhead {100*(1-w/o):.1f}%)')"

# Billing error over N burn invocations on a warm instance.
FAAS_TOKEN=$(cat "$WORK/with/admin-token")
export FAAS_TOKEN
build/bin/faasctl --server "$GRPC_with" deploy burn build/functions/libburn.so --max-instances 1 --public >/dev/null
curl -s "http://$HTTP_with/function/burn?ms=1" >/dev/null
for _ in $(seq 1 "$N"); do curl -s -o /dev/null "http://$HTTP_with/function/burn?ms=20"; done
build/bin/faasctl --server "$GRPC_with" invocations burn --last "$N" -o json > "$WORK/inv.json"
python3 - "$WORK/inv.json" <<'PY'
import json, sys, statistics
recs = [r for r in json.load(open(sys.argv[1]))["invocations"] if r["kind"] == "invocation"]
err = sorted(int(r["cpu_ns"]) / 1e6 - 20.0 for r in recs)
billed = sorted(int(r["billed_ms"]) for r in recs)
q = lambda xs, p: xs[min(len(xs) - 1, int(p * len(xs)))]
print(f"billing error over {len(err)} burn ?ms=20 invocations (cgroup CPU - 20 ms):")
print(f"  median {statistics.median(err):+.3f} ms  p90 {q(err,.9):+.3f}  p99 {q(err,.99):+.3f}  "
      f"min {err[0]:+.3f}  max {err[-1]:+.3f}")
print(f"  billed ms: median {statistics.median(billed)}  max {billed[-1]};  "
      f"within max(1 ms, 1%): {sum(abs(e) <= 1.0 for e in err)}/{len(err)}")
PY
