#!/bin/sh
# oom: allocates memory until the OOM killer ends it (exit 137, OOMKilled).
# /dev/zero has no newline, so tail keeps the whole endless "last line" in
# memory. It refuses to start without a memory limit on its cgroup, where it
# would eat the host's memory instead.
limit=
for f in /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory.max; do
  [ -r "$f" ] && { limit=$(cat "$f"); break; }
done
case $limit in
  '' | max | ????????????*)  # unknown, or 100 GB and more: no real limit
    echo "oom: no memory limit set (run with --memory); not allocating" >&2
    exit 2 ;;
esac
echo "oom: allocating until killed (limit $limit bytes)" >&2
exec tail /dev/zero
