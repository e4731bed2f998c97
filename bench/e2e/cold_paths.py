#!/usr/bin/env python3
"""The two cold starts users meet, each next to a bare fork under the same conditions (issue #14;
run by bench/e2e/cold_start.sh, which starts faasd and deploys; docs/benchmarks.md):

  after scale-to-zero  `idle` (deployed --idle-ttl 1s): poll /metrics until it has no instance,
                       pause, call. In the same round, each after the same pause: a warm call to
                       `warm` (an instance kept), a bare fork of faas-fork-baseline (libc only),
                       and the move of a forked child into a cgroup (the step every instance
                       takes, which after a pause waits for an RCU grace period unless the kernel
                       favours dynamic cgroup changes: docs/design/0010).
  right after deploy   deploy a new version of `dep` (its env changes each time), call it at
                       once, then once more (warm); and after another deploy, a bare fork.

Every call opens its own loopback connection (cold and warm alike, so the connect cancels out of
the overhead). The order of the steps in a round alternates. Prints each round, then medians and
the ratios: (cold - warm) / fork, the overhead over a warm call in bare forks.

  cold_paths.py --http H:P --rounds N --pause S --faasctl BIN --fork BIN --move BIN --cgroup PROCS
                --lib LIB
"""
import argparse
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import time


EXEC = {}


def call(addr, fn):
    """One GET on a new connection: (ms, cold flag, Server-Timing cold ms, invocation id); the
    Server-Timing exec ms (the first request's exchange) goes into EXEC[fn]."""
    host, port = addr.rsplit(":", 1)
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.request("GET", "/function/" + fn)
    res = conn.getresponse()
    res.read()
    ms = (time.perf_counter() - t0) * 1e3
    conn.close()
    if res.status != 200:
        sys.exit(f"GET /function/{fn}: {res.status}")
    timing = res.getheader("server-timing", "")
    m = re.search(r"cold;dur=([0-9.]+)", timing)
    e = re.search(r"exec;dur=([0-9.]+)", timing)
    EXEC.setdefault(fn, []).append(float(e.group(1)) if e else -1)
    return (ms, res.getheader("x-faas-cold-start"), float(m.group(1)) if m else -1,
            res.getheader("x-invocation-id"))


def instances(addr, fn):
    """Idle + busy instances of fn, from /metrics."""
    host, port = addr.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.request("GET", "/metrics")
    body = conn.getresponse().read().decode()
    conn.close()
    n = 0
    for state in ("idle", "busy"):
        m = re.search(r'^faas_instances\{function="%s",state="%s"\} ([0-9.]+)' % (fn, state),
                      body, re.M)
        n += float(m.group(1)) if m else 0
    return n


def run(args):
    return float(subprocess.run(args, check=True, capture_output=True, text=True).stdout.split()[0])


def deploy(a, fn, env):
    t0 = time.perf_counter()
    subprocess.run([a.faasctl, "deploy", fn, a.lib, "--public", "--env", env], check=True,
                   stdout=subprocess.DEVNULL)
    return (time.perf_counter() - t0) * 1e3


def med(rows, key):
    return statistics.median(r[key] for r in rows)


