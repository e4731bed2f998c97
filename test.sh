#!/usr/bin/env bash
# One command: install packages, build everything, run every test (unit, integration, e2e).
# Extra arguments go to ctest, e.g. ./test.sh -L unit  or  ./test.sh -R E2E.Hello
set -euo pipefail
cd "$(dirname "$0")"
./infra/install-deps.sh
# BUILD_TESTING explicitly: ./run.sh configures the same folder without the tests.
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=ON >/dev/null
cmake --build build -j"$(nproc)"
ctest --test-dir build --output-on-failure --no-tests=error -j"$(nproc)" "$@"
