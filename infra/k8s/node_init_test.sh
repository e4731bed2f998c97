#!/usr/bin/env bash
# Tests infra/k8s/node-init.sh without a cluster: in fresh mount and network namespaces it
# (and a cgroup namespace, so the cgroup2 superblock is not the host's) rebuilds what a container
# runtime gives the node container (a read-only cgroup2 on
# /sys/fs/cgroup, a read-only /proc/sys), runs node-init, and checks from the program it execs
# that the cgroup tree and /proc/sys/net are writable while /proc/sys/kernel stays read-only.
# Nothing reaches the host: the mounts live in the new mount namespace, the sysctl written is the
# new network namespace's. Needs root and unshare(1); exits 77 (skip) with the reason otherwise.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [[ $(id -u) -ne 0 ]]; then
  echo "SKIP: needs root (mount and network namespaces)" >&2
  exit 77
fi
if ! command -v unshare >/dev/null || ! unshare --mount --net --cgroup true 2>/dev/null; then
  echo "SKIP: unshare --mount --net --cgroup is not available here" >&2
  exit 77
fi
if ! grep -qw cgroup2 /proc/filesystems; then
  echo "SKIP: this kernel has no cgroup2" >&2
  exit 77
fi

# shellcheck disable=SC2016  # both scripts run in the namespaces, expanded there
# The check node-init execs: prints one verdict per property, exits non-zero on any failure.
check='
set -u
rc=0
probe=/sys/fs/cgroup/faas-node-init-test-$$
if mkdir "$probe" 2>/dev/null && rmdir "$probe"; then echo "ok: cgroup tree writable"
else echo "FAIL: cannot create a cgroup under /sys/fs/cgroup"; rc=1; fi
f=/proc/sys/net/ipv4/ip_forward
if echo 1 >"$f" && [ "$(cat "$f")" = 1 ]; then echo "ok: /proc/sys/net writable"
else echo "FAIL: cannot write $f"; rc=1; fi
if (echo faas-test >/proc/sys/kernel/domainname) 2>/dev/null; then
  echo "FAIL: /proc/sys/kernel became writable"; rc=1
else echo "ok: /proc/sys/kernel still read-only"; fi
exit $rc
'

# shellcheck disable=SC2016
# The container as the runtime makes it, then node-init, then the check.
container='
set -eu
mount --make-rprivate /
mount -t cgroup2 -o ro,nosuid,nodev,noexec cgroup2 /sys/fs/cgroup
mount --bind /proc/sys /proc/sys
mount -o remount,bind,ro /proc/sys
if [ -w /sys/fs/cgroup ] || [ -w /proc/sys/net/ipv4/ip_forward ]; then
  echo "FAIL: the simulated container is not read-only; the test proves nothing"; exit 1
fi
exec sh "$1" sh -c "$2"
'
out=$(unshare --mount --net --cgroup sh -c "$container" sh "$here/node-init.sh" "$check" 2>&1) || {
  echo "$out"
  echo "FAIL: node-init or its checks failed"
  exit 1
}
echo "$out"
if [[ $(grep -c '^ok:' <<<"$out") -ne 3 ]]; then
  echo "FAIL: expected three ok lines"
  exit 1
fi
echo "node-init: PASS"
