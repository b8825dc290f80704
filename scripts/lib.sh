# shellcheck shell=bash
# Functions shared by the scripts in this folder; sourced, not run.

# Installs the Debian packages that are missing. The package lists may be
# empty on a fresh machine, hence `apt-get update` when the first try fails.
apt_install() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq "${missing[@]}" >/dev/null \
    || { apt-get update -qq >/dev/null && apt-get install -y -qq "${missing[@]}" >/dev/null; }
  stop_package_services "${missing[@]}"
}

# Some packages start a system service on install (the registry on port
# 5000, nginx on port 80, Redis on 6379, PostgreSQL's default cluster on
# 5432). Tests start instances of their own: stop those.
stop_package_services() {
  local p
  for p in "$@"; do
    case $p in
      docker-registry)
        if [ -d /run/systemd/system ]; then
          systemctl disable --now docker-registry >/dev/null 2>&1 || true
        else
          invoke-rc.d docker-registry stop >/dev/null 2>&1 || true
          update-rc.d docker-registry disable >/dev/null 2>&1 || true
        fi
        ;;
      nginx) nginx -s quit >/dev/null 2>&1 || true ;;
      redis-server)
        if [ -d /run/systemd/system ]; then
          systemctl disable --now redis-server >/dev/null 2>&1 || true
        else
          invoke-rc.d redis-server stop >/dev/null 2>&1 || true
        fi
        ;;
      postgresql | haproxy)
        if [ -d /run/systemd/system ]; then
          systemctl disable --now "$p" >/dev/null 2>&1 || true
        else
          invoke-rc.d "$p" stop >/dev/null 2>&1 || true
        fi
        ;;
    esac
  done
}

# A port nobody listens on: random, checked against the kernel's table of
# listening TCP sockets (state 0A), so no tool beyond bash is needed.
free_port() {
  local port hex
  while :; do
    port=$((20000 + RANDOM % 40000))
    printf -v hex ':%04X ' "$port"
    if ! awk '$4 == "0A" { print $2 " " }' /proc/net/tcp /proc/net/tcp6 2>/dev/null | grep -q "$hex"; then
      echo "$port"; return
    fi
  done
}

# Makes this machine's engine a Swarm manager when it is not in a Swarm:
# a single node, advertised on the address of the default route (or the
# engine's choice). Prints "initialised" when it did, so the caller leaves
# the Swarm again at the end; an active Swarm is used as it is and kept.
swarm_ensure() {
  local addr
  [ "$(docker info --format '{{.Swarm.LocalNodeState}}')" = active ] && return 0
  addr=$(ip -4 route get 1.1.1.1 2>/dev/null | awk '{for (i = 1; i < NF; i++) if ($i == "src") print $(i + 1)}')
  docker swarm init ${addr:+--advertise-addr "$addr"} >/dev/null
  echo initialised
}

# Leaves the Swarm that swarm_ensure initialised, with the bridge Docker
# made for it (docker_gwbridge outlives the Swarm otherwise).
swarm_leave() {
  docker swarm leave --force >/dev/null 2>&1 || true
  docker network rm docker_gwbridge >/dev/null 2>&1 || true
}

# haproxy_config PORT ADDR...: an HAProxy configuration (printed) for
# 127.0.0.1:PORT in front of Ferrite nodes at ADDR (host:port), as
# docs/operating.md describes it: calls balanced by a consistent hash of the
# URI and the management API round-robin, health checks on /health, a node
# taken out at its first refused connection and a call that cannot connect
# sent to another node, no reuse of server connections, X-Forwarded-For set,
# and HAProxy's own 502/503 answered as Ferrite answers errors (JSON, and
# Retry-After on the 503). The tests' balancer (crates/ferrite/tests/common/
# haproxy.rs) and the benches use this one.
haproxy_config() {
  local port=$1 addr backend i
  shift
  cat <<CFG
global
    maxconn 4096
defaults
    mode http
    timeout connect 2s
    timeout client 120s
    timeout server 120s
    retries 3
    option redispatch 1
    option httpchk GET /health
    http-reuse never
    option forwardfor
    http-error status 503 content-type application/json string '{"error":{"message":"no Ferrite node can take the call now; try again shortly"}}' hdr Retry-After 1
    http-error status 502 content-type application/json string '{"error":{"message":"the Ferrite node failed while answering"}}'
frontend ferrite
    bind 127.0.0.1:$port
    use_backend calls if { path_beg /r/ }
    default_backend api
backend calls
    balance uri
    hash-type consistent
CFG
  for backend in calls api; do
    [ "$backend" = api ] && printf 'backend api\n    balance roundrobin\n'
    i=0
    # observe: a node that refuses a connection of live traffic is out at
    # once, not at its next failed check (with the URI hash, calls would
    # otherwise keep going to the dead node until then).
    for addr in "$@"; do
      echo "    server $backend$i $addr check inter 300ms fall 1 rise 2 observe layer4 error-limit 1 on-error mark-down"
      i=$((i + 1))
    done
  done
}

# stop_pidfile PIDFILE: TERM the process PIDFILE names, give it 5 s to go,
# then KILL it. Nothing when the file is missing.
stop_pidfile() {
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 0
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}

