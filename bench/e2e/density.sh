#!/usr/bin/env bash
# Density (issue #4 item 6c): start N warm idle instances of `hello` and report the private
# (unshared) memory of each instance, from /proc/<pid>/smaps_rollup of every process in the
# instance's cgroup (a process forked from the zygote; with --zygotes=false, the jail's keeper
# and the function process), plus faasd's own RSS idle and with the N instances.
#     bench/e2e/density.sh [N=1000]        (root; release build)
# Extra faasd flags: FAASD_FLAGS="--zygotes=false" bench/e2e/density.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-1000}
source bench/e2e/lib.sh
start_faasd ${FAASD_FLAGS:-}
rss() { awk '/^VmRSS/ {print $2}' "/proc/$FAASD/status"; }
sleep 1
RSS_IDLE=$(rss)
build/bin/faasctl deploy hello build/functions/libhello.so --public --max-instances "$N" \
  --idle-ttl 24h >/dev/null
wait_for_zygote hello
RSS_DEPLOYED=$(rss)
T0=$(date +%s.%N)
left=$N
while (( left > 0 )); do
  chunk=$(( left < 200 ? left : 200 ))
  build/bin/faasctl --rpc-timeout 300s prewarm hello "$chunk" >/dev/null
  left=$(( left - chunk ))
done
T1=$(date +%s.%N)
sleep 2
python3 - "$FAASD" "$N" "$RSS_IDLE" "$RSS_DEPLOYED" "$T0" "$T1" <<'PY'
import os, re, statistics, sys
faasd, n, rss_idle, rss_deployed, t0, t1 = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
marker = f"/faas-{faasd}/"
groups = {}
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        cg = open(f"/proc/{pid}/cgroup").read()
        if marker not in cg:
            continue
        inst = re.search(r"/faas-\d+/(?:f-[^/]+/)?(i-\d+)", cg).group(1)  # below f-<name>
        roll = open(f"/proc/{pid}/smaps_rollup").read()
    except (OSError, AttributeError):
        continue
    kb = lambda k: int(re.search(rf"^{k}:\s+(\d+)", roll, re.M).group(1))
    g = groups.setdefault(inst, {"procs": 0, "private": 0, "pss": 0, "rss": 0})
    g["procs"] += 1
    g["private"] += kb("Private_Clean") + kb("Private_Dirty")
    g["pss"] += kb("Pss")
    g["rss"] += kb("Rss")
priv = sorted(g["private"] for g in groups.values())
pss = sorted(g["pss"] for g in groups.values())
procs = sorted(g["procs"] for g in groups.values())
q = lambda v, p: v[min(len(v) - 1, int(p * len(v)))]
status = open(f"/proc/{faasd}/status").read()
rss_now = int(re.search(r"^VmRSS:\s+(\d+)", status, re.M).group(1))
threads = int(re.search(r"^Threads:\s+(\d+)", status, re.M).group(1))
print(f"instances found: {len(groups)} of {n} ({procs[len(procs) // 2] if procs else 0} processes each); started in {t1 - t0:.1f} s")
if priv:
    print(f"private memory per instance (KiB): p50 {q(priv, .5)}, p90 {q(priv, .9)}, max {priv[-1]}, mean {statistics.mean(priv):.0f}  (target <= 1024)")
    print(f"PSS per instance (KiB): p50 {q(pss, .5)}; all instances together: private {sum(priv) / 1024:.0f} MiB, PSS {sum(pss) / 1024:.0f} MiB")
print(f"faasd RSS: idle {rss_idle / 1024:.1f} MiB, one function deployed {rss_deployed / 1024:.1f} MiB, with {len(groups)} instances {rss_now / 1024:.1f} MiB ({threads} threads)  (target idle <= 30 MiB)")
PY
