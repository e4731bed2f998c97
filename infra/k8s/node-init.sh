#!/bin/sh
# The node container's entrypoint on Kubernetes (infra/k8s/base/node.yaml), installed in the
# image as /usr/local/libexec/faas/node-init: `node-init faasd --role node ...`.
#
# A container runtime mounts two kernel interfaces read-only that faasd --role node writes:
#   /sys/fs/cgroup   every instance gets a cgroup of its own (docs/sandbox.md, "cgroups");
#   /proc/sys/net    an outbound worker turns IPv6 off in its new network namespace
#                    (sandbox/src/network.cc). /proc/sys/net always shows the writer's own
#                    network namespace, so this opens no host-wide sysctl: /proc/sys/kernel,
#                    /proc/sys/vm and the rest stay read-only.
# With CAP_SYS_ADMIN this script makes exactly those two writable, in the container's own mount
# namespace (nothing propagates to the host), then becomes faasd (exec), so faasd is the process
# tini forwards SIGTERM to. Privileged containers already have both writable; nothing is mounted
# then.
set -eu

say() { echo "faas node-init: $*" >&2; }
fail() {
  say "$*"
  say "the node container needs CAP_SYS_ADMIN and an AppArmor profile that allows mount" \
    "(infra/k8s/base/node.yaml; docs/operations.md, \"Kubernetes\")"
  exit 1
}

if [ "$#" -eq 0 ]; then
  say "usage: node-init PROGRAM [ARGS...]"
  exit 2
fi

# cgroups: the runtime's read-only cgroup2 mount, remounted read-write. In the container's cgroup
# namespace (private on cgroup v2 hosts with containerd or CRI-O) its root is the container's own
# cgroup, so the groups faasd makes nest below it and count against the pod's limits. (A second
# cgroup2 mount would not do: it shares the read-only superblock, and the kernel refuses it with
# EBUSY.) Only cgroup v2: on a v1 host this stops here rather than let faasd find a tree without
# controllers.
cgroup_fs=$(stat -f -c %T /sys/fs/cgroup 2>/dev/null || echo missing)
if [ "$cgroup_fs" != cgroup2fs ]; then
  say "/sys/fs/cgroup is $cgroup_fs, not cgroup2: the Kubernetes manifests support cgroup v2" \
    "nodes only (run faasd under systemd on a v1 host: docs/operations.md)"
  exit 1
fi
if [ ! -w /sys/fs/cgroup ]; then
  mount -o remount,rw /sys/fs/cgroup || fail "cannot remount /sys/fs/cgroup read-write"
fi

# /proc/sys/net: a writable bind of the read-only directory onto itself.
if [ -d /proc/sys/net ] && [ ! -w /proc/sys/net/ipv4/ip_forward ]; then
  { mount --bind /proc/sys/net /proc/sys/net &&
    mount -o remount,bind,rw /proc/sys/net; } ||
    fail "cannot make /proc/sys/net writable"
fi

exec "$@"
