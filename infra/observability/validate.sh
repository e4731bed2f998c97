#!/usr/bin/env bash
# Validates infra/observability offline (ctest observability_check, label ops; no Prometheus or
# Grafana server), with promtool from Debian's `prometheus` package:
#  1. `promtool check config` on prometheus.yml and prometheus-kubernetes.yml (with alerts.yml,
#     which they load). Debian's promtool is built without Kubernetes service discovery: when it
#     rejects `kubernetes_sd_configs`, the Kubernetes file is checked with that block replaced by
#     a file_sd_configs one (everything else, the relabelling included, is checked as written);
#  2. `promtool check rules alerts.yml`; check.py: each alert has `for:`, a severity, a summary
#     and a runbook; every faas_* metric alerts.yml names is one faasd exports
#     (metering/src/metrics.cc);
#  3. `promtool test rules alerts_test.yml` against alerts.yml without its `description`
#     annotations (the runbook prose; summaries are compared), and check.py: each alert is tested
#     both firing and not firing;
#  4. grafana-dashboard.json: JSON, the expected panels, only exported metrics, and every query
#     parsed by `promtool check rules` as a recording rule;
#     and infra/k8s/base's gateway and node pods carry the prometheus.io/scrape annotation and
#     the `http` port prometheus-kubernetes.yml keeps;
#  5. then it proves each check can fail: broken copies (an unknown config field, bad PromQL, an
#     alert threshold changed, an alert without `for:`, a dashboard query that does not parse, a
#     misspelt metric) must be rejected.
#
#   infra/observability/validate.sh [WORK_DIR]   (default: build/observability-validate)
# Exits 0 when everything holds, 1 on a problem, 77 (skip, with the reason) when promtool or
# python3 is missing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=${1:-$root/build/observability-validate}
mkdir -p "$work"
work=$(cd "$work" && pwd)
metrics_cc=$root/metering/src/metrics.cc

skip() {
  echo "SKIP: $*"
  exit 77
}
fail() {
  echo "FAIL: $*"
  exit 1
}

command -v promtool >/dev/null ||
  skip "promtool is not installed (Debian package prometheus; infra/install-deps.sh installs it)"
command -v python3 >/dev/null || skip "python3 is not installed"
echo "$(promtool --version 2>&1 | head -1)"

# Copies a rule file without its description annotations (a block scalar, more indented lines).
strip_descriptions() {
  awk '
    /^ *description:/ { match($0, /^ */); ind = RLENGTH; skip = 1; next }
    skip { match($0, /^ */); if ($0 ~ /^ *$/ || RLENGTH > ind) next; skip = 0 }
    { print }' "$1"
}

# Replaces each kubernetes_sd_configs block with a file_sd_configs one (same indentation).
k8s_sd_to_file_sd() {
  awk '
    /^ *kubernetes_sd_configs:/ {
      match($0, /^ */); ind = RLENGTH; pad = substr($0, 1, ind)
      print pad "file_sd_configs:"; print pad "  - files: [kubernetes-pods.json]"
      skip = 1; next
    }
    skip { match($0, /^ */); if ($0 ~ /^ *$/ || RLENGTH > ind) next; skip = 0 }
    { print }' "$1"
}

# check_config DIR FILE: promtool check config on DIR/FILE (alerts.yml beside it).
check_config() {
  local dir=$1 file=$2 out
  if out=$(cd "$dir" && promtool check config "$file" 2>&1); then
    echo "$out"
    return 0
  fi
  if grep -q 'field kubernetes_sd_configs not found' <<<"$out" &&
    grep -q kubernetes_sd_configs "$dir/$file"; then
    k8s_sd_to_file_sd "$dir/$file" >"$dir/file-sd-$file"
    echo "note: this promtool has no Kubernetes discovery: $file checked with file_sd_configs"
    (cd "$dir" && promtool check config "file-sd-$file") 2>&1
    return
  fi
  echo "$out"
  return 1
}

# All checks on the files in DIR (a copy of this directory, possibly broken on purpose).
# Prints what each check says; returns 1 at the first failure.
check_all() {
  local dir=$1
  check_config "$dir" prometheus.yml || return 1
  check_config "$dir" prometheus-kubernetes.yml || return 1
  promtool check rules "$dir/alerts.yml" 2>&1 || return 1
  python3 "$here/check.py" conventions "$dir/alerts.yml" "$dir/alerts_test.yml" || return 1
  python3 "$here/check.py" names "$dir/alerts.yml" "$metrics_cc" || return 1
  mkdir -p "$dir/unit"
  strip_descriptions "$dir/alerts.yml" >"$dir/unit/alerts.yml"
  cp "$dir/alerts_test.yml" "$dir/unit/"
  (cd "$dir/unit" && promtool test rules alerts_test.yml) 2>&1 || return 1
  python3 "$here/check.py" dashboard "$dir/grafana-dashboard.json" "$dir/dashboard-rules.yml" \
    "$metrics_cc" || return 1
  promtool check rules "$dir/dashboard-rules.yml" 2>&1 || return 1
}

