#!/bin/sh
# Entry point of ferrite/postgres: PostgreSQL from Debian's packages.
#
# Started as root, it gives the data directory to the postgres user and runs
# itself again as that user. On the first start (no PG_VERSION in $PGDATA) it
# runs initdb with POSTGRES_USER as the superuser and POSTGRES_PASSWORD as its
# password (or the content of the file POSTGRES_PASSWORD_FILE names, less one
# trailing newline: a Docker secret, /run/secrets/NAME), makes the server
# listen on every address with scram-sha-256 password authentication for the
# network (the Unix socket inside the container stays trusted), creates POSTGRES_DB, and runs any *.sql or *.sh
# in /docker-entrypoint-initdb.d. Then it execs the server as PID 1.
#
# Arguments: none or `postgres [option...]` runs the server; a first argument
# starting with `-` is a server option (`-c max_connections=200`); anything
# else is run as it is (`docker run --rm -it ferrite/postgres bash`).
set -eu

if [ $# -eq 0 ] || [ "${1#-}" != "$1" ]; then
  set -- postgres "$@"
fi
[ "$1" = postgres ] || exec "$@"

: "${PGDATA:=/var/lib/postgresql/data}"
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
export PGDATA

if [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA" /run/postgresql
  # Only what is not the postgres user's already: a large data directory is
  # not walked through again on every start.
  find "$PGDATA" /run/postgresql \! -user postgres -exec chown postgres:postgres {} +
  chmod 700 "$PGDATA"
  chmod 2775 /run/postgresql
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
    if [ -n "${POSTGRES_PASSWORD:-}" ]; then
      echo "error: POSTGRES_PASSWORD and POSTGRES_PASSWORD_FILE are both set: give one" >&2
      exit 1
    fi
    # The file's content less one trailing "\n" or "\r\n".
    POSTGRES_PASSWORD=$(cat "$POSTGRES_PASSWORD_FILE" && printf x) || {
      echo "error: cannot read POSTGRES_PASSWORD_FILE $POSTGRES_PASSWORD_FILE" >&2
      exit 1
    }
    POSTGRES_PASSWORD=${POSTGRES_PASSWORD%x}
    POSTGRES_PASSWORD=${POSTGRES_PASSWORD%"
"}
    POSTGRES_PASSWORD=${POSTGRES_PASSWORD%"$(printf '\r')"}
  fi
  if [ -z "${POSTGRES_PASSWORD:-}" ]; then
    echo "error: POSTGRES_PASSWORD (or POSTGRES_PASSWORD_FILE) is not set: the database is" \
      "not initialised and its superuser needs a password for connections over the network" >&2
    exit 1
  fi
  case $POSTGRES_PASSWORD in
    *"
"*) echo "error: the superuser's password spans several lines (initdb reads one)" >&2; exit 1 ;;
  esac
  echo "initialising $PGDATA (superuser $POSTGRES_USER, database $POSTGRES_DB)"
  pwfile=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  initdb --username="$POSTGRES_USER" --pwfile="$pwfile" --encoding=UTF8 \
    --locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$pwfile"
  {
    echo
    echo "# ferrite/postgres"
    echo "listen_addresses = '*'"
    echo "unix_socket_directories = '/run/postgresql'"
    # Debian's LLVM (130 MB) is left out of the image, so is the JIT.
    echo "jit = off"
  } >>"$PGDATA/postgresql.conf"
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"

  # A server on the Unix socket only, so nothing connects before it is ready.
  pg_ctl --silent --wait --options="-c listen_addresses=''" start
  if [ "$POSTGRES_DB" != postgres ]; then
    psql --quiet --no-psqlrc -v ON_ERROR_STOP=1 --username="$POSTGRES_USER" --dbname=postgres \
      --set=db="$POSTGRES_DB" <<'SQL'
CREATE DATABASE :"db";
SQL
  fi
  for f in /docker-entrypoint-initdb.d/*; do
    case $f in
      *.sql) echo "running $f"
        psql --quiet --no-psqlrc -v ON_ERROR_STOP=1 --username="$POSTGRES_USER" \
          --dbname="$POSTGRES_DB" --file="$f" ;;
      *.sh) echo "running $f"; . "$f" ;;
    esac
  done
  pg_ctl --silent --wait --mode=fast stop
  echo "initialised; starting the server"
fi

exec "$@"
