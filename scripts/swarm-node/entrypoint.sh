#!/bin/sh
# Starts the node's engine inside its container. The container is not
# --privileged (an engine whose own bounding set lacks a capability, such as
# CAP_SYS_RESOURCE on some VMs, cannot start privileged containers: "unable
# to apply caps"), so scripts/swarm-nodes.sh gives it every capability its
# engine has and no seccomp or AppArmor profile, and here /sys and the
# cgroup hierarchies, mounted read-only by Docker, are made writable for the
# node's own containers.
set -eu
mount -o remount,rw /sys 2>/dev/null || true
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
  # cgroup v2: the container's processes move to a child group, so that
  # dockerd may hand controllers down (a group with processes cannot).
  mount -o remount,rw /sys/fs/cgroup 2>/dev/null || true
  mkdir -p /sys/fs/cgroup/node
  xargs -rn1 </sys/fs/cgroup/cgroup.procs >/sys/fs/cgroup/node/cgroup.procs 2>/dev/null || true
  sed -e 's/ / +/g' -e 's/^/+/' </sys/fs/cgroup/cgroup.controllers >/sys/fs/cgroup/cgroup.subtree_control
else
  # cgroup v1: each hierarchy is a read-only bind of the container's own
  # group; a plain remount is refused ("busy"), a bind remount is not.
  for hierarchy in /sys/fs/cgroup/*/; do
    mount -o remount,bind,rw "$hierarchy" 2>/dev/null || true
  done
fi
# Leftovers of a previous run of this container (a restart after a kill).
rm -f /var/run/docker.pid /var/run/docker/containerd/containerd.pid
exec dockerd --host unix:///var/run/docker.sock "$@"
