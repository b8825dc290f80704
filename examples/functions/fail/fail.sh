#!/bin/sh
# fail: always an error; exits with $EXIT_CODE (route config exit_code),
# default 3, after a line on stderr for the call's log.
code=${EXIT_CODE:-3}
echo "fail: exiting with code $code" >&2
exit "$code"
