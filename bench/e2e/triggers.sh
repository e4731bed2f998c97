#!/usr/bin/env bash
# Queue triggers, measured (issue #7), in one run against one redis-server and one faasd:
#  1. the ceiling: a plain hiredis XREADGROUP (batch 64) + XACK loop over N entries;
#  2. messages/s through the no-op `hello` from a Redis stream (trigger paused while N entries
#     are added, then timed from resume until all N are delivered);
#  3. the same from the embedded queue (N messages published over POST /queues/Q first);
#  4. latency from XADD to the function's handler starting, at low load (one message every
#     20 ms, through `stamp`, which logs its clock next to the producer's).
#   bench/e2e/triggers.sh [N=5000] [CONCURRENCY=4]          (root; release build)
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-5000}
CONC=${2:-4}
source bench/e2e/lib.sh
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
redis-server --port "$PORT" --bind 127.0.0.1 --dir "$WORK" --save "" --appendonly no \
  --logfile "$WORK/redis.log" &
PIDS+=($!)
for _ in $(seq 1 100); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.05; done
start_faasd
ctl() { build/bin/faasctl "$@"; }
ctl deploy hello build/functions/libhello.so --max-instances 16 >/dev/null
ctl deploy stamp build/functions/libstamp.so >/dev/null
KEY=$(ctl key create --tenant bench -o json | python3 -c "import json,sys;print(json.load(sys.stdin)['key'])")

# Seconds until trigger $1 has delivered $2 messages; with a third argument "resume", resumes the
# trigger first, inside the timed span.
await_delivered() {
  python3 - "$1" "$2" "${3:-}" <<'PY'
import json, subprocess, sys, time
name, want = sys.argv[1], int(sys.argv[2])
t0 = time.monotonic()
if sys.argv[3] == "resume":
    subprocess.run(["build/bin/faasctl", "trigger", "resume", name], check=True, capture_output=True)
while True:
    out = subprocess.run(["build/bin/faasctl", "trigger", "list", "-o", "json"], capture_output=True, text=True).stdout
    t = [x for x in json.loads(out)["triggers"] if x["name"] == name][0]
    if int(t["delivered"]) >= want:
        print(f"{time.monotonic() - t0:.3f}")
        break
    time.sleep(0.02)
PY
}

echo "== 1. ceiling: plain hiredis XREADGROUP+XACK =="
build/bench/faas_redis_bench "$PORT" ceiling ceil "$N" 64

echo "== 2. Redis stream -> hello (concurrency $CONC, batch 64) =="
ctl trigger add rs --function hello --source "redis://127.0.0.1:$PORT" --stream rs \
  --concurrency "$CONC" --batch 64 >/dev/null
ctl trigger pause rs >/dev/null
build/bench/faas_redis_bench "$PORT" produce rs "$N"
sleep 1  # a paused trigger must not deliver: check it did not
ctl trigger list -o json | python3 -c "import json,sys;t=[x for x in json.load(sys.stdin)['triggers'] if x['name']=='rs'][0];print('while paused: delivered', t['delivered'], 'lag', t['lag'], 'state', t['state'])"
S_REDIS=$(await_delivered rs "$N" resume)
echo "redis: $N delivered in $S_REDIS s"

echo "== 3. embedded queue -> hello (concurrency $CONC, batch 64) =="
ctl trigger add eq --function hello --source embedded --queue eq --concurrency "$CONC" \
  --batch 64 >/dev/null
ctl trigger pause eq >/dev/null
python3 - "$HTTP" "$KEY" "$N" <<'PY'
import http.client, sys, time
host, port = sys.argv[1].rsplit(":", 1)
c = http.client.HTTPConnection(host, int(port))
t0 = time.monotonic()
for i in range(int(sys.argv[3])):
    c.request("POST", "/queues/eq", body=b"x", headers={"Authorization": "Bearer " + sys.argv[2]})
    r = c.getresponse(); r.read()
    assert r.status == 202, r.status
print(f"published {sys.argv[3]} over HTTP in {time.monotonic() - t0:.3f} s")
PY
S_EMB=$(await_delivered eq "$N" resume)
echo "embedded: $N delivered in $S_EMB s"

echo "== 4. latency XADD -> handler start, one message every 20 ms =="
ctl trigger add lat --function stamp --source "redis://127.0.0.1:$PORT" --stream lat >/dev/null
build/bench/faas_redis_bench "$PORT" latency lat 200 20
await_delivered lat 200 >/dev/null
ctl logs stamp --last 1000 -o json > "$WORK/logs.json"
python3 - "$WORK/logs.json" "$N" "$S_REDIS" "$S_EMB" <<'PY'
import json, statistics, sys
lat = []
for e in json.load(open(sys.argv[1]))["logs"]:
    for line in e["text"].splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0].isdigit():
            lat.append((int(parts[1]) - int(parts[0])) / 1e6)
lat.sort()
q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]
print(f"latency over {len(lat)} messages: p50 {q(0.5):.2f} ms, p90 {q(0.9):.2f} ms, p99 {q(0.99):.2f} ms")
n = int(sys.argv[2])
print(f"throughput: redis {n / float(sys.argv[3]):.0f} msg/s, embedded {n / float(sys.argv[4]):.0f} msg/s")
PY
