#!/bin/sh
# sleep: for timeout tests. Sleeps for the body's number of seconds if the
# body is a number, else $SLEEP (route config sleep), else 60; then prints
# "slept".
body=$(cat | tr -d ' \t\r\n')
case $body in
  '' | *[!0-9.]* | *.*.* | .) secs=${SLEEP:-60} ;;
  *) secs=$body ;;
esac
echo "sleep: sleeping ${secs}s" >&2
# In the background so that a SIGTERM (docker stop) ends the call at once:
# as PID 1 the shell would otherwise wait for sleep to finish first.
trap 'kill "$pid" 2>/dev/null; exit 143' TERM INT
sleep "$secs" &
pid=$!
wait "$pid"
echo slept
