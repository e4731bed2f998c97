#!/usr/bin/env bash
# clang-tidy over the library and binary sources (not tests/, not generated protobuf) with the
# root .clang-tidy, which turns every warning into an error. Run by ctest as clang_tidy_check
# (label lint); by hand: tests/clang_tidy_check.sh [BUILD_DIR] (default: build).
#
# It reads BUILD_DIR/compile_commands.json (CMAKE_EXPORT_COMPILE_COMMANDS, on in CMakeLists.txt)
# and the build's generated headers, so build first. A file that passed is remembered in
# BUILD_DIR/clang-tidy-cache under a hash of: the file, every project header it includes (from
# ninja's dependency log), its compile command, .clang-tidy, cache_version below and the
# clang-tidy version. A rerun checks only what changed. Files run in parallel, one per core.
# A machine without clang-tidy skips (exit 77) with the reason.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=$(realpath "${1:-build}")
tidy=${CLANG_TIDY:-clang-tidy}
command -v "$tidy" >/dev/null || {
  echo "clang-tidy is not installed ($tidy not in PATH): skipped"
  exit 77
}
db=$build/compile_commands.json
[[ -f $db ]] || {
  echo "no $db: configure and build first (cmake -B $build ...; cmake --build $build)"
  exit 1
}


cache=$build/clang-tidy-cache
mkdir -p "$cache"
# Bump when the clang-tidy command line below changes (it is part of every cached result).
cache_version=1
config_hash=$( (echo "$cache_version" && cat .clang-tidy && "$tidy" --version) | sha256sum |
  cut -c1-64)

# One line per source: FILE<TAB>OBJECT<TAB>COMMAND. CMake writes each entry's "command" line
# before its "file" line.
list=$(awk -v root="$root/" '
  /^  "command": / { cmd = substr($0, 15); sub(/",?$/, "", cmd); next }
  /^  "file": / {
    f = substr($0, 12); sub(/",?$/, "", f)
    rel = substr(f, length(root) + 1)
    if (index(f, root) != 1 || rel !~ /^(base|sdk|sandbox|store|metering|scheduler|triggers|gateway|console|daemon|cli|functions|bench)\//) next
    obj = cmd; sub(/.* -o /, "", obj); sub(/ .*/, "", obj)
    print rel "\t" obj "\t" cmd
  }' "$db" | sort -u)
[[ -n $list ]] || {
  echo "no sources found in $db"
  exit 1
}

# check FILE OBJECT COMMAND: 0 if clang-tidy is silent (or was for the same inputs before).
check() {
  local file=$1 obj=$2 cmd=$3 key log
  # Project headers only: system headers change with the clang-tidy version or the packages.
  key=$( {
    echo "$config_hash $cmd"
    cat "$file"
    ninja -C "$build" -t deps "$obj" 2>/dev/null | awk 'NR > 1 && NF == 1 && $1 !~ /^\/usr\//' |
      (cd "$build" && xargs -r cat)
  } | sha256sum | cut -c1-64)
  [[ -e $cache/$key ]] && touch "$cache/$key" && return 0
  log=$(mktemp)
  if "$tidy" -p "$build" --quiet --extra-arg=-Wno-unknown-warning-option \
    --extra-arg=-Wno-error "$PWD/$file" >"$log" 2>&1 &&
    ! grep -q 'warning:\|error:' "$log"; then
    touch "$cache/$key"
    rm -f "$log"
    return 0
  fi
  grep -v '^[0-9]* warnings\? generated\.$\|^Suppressed [0-9]* warnings' "$log" || true
  rm -f "$log"
  echo "clang-tidy: findings in $file"
  return 1
}
export -f check
export build tidy cache config_hash

start=$SECONDS
touch "$cache/.start"
n=$(wc -l <<<"$list")
if ! tr '\t' '\0' <<<"$list" | sed 's/$/\x0/' | tr -d '\n' |
  xargs -0 -n3 -P"$(nproc)" bash -c 'check "$@"' _; then
  echo "clang-tidy found problems (checks and reasons: .clang-tidy; docs/design/0011-static-checks-and-sanitizers.md)."
  echo "Fix them, or for a deliberate exception add // NOLINT(check-name): reason on the line."
  exit 1
fi
# Forget results no file of this run used (old versions of files), so the cache stays small.
find "$cache" -type f ! -name .start ! -newer "$cache/.start" -delete
echo "$n files pass clang-tidy ($((SECONDS - start)) s; cache: $cache)"
