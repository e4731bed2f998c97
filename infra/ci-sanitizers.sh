#!/usr/bin/env bash
# AddressSanitizer + UndefinedBehaviorSanitizer build of the unit and integration tests, in its
# own folder (build-asan). CI runs it from .ci/run after ./test.sh; ./test.sh does not (a cold
# sanitized build roughly doubles its time). Locally: infra/ci-sanitizers.sh [extra ctest args],
# e.g. infra/ci-sanitizers.sh -R Channel. The hostile and e2e suites stay on the release build
# (./test.sh): see docs/design/0011-static-checks-and-sanitizers.md.
set -euo pipefail
cd "$(dirname "$0")/.."
./infra/install-deps.sh
build=${FAAS_SANITIZE_BUILD:-build-asan}
# The sandboxed worker and the function libraries it loads stay unsanitized: ASan cannot start
# under the worker's RLIMIT_AS. They come from the release build (./test.sh's configuration;
# in CI already built), which the sanitized integration tests point at (FAAS_WORKER_BUILD_DIR).
worker_build=${FAAS_WORKER_BUILD:-build}
launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
cmake -S . -B "$worker_build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=ON >/dev/null
cmake --build "$worker_build" -j"$(nproc)" --target scheduler_integration_test  # worker + libs
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=ON \
  -DFAAS_SANITIZE=address,undefined -DFAAS_WORKER_BUILD_DIR="$(realpath "$worker_build")" \
  "${launcher[@]}" >/dev/null
# Only what the unit and integration tests run (tests/CMakeLists.txt: unit_integration_tests).
cmake --build "$build" -j"$(nproc)" --target unit_integration_tests
# Any report fails the test: UBSan aborts (-fno-sanitize-recover), ASan and LSan exit non-zero.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# Left out: format_check (label unit) checks sources, not code, and ./test.sh runs it.
skip='^format_check$'
ctest --test-dir "$build" --output-on-failure --no-tests=error -j"$(nproc)" \
  -L 'unit|integration' -E "$skip" "$@"