def main():
    p = argparse.ArgumentParser()
    for flag in ("--http", "--faasctl", "--fork", "--move", "--cgroup", "--lib"):
        p.add_argument(flag, required=True)
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--pause", type=float, default=2.5)
    p.add_argument("--idle", default="hello-idle")
    p.add_argument("--warm", default="hello")
    p.add_argument("--dep", default="hello-deploy")
    a = p.parse_args()
    pause_ms = str(int(a.pause * 1000))

    print(f"\n== cold start after scale-to-zero: {a.rounds} rounds, each step after a "
          f"{a.pause} s pause ==")
    print("round  cold_ms  flag  server_cold_ms  server_exec_ms  warm_ms  fork_ms  move_ms")
    idle_rows = []
    for i in range(a.rounds):
        row = {}

        def cold():
            deadline = time.monotonic() + 60
            while instances(a.http, a.idle) > 0:  # scale-to-zero: poll, do not guess
                if time.monotonic() > deadline:
                    sys.exit(f"{a.idle} did not scale to zero within 60 s")
                time.sleep(0.05)
            time.sleep(a.pause)
            row["cold"], row["flag"], row["server"], _ = call(a.http, a.idle)
            row["exec"] = EXEC[a.idle][-1]

        def warm():
            time.sleep(a.pause)
            row["warm"], flag, _, _ = call(a.http, a.warm)
            if flag != "false":
                sys.exit(f"{a.warm} was not warm")

        def fork():
            row["fork"] = run([a.fork, pause_ms, "1"])  # sleeps the pause itself

        def move():
            time.sleep(a.pause)
            row["move"] = run([a.move, a.cgroup])

        steps = [cold, warm, fork, move]
        for step in (steps if i % 2 == 0 else steps[::-1]):
            step()
        idle_rows.append(row)
        print(f"{i:5d} {row['cold']:8.3f} {row['flag']:>5} {row['server']:15.3f} "
              f"{row['exec']:15.3f} "
              f"{row['warm']:8.3f} {row['fork']:8.3f} {row['move']:8.3f}", flush=True)

    print(f"\n== cold start right after a deploy: {a.rounds} rounds ==")
    print("round  deploy_ms  first_ms  flag  server_cold_ms  server_exec_ms  warm_ms  fork_ms")
    dep_rows = []
    first_ids = []
    for i in range(a.rounds):
        row = {}

        def first():
            row["deploy"] = deploy(a, a.dep, f"ROUND={i}a")
            row["first"], row["flag"], row["server"], inv = call(a.http, a.dep)
            row["exec"] = EXEC[a.dep][-1]
            first_ids.append(inv)
            row["warm"], flag, _, _ = call(a.http, a.dep)
            if flag != "false":
                sys.exit(f"the second call to {a.dep} was not warm")

        def fork():
            deploy(a, a.dep, f"ROUND={i}b")
            row["fork"] = run([a.fork, "0", "1"])

        for step in ([first, fork] if i % 2 == 0 else [fork, first]):
            step()
        dep_rows.append(row)
        print(f"{i:5d} {row['deploy']:10.1f} {row['first']:9.3f} {row['flag']:>5} "
              f"{row['server']:15.3f} {row['exec']:15.3f} {row['warm']:8.3f} {row['fork']:8.3f}",
              flush=True)

    # The first calls' phases, as the ledger has them: a forked instance has no load or init.
    out = subprocess.run([a.faasctl, "invocations", a.dep, "--last", "1000", "-o", "json"],
                         check=True, capture_output=True, text=True).stdout
    by_id = {r["invocation_id"]: r for r in json.loads(out)["invocations"]}
    phases = {k: statistics.median(by_id[i][k] / 1e6 for i in first_ids if i in by_id)
              for k in ("spawn_ns", "load_ns", "init_ns", "exec_ns")}
    spawned = sum(1 for i in first_ids if i in by_id and by_id[i]["init_ns"] > 0)

    print("\n== summary (medians; ratio = (cold - warm) / bare fork, same conditions) ==")
    c, w, f = med(idle_rows, "cold"), med(idle_rows, "warm"), med(idle_rows, "fork")
    print(f"after scale-to-zero: cold {c:.3f} ms (server cold {med(idle_rows, 'server'):.3f}, "
          f"exec {med(idle_rows, 'exec'):.3f}), warm {w:.3f}, overhead {c - w:.3f} ms; "
          f"bare fork after the same pause {f:.3f} ms "
          f"-> {(c - w) / f:.2f}x (target <= 3x); cgroup move of a forked child after the same "
          f"pause {med(idle_rows, 'move'):.3f} ms")
    c, w, f = med(dep_rows, "first"), med(dep_rows, "warm"), med(dep_rows, "fork")
    print(f"right after deploy: first call {c:.3f} ms (server cold {med(dep_rows, 'server'):.3f}, "
          f"exec {med(dep_rows, 'exec'):.3f}), warm {w:.3f}, overhead {c - w:.3f} ms; "
          f"bare fork after a deploy {f:.3f} ms -> {(c - w) / f:.2f}x; "
          f"deploy {med(dep_rows, 'deploy'):.1f} ms")
    print("  first calls' ledger phases (ms): " +
          ", ".join(f"{k[:-3]} {v:.3f}" for k, v in phases.items()) +
          f"; {spawned} of {len(first_ids)} spawned a worker (init > 0), the rest forked")


if __name__ == "__main__":
    main()
