#!/usr/bin/env bash
# The tree follows .clang-format (run by ctest as format_check). To fix: the same file list with
# `clang-format -i`. A machine without clang-format skips (exit 77) with the reason.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v clang-format >/dev/null || { echo "clang-format is not installed: skipped"; exit 77; }
mapfile -t files < <(find base sdk proto sandbox store metering scheduler triggers gateway daemon \
  cli functions tests bench -name '*.cc' -o -name '*.h' -o -name '*.c' -o -name '*.hpp' | sort)
if ! clang-format --dry-run --Werror "${files[@]}" 2>/tmp/format_check.$$; then
  head -40 /tmp/format_check.$$
  echo "$(grep -c 'error:' /tmp/format_check.$$) places differ from .clang-format; fix with:"
  echo "  clang-format -i \$(git ls-files '*.cc' '*.h' '*.c' '*.hpp')"
  rm -f /tmp/format_check.$$
  exit 1
fi
rm -f /tmp/format_check.$$
echo "${#files[@]} files follow .clang-format"
