#!/usr/bin/env bash
# Validates the Kubernetes manifests offline (ctest k8s_manifests, label k8s; no API server):
#  1. `kubectl kustomize` renders every overlay in infra/k8s/overlays/;
#  2. each rendered document becomes a typed object literal (schema/render_ts.mjs) and
#     `tsc --noEmit --strict` checks it against kubernetes-types: wrong types, unknown fields,
#     unknown kinds;
#  3. schema/check_refs.mjs checks what no schema knows: faasd's flags and variables, the
#     programs the image must hold (infra/Containerfile), probes, and drain times;
#  4. then it proves each check can fail: broken copies of the dev render (schema/mutate.mjs)
#     must be rejected, naming what was broken;
#  5. with BIN_DIR (a build's bin/): the built faasd parses every faas container's arguments
#     (schema/run_args.mjs: it must get as far as the store), and image_libs_check.sh: the
#     image's runtime packages cover every shared library the built binaries load.
# The npm packages (exact versions in schema/package-lock.json) are installed with `npm ci` into
# WORK_DIR and reused while the lock file is unchanged.
#
#   infra/k8s/validate.sh [WORK_DIR [BIN_DIR]]   (default: build/k8s-validate and build/bin)
# Exits 0 when everything holds, 1 on a problem, 77 (skip, with the reason) only when kubectl or
# node/npm are missing or npm cannot reach its registry on a first run.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=${1:-$root/build/k8s-validate}
bin_dir=${2:-}
if [[ $# -lt 2 && -x $root/build/bin/faasd ]]; then
  bin_dir=$root/build/bin  # run by hand after a build: check against it too
fi
mkdir -p "$work"
work=$(cd "$work" && pwd)

skip() {
  echo "SKIP: $*"
  exit 77
}
fail() {
  echo "FAIL: $*"
  exit 1
}

command -v kubectl >/dev/null || skip "kubectl is not installed (it carries Kustomize)"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  skip "node and npm are not installed (infra/install-deps.sh installs nodejs and npm)"
fi

# 0. kubernetes-types, typescript and yaml at the locked versions.
npm_dir=$work/npm
mkdir -p "$npm_dir"
if ! cmp -s "$here/schema/package-lock.json" "$npm_dir/package-lock.json" ||
  [[ ! -x $npm_dir/node_modules/.bin/tsc ]]; then
  cp "$here/schema/package.json" "$here/schema/package-lock.json" "$npm_dir/"
  if ! (cd "$npm_dir" && npm ci --no-audit --no-fund --loglevel=error) >"$work/npm.log" 2>&1; then
    cat "$work/npm.log"
    rm -f "$npm_dir/package-lock.json"  # retried next run
    if grep -qE 'ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH' "$work/npm.log"; then
      skip "npm ci cannot reach the npm registry, and $npm_dir has no packages from an earlier run"
    fi
    fail "npm ci failed (log above)"
  fi
fi
cp "$here"/schema/*.mjs "$npm_dir/"
tsc=("$npm_dir/node_modules/.bin/tsc" --noEmit --strict --target es2022 --module esnext
  --moduleResolution bundler)

# 1-3. Every overlay.
overlays=0
for dir in "$here"/overlays/*/; do
  name=$(basename "$dir")
  overlays=$((overlays + 1))
  kubectl kustomize "$dir" >"$work/$name.yaml" || fail "kubectl kustomize overlays/$name"
  node "$npm_dir/render_ts.mjs" "$work/$name.yaml" "$npm_dir/$name.ts" "overlays/$name" ||
    fail "overlays/$name: a document has no kubernetes-types type"
  "${tsc[@]}" "$npm_dir/$name.ts" || fail "overlays/$name does not match the Kubernetes API types"
  node "$npm_dir/check_refs.mjs" "$work/$name.yaml" "$root" "overlays/$name" ||
    fail "overlays/$name: flags, programs, probes or drain times"
  if [[ -n $bin_dir && -x $bin_dir/faasd ]]; then
    node "$npm_dir/run_args.mjs" "$work/$name.yaml" "$bin_dir/faasd" "overlays/$name" ||
      fail "overlays/$name: faasd refuses its arguments"
  fi
done
[[ $overlays -ge 2 ]] || fail "expected the dev and prod overlays, found $overlays"

# 4. Each check rejects a broken copy, and says what is broken.
[[ -s $work/dev.yaml ]] || fail "no dev render to break"
modes=(unknown-field wrong-type bad-flag missing-binary short-grace short-token)
if [[ -n $bin_dir && -x $bin_dir/faasd ]]; then
  modes+=(role-flag)
elif [[ -n $bin_dir ]]; then
  echo "note: no $bin_dir/faasd: faasd's own check of the arguments was not run"
fi
for mode in "${modes[@]}"; do
  expected=$(node "$npm_dir/mutate.mjs" "$mode" "$work/dev.yaml" "$work/broken-$mode.yaml")
  case $mode in
    unknown-field | wrong-type)
      node "$npm_dir/render_ts.mjs" "$work/broken-$mode.yaml" "$npm_dir/broken-$mode.ts" \
        "broken-$mode" >/dev/null
      check=("${tsc[@]}" "$npm_dir/broken-$mode.ts")
      ;;
    role-flag)
      check=(node "$npm_dir/run_args.mjs" "$work/broken-$mode.yaml" "$bin_dir/faasd" "broken-$mode")
      ;;
    *) check=(node "$npm_dir/check_refs.mjs" "$work/broken-$mode.yaml" "$root" "broken-$mode") ;;
  esac
  if out=$("${check[@]}" 2>&1); then
    fail "broken copy ($mode) was accepted:"$'\n'"$out"
  fi
  while IFS= read -r word; do
    [[ $(grep -cF -- "$word" <<<"$out") -ge 1 ]] ||
      fail "broken copy ($mode) was rejected without naming \"$word\":"$'\n'"$out"
  done <<<"$expected"
  # The wrong types are in two documents: both must be reported.
  if [[ $mode == wrong-type && $(grep -cF -- "$expected" <<<"$out") -lt 2 ]]; then
    fail "broken copy (wrong-type): expected two errors:"$'\n'"$out"
  fi
  echo "broken copy ($mode) rejected: $(head -c 300 <<<"$out" | tr '\n' ' ')"
done
# 5. The image's libraries (skipped, and said so, without binaries or off Debian 12).
if [[ -n $bin_dir ]]; then
  rc=0
  "$here/image_libs_check.sh" "$bin_dir" || rc=$?
  [[ $rc -eq 0 || $rc -eq 77 ]] || fail "the image lacks libraries the binaries load (above)"
fi
echo "k8s manifests: PASS ($overlays overlays)"