# A fresh copy of the files under $work/NAME.
copy_to() {
  rm -rf "${work:?}/$1"
  mkdir -p "$work/$1"
  cp "$here"/prometheus.yml "$here"/prometheus-kubernetes.yml "$here"/alerts.yml \
    "$here"/alerts_test.yml "$here"/grafana-dashboard.json "$work/$1/"
}

# 1-4. The files as they are.
copy_to ok
if ! out=$(check_all "$work/ok"); then
  echo "$out"
  fail "infra/observability does not validate (above)"
fi
echo "$out"
# The pods prometheus-kubernetes.yml keeps: the base manifests must carry its annotation and the
# container port it scrapes.
for f in gateway node; do
  m=$root/infra/k8s/base/$f.yaml
  grep -qE '^ +prometheus\.io/scrape: "true"$' "$m" ||
    fail "infra/k8s/base/$f.yaml: no prometheus.io/scrape: \"true\" annotation on its pods"
  grep -qE '^ +- name: http( |$)' "$m" || fail "infra/k8s/base/$f.yaml: no container port named http"
done

# 5. Each broken copy is rejected, with the reason named in the output.
# break_copy NAME FILE SED_EXPR EXPECTED_WORD
rejected=0
break_copy() {
  local name=$1 file=$2 expr=$3 word=$4 out
  copy_to "broken-$name"
  sed -i -e "$expr" "$work/broken-$name/$file"
  cmp -s "$here/$file" "$work/broken-$name/$file" && fail "broken copy ($name): sed changed nothing"
  if out=$(check_all "$work/broken-$name"); then
    echo "$out"
    fail "broken copy ($name) was accepted"
  fi
  grep -qF -- "$word" <<<"$out" ||
    fail "broken copy ($name) was rejected without naming \"$word\":"$'\n'"$out"
  echo "broken copy ($name) rejected: $(grep -F -m1 -- "$word" <<<"$out" | head -c 200)"
  rejected=$((rejected + 1))
}
# An unknown field in a scrape job (a misspelt scrape_interval).
break_copy unknown-field prometheus.yml 's/^    scrape_timeout: 5s$/    scrape_intervall: 5s/' \
  'scrape_intervall'
# An unknown field in the Kubernetes file's relabelling.
break_copy k8s-unknown-field prometheus-kubernetes.yml 's/^        action: keep$/        actions: keep/' \
  'actions'
# PromQL that does not parse.
break_copy bad-promql alerts.yml 's/expr: up{job="faas-node"} == 0/expr: up{job="faas-node"} == /' \
  '"FaasNodeDown": could not parse expression'
# A threshold changed: the unit tests must notice (the cold-start alert stops firing).
break_copy threshold alerts.yml 's|/ sum by (function) (rate(faas_invocations_total\[10m\])) > 0.2|/ sum by (function) (rate(faas_invocations_total[10m])) > 0.6|' \
  'FaasColdStartRatioHigh'
# The node-down alert without its `for:` fires at once: the "pending" test must notice.
break_copy no-wait alerts.yml '/alert: FaasNodeDown/,/for:/s/for: 1m/for: 0s/' 'FaasNodeDown'
# An alert without `for:` at all.
break_copy missing-for alerts.yml '/alert: FaasQueueBacklog/,/for:/{/for:/d}' 'FaasQueueBacklog: no `for:`'
# A misspelt metric in an alert (parses, but faasd exports no such metric).
break_copy alert-metric alerts.yml 's/faas_queue_waiting) > 20/faas_queue_wait) > 20/' \
  'faas_queue_wait'
# A dashboard query that does not parse, and one naming a metric faasd does not export.
break_copy dashboard-promql grafana-dashboard.json 's/sum by (function) (faas_queue_waiting{/sum by (function (faas_queue_waiting{/' \
  'parse error'
break_copy dashboard-metric grafana-dashboard.json 's/faas_coldstarts_total{/faas_cold_starts_total{/' \
  'faas_cold_starts_total'
echo "observability: PASS ($rejected broken copies rejected)"
