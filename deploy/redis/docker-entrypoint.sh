#!/bin/sh
# Entry point of ferrite/redis: Redis from Debian's packages, as the redis
# user, with the settings of /etc/redis/ferrite.conf.
#
# REDIS_PASSWORD_FILE names a file (a Docker secret: /run/secrets/NAME) whose
# content, less one trailing newline, is the password every client must give
# (`requirepass`). It reaches Redis as configuration on its standard input,
# never as an argument, so it shows in no process list. Without it Redis
# takes clients without a password, and says so: only for a network that
# nothing else is on.
#
# Arguments: none or `redis-server [option...]` runs the server (options
# after the configuration file override it); `ping` is the health check
# (PONG, with the password when there is one); anything else is run as it
# is (`docker run --rm -it ferrite/redis bash`).
set -eu

if [ $# -eq 0 ] || [ "${1#-}" != "$1" ]; then
  set -- redis-server /etc/redis/ferrite.conf "$@"
fi
case $1 in
  redis-server | ping) ;;
  *) exec "$@" ;;
esac

# The content of file $1 less one trailing "\n" or "\r\n", into $secret.
read_secret() {
  secret=$(cat "$1" && printf x) || return 1
  secret=${secret%x}
  secret=${secret%"
"}
  secret=${secret%"$(printf '\r')"}
}

if [ "$1" = ping ]; then
  if [ -n "${REDIS_PASSWORD_FILE:-}" ]; then
    read_secret "$REDIS_PASSWORD_FILE"
    # redis-cli reads the password from there, not from its arguments.
    REDISCLI_AUTH=$secret
    export REDISCLI_AUTH
  fi
  redis-cli ping | grep -q PONG
  exit
fi

if [ -z "${REDIS_PASSWORD_FILE:-}" ]; then
  echo "warning: REDIS_PASSWORD_FILE is not set: Redis takes clients without a password" >&2
  exec "$@"
fi
if ! read_secret "$REDIS_PASSWORD_FILE"; then
  echo "error: cannot read REDIS_PASSWORD_FILE $REDIS_PASSWORD_FILE" >&2
  exit 1
fi
case $secret in
  "") echo "error: REDIS_PASSWORD_FILE $REDIS_PASSWORD_FILE is empty" >&2; exit 1 ;;
  *"
"*) echo "error: the password in REDIS_PASSWORD_FILE $REDIS_PASSWORD_FILE spans several lines" >&2; exit 1 ;;
esac
# A quoted configuration value: backslashes and double quotes escaped.
quoted=$(printf '%s' "$secret" | sed 's/\\/\\\\/g; s/"/\\"/g')
# `-` as the last argument: Redis reads more configuration from its standard
# input (dash feeds a here-document through a pipe, not a file).
exec "$@" - <<EOF
requirepass "$quoted"
EOF
