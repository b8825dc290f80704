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
