#!/usr/bin/env bash
# Installs the Debian 12 packages faas needs to build, test and benchmark. Idempotent: installs
# only what is missing. As root it runs apt-get; otherwise it prints the exact command.
set -euo pipefail
PACKAGES=(
  build-essential cmake ninja-build pkg-config
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libboost-dev libboost-filesystem-dev
  libseccomp-dev libcgroup-dev cgroup-tools
  libspdlog-dev libfmt-dev libgtest-dev libgmock-dev libbenchmark-dev
  libsqlite3-dev libssl-dev libhiredis-dev nlohmann-json3-dev libcli11-dev
  postgresql libpq-dev  # the PostgreSQL registry backend; its tests start their own server
  redis-server redis-tools curl clang-format
  clang-tidy  # tests/clang_tidy_check.sh (ctest clang_tidy_check, label lint)
  slirp4netns  # network: outbound (docs/design/0007-outbound-network.md)
  iproute2  # infra/local-cluster.sh and the cluster tests: namespaces, veths, a bridge
  prometheus  # promtool: tests/e2e/e2e_test.cc lints /metrics with `promtool check metrics`
  chromium  # tests/browser: the console in headless Chromium (ctest label browser)
)
# npm: the console's pinned uPlot and puppeteer-core (console/package-lock.json, npm ci at build
# time) and infra/k8s/validate.sh (ctest k8s_manifests: tsc + kubernetes-types). Not where a node
# with npm is already installed: NodeSource's nodejs bundles npm and conflicts with Debian's npm.
command -v npm >/dev/null || PACKAGES+=(nodejs npm)
if [[ "${1:-}" == "--bench" ]]; then
  PACKAGES+=(wrk nginx-light haproxy)  # haproxy: bench/cluster (the balancing baseline)
fi
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi
cmd=(apt-get install -y --no-install-recommends "${missing[@]}")
if [[ $(id -u) -ne 0 ]]; then
  echo "faas needs these Debian packages; run as root:" >&2
  echo "  apt-get update && ${cmd[*]}" >&2
  exit 1
fi
echo "installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${cmd[@]}" || { apt-get update && "${cmd[@]}"; }
