#!/usr/bin/env bash
# A private Docker engine, for a script that stops and starts the engine on
# purpose (bench/chaos.sh) without touching the machine's own.
#
#   scripts/dockerd.sh start DIR   starts an engine whose data, state and socket
#                                  all live in DIR (made when missing), waits
#                                  until it answers, prints DOCKER_HOST=unix://DIR/docker.sock
#   scripts/dockerd.sh stop DIR    stops it (SIGTERM, SIGKILL after 30 s), waits
#                                  until it is gone and unmounts what it left
#                                  mounted in DIR; DIR is kept, so a later
#                                  start finds its images again
#
# Run as root. The engine gets its own containerd (under DIR), no bridge, no
# iptables rules and a network namespace of its own (`unshare --net`): a
# dockerd started with `--bridge=none` deletes the `docker0` interface it
# finds, and in the machine's namespace that is the machine engine's bridge.
# Its containers have only the `none` network (give Ferrite's routes
# `"confinement":{"network":"none"}`); its socket is a file, reached from any
# namespace. The vfs storage driver works on any
# file system, nested or not, at the price of a full copy of the image per
# container: fine for the small images of the tests. Keep DIR short: the
# socket's path must stay under 108 bytes. Load images from the machine's
# engine with `docker save IMAGE | docker -H unix://DIR/docker.sock load`.
set -euo pipefail

usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
dir=$2
pid_of() { cat "$dir/pid" 2>/dev/null || true; }

case $1 in
  start)
    command -v dockerd >/dev/null || { echo "dockerd.sh: no dockerd (Debian's docker.io package)" >&2; exit 1; }
    [ "$(id -u)" = 0 ] || { echo "dockerd.sh: dockerd needs root" >&2; exit 1; }
    mkdir -p "$dir"
    [ -f "$dir/daemon.json" ] || echo '{}' >"$dir/daemon.json"
    # setsid: a Ctrl-C in the caller's terminal is for the caller, which
    # stops the engine itself. No inherited descriptors beyond the log.
    setsid unshare --net dockerd -H "unix://$dir/docker.sock" --data-root "$dir/root" --exec-root "$dir/exec" \
      --pidfile "$dir/pid" --bridge=none --iptables=false --ip6tables=false \
      --storage-driver=vfs --config-file "$dir/daemon.json" \
      </dev/null >>"$dir/dockerd.log" 2>&1 3>&- 4>&- 5>&- &
    for _ in $(seq 300); do
      if docker -H "unix://$dir/docker.sock" version >/dev/null 2>&1; then
        echo "DOCKER_HOST=unix://$dir/docker.sock"
        exit 0
      fi
      sleep 0.1
    done
    echo "dockerd.sh: the engine did not answer within 30 s; its log:" >&2
    tail -n 20 "$dir/dockerd.log" >&2
    exit 1
    ;;
  stop)
    pid=$(pid_of)
    [ -n "$pid" ] || exit 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 300); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "dockerd.sh: the engine did not stop within 30 s: SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
      while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    fi
    # The engine leaves its data root mounted on itself after it stops:
    # unmount everything under DIR, deepest first, so DIR can be removed.
    awk -v d="$dir/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r | xargs -r -n 1 umount -l
    ;;
  *) usage ;;
esac
