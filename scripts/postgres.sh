#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for tests, from Debian's postgresql package.
#
#   scripts/postgres.sh run   prints POSTGRES_URL=postgres://ferrite@127.0.0.1:PORT/postgres,
#                             serves until its standard input closes, then
#                             stops the cluster and removes it
#
# Its life is tied to its standard input rather than to start/stop commands:
# a test process keeps the write end of a pipe open and the kernel closes it
# when that process ends, however it ends (success, panic, SIGKILL), so the
# cluster never outlives the tests that use it. By hand: Ctrl-D or Ctrl-C.
#
# Everything lives in a new temp dir: the data directory (initdb), the unix
# socket and the server's log. When run as root (PostgreSQL refuses to run as
# root) the dir belongs to the `postgres` system user the package creates and
# the server runs as that user. The server listens on 127.0.0.1 on a free port,
# with trust authentication for the superuser `ferrite`, and with fsync off: a
# test cluster is discarded, so durability only costs time. Roles that are
# members of the role `password_required` must give their password
# (scram-sha-256), so that a test can check a client that sends one. The system's own
# clusters (/etc/postgresql, /var/lib/postgresql) are never touched.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() { echo "usage: $0 run" >&2; exit 2; }
[ $# -eq 1 ] && [ "$1" = run ] || usage

apt_install postgresql
# The newest server the package installed (15 on Debian bookworm).
bin=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
  echo "postgres.sh: no /usr/lib/postgresql/*/bin/initdb; install Debian's postgresql package" >&2
  exit 1
fi

DIR=$(mktemp -d "${TMPDIR:-/tmp}/ferrite-postgres.XXXXXX")
as_pg=()
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 \
    || { echo "postgres.sh: no postgres system user (the postgresql package creates it)" >&2; rm -rf "$DIR"; exit 1; }
  chown postgres: "$DIR"
  as_pg=(runuser -u postgres --)
fi

cleanup() {
  "${as_pg[@]}" "$bin/pg_ctl" -D "$DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

if ! "${as_pg[@]}" "$bin/initdb" -D "$DIR/data" -U ferrite --auth=trust \
    --encoding=UTF8 --locale=C.UTF-8 --no-sync >"$DIR/initdb.log" 2>&1 </dev/null; then
  echo "postgres.sh: initdb failed:" >&2
  cat "$DIR/initdb.log" >&2
  exit 1
fi

"${as_pg[@]}" sed -i '1i host all +password_required 127.0.0.1/32 scram-sha-256' "$DIR/data/pg_hba.conf"

for _ in 1 2 3 4 5; do  # a few ports, in case one is taken meanwhile
  port=$(free_port)
  if "${as_pg[@]}" "$bin/pg_ctl" -D "$DIR/data" -l "$DIR/postgres.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories='$DIR' \
          -c max_connections=300 -c shared_buffers=32MB \
          -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
      start </dev/null >/dev/null 2>&1; then
    psql -q "postgres://ferrite@127.0.0.1:$port/postgres" \
      -c "CREATE ROLE password_required NOLOGIN" </dev/null >/dev/null
    echo "POSTGRES_URL=postgres://ferrite@127.0.0.1:$port/postgres"
    cat >/dev/null || true  # until standard input closes
    exit 0
  fi
done
echo "postgres.sh: the server did not start; last log:" >&2
tail -n 20 "$DIR/postgres.log" >&2
exit 1
