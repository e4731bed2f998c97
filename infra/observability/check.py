#!/usr/bin/env python3
"""Checks of infra/observability that promtool does not make (run by validate.sh).

  check.py names FILE METRICS_CC
      every faas_* metric FILE names is one faasd exports: a `# TYPE` line of METRICS_CC
      (metering/src/metrics.cc), with _bucket, _sum and _count for its histograms.
  check.py dashboard DASHBOARD.json RULES_OUT METRICS_CC
      the dashboard is well-formed JSON with the panels docs/operations.md promises, each
      panel's queries use only exported metrics, and RULES_OUT receives every query as a
      recording rule (Grafana's variables replaced) for `promtool check rules` to parse.
  check.py conventions ALERTS_YML ALERTS_TEST_YML
      every alert has a `for:`, severity critical or warning, a summary and a description with
      a "Runbook:" line; alerts_test.yml has, for each alert, a test where it fires and one
      where it must not (`exp_alerts: []`).

Python's standard library only (no YAML parser): the rule files are read line by line, in
the layout alerts.yml and alerts_test.yml use. Exit 1 with the reasons on a problem.
"""

import json
import re
import sys

# The panels the dashboard must have (docs/operations.md "Monitoring").
REQUIRED_PANELS = {
    "Invocations/s per function": "faas_invocations_total",
    "Invocation latency p50 / p99 per function": "faas_invoke_duration_seconds_bucket",
    "HTTP latency p50 / p99 per route": "faas_http_request_duration_seconds_bucket",
    "Cold-start ratio per function": "faas_coldstarts_total",
    "Billed CPU ms/s per function": "faas_billed_cpu_seconds_total",
    "Nodes up": "up",
    "Nodes down": "up",
    "Unshipped ledger rows": "faas_ledger_unshipped_rows",
    "Queue backlog per function": "faas_queue_waiting",
    "Queue wait p99 per function": "faas_invoke_duration_seconds_bucket",
}

# Grafana's variables, as Prometheus would see them after Grafana substituted them.
GRAFANA_VARS = [
    ("$__rate_interval", "5m"),
    ("$__interval", "1m"),
    ("$__range", "1h"),
    ("${function}", ".*"),
    ("$function", ".*"),
]


def exported_metrics(metrics_cc):
    names = set()
    with open(metrics_cc, encoding="utf-8") as f:
        for name, kind in re.findall(r"# TYPE (faas_[a-z0-9_]+) ([a-z]+)", f.read()):
            names.add(name)
            if kind == "histogram":
                names.update({name + "_bucket", name + "_sum", name + "_count"})
    if not names:
        sys.exit(f"FAIL: no `# TYPE faas_...` line in {metrics_cc}")
    return names


def unknown_names(text, known):
    return sorted({n for n in re.findall(r"\bfaas_[a-z0-9_]+", text) if n not in known})


def cmd_names(path, metrics_cc):
    with open(path, encoding="utf-8") as f:
        bad = unknown_names(f.read(), exported_metrics(metrics_cc))
    if bad:
        print(f"{path}: metrics faasd does not export: {', '.join(bad)}")
        return 1
    return 0


