#!/usr/bin/env bash
# A throwaway Swarm of several nodes on this one machine: each node a Docker
# engine in a container (Docker-in-Docker, the image ferrite/swarm-node built
# from scripts/swarm-node/ on Debian's docker.io: nothing is pulled), on a
# bridge network of its own where the nodes reach each other on TCP 2377,
# 7946 and UDP 7946, 4789 (Swarm's control plane, gossip and the overlay's
# VXLAN). The machine's own engine and its Swarm are not touched: the nodes
# form a Swarm of their own.
#
#   scripts/swarm-nodes.sh up NAME [WORKERS]   starts ferrite-dind-NAME-1 (the manager) and
#                                              WORKERS workers (default 2), forms the Swarm,
#                                              prints one line per node: CONTAINER ROLE ADDRESS
#   scripts/swarm-nodes.sh load NAME NODE|all IMAGE...
#                                              copies images from this machine's engine into a
#                                              node's (docker save | docker load)
#   scripts/swarm-nodes.sh down NAME           removes the nodes (their tasks with them), their
#                                              volumes and the network
#
# A node's engine answers through `docker exec ferrite-dind-NAME-I docker ...`; its
# Swarm hostname is its container's name. Everything is labelled
# org.ferrite.test=1 and org.ferrite.swarm-nodes=NAME and named ferrite-dind-NAME*.
#
# Why not --privileged: an engine whose own capabilities lack one (this
# machine's lacks CAP_SYS_RESOURCE) cannot start privileged containers
# ("unable to apply caps: operation not permitted"). A node gets every
# capability the engine can give but that one, no seccomp or AppArmor
# profile and unmasked /proc paths; its entry point makes /sys and the
# cgroups writable (scripts/swarm-node/entrypoint.sh). Its /var/lib/docker is
# a volume: overlay2 works there, not on the container's own overlay root.
#
# Images reach the nodes by `docker save | docker load`, not a registry:
# for the few small images a test needs it takes seconds and needs nothing
# running, and it leaves the nodes without a registry, which is what
# `missing_image_on` in GET /v1/services is about.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=ferrite/swarm-node:latest

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
say() { echo "swarm-nodes.sh: $*" >&2; }

[ $# -ge 2 ] || usage
verb=$1 name=$2
shift 2
[[ $name =~ ^[a-z0-9][a-z0-9-]{0,30}$ ]] || { say "NAME: lowercase letters, digits and dashes (at most 31)"; exit 2; }
prefix=ferrite-dind-$name

# The nodes' containers, in order (manager first).
nodes() {
  docker ps -a --filter "label=org.ferrite.swarm-nodes=$name" --format '{{.Names}}' \
    | awk -F- '{ print $NF " " $0 }' | sort -n | cut -d' ' -f2
}

# on NODE ARGS...: docker on the node's engine.
on() {
  local node=$1
  shift
  docker exec "$node" docker "$@"
}

address() {
  docker inspect -f "{{(index .NetworkSettings.Networks \"$prefix\").IPAddress}}" "$1"
}

down() {
  local containers
  containers=$(docker ps -aq --filter "label=org.ferrite.swarm-nodes=$name")
  # shellcheck disable=SC2086 # ids, one per word
  [ -z "$containers" ] || docker rm -f -v $containers >/dev/null
  docker volume ls -q --filter "label=org.ferrite.swarm-nodes=$name" | xargs -r docker volume rm >/dev/null
  docker network rm "$prefix" >/dev/null 2>&1 || true
}

up() {
  local workers=${1:-2} i node manager token count built
  [[ $workers =~ ^[1-9]$ ]] || { say "WORKERS: 1 to 9"; exit 2; }
  if [ -n "$(nodes)" ]; then
    say "nodes of $name exist already (scripts/swarm-nodes.sh down $name)"
    exit 1
  fi
  docker image inspect debian:bookworm-slim >/dev/null 2>&1 \
    || { say "debian:bookworm-slim is missing: run scripts/base-images.sh"; exit 1; }
  # The legacy builder: BuildKit needs the buildx plugin, which is not here.
  built=$(DOCKER_BUILDKIT=0 docker build -t "$IMAGE" scripts/swarm-node 2>&1) \
    || { say "building $IMAGE failed:"; echo "$built" >&2; exit 1; }
  docker network create --label org.ferrite.test=1 --label "org.ferrite.swarm-nodes=$name" "$prefix" >/dev/null
  for i in $(seq $((workers + 1))); do
    node=$prefix-$i
    docker volume create --label org.ferrite.test=1 --label "org.ferrite.swarm-nodes=$name" "$node" >/dev/null
    docker run -d --name "$node" --hostname "$node" --network "$prefix" \
      --label org.ferrite.test=1 --label "org.ferrite.swarm-nodes=$name" \
      --cap-add ALL --cap-drop SYS_RESOURCE --security-opt seccomp=unconfined \
      --security-opt apparmor=unconfined --security-opt systempaths=unconfined \
      -v "$node:/var/lib/docker" "$IMAGE" >/dev/null
  done
  for node in $(nodes); do
    for _ in $(seq 300); do
      on "$node" version >/dev/null 2>&1 && break
      sleep 0.2
    done
    on "$node" version >/dev/null 2>&1 || { say "$node's engine did not answer:"; docker logs --tail 20 "$node" >&2; exit 1; }
  done
  manager=$prefix-1
  on "$manager" swarm init --advertise-addr "$(address "$manager")" >/dev/null
  token=$(on "$manager" swarm join-token -q worker)
  for i in $(seq 2 $((workers + 1))); do
    on "$prefix-$i" swarm join --token "$token" "$(address "$manager"):2377" >/dev/null
  done
  for _ in $(seq 300); do
    count=$(on "$manager" node ls --format '{{.Status}}' | grep -c '^Ready$' || true)
    [ "$count" = $((workers + 1)) ] && break
    sleep 0.2
  done
  [ "$count" = $((workers + 1)) ] || { say "only $count of $((workers + 1)) nodes are ready"; on "$manager" node ls >&2; exit 1; }
  for node in $(nodes); do
    if [ "$node" = "$manager" ]; then echo "$node manager $(address "$node")"; else echo "$node worker $(address "$node")"; fi
  done
}

load() {
  [ $# -ge 2 ] || usage
  local target=$1 node pids=() pid failed=0
  shift
  for image in "$@"; do
    docker image inspect "$image" >/dev/null 2>&1 || { say "image $image is not on this machine's engine"; exit 1; }
  done
  if [ "$target" = all ]; then mapfile -t targets < <(nodes); else targets=("$target"); fi
  for node in "${targets[@]}"; do
    docker save "$@" | docker exec -i "$node" docker load -q >/dev/null &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
  [ $failed = 0 ] || { say "loading $* failed"; exit 1; }
}

case $verb in
  up)
    # A Swarm half formed is no use to anyone: gone again on failure.
    trap '[ $? = 0 ] || down' EXIT
    up "$@"
    ;;
  load) load "$@" ;;
  down) down ;;
  *) usage ;;
esac
