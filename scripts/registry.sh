#!/usr/bin/env bash
# A private registry for Ferrite's pull tests: no public registry is
# reachable here, so tests push locally built images to this one and pull
# them back with credentials.
#
#   scripts/registry.sh start DIR   prints REGISTRY=127.0.0.1:PORT
#   scripts/registry.sh stop DIR
#
# Docker Distribution 2.8 from Debian's docker-registry package, bound to
# 127.0.0.1 on a free port, plain HTTP (the engine treats 127.0.0.0/8 as an
# insecure registry, so no TLS is needed), basic auth from a bcrypt htpasswd
# (user ferrite, password ferrite-pass), storage under DIR/data, pid in
# DIR/registry.pid, log in DIR/registry.log.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

USER_NAME=ferrite
PASSWORD=ferrite-pass

usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }
daemon_args registry "$@"

start() {
  if running; then
    echo "REGISTRY=$(cat "$ADDRFILE")"
    return
  fi
  apt_install docker-registry apache2-utils curl
  mkdir -p "$DIR/data"
  # bcrypt (-B) is the only hash Distribution's htpasswd auth accepts.
  htpasswd -Bbc "$DIR/htpasswd" "$USER_NAME" "$PASSWORD" 2>/dev/null

  local port pid
  for _ in 1 2 3 4 5; do  # a few ports, in case one is taken meanwhile
    port=$(free_port)
    cat >"$DIR/config.yml" <<YAML
version: 0.1
log:
  level: info
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $DIR/data
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$port
  secret: $(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
auth:
  htpasswd:
    realm: ferrite-registry
    path: $DIR/htpasswd
YAML
    # Its own session, so that it outlives this script and its terminal.
    setsid docker-registry serve "$DIR/config.yml" >"$DIR/registry.log" 2>&1 </dev/null &
    pid=$!
    # Ready when /v2/ answers 401 (auth required); gone if the port was taken.
    for _ in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || break
      if [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v2/")" = 401 ]; then
        echo "$pid" >"$PIDFILE"
        echo "127.0.0.1:$port" >"$ADDRFILE"
        echo "REGISTRY=127.0.0.1:$port"
        return
      fi
      sleep 0.1
    done
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  echo "registry did not start; last log:" >&2
  tail -n 20 "$DIR/registry.log" >&2
  exit 1
}

stop() {
  if running; then stop_pidfile "$PIDFILE"; fi
  # Credentials a test stored with `docker login` to this registry.
  if [ -f "$ADDRFILE" ]; then
    docker logout "$(cat "$ADDRFILE")" >/dev/null 2>&1 || true
  fi
  rm -f "$PIDFILE" "$ADDRFILE"
}

case $cmd in
  start) start ;;
  stop) stop ;;
  *) usage ;;
esac