def cmd_dashboard(path, rules_out, metrics_cc):
    known = exported_metrics(metrics_cc)
    problems = []
    try:
        with open(path, encoding="utf-8") as f:
            dash = json.load(f)
    except (OSError, ValueError) as e:
        print(f"{path}: not JSON: {e}")
        return 1
    for key in ("title", "uid", "panels", "templating", "schemaVersion"):
        if key not in dash:
            problems.append(f"no top-level {key!r}")
    panels = [p for p in dash.get("panels", []) if p.get("type") != "row"]
    ids = [p.get("id") for p in dash.get("panels", [])]
    if len(ids) != len(set(ids)):
        problems.append("panel ids are not unique")
    rules = []
    by_title = {}
    for p in panels:
        title = p.get("title", "")
        by_title[title] = p
        if not p.get("targets"):
            problems.append(f"panel {title!r} has no query")
        for t in p.get("targets", []):
            expr = t.get("expr", "")
            if not expr.strip():
                problems.append(f"panel {title!r} query {t.get('refId')} is empty")
                continue
            bad = unknown_names(expr, known)
            if bad:
                problems.append(f"panel {title!r}: metrics faasd does not export: {', '.join(bad)}")
            for var, value in GRAFANA_VARS:
                expr = expr.replace(var, value)
            if "$" in expr:
                problems.append(f"panel {title!r}: unknown Grafana variable in {expr!r}")
            rules.append((title, t.get("refId"), expr))
    for title, metric in REQUIRED_PANELS.items():
        p = by_title.get(title)
        if p is None:
            problems.append(f"missing panel {title!r}")
        elif not any(re.search(rf"\b{metric}\b", t.get("expr", "")) for t in p["targets"]):
            problems.append(f"panel {title!r} does not query {metric}")
    # Each query as a recording rule; JSON strings are valid YAML double-quoted scalars.
    with open(rules_out, "w", encoding="utf-8") as f:
        f.write("groups:\n  - name: dashboard\n    rules:\n")
        for i, (title, ref, expr) in enumerate(rules):
            f.write(f"      # {title} / {ref}\n")
            f.write(f"      - record: dashboard:query_{i}\n")
            f.write(f"        expr: {json.dumps(expr)}\n")
    if problems:
        print(f"{path}:\n  " + "\n  ".join(problems))
        return 1
    print(f"{path}: {len(panels)} panels, {len(rules)} queries")
    return 0


def cmd_conventions(alerts_path, tests_path):
    problems = []
    with open(alerts_path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    alerts = {}
    current = None
    for line in lines:
        m = re.match(r"\s*- alert:\s*(\S+)", line)
        if m:
            current = m.group(1)
            alerts[current] = []
            continue
        if re.match(r"\s*- (record|name):", line):
            current = None
        if current:
            alerts[current].append(line)
    if not alerts:
        problems.append(f"{alerts_path}: no alert")
    for name, body in alerts.items():
        text = "\n".join(body)
        if not re.search(r"^\s+for:\s*\d+[smh]", text, re.M):
            problems.append(f"{name}: no `for:`")
        if not re.search(r"^\s+severity:\s*(critical|warning)\s*$", text, re.M):
            problems.append(f"{name}: no severity label critical or warning")
        if not re.search(r"^\s+summary:", text, re.M):
            problems.append(f"{name}: no summary annotation")
        if not re.search(r"^\s+description:", text, re.M) or "Runbook:" not in text:
            problems.append(f"{name}: no description with a \"Runbook:\" line")
    with open(tests_path, encoding="utf-8") as f:
        tlines = f.read().splitlines()
    fires, silent = set(), set()
    for i, line in enumerate(tlines):
        m = re.match(r"\s*alertname:\s*(\S+)", line)
        if not m:
            continue
        nxt = tlines[i + 1] if i + 1 < len(tlines) else ""
        if re.match(r"\s*exp_alerts:\s*\[\]\s*$", nxt):
            silent.add(m.group(1))
        elif re.match(r"\s*exp_alerts:\s*$", nxt):
            fires.add(m.group(1))
        else:
            problems.append(f"{tests_path}:{i + 2}: expected `exp_alerts:` after alertname")
        if m.group(1) not in alerts:
            problems.append(f"{tests_path}:{i + 1}: no alert {m.group(1)} in {alerts_path}")
    for name in alerts:
        if name not in fires:
            problems.append(f"{name}: no test where it fires")
        if name not in silent:
            problems.append(f"{name}: no test where it must not fire")
    if problems:
        print("\n".join(problems))
        return 1
    print(f"{alerts_path}: {len(alerts)} alerts, each with a runbook and tests both ways")
    return 0


def main(argv):
    if len(argv) == 4 and argv[1] == "names":
        return cmd_names(argv[2], argv[3])
    if len(argv) == 5 and argv[1] == "dashboard":
        return cmd_dashboard(argv[2], argv[3], argv[4])
    if len(argv) == 4 and argv[1] == "conventions":
        return cmd_conventions(argv[2], argv[3])
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