# image_outcome TAG BEFORE START [SIZE]: the one line a build reports:
# whether TAG's image id moved from BEFORE, its short id and the seconds
# since START (date +%s.%N), with SIZE when given.
image_outcome() {
  local tag=$1 before=$2 start=$3 size=${4:+ $4} after secs
  after=$(docker image inspect -f '{{.Id}}' "$tag")
  secs=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
  if [ "$before" = "$after" ]; then
    echo "unchanged $tag ${after:7:12}$size (${secs}s)"
  else
    echo "built     $tag ${after:7:12}$size (${secs}s)"
  fi
}

# daemon_args NAME "$@": the `start|stop DIR` arguments of a script that
# runs one daemon with its files in DIR. Sets cmd, DIR, PIDFILE (DIR/NAME.pid)
# and ADDRFILE (DIR/NAME.addr); calls the script's usage when they are wrong.
daemon_args() {
  local name=$1
  shift
  [ $# -eq 2 ] || usage
  cmd=$1
  mkdir -p "$2"
  DIR=$(cd "$2" && pwd)
  PIDFILE=$DIR/$name.pid
  ADDRFILE=$DIR/$name.addr
}

# running: whether the daemon of PIDFILE is alive.
running() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

# image_size TAG: the image's size in MB, one decimal ("74.3MB").
image_size() {
  docker image inspect -f '{{.Size}}' "$1" | awk '{ printf "%.1fMB", $1 / 1e6 }'
}

# --- Debian root filesystems as images ---------------------------------------
# No registry is reachable on Ferrite's machines, so an image of Debian
# packages starts as a root filesystem that debootstrap (minbase) makes on the
# host from Debian's mirror: trimmed, cached as a tarball named by a hash of
# what goes into it, and imported with `docker import`. The caller sets:
#   ROOTFS_CACHE     the directory of its cached tarballs (its own: a new
#                    tarball deletes the others there)
#   ROOTFS_PACKAGES  an array of packages to add to minbase (may be empty)
#   ROOTFS_TRIM      the name of a function `TRIM DIR` that trims the tree
#   ROOTFS_FRESH     1 to debootstrap again instead of using the cache
# FERRITE_DEBIAN_MIRROR replaces Debian's mirror. debootstrap needs root.
ROOTFS_SUITE=bookworm
ROOTFS_MIRROR=${FERRITE_DEBIAN_MIRROR:-http://deb.debian.org/debian}

# The cache key: everything that decides the root filesystem's content.
rootfs_key() {
  { echo "$ROOTFS_SUITE $ROOTFS_MIRROR ${ROOTFS_PACKAGES[*]}"; declare -f "$ROOTFS_TRIM"; } \
    | sha256sum | cut -c1-12
}

# Prints the path of the cached root filesystem tarball, making it first if
# it is missing: debootstrap into a temporary directory of the cache, trim,
# tar (numeric owners, no /dev: Docker makes its own), then rename, so an
# interrupted run never leaves a tarball that looks whole.
rootfs_tarball() {
  local key tarball work include=()
  key=$(rootfs_key)
  tarball="$ROOTFS_CACHE/rootfs-$ROOTFS_SUITE-$key.tar.gz"
  if [ "${ROOTFS_FRESH:-0}" = 1 ]; then rm -f "$tarball"; fi
  if [ -f "$tarball" ]; then echo "$tarball"; return; fi
  [ "$(id -u)" = 0 ] || { echo "debootstrap needs root" >&2; return 1; }
  apt_install debootstrap
  mkdir -p "$ROOTFS_CACHE"
  work=$(mktemp -d "$ROOTFS_CACHE/work.XXXXXX")
  if [ ${#ROOTFS_PACKAGES[@]} -gt 0 ]; then
    include=("--include=$(IFS=,; echo "${ROOTFS_PACKAGES[*]}")")
  fi
  echo "debootstrap $ROOTFS_SUITE ${ROOTFS_PACKAGES[*]} from $ROOTFS_MIRROR" >&2
  if debootstrap --variant=minbase "${include[@]}" \
       "$ROOTFS_SUITE" "$work/root" "$ROOTFS_MIRROR" >&2 \
     && "$ROOTFS_TRIM" "$work/root" >&2 \
     && tar -C "$work/root" --numeric-owner --exclude='./dev/*' --exclude='./proc/*' \
       --exclude='./sys/*' -czf "$work/rootfs.tar.gz" . \
     && mv "$work/rootfs.tar.gz" "$tarball"; then
    rm -rf "$work"
    # Tarballs of older keys are of no more use.
    find "$ROOTFS_CACHE" -maxdepth 1 -name "rootfs-$ROOTFS_SUITE-*.tar.gz" \
      ! -name "${tarball##*/}" -delete
    echo "$tarball"
  else
    rm -rf "$work"
    return 1
  fi
}

# rootfs_import TAG [CHANGE...]: imports the root filesystem as TAG (with
# each CHANGE as a `docker import --change`, and the cache key as label
# org.ferrite.rootfs) unless the image there was imported from the same key.
rootfs_import() {
  local tag=$1 tarball key current change changes=()
  shift
  tarball=$(rootfs_tarball)
  key=$(rootfs_key)
  current=$(docker image inspect -f '{{index .Config.Labels "org.ferrite.rootfs"}}' "$tag" 2>/dev/null || true)
  [ "$current" = "$key" ] && return 0
  for change in "$@"; do changes+=(--change "$change"); done
  docker import --change "LABEL org.ferrite.rootfs=$key" "${changes[@]}" "$tarball" "$tag" >/dev/null
}
